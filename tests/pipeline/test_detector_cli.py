import json
import os

from collapseguard.pipeline.cli import main

DEV = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "labeled-dev.jsonl")


def small_labeled(tmp_path, n=60):
    rows = [json.loads(x) for x in open(DEV, encoding="utf-8")][:n]
    path = tmp_path / "labeled.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path), rows


def test_evaluate_runs_the_stage_and_prints_metrics(tmp_path, capsys):
    path, rows = small_labeled(tmp_path)
    assert main(["evaluate", "--labeled", path, "--scoring-model", "none"]) == 0
    out = capsys.readouterr().out.strip().splitlines()[-1]
    res = json.loads(out)
    assert res["n"] == len(rows) and res["n_synthetic"] == sum(r["label"] == "synthetic" for r in rows)
    for key in ("auroc", "tpr_at_1pct_fpr", "tpr_at_5pct_fpr", "precision", "recall", "per_domain",
                "per_generator", "single_signal_auroc"):
        assert key in res
    assert 0.0 <= res["auroc"] <= 1.0 and "clf_p_synthetic" in res["single_signal_auroc"]
    # the generator field is a label here, never an attestation: nothing was "known synthetic"


def test_train_classifier_writes_a_model(tmp_path, capsys):
    path, _ = small_labeled(tmp_path, 80)
    assert main(["train-classifier", "--labeled", path, "--output", str(tmp_path / "clf")]) == 0
    assert os.path.getsize(tmp_path / "clf" / "classifier.ftz") > 0
    from collapseguard.pipeline.detector_cli import is_continuation, load_labeled

    # continuations of a human text in the file are not the classifier's to learn from
    n_cont = int(is_continuation(load_labeled([path])).sum())
    assert json.load(open(tmp_path / "clf" / "classifier.json"))["documents"] == 80 - n_cont
