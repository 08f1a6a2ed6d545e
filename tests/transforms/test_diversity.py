import random

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from collapseguard.core.text import budget_prefix, distinct_n, self_similarity, ttr_windows
from collapseguard.transforms.diversity import DiversityStats
from fixtures_data import combine_in_order as run


def test_distinct_n_by_hand():
    assert distinct_n([["a", "b", "a", "b"]], 2) == pytest.approx(2 / 3)  # ab ba ab
    assert distinct_n([["a", "b"], ["a", "b", "c"]], 2) == pytest.approx(2 / 3)  # ab | ab bc: no cross-doc gram
    assert distinct_n([["a", "b", "c", "a", "b", "c"]], 3) == pytest.approx(3 / 4)  # abc bca cab abc
    assert distinct_n([["x", "y", "z"]], 3) == 1.0
    assert distinct_n([["a"], []], 2) is None


def test_ttr_windows_by_hand():
    doc = ["w%d" % i for i in range(50)] * 2 + ["same"] * 100 + ["tail"] * 30  # windows: 50/100, 1/100
    assert ttr_windows([doc], 100) == pytest.approx((0.5 + 0.01) / 2)
    assert ttr_windows([["a"] * 99], 100) is None


def test_self_similarity_by_hand():
    a = "the cat sat on the mat".split()  # 4-grams: tcso, csot, sotm
    b = "a cat sat on the mat today".split()  # 4-grams: acso, csot, sotm, otmt
    assert self_similarity([a, a]) == 1.0
    assert self_similarity([a, "one two three four five".split()]) == 0.0
    assert self_similarity([a, b]) == pytest.approx((2 / 3 + 2 / 4) / 2)
    assert self_similarity([a]) is None


def test_budget_prefix_caps_tokens():
    docs = [["a"] * 30, ["b"] * 30, ["c"] * 30]
    assert [len(d) for d in budget_prefix(docs, 50)] == [30, 20]


def corpus(n=300, seed=5, templated=False):
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(3000)]
    out = []
    for i in range(n):
        if templated:
            text = "buy cheap shoes online now best deals today " * rng.randint(5, 20)
        else:
            text = " ".join(rng.choice(vocab) for _ in range(rng.randint(20, 600)))
        out.append((f"doc-{i}", text))
    return out


def test_diversity_stats_same_for_any_merge_order_and_bounded():
    elements = corpus()
    fn = DiversityStats(max_docs=40, max_doc_tokens=120, token_budget=3000)
    outs = [run(fn, elements, 4, o) for o in ([0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2])]
    outs.append(run(fn, list(reversed(elements)), 6, [5, 4, 3, 2, 1, 0]))
    outs.append(run(fn, [{"id": i, "text": t, "other": 1} for i, t in elements], 2, [1, 0]))  # records work too
    assert all(o == outs[0] for o in outs)
    out = outs[0]
    assert out["docs_sampled"] == 40 and out["docs_seen"] == len(elements) and out["tokens_sampled"] == 3000
    assert set(out) >= {"ttr_w100", "distinct_2", "distinct_3", "self_similarity", "docs_sampled"}
    acc = fn.create_accumulator()
    for e in elements:
        acc = fn.add_input(acc, e)
        assert len(acc["docs"]) < 80 and all(len(d[2]) <= 120 for d in acc["docs"])


def test_templated_text_reads_less_diverse():
    fn = DiversityStats(max_docs=50, token_budget=2000)
    varied = run(fn, corpus(), 1, [0])
    spam = run(fn, corpus(templated=True), 1, [0])
    assert spam["distinct_2"] < varied["distinct_2"] and spam["distinct_3"] < varied["distinct_3"]
    assert spam["ttr_w100"] < varied["ttr_w100"]
    assert spam["self_similarity"] > 0.9 > varied["self_similarity"]


def test_diversity_stats_per_stratum_in_pipeline():
    human, spam = corpus(60), corpus(60, templated=True)
    fn = DiversityStats(max_docs=20, token_budget=1000)
    expected = [("human_verified", run(fn, human, 1, [0])), ("review", run(fn, spam, 1, [0]))]
    keyed = [("human_verified", e) for e in human] + [("review", e) for e in spam]
    with TestPipeline() as p:
        out = p | beam.Create(keyed) | beam.CombinePerKey(fn)
        assert_that(out, equal_to(expected))
