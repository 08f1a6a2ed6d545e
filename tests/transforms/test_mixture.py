import itertools
import math
import random

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from collapseguard.transforms.mixture import (
    MixtureStats,
    RareCoverageSample,
    build_mixture,
    expected_distinct,
    expected_rare_coverage,
    human_and_synthetic_tokens,
    inclusion_probabilities,
)
from collapseguard.transforms.weights import synthetic_weight
from fixtures_data import combine_in_order

STRATA = ["anchor", "human_verified", "human_unverified", "synthetic_known", "synthetic_suspected", "review"]


def mixture_elements(n=300, seed=1):
    rng = random.Random(seed)
    return [(rng.choice(STRATA), rng.randint(1, 5000), rng.choice([0.0, 1.0, 1 / 3, 0.1, 2.7, 4.0, 1e-7]))
            for _ in range(n)]


def test_mixture_stats_same_for_any_merge_order():
    elements = mixture_elements()
    fn = MixtureStats()
    outs = [combine_in_order(fn, elements, 4, order) for order in itertools.permutations(range(4))]
    outs.append(combine_in_order(fn, list(reversed(elements)), 7, range(7)))
    assert all(o == outs[0] for o in outs)
    assert sum(outs[0]["documents"].values()) == len(elements)
    assert list(outs[0]["tokens"]) == [s for s in STRATA if s in outs[0]["tokens"]]  # manifest order


def test_mixture_stats_in_pipeline():
    elements = mixture_elements(60)
    expected = combine_in_order(MixtureStats(), elements, 1, [0])
    with TestPipeline() as p:
        out = p | beam.Create(elements) | beam.CombineGlobally(MixtureStats())
        assert_that(out, equal_to([expected]))


def test_two_pass_weights_land_under_the_ceiling():
    first = {"tokens": {"human_verified": 9000, "human_unverified": 1000, "synthetic_known": 5000},
             "weighted_tokens": {"human_verified": 20000.0, "human_unverified": 1000.0, "synthetic_known": 0.0}}
    h, s = human_and_synthetic_tokens(first)
    assert (h, s) == (21000.0, 5000)
    w = synthetic_weight(h, s, 0.001)
    mix = build_mixture(first["tokens"], {**first["weighted_tokens"], "synthetic_known": w * s}, None, 0.001)
    assert mix["under_ceiling"] is True
    assert mix["synthetic_share"] == pytest.approx(0.001, rel=1e-6)
    assert mix["synthetic_share_unweighted"] == pytest.approx(1 / 3)
    assert mix["strata"]["human_verified"]["tokens"] == 9000
    over = build_mixture(first["tokens"], {**first["weighted_tokens"], "synthetic_known": 5000.0}, None, 0.001)
    assert over["under_ceiling"] is False
    empty = build_mixture({}, {}, None, 0.001)
    assert empty["synthetic_share"] == 0.0 and empty["under_ceiling"] is True


def test_anchor_and_review_are_outside_the_mix():
    mix = build_mixture({"anchor": 100, "review": 100, "human_verified": 100},
                        {"anchor": 0.0, "review": 0.0, "human_verified": 150.0}, None, 0.001)
    assert mix["training_tokens"] == 100 and mix["strata"]["human_verified"]["weighted_share"] == 1.0
    assert mix["strata"]["anchor"]["weighted_share"] == 0.0


def test_inclusion_probabilities_spend_the_budget_in_proportion_to_weight():
    sizes, weights = [100, 100, 100, 100, 50], [1.0, 2.0, 4.0, 0.0, 1.0]
    p = inclusion_probabilities(sizes, weights, 150)
    assert math.fsum(pi * n for pi, n in zip(p, sizes)) == pytest.approx(150)
    assert p[3] == 0.0 and p[1] == pytest.approx(2 * p[0]) and p[2] == pytest.approx(4 * p[0])
    p = inclusion_probabilities(sizes, weights, 320)  # the heaviest is clamped at 1
    assert p[2] == 1.0 and math.fsum(pi * n for pi, n in zip(p, sizes)) == pytest.approx(320)
    assert inclusion_probabilities(sizes, weights, 10_000) == [1.0, 1.0, 1.0, 0.0, 1.0]


def test_expected_distinct_by_hand():
    sets = [("alpha", "beta"), ("beta",), ("gamma",)]
    # alpha: 0.5; beta: 1 - 0.5*0.5 = 0.75; gamma: 0 (p = 0)
    assert expected_distinct(sets, [0.5, 0.5, 0.0]) == pytest.approx(1.25)
    assert expected_distinct(sets, [1.0, 0.0, 1.0]) == pytest.approx(3.0)


def coverage_elements(n=400, seed=3):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        tail = rng.random() < 0.2
        rare = [f"rare{rng.randint(0, 5000)}" for _ in range(rng.randint(5, 30) if tail else rng.randint(0, 2))]
        weight = 4.0 if tail else 1.0
        out.append((f"d{i}", rng.choice(["human_verified", "human_unverified", "anchor"]), rng.randint(50, 500),
                    weight, rare))
    return out


def test_weighted_sampling_covers_more_of_the_tail():
    docs = [(e[1], e[2], e[3], e[4]) for e in coverage_elements()]
    cov = expected_rare_coverage(docs, budgets=(0.05, 0.2))
    for b in cov["budgets"]:
        assert b["weighted"] > b["uniform"] > 0 and b["ratio"] > 1.2
    assert cov["docs_sampled"] == sum(d[0] != "anchor" for d in docs)


def test_rare_coverage_sample_is_bounded_and_order_free():
    elements = coverage_elements()
    fn = RareCoverageSample(max_docs=50, max_words=8)
    outs = [combine_in_order(fn, elements, 5, order) for order in ([0, 1, 2, 3, 4], [4, 3, 2, 1, 0], [2, 0, 4, 1, 3])]
    outs.append(combine_in_order(fn, elements[::-1], 3, [1, 2, 0]))
    assert all(o == outs[0] for o in outs)
    assert outs[0]["docs_sampled"] == 50 and outs[0]["docs_seen"] == len(elements)
    acc = fn.create_accumulator()
    for e in elements:
        acc = fn.add_input(acc, e)
        assert len(acc[1]) < 2 * 50
    with TestPipeline() as p:
        out = p | beam.Create(elements) | beam.CombineGlobally(fn)
        assert_that(out, equal_to([outs[0]]))
