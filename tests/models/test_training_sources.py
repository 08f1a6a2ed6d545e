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
