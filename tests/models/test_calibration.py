"""Choosing and thresholding the detector by held-out source (models.calibration), and building
a detector folder from a labeled corpus (models.detector_build)."""

import hashlib
import json

import numpy as np
import pytest

from collapseguard.models import calibration as K
from collapseguard.models import detector as D
from collapseguard.models import detector_build as B


def toy_rows(seed=0, n_pairs=60, dim=8):
    """Human sources h1..h3; machine families fa (rewrites of h1/h2 texts, more likely and shifted
    on embedding axis 2) and fb (unpaired, more likely); fc continues h3's texts and is noise."""
    rng = np.random.default_rng(seed)
    rows = []

    def row(i, y, source, gen, pair, shift_sig, shift_emb, words, text=None):
        e = rng.normal(0, 1, dim)
        e[2] += shift_emb
        return {"id": f"{source}-{i}", "text": text or f"{words} number {i} " + " ".join(rng.choice(WORDS, 12)),
                "y": y, "source": source, "generator": gen, "group": pair,
                "lm_mean_logprob": rng.normal(-3 + shift_sig, 0.5), "lm_mean_entropy": 3.0,
                "lm_fdg_curvature": rng.normal(0, 1), "ttr": rng.normal(0.6, 0.05), "burstiness": 0.5,
                "token_entropy_bits": 6.0, "repetition": 0.0, "rare_word_fraction": 0.03,
                "lm_embedding": e.tolist()}

    for i in range(n_pairs):
        h = "human:h1" if i % 2 else "human:h2"
        rows.append(row(i, 0, h, None, f"p{i}", 0, 0, "the mill by the river"))
        rows.append(row(i, 1, "synthetic:fa/rw", "fa-model", f"p{i}", 1.0, 2.5, "it is crucial to delve"))
    for i in range(n_pairs // 2):
        rows.append(row(i, 0, "human:h3", None, f"q{i}", 0, 0, "an old story of the sea"))
        rows.append(row(i, 1, "synthetic:fc/noise", "fc-model", f"q{i}", 0, 0, "", rows[-1]["text"] + " and on"))
        rows.append(row(i, 1, "synthetic:fb/chat", "fb-model", f"c{i}", 1.5, 0, "vibrant tapestry of ideas"))
    return rows


WORDS = np.array("a the of and to in is was for on with as by at from".split())


def corpus(rows):
    return B.corpus_from_rows(rows)


def test_held_out_splits_never_train_on_what_they_test():
    rows = toy_rows()
    c = corpus(rows)
    splits = K.held_out_splits(c)
    kinds = {(s.kind, s.name) for s in splits}
    assert {("family", f) for f in ("fa-model", "fb-model", "fc-model")} <= kinds
    assert {("source", s) for s in ("synthetic:fa/rw", "synthetic:fb/chat", "synthetic:fc/noise")} <= kinds
    assert {("human_source", s) for s in ("human:h1", "human:h2", "human:h3")} <= kinds
    for s in splits:
        assert not (s.train & s.test).any()
        assert not set(c.pair[s.train]) & set(c.pair[s.test])  # a pair never straddles
        if s.kind == "human_source":
            assert (c.source[s.test] == s.name).all() and not (c.source[s.train] == s.name).any()
        else:
            held = c.family if s.kind == "family" else c.source
            assert not (held[s.train] == s.name).any()
            assert (c.y[s.test] == 0).sum() > 5 and (c.y[s.test] == 1).any()
    fb = next(s for s in splits if s.name == "fb-model")  # unpaired: tested against a fifth of the humans
    assert (c.y[fb.test] == 0).any() and not np.isin(c.pair[fb.test & (c.y == 0)], c.pair[fb.test & (c.y == 1)]).any()


def test_row_weights_balance_classes_and_sources():
    c = corpus(toy_rows())
    everything = np.ones(len(c), dtype=bool)
    for weighting in ("class", "source"):
        w = K.row_weights(c, everything, weighting)
        assert w[c.y == 0].sum() == pytest.approx(len(c) / 2) == pytest.approx(w[c.y == 1].sum())
    w = K.row_weights(c, everything, "source")
    per = {s: w[c.source == s].sum() for s in set(c.source)}
    assert per["human:h1"] == pytest.approx(per["human:h3"])  # 30 and 30 rows
    assert per["synthetic:fa/rw"] == pytest.approx(per["synthetic:fb/chat"])  # 60 rows vs 30
    with pytest.raises(ValueError):
        K.row_weights(c, everything, "rows")


def test_cross_fitted_fpr_judges_each_source_by_the_others_threshold():
    held = {"a": np.arange(100.0), "b": np.arange(100.0), "c": np.arange(100.0) + 50}
    # at 1% each source may keep its top value: a and b give a threshold just above 98, c one above 148
    per = K.cross_fitted_fpr(held, 0.01)
    assert per["c"] == pytest.approx(0.51)  # threshold from a and b: c has 51 values (99..149) over it
    assert per["a"] == 0.0 and per["b"] == 0.0  # threshold from c (and a or b): above 148
    assert K.per_source_threshold(held, 0.01) == pytest.approx(np.nextafter(148.0, np.inf))
    q, chosen = K.choose_fpr(held, (0.01, 0.0), max_fpr=0.02)
    assert q == 0.0 and chosen == K.cross_fitted_fpr(held, 0.0)  # 1% broke c's promise; 0 did not
    q, _ = K.choose_fpr({"a": np.arange(100.0), "b": np.arange(100.0)}, (0.01, 0.0), 0.02)
    assert q == 0.01  # the loosest target that keeps it


def test_leximin_prefers_the_better_worst_source():
    assert K.leximin_key([0.70, 0.99]) > K.leximin_key([0.69, 0.999])
    assert K.leximin_key([0.701, 0.95]) < K.leximin_key([0.7012, 0.96])  # a tie on the worst: the next decides


def test_select_ignores_sources_no_candidate_detects_and_keeps_the_one_that_transfers():
    rows = toy_rows()
    c = corpus(rows)
    splits = K.held_out_splits(c)
    cands = [K.Candidate("curvature", ("lm_fdg_curvature",), False, 1.0),
             K.Candidate("logprob", ("lm_mean_logprob",), False, 1.0),
             K.Candidate("logprob+probe", ("lm_mean_logprob",), True, 10.0)]
    chosen = K.select(c, splits, cands, None, (0.01, 0.0), 0.02)
    assert ("family", "fc-model") not in chosen["informative"]  # noise: nobody detects it
    assert ("family", "fa-model") in chosen["informative"]
    assert chosen["candidate"].name in ("logprob", "logprob+probe")
    record = json.loads(json.dumps(K.selection_record(chosen)))
    assert set(record["held_out"]) == {"family", "source", "human_source"}
    assert set(record["held_out"]["human_source"]) == {"human:h1", "human:h2", "human:h3"}
    assert record["threshold_rule"]["per_source_fpr"] in (0.01, 0.0)
    assert record["held_out"]["family"]["fa-model"]["auroc"] > 0.8
    assert set(record["candidates"]) == {"curvature", "logprob", "logprob+probe"}


def test_the_runtime_detector_computes_the_fitted_logit_exactly():
    """The joint fit (scalar features + hidden state + the classifier's log-odds) is shipped as a
    probe and a head; Detector.predict on records equals the fitted logit's sigmoid."""
    rows = toy_rows()
    c = corpus(rows)
    cand = K.Candidate("x", B.LM, True, 10.0, "source", 0.5)
    head = K.fit(c, np.ones(len(c), dtype=bool), cand)
    model, probe = K.runtime_model(c, head, cand, 0.3)
    cal = json.loads(json.dumps({"threshold": model["threshold"], "models": {"full": model, "no_lm": model},
                                 "probe": probe}))
    det = D.Detector(cal)
    rng = np.random.default_rng(4)
    clf_p = np.round(rng.uniform(0.01, 0.99, len(rows)), 6)
    recs = [dict(r, clf_p_synthetic=float(p)) for r, p in zip(rows, clf_p)]
    for r, v in zip(recs, det.probe_logits(recs)):
        r["lm_probe_logit"] = v
    p = np.array(det.predict(recs))
    everything = np.ones(len(c), dtype=bool)
    logit = K.head_logits(c, head, cand, everything) + 0.5 * K.clf_logit(clf_p)
    assert np.allclose(p, 1 / (1 + np.exp(-(logit - 0.3))), atol=2e-6)  # centred on the threshold
    assert np.array_equal(p, K.runtime_p(c, model, probe, everything, K.clf_logit(clf_p)))
    assert cal["threshold"] == 0.5 == det.threshold_for(True) and model["logit_threshold"] == 0.3
    assert ((p >= 0.5) == (logit >= 0.3 + 1e-5)).mean() > 0.99
    # a record without a hidden state is scored as if it had the training mean
    bare = dict(recs[0], lm_embedding=None)
    bare["lm_probe_logit"] = det.probe_logits([bare])[0]
    assert bare["lm_probe_logit"] is None and 0 < det.predict([bare])[0] < 1


def test_continuations_are_found_by_their_opening_words():
    human = "The committee met on Tuesday to review the budget for the coming year and then went home"
    texts = [human, human + " and a machine went on.", "A rewrite: the committee reviewed the budget.", "Other."]
    assert B.opens_like_a_human(texts, np.array([0, 1, 1, 0])).tolist() == [False, True, False, False]


def _digest(folder):
    return {n: hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in B.FILES}


def test_build_writes_a_detector_folder_deterministically(tmp_path):
    """The whole build on a toy corpus, twice (one and two worker processes): byte-identical
    files, which the runtime loads; the classifier never learns from a continuation."""
    rows = toy_rows()
    texts = [r["text"] for r in rows]
    fast = {"epoch": 3}
    cands = [K.Candidate("lm+probe", B.LM, True, 10.0, "source", lam) for lam in (0.0, 1.0)]
    no_lm = [K.Candidate("cheap", B.CHEAP, False, 1.0, "source", 1.0)]
    outs = []
    for workers in (1, 2):
        out = tmp_path / f"det{workers}"
        cal = B.build(corpus(rows), texts, str(out), workers=workers, lm_max_tokens=128, candidates=cands,
                      no_lm_candidates=no_lm, clf_settings=fast, log=lambda m: None)
        outs.append(out)
    assert _digest(outs[0]) == _digest(outs[1])
    assert cal["calibration_version"] == K.CALIBRATION_VERSION and cal["lm_max_tokens"] == 128
    assert set(cal["models"]) == {"full", "no_lm"} and cal["probe"]["dim"] == 8
    assert cal["selection"]["full"]["chosen"]["name"] == "lm+probe"
    n_cont = int(B.opens_like_a_human(texts, np.array([r["y"] for r in rows])).sum())
    assert n_cont == 30 and cal["training_set"]["classifier_documents"] == len(rows) - n_cont
    det = D.Detector.load(str(outs[0] / "calibration.json"))
    assert det.threshold == cal["threshold"] == det.threshold_for(True)
    from collapseguard.models.classifier import Classifier

    assert len(Classifier(str(outs[0] / "classifier.ftz")).predict(texts[:3])) == 3
