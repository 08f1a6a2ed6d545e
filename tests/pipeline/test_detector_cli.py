import json
import os

import pytest

from collapseguard.pipeline.cli import main

DEV = os.path.join(os.path.dirname(__file__), "..", "..", "models", "training", "data", "labeled-dev.jsonl")


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
                "per_source", "per_generator", "per_family", "per_length", "single_signal_auroc"):
        assert key in res
    # the first 60 rows hold GPT-2-era continuations only: one family, its texts against every human
    assert list(res["per_family"]) == ["gpt2-era"]
    fam = res["per_family"]["gpt2-era"]
    assert fam["n"] == len(rows) and fam["n_synthetic"] == res["n_synthetic"] and "recall" in fam
    assert 0.0 <= res["auroc"] <= 1.0 and "clf_logit" in res["single_signal_auroc"]
    # the generator field is a label here, never an attestation: nothing was "known synthetic"


def test_train_classifier_writes_a_model(tmp_path, capsys):
    path, _ = small_labeled(tmp_path, 80)
    assert main(["train-classifier", "--labeled", path, "--output", str(tmp_path / "clf")]) == 0
    assert os.path.getsize(tmp_path / "clf" / "classifier.ftz") > 0
    import numpy as np

    from collapseguard.models.detector_build import opens_like_a_human
    from collapseguard.pipeline.detector_cli import load_labeled

    # continuations of a human text in the file (they open with its words) are not the classifier's
    rows = load_labeled([path])
    n_cont = int(opens_like_a_human([r["text"] for r in rows], np.array([r["y"] for r in rows])).sum())
    assert n_cont > 0
    assert json.load(open(tmp_path / "clf" / "classifier.json"))["documents"] == 80 - n_cont


def _read_run(out):
    import glob

    import pyarrow.parquet as pq

    rows = [r for p in sorted(glob.glob(os.path.join(out, "*", "*.parquet"))) for r in pq.read_table(p).to_pylist()]
    return {r["id"]: r for r in rows}


@pytest.mark.slow
def test_real_model_pools_embeddings_for_the_shipped_probe(tmp_path):
    """The stage with the embedded LM and the shipped detector: the probe reads the pooled
    hidden state from the same forward pass; --write-lm-embedding also writes it."""
    import pyarrow.parquet as pq

    _, rows = small_labeled(tmp_path, 6)
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"id": r["id"], "text": " ".join(r["text"].split()[:60])}) + "\n" for r in rows))
    kept, dropped = str(tmp_path / "kept"), str(tmp_path / "dropped")
    for out, extra in ((kept, ["--write-lm-embedding"]), (dropped, [])):
        assert main(["run", "--input", str(src), "--output", out, "--lm-max-tokens", "64"] + extra) == 0
    a, b = _read_run(kept), _read_run(dropped)
    assert sorted(a) == sorted(b) == sorted(r["id"] for r in rows)
    for i in a:
        assert len(a[i]["lm_embedding"]) == 576 and b[i]["lm_embedding"] is None
        assert isinstance(a[i]["lm_probe_logit"], float) and isinstance(a[i]["p_synthetic"], float)
        assert a[i]["lm_probe_logit"] == b[i]["lm_probe_logit"] and a[i]["p_synthetic"] == b[i]["p_synthetic"]
    import glob

    for path in glob.glob(os.path.join(kept, "*", "*.parquet")):
        assert str(pq.read_schema(path).field("lm_embedding").type) == "list<element: float>"
    assert json.load(open(os.path.join(kept, "manifest.json")))["write_lm_embedding"] is True


def test_evaluate_reports_each_length_band_with_its_human_false_positives():
    """per_length: a threshold can keep its promise overall and still flag short human texts
    (reviews, messages) more: each band gets its own AUROC and the share of its humans flagged."""
    from collapseguard.models import shipped_path
    from collapseguard.pipeline.detector_cli import evaluate, length_bands

    assert list(length_bands([0, 49, 50, 199, 200, 400, 10**6])) == [
        "0-49", "0-49", "50-99", "100-199", "200-399", "400+", "400+"]

    def row(i, y, words, p):
        return {"id": str(i), "y": y, "label": "synthetic" if y else "human", "text": "w " * words,
                "n_words": words, "p_synthetic": p, "domain": "d", "generator": "gpt-4o" if y else None}

    rows = ([row(i, 0, 20, 0.9 if i < 4 else 0.1) for i in range(40)]  # 4 of 40 short humans over 0.5
            + [row(100 + i, 0, 300, 0.1) for i in range(40)]
            + [row(200 + i, 1, 20, 0.95) for i in range(20)]
            + [row(300 + i, 1, 300, 0.3 if i < 10 else 0.7) for i in range(20)])
    res = evaluate(rows, json.load(open(os.path.join(shipped_path(), "calibration.json"))))
    assert list(res["per_length"]) == ["0-49", "200-399"]  # bands without texts are left out
    short, long_ = res["per_length"]["0-49"], res["per_length"]["200-399"]
    assert (short["n"], short["n_synthetic"], long_["n"], long_["n_synthetic"]) == (60, 20, 60, 20)
    assert short["fpr"] == 0.1 and short["recall"] == 1.0
    assert long_["fpr"] == 0.0 and long_["recall"] == 0.5
    assert res["fpr"] == 0.05  # the overall figure hides the short band's 10%
