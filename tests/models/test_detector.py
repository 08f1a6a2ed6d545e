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


def test_grouped_folds_keep_pairs_together():
    human = "The committee met on Tuesday to review the budget for the coming year and more words follow here"
    rows = [{"text": human + " human ending."}, {"text": human + " a machine continuation."},
            {"text": "Something else entirely with its own opening words and so on and on."}]
    groups = [D.pair_group(r) for r in rows]
    assert groups[0] == groups[1] != groups[2]
    folds = D.group_folds(groups * 50, 5)
    assert folds[0] == folds[1]
    assert D.pair_group({"text": "x", "group": "topic-7"}) == "topic-7"


def test_logistic_fit_and_detector_with_and_without_lm():
    rng = np.random.default_rng(2)
    rows, y = [], []
    for i in range(400):
        lab = i % 2
        rows.append({"lm_mean_logprob": rng.normal(-3 + lab, 0.5), "lm_mean_entropy": 3.0,
                     "lm_fdg_curvature": rng.normal(lab * 2, 1), "ttr": rng.normal(0.6 - 0.1 * lab, 0.05),
                     "burstiness": rng.normal(0.6 - 0.2 * lab, 0.1), "token_entropy_bits": 6.3,
                     "repetition": 0.01, "rare_word_fraction": 0.04, "clf_p_synthetic": rng.uniform(0.3 * lab, 0.7 + 0.3 * lab)})
        y.append(lab)
    y = np.array(y)
    rows = [D.derived_features(r) for r in rows]
    cal = {"threshold": 0.5, "models": {
        "full": D.fit_model(rows, y, [f for f in D.FEATURES if f != D.PROBE_FEATURE], 0.01),
        "no_lm": D.fit_model(rows, y, D.NO_LM_FEATURES, 0.01)}}
    det = D.Detector(json.loads(json.dumps(cal)))
    p = det.predict(rows)
    assert D.auroc(y, p) > 0.95
    no_lm = [{k: v for k, v in r.items() if not k.startswith("lm_")} for r in rows]
    p2 = det.predict(no_lm)
    assert all(0 <= v <= 1 for v in p2) and D.auroc(y, p2) > 0.8
    assert det.threshold_for(False) == cal["models"]["no_lm"]["threshold"]


def test_classifier_trains_and_separates(tmp_path):
    from collapseguard.models.classifier import Classifier, train

    human = [f"the old mill by the river ground corn for {i} families until the flood of that year" for i in range(60)]
    synth = [f"in today's fast-paced world, it is crucial to delve into the tapestry of topic {i}" for i in range(60)]
    info = train([(t, 0) for t in human] + [(t, 1) for t in synth], str(tmp_path / "c.ftz"), epoch=10, lr=0.5)
    assert info["bytes"] > 0 and info["quantized"]
    clf = Classifier(str(tmp_path / "c.ftz"))
    p = clf.predict(["it is crucial to delve into the tapestry", "the mill by the river ground corn"])
    assert p[0] > 0.5 > p[1]


def test_calibrate_end_to_end_without_the_stage():
    from collapseguard.pipeline.detector_cli import calibrate

    rng = np.random.default_rng(3)
    rows = []
    for i in range(160):
        lab = i % 2
        words = "crucial delve tapestry vibrant" if lab else "mill river corn flood"
        rows.append({"id": str(i), "text": f"{words} sample {i // 2} " * 5, "y": lab, "group": f"g{i // 2}",
                     "domain": ["a", "b"][i % 4 // 2], "generator": "m1" if lab and i % 3 else ("m2" if lab else None),
                     "ttr": rng.normal(0.6 - 0.1 * lab, 0.05), "burstiness": rng.normal(0.5, 0.1),
                     "token_entropy_bits": 6.0, "repetition": 0.0, "rare_word_fraction": 0.03})
    cal = calibrate(rows, 0.01)
    assert set(cal["models"]) == {"full", "no_lm"} and not cal["training_set"]["lm_scored"]
    assert cal["cross_validation"]["no_lm"]["auroc"] > 0.9
    assert set(cal["leave_one_generator_out"]) <= {"m1", "m2"}
    lodo = cal["leave_domains_out"]
    assert "pooled" in lodo and any(k.startswith("fold") and ("a" in k or "b" in k) for k in lodo)
    assert math.isfinite(cal["threshold"])


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
    from collapseguard.pipeline.detector_cli import calibrate

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
    cal_rows = [{"id": str(i), "text": t, "y": y, "group": f"g{i}", "domain": "d", "generator": "m" if y else None,
                 "ttr": 0.5, "burstiness": 0.5, "token_entropy_bits": 6.0, "repetition": 0.0,
                 "rare_word_fraction": 0.03} for i, (t, y) in enumerate(rows)]
    cal = calibrate(cal_rows, 0.01, leave_one_out=False, view="masked_top1000")
    assert cal["classifier_view"] == "masked_top1000"
    assert D.Detector(cal).classifier_view == "masked_top1000"
    assert D.Detector({"threshold": 0.5, "models": {}}).classifier_view == "words"  # older calibrations


def test_classifier_jobs_give_the_same_result_in_worker_processes():
    """calibrate trains its ~70 fastText models in spawned processes; job order and every
    probability must be what one process computes."""
    from collapseguard.pipeline.detector_cli import run_classifier_jobs

    human = [f"the mill by the river {w} ground corn before the flood" for w in ("old", "new", "red", "wet")] * 8
    synth = [f"it is crucial to delve into the {w} tapestry of ideas" for w in ("rich", "vast", "deep", "bold")] * 8
    rows = [(t, 0) for t in human] + [(t, 1) for t in synth]
    probes = ["the river mill ground corn", "delve into the tapestry", "a crucial flood"]
    jobs = [(rows, probes, "words"), (rows[::2], probes[::-1], "words"), (rows, probes, "masked_top1000")]
    serial = run_classifier_jobs(jobs, workers=1)
    assert run_classifier_jobs(jobs, workers=2) == serial
    assert serial[0][0] < 0.5 < serial[0][1]
    assert len(serial) == 3 and all(len(p) == 3 for p in serial)


def test_held_out_splits_never_train_on_what_they_test():
    from collapseguard.pipeline.detector_cli import held_out_splits

    rows = []
    for i in range(200):  # paired continuations (gen "cont") and unpaired chat texts (gen "chat")
        g = f"g{i // 2}" if i < 100 else f"c{i}"
        lab = 1 if (i < 100 and i % 2) or (i >= 100 and i % 4 == 0) else 0
        gen = ("cont" if i < 100 else "chat") if lab else None
        rows.append({"group": g, "y": lab, "generator": gen, "domain": f"d{(i // 2) % 7}"})  # pairs share a domain
    y = np.array([r["y"] for r in rows])
    groups = np.array([r["group"] for r in rows])
    splits = {k: list(held_out_splits(rows, y, k)) for k in ("generator", "domain")}
    assert [n for n, _, _ in splits["generator"]] == ["chat", "cont"]
    for name, tr, te in splits["generator"] + splits["domain"]:
        assert not (tr & te).any()
        assert not set(groups[tr]) & set(groups[te])  # a pair never straddles train and test
        assert (y[te] == 0).any() and (y[te] == 1).any()
    chat_train, chat_test = splits["generator"][0][1:]
    assert not any(rows[i]["generator"] == "chat" for i in np.flatnonzero(chat_train))
    # unpaired chat texts are tested against held-out humans
    assert (y[chat_test] == 0).sum() > 5
    domains = np.array([r["domain"] for r in rows])
    seen = set()
    for name, tr, te in splits["domain"]:
        assert not set(domains[tr]) & set(domains[te])
        seen |= set(domains[te])
    assert seen == set(domains)


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


def test_continuations_leave_the_classifier_and_get_their_own_kind():
    from collapseguard.pipeline.detector_cli import classifier_training_rows, is_continuation, synthetic_kinds

    rows = [{"text": "human text", "y": 0, "group": "g1"},
            {"text": "human text and a continuation", "y": 1, "group": "g1"},  # continues g1's human
            {"text": "a chat answer", "y": 1, "group": "chat-1"},
            {"text": "another human", "y": 0, "group": "g2"}]
    assert is_continuation(rows).tolist() == [False, True, False, False]
    assert classifier_training_rows(rows) == [("human text", 0), ("a chat answer", 1), ("another human", 0)]
    assert synthetic_kinds(rows).tolist() == ["", "continuation", "prompted", ""]


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


def test_heads_catch_kinds_whose_signals_point_opposite_ways():
    """Kind A sits above the humans on the signal, kind B below: one linear head cannot separate
    both from the humans; one head per kind, combined by max, does."""
    rng = np.random.default_rng(7)
    n = 600
    human = rng.normal(0, 1, n)
    a, b = rng.normal(3, 1, n // 2), rng.normal(-3, 1, n // 2)
    rows = [{"lm_mean_logprob": v} for v in np.concatenate([human, a, b])]
    y = np.array([0] * n + [1] * n)
    kinds = np.array([""] * n + ["continuation"] * (n // 2) + ["prompted"] * (n // 2))
    names = ["lm_mean_logprob"]
    single = D.fit_model(rows, y, names, 0.01)
    heads = D.fit_model(rows, y, names, 0.01, kinds=kinds)
    x = D.feature_matrix(rows, names)
    assert set(heads["heads"]) == {"continuation", "prompted"}
    assert D.auroc(y, D.predict_model(single, x)) < 0.7
    assert D.auroc(y, D.predict_model(heads, x)) > 0.95
    det = D.Detector(json.loads(json.dumps({"threshold": heads["threshold"],
                                            "models": {"full": heads, "no_lm": heads}})))
    p = det.predict([{"lm_mean_logprob": 3.5, "lm_mean_entropy": 1.0}, {"lm_mean_logprob": -3.5, "lm_mean_entropy": 1.0},
                     {"lm_mean_logprob": 0.0, "lm_mean_entropy": 1.0}])
    assert p[0] > heads["threshold"] and p[1] > heads["threshold"] and p[2] < heads["threshold"]
    oof = D.cross_val_scores(rows, y, D.group_folds([str(i) for i in range(len(rows))], 5), names, kinds=kinds)
    assert D.auroc(y, oof) > 0.95


def test_calibrate_refuses_bad_jobs_before_scoring(tmp_path, monkeypatch):
    from collapseguard.pipeline import detector_cli as C

    def no_scoring(*a, **k):
        raise AssertionError("scored before validating --jobs")

    monkeypatch.setattr(C, "scored_rows", no_scoring)
    labeled = tmp_path / "l.jsonl"
    labeled.write_text('{"id": "a", "text": "some words here", "label": "human"}\n')
    with pytest.raises(SystemExit) as e:
        C.main("calibrate", ["--labeled", str(labeled), "--output", str(tmp_path / "c.json"), "--jobs", "0"])
    assert e.value.code == 2


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


def test_probe_learns_from_embeddings_and_skips_rows_without_one():
    rng = np.random.default_rng(11)
    rows, y = embedding_rows(rng, 600)
    e, ok = D.embedding_matrix(rows)
    assert e.shape == (600, 24) and ok.all()
    probe = json.loads(json.dumps(D.fit_probe(e, y)))  # what calibration.json holds
    assert probe["dim"] == 24 and len(probe["coef"]) == 24
    assert int(np.argmax(np.abs(probe["coef"]))) == 3  # it found the direction
    test, y_test = embedding_rows(rng, 400)
    assert D.auroc(y_test, D.probe_logits(probe, test)) > 0.8
    odd = [{"lm_embedding": None}, {}, {"lm_embedding": [0.1] * 23}, {"lm_embedding": [float("nan")] * 24}]
    assert D.probe_logits(probe, odd) == [None, None, None, None]
    det = D.Detector({"threshold": 0.5, "models": {}, "probe": probe})
    assert det.probe_logits(test[:3]) == D.probe_logits(probe, test[:3])
    assert D.Detector({"threshold": 0.5, "models": {}}).probe_logits(test[:2]) == [None, None]


def test_probe_features_are_out_of_fold():
    """Noise embeddings wide enough to be memorised: in-sample the probe separates them, out of
    fold (what calibrate stacks) it cannot, so the stacked heads never see a leaked score."""
    from collapseguard.pipeline.detector_cli import Embeddings

    rng = np.random.default_rng(12)
    rows = [{"lm_embedding": rng.normal(0, 1, 120).tolist(), "y": i % 2, "group": f"g{i}"} for i in range(200)]
    y = np.array([r["y"] for r in rows])
    emb = Embeddings(rows)
    everything = np.ones(len(rows), dtype=bool)
    assert D.auroc(y, emb.scores(everything, everything)) > 0.9
    oof = emb.oof(D.group_folds([r["group"] for r in rows], 5))
    assert np.isfinite(oof).all() and D.auroc(y, oof) < 0.7


def test_calibrate_fits_the_probe_and_uses_it_in_the_full_model():
    from collapseguard.pipeline.detector_cli import Embeddings, calibrate
    from collapseguard.transforms.detect import score_batch

    rng = np.random.default_rng(13)
    emb_rows, _ = embedding_rows(rng, 200)
    rows = []
    for i, er in enumerate(emb_rows):
        lab = i % 2
        words = "crucial delve tapestry vibrant" if lab else "mill river corn flood"
        rows.append({"id": str(i), "text": f"{words} sample {i} " * 5, "y": lab, "group": f"g{i}",
                     "domain": ["a", "b"][i % 4 // 2], "generator": "m1" if lab else None,
                     "lm_mean_logprob": rng.normal(-3, 0.5), "lm_mean_entropy": 3.0, "lm_fdg_curvature": rng.normal(0, 1),
                     "ttr": 0.6, "burstiness": 0.5, "token_entropy_bits": 6.0, "repetition": 0.0,
                     "rare_word_fraction": 0.03, **er})
    # a continuation of g0's human text: the probe must not learn from it
    rows.append({**rows[1], "id": "cont", "group": "g0", "lm_embedding": [100.0] * 24})
    assert not Embeddings(rows).learn[-1]
    cal = json.loads(json.dumps(calibrate(rows, 0.01, leave_one_out=False)))
    assert cal["probe"]["dim"] == 24 and cal["calibration_version"] == 3
    assert D.PROBE_FEATURE in cal["models"]["full"]["features"]
    assert D.PROBE_FEATURE not in cal["models"]["no_lm"]["features"]
    assert cal["cross_validation"]["full"]["auroc"] > 0.8

    class Clf:
        def predict(self, texts):
            return [0.5] * len(texts)

    det = D.Detector(cal)
    records = [{k: v for k, v in r.items() if k not in ("y", "group")} for r in rows[:6]]
    out = score_batch([dict(r) for r in records], Clf(), det)
    assert all("lm_embedding" not in r and r["lm_probe_logit"] is not None for r in out)
    assert all(0.0 <= r["p_synthetic"] <= 1.0 for r in out)
    kept = score_batch([dict(r) for r in records], Clf(), det, keep_embedding=True)
    assert [r["lm_embedding"] for r in kept] == [r["lm_embedding"] for r in records]
    assert [r["p_synthetic"] for r in kept] == [r["p_synthetic"] for r in out]
