"""The training set's source and family vocabulary, and the LM-score cache that matches it."""

import gzip
import importlib.util
import json
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TRAINING = os.path.join(HERE, "..", "..", "models", "training")


def _module(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(TRAINING, f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


sources = _module("sources")


def test_a_source_is_a_dataset_and_domain_for_humans_and_a_family_for_machines():
    assert sources.source_of({"label": "human", "dataset": "l2r", "domain": "l2r_Finance"},
                             "labeled-modern.jsonl") == "human:labeled-modern/l2r/l2r_Finance"
    assert sources.source_of({"label": "human", "domain": "usenet_1993", "generator": None},
                             "human-more.jsonl") == "human:human-more/usenet_1993"
    assert sources.source_of({"label": "synthetic", "generator": "gpt-4o", "dataset": "l2r"},
                             "labeled-modern.jsonl") == "synthetic:openai/l2r"
    assert sources.source_of({"label": "synthetic", "generator": "claude-agent"},
                             "synthetic-chat.jsonl") == "synthetic:anthropic/synthetic-chat"


def test_every_training_row_has_a_licence_entry_and_the_cache_matches_the_files():
    rows = list(sources.training_rows())
    licences = open(os.path.join(sources.DATA, "LICENSES.md"), encoding="utf-8").read()
    assert all(f"`{f}`" in licences for f in sources.FILES)
    modern = [r for r in rows if r["file"] == "labeled-modern.jsonl"]
    assert modern and all(r["license"] for r in modern)  # the licence travels with the text
    with gzip.open(os.path.join(TRAINING, "scores", "lm-signals.jsonl.gz"), "rt", encoding="utf-8") as f:
        cached = [json.loads(line) for line in f]
    assert [c["id"] for c in cached] == [r["id"] for r in rows]
    assert [c["source"] for c in cached] == [r["source"] for r in rows]
    for budget in (128, 512):
        emb = np.load(os.path.join(TRAINING, "scores", f"embedding-{budget}.npy"), mmap_mode="r")
        assert emb.shape == (len(rows), 576)
    assert all(c["512"]["lm_tokens"] >= c["128"]["lm_tokens"] for c in cached[:200])


def test_the_second_scorers_cache_matches_the_files_and_its_features_follow_from_the_sums():
    second = _module("second_scorer")
    rows = list(sources.training_rows())
    with gzip.open(os.path.join(TRAINING, "scores", f"{second.NAME}.jsonl.gz"), "rt", encoding="utf-8") as f:
        cached = [json.loads(line) for line in f]
    assert [c["id"] for c in cached] == [r["id"] for r in rows]
    assert all(set(second.SUMS) <= set(c) and 0 <= c["top1"] <= c["top10"] <= c["n"] <= second.MAX_TOKENS
               for c in cached)
    # two scored positions: log p -1 and -3 (mean -2), E[log p] sums to -6 (entropy 3), 40 characters
    sums = [{"n": 2, "chars": 40, "sum_logprob": -4.0, "sum_mu": -6.0, "sum_var": 4.0, "sum_logrank": 2.0,
             "top1": 1, "top10": 2},
            {"n": 0, "chars": 5, "sum_logprob": 0.0, "sum_mu": 0.0, "sum_var": 0.0, "sum_logrank": 0.0,
             "top1": 0, "top10": 0}]
    cols = second.second_features(sums, np.array([-0.2, -0.3]))
    assert cols["g_logprob"][0] == -2.0 and cols["g_entropy"][0] == 3.0
    assert cols["g_curvature"][0] == 1.0  # (-4 - -6) / sqrt(4)
    assert cols["g_logprob_entropy_ratio"][0] == -4.0 / -6.0
    assert (cols["g_logrank"][0], cols["g_top1"][0], cols["g_top10"][0]) == (1.0, 0.5, 1.0)
    assert np.isclose(cols["x_nats_per_char"][0], -4.0 / 40 + 0.2)  # likelier per character under the second
    assert all(np.isnan(cols[k][1]) for k in cols)  # one token, no position scored: no figure


def test_transfer_checks_nuisance_directions(monkeypatch):
    monkeypatch.syspath_prepend(TRAINING)  # the script imports build_detector as its siblings do
    tc = _module("transfer_checks")
    rng = np.random.default_rng(0)
    # three human sources whose centroids differ along axis 0 only, one machine source
    z = rng.normal(size=(60, 5)) * 0.01
    source = np.repeat(np.array(["h1", "h2", "h3", "m"]), 15)
    y = (source == "m").astype(int)
    z[source == "h2", 0] += 1.0
    z[source == "h3", 0] -= 2.0
    assert tc.nuisance_directions(z, source, y, 0, "human") is None
    u = tc.nuisance_directions(z, source, y, 1, "human")
    assert u.shape == (5, 1) and abs(abs(u[0, 0]) - 1.0) < 1e-3
    projected = z - (z @ u) @ u.T
    cents = [projected[source == s].mean(axis=0) for s in ("h1", "h2", "h3")]
    assert max(np.abs(a - b).max() for a in cents for b in cents) < 0.02  # the sources now coincide
    assert np.allclose(u.T @ u, np.eye(1))
    # "both": the machine class's own spread joins (one machine source: nothing to add)
    assert tc.nuisance_directions(z, source, y, 2, "both").shape == (5, 2)
