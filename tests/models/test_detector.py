import json
import math

import numpy as np
import pytest

from collapseguard.models import detector as D


def test_threshold_keeps_fpr_at_or_under_target_on_held_out_humans():
    rng = np.random.default_rng(0)
    human = rng.normal(0, 1, 40_000)
    fit, held = human[:20_000], human[20_000:]
    t = D.threshold_at_fpr(fit, 0.01)
    assert (fit >= t).mean() <= 0.01
    assert (held >= t).mean() <= 0.0125  # held-out FPR stays at the target, up to sampling noise
    assert D.threshold_at_fpr([0.1, 0.2, 0.3], 0.0) > 0.3


def brute_auroc(y, s):
    pos = [b for a, b in zip(y, s) if a == 1]
    neg = [b for a, b in zip(y, s) if a == 0]
    return sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))


def test_metrics_match_reference_computations():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.normal(y * 0.8, 1.0), 1)  # rounding makes ties
    assert D.auroc(y, s) == pytest.approx(brute_auroc(y, s), abs=1e-12)
    # TPR at 5% FPR by brute force: the lowest threshold with FPR <= 5%
    neg, pos = s[y == 0], s[y == 1]
    best = max((t for t in np.unique(np.append(s, np.inf)) if (neg >= t).mean() <= 0.05), key=lambda t: (pos >= t).mean())
    assert D.tpr_at_fpr(y, s, 0.05) == pytest.approx((pos >= best).mean())
    pr = D.precision_recall(y, s, 0.5)
    tp = ((s >= 0.5) & (y == 1)).sum()
    assert pr["precision"] == pytest.approx(tp / (s >= 0.5).sum()) and pr["recall"] == pytest.approx(tp / y.sum())


def test_pair_group_keeps_a_continuation_with_its_human_text():
    human = "The committee met on Tuesday to review the budget for the coming year and more words follow here"
    rows = [{"text": human + " human ending."}, {"text": human + " a machine continuation."},
            {"text": "Something else entirely with its own opening words and so on and on."}]
    groups = [D.pair_group(r) for r in rows]
    assert groups[0] == groups[1] != groups[2]
    assert D.pair_group({"text": "x", "group": "topic-7"}) == "topic-7"


def test_classifier_trains_and_separates(tmp_path):
    from collapseguard.models.classifier import Classifier, train

    human = [f"the old mill by the river ground corn for {i} families until the flood of that year" for i in range(60)]
    synth = [f"in today's fast-paced world, it is crucial to delve into the tapestry of topic {i}" for i in range(60)]
    info = train([(t, 0) for t in human] + [(t, 1) for t in synth], str(tmp_path / "c.ftz"), epoch=10, lr=0.5)
    assert info["bytes"] > 0 and info["quantized"]
    clf = Classifier(str(tmp_path / "c.ftz"))
    p = clf.predict(["it is crucial to delve into the tapestry", "the mill by the river ground corn"])
    assert p[0] > 0.5 > p[1]


def test_masked_view_keeps_function_words_and_masks_topic_words():
    from collapseguard.models.classifier import check_view, prepare

    text = "Additionally, the sourdough from Kraków rose 12 times — however, it was dense."
    words = prepare(text, "words")
    masked = prepare(text, "masked_top3000")
    assert "sourdough" in words and "kraków" in words
    # topic words become shapes; function words, connectives and punctuation stay
    assert "sourdough" not in masked and "kraków" not in masked and "<w9>" in masked and "<d>" in masked
    for kept in ("the", "from", "however", "it", "was", ",", "—", "."):
        assert kept in masked.split()
    assert len(masked.split()) == len(words.split())  # one token for one token
    with pytest.raises(ValueError, match="unknown classifier view"):
        check_view("masked")


def test_masked_classifier_ignores_topic_and_calibration_records_view(tmp_path):
    """Same style on both sides, only the topic words differ (made-up words of equal length): the
    words view learns the topic, the masked view sees identical texts and cannot."""
    from collapseguard.models.classifier import Classifier, train

    human_topic, synth_topic = ("zorvat", "quelim", "drabon"), ("brimex", "tanolu", "vesk0r")
    human = [f"it was said that the {human_topic[i % 3]} and the {human_topic[(i + 1) % 3]} were fine" for i in range(90)]
    synth = [f"it was said that the {synth_topic[i % 3]} and the {synth_topic[(i + 1) % 3]} were fine" for i in range(90)]
    rows = [(t, 0) for t in human] + [(t, 1) for t in synth]
    probe = ["it was said that the brimex and the tanolu were fine"]
    p = {}
    for view in ("words", "masked_top1000"):
        train(rows, str(tmp_path / f"{view}.bin"), epoch=10, lr=0.5, quantize=False, view=view)
        p[view] = Classifier(str(tmp_path / f"{view}.bin"), view=view).predict(probe)[0]
    assert p["words"] > 0.9
    assert 0.3 < p["masked_top1000"] < 0.7
    assert D.Detector({"threshold": 0.5, "models": {}, "classifier_view": "masked_top1000"}).classifier_view \
        == "masked_top1000"
    assert D.Detector({"threshold": 0.5, "models": {}}).classifier_view == "words"  # older calibrations


def test_classifier_jobs_give_the_same_result_in_worker_processes():
    """calibrate trains a fastText model per held-out split in spawned processes; job order and
    every probability must be what one process computes."""
    from collapseguard.models.classifier import run_jobs as run_classifier_jobs

    human = [f"the mill by the river {w} ground corn before the flood" for w in ("old", "new", "red", "wet")] * 8
    synth = [f"it is crucial to delve into the {w} tapestry of ideas" for w in ("rich", "vast", "deep", "bold")] * 8
    rows = [(t, 0) for t in human] + [(t, 1) for t in synth]
    probes = ["the river mill ground corn", "delve into the tapestry", "a crucial flood"]
    jobs = [(rows, probes, "words"), (rows[::2], probes[::-1], "words"), (rows, probes, "masked_top1000"),
            (rows, probes, "words", {"epoch": 5})]
    serial = run_classifier_jobs(jobs, workers=1)
    assert run_classifier_jobs(jobs, workers=2) == serial
    assert serial[0][0] < 0.5 < serial[0][1]
    assert len(serial) == 4 and all(len(p) == 3 for p in serial) and serial[3] != serial[0]


def test_weighted_logistic_equals_duplicated_rows():
    rng = np.random.default_rng(5)
    z = rng.normal(size=(120, 3))
    y = (z[:, 0] + rng.normal(0, 1, 120) > 0).astype(float)
    w = rng.integers(1, 4, 120)
    coef_w, b_w = D.fit_logistic(z, y, sample_weight=w)
    coef_d, b_d = D.fit_logistic(np.repeat(z, w, axis=0), np.repeat(y, w))
    assert np.allclose(coef_w, coef_d, atol=1e-8) and b_w == pytest.approx(b_d, abs=1e-8)
    coef_1, _ = D.fit_logistic(z, y)
    assert np.allclose(D.fit_logistic(z, y, sample_weight=np.ones(120))[0], coef_1)


def test_scores_cache_rescores_only_new_or_changed_texts(tmp_path, monkeypatch):
    from collapseguard.pipeline import detector_cli as C

    calls = []

    def fake_stage(rows, scoring_model, detector, lm_max_tokens, beam_args, embedding=False):
        assert embedding  # the probe needs them
        calls.append(sorted(r["id"] for r in rows))
        return [{"id": r["id"], "text": r["text"], "lm_mean_logprob": -float(len(r["text"])),
                 "lm_mean_entropy": 2.0} for r in rows if r["text"]]

    monkeypatch.setattr(C, "score_with_stage", fake_stage)
    cache = str(tmp_path / "scores.jsonl")
    rows = [{"id": "a", "text": "one", "y": 0, "group": "a"}, {"id": "b", "text": "three", "y": 1, "group": "b"}]
    first = C.scored_rows(rows, "default", 256, [], cache)
    assert calls == [["a", "b"]] and [r["lm_mean_logprob"] for r in first] == [-3.0, -5.0]
    again = C.scored_rows(rows, "default", 256, [], cache)
    assert calls == [["a", "b"]] and again == first  # nothing rescored
    rows[1] = {"id": "b", "text": "changed!", "y": 1, "group": "b"}
    C.scored_rows(rows + [{"id": "c", "text": "new", "y": 0, "group": "c"}], "default", 256, [], cache)
    assert calls[-1] == ["b", "c"]  # only the changed and the new text
    C.scored_rows(rows, "default", 512, [], cache)
    assert calls[-1] == ["a", "b"]  # other scoring settings: everything again
    assert first[0]["y"] == 0 and first[0]["lm_logprob_entropy_ratio"] == pytest.approx(1.5)


def test_calibrate_refuses_bad_jobs_before_scoring(tmp_path, monkeypatch, capsys):
    from collapseguard.pipeline import detector_cli as C

    def no_scoring(*a, **k):
        raise AssertionError("scored before validating --jobs")

    monkeypatch.setattr(C, "scored_rows", no_scoring)
    labeled = tmp_path / "l.jsonl"
    labeled.write_text('{"id": "a", "text": "some words here", "label": "human"}\n')
    from collapseguard.pipeline.cli import main

    assert main(["calibrate", "--labeled", str(labeled), "--output", str(tmp_path / "det"), "--jobs", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--jobs must be >= 1" in err  # one line, not argparse's usage block
    (tmp_path / "c.json").write_text("{}")
    # the output is a detector folder, never a file overwritten
    assert main(["calibrate", "--labeled", str(labeled), "--output", str(tmp_path / "c.json")]) == 2
    assert (tmp_path / "c.json").read_text() == "{}" and "must be a folder" in capsys.readouterr().err


def test_classifier_feature_is_its_log_odds_clipped():
    rows = [{"clf_p_synthetic": 0.5}, {"clf_p_synthetic": 0.9}, {"clf_p_synthetic": 1.0},
            {"clf_p_synthetic": None}, {}]
    x = D.feature_matrix(rows, ["clf_logit"])[:, 0]
    assert x[0] == pytest.approx(0.0) and x[1] == pytest.approx(math.log(9))
    assert x[2] == pytest.approx(math.log((1 - 1e-6) / 1e-6))  # finite at p = 1
    assert np.isnan(x[3]) and np.isnan(x[4])
    assert D.derived_features({"clf_p_synthetic": 0.9})["clf_logit"] == pytest.approx(math.log(9))


def embedding_rows(rng, n, dim=24, shift=1.5):
    """Rows whose synthetic half is shifted along one direction of a `dim`-wide embedding."""
    direction = np.zeros(dim)
    direction[3] = 1.0
    rows, y = [], []
    for i in range(n):
        lab = i % 2
        rows.append({"lm_embedding": (rng.normal(0, 1, dim) + shift * lab * direction).astype(np.float32).tolist()})
        y.append(lab)
    return rows, np.array(y)


def test_probe_reads_embeddings_and_skips_rows_without_one():
    rng = np.random.default_rng(11)
    rows, y = embedding_rows(rng, 600)
    e, ok = D.embedding_matrix(rows)
    assert e.shape == (600, 24) and ok.all()
    probe = json.loads(json.dumps({"dim": 24, **D.fit_head(e, y, l2=10.0)}))  # what calibration.json holds
    assert int(np.argmax(np.abs(probe["coef"]))) == 3  # it found the direction
    test, y_test = embedding_rows(rng, 400)
    assert D.auroc(y_test, D.probe_logits(probe, test)) > 0.8
    odd = [{"lm_embedding": None}, {}, {"lm_embedding": [0.1] * 23}, {"lm_embedding": [float("nan")] * 24}]
    assert D.probe_logits(probe, odd) == [None, None, None, None]
    det = D.Detector({"threshold": 0.5, "models": {}, "probe": probe})
    assert det.probe_logits(test[:3]) == D.probe_logits(probe, test[:3])
    assert D.Detector({"threshold": 0.5, "models": {}}).probe_logits(test[:2]) == [None, None]


def test_older_calibrations_with_heads_still_predict():
    head = {"mean": [0.0], "std": [1.0], "coef": [2.0], "intercept": 0.0}
    cal = {"threshold": 0.5, "models": {"full": {"features": ["lm_mean_logprob"], "threshold": 0.5,
                                                 "heads": {"a": head, "b": {**head, "coef": [-2.0]}}}}}
    p = D.Detector(cal).predict([{"lm_mean_logprob": 3.0}, {"lm_mean_logprob": -3.0}, {"lm_mean_logprob": 0.0}])
    assert p[0] > 0.99 and p[1] > 0.99 and p[2] == 0.5  # max of the two heads


def test_classifier_tokens_equal_their_defining_regex_on_random_text():
    import random

    from collapseguard.models.classifier import _TOKEN, split_tokens

    alphabet = "aZ09'’_ -.,!?\t\n\r\x0b\x1c\x85\xa0\u3000éßİﬁ²½٣中\u0301\U0001d7d8"
    rng = random.Random(11)
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))).lower()
        assert split_tokens(text) == _TOKEN.findall(text), repr(text)
