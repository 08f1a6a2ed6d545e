import pickle

import pytest

from collapseguard.transforms.weights import (
    RarityTables,
    WeightsConfig,
    doc_rarity,
    human_weight,
    rarity_weight,
    sample_weight,
    synthetic_weight,
)


def human(rwf, source=None, stratum="human_unverified"):
    return {"stratum": stratum, "rare_word_fraction": rwf, "source": source}


@pytest.fixture(scope="module")
def tables():
    return RarityTables()


def test_doc_rarity_english(tables):
    tokens = "the lichen and the cyanobacteria grow on quillwort of the bog near the house".split()
    out = doc_rarity(tokens, "en", tables)
    assert "cyanobacteria" in out["rare_words"] and "quillwort" in out["rare_words"]
    assert out["rare_words"] == sorted(set(out["rare_words"]))
    assert not {"the", "and", "of", "house", "on"} & set(out["rare_words"])
    assert 2.0 < out["mean_zipf"] < 5.0  # content words only: stopwords would pull it up to ~7


def test_doc_rarity_rules(tables):
    assert doc_rarity(["zz", "qx"], "en", tables)["rare_words"] == []  # shorter than 3 letters
    assert doc_rarity(["abc123xyz", "don't"], "en", tables) == {"mean_zipf": None, "rare_words": []}
    assert doc_rarity(["the", "of", "and"], "en", tables)["mean_zipf"] is None  # only stopwords
    assert doc_rarity(["hello"], None, tables) == {"mean_zipf": None, "rare_words": []}
    assert doc_rarity(["hello"], "xx", tables) == {"mean_zipf": None, "rare_words": []}
    assert doc_rarity(["的"], "zh", tables)["mean_zipf"] is None  # unsegmented script: undefined
    de = doc_rarity("der die und haus flechtengesellschaften".split(), "de", tables)
    assert de["rare_words"] == ["flechtengesellschaften"] and de["mean_zipf"] is not None
    assert doc_rarity(["hus"], "no", tables)["mean_zipf"] is not None  # fastText 'no' -> wordfreq 'nb'


def test_rarity_tables_are_lazy_and_cached():
    t = RarityTables()
    assert t._tables == {} and t._wordfreq is None  # nothing loaded when built
    first = t.lookup("en")
    assert t.lookup("en") is first
    pickle.dumps(WeightsConfig())


def test_weight_is_one_without_rare_words():
    cfg = WeightsConfig()
    assert human_weight(human(0.0), cfg) == 1.0
    assert human_weight(human(None), cfg) == 1.0  # language without a table
    assert human_weight(human(0.0, stratum="human_verified"), cfg) == 1.0


def test_weight_rises_monotonically_and_is_capped():
    cfg = WeightsConfig()
    fractions = [i / 1000 for i in range(0, 1001)]
    weights = [human_weight(human(f), cfg) for f in fractions]
    assert all(a <= b for a, b in zip(weights, weights[1:]))
    assert weights[-1] == cfg.cap and max(weights) <= cfg.cap
    assert weights[0] < human_weight(human(0.065), cfg) < weights[-1]  # strictly inside the ramp
    assert rarity_weight(float("nan"), cfg) == 1.0


def test_source_multipliers_stay_under_the_cap():
    cfg = WeightsConfig(cap=4.0, source_multipliers={"arxiv": 1.5, "gutenberg": 2.0, "huge": 50.0, "noisy": 0.5})
    assert human_weight(human(0.0, "gutenberg"), cfg) == 2.0
    assert human_weight(human(0.0, "arxiv"), cfg) == 1.5
    assert human_weight(human(0.0, "noisy"), cfg) == 0.5
    for src in ("arxiv", "gutenberg", "huge", "other", None):
        ws = [human_weight(human(i / 100, src), cfg) for i in range(101)]
        assert max(ws) <= 4.0
        assert all(a <= b for a, b in zip(ws, ws[1:]))
    assert human_weight(human(0.5, "gutenberg"), cfg) == 4.0


def test_zero_weight_strata_and_dispatch():
    cfg = WeightsConfig()
    for stratum in ("anchor", "review", "synthetic_known", "synthetic_suspected"):
        assert human_weight(human(0.2, "gutenberg", stratum), cfg) == 0.0
    assert sample_weight(human(0.2, stratum="anchor"), cfg, 0.5) == 0.0
    assert sample_weight(human(0.2, stratum="review"), cfg, 0.5) == 0.0
    assert sample_weight(human(0.2, stratum="synthetic_known"), cfg, 0.25) == 0.25
    assert sample_weight(human(0.0), cfg, 0.25) == 1.0
    with pytest.raises(ValueError):
        human_weight(human(0.1, stratum="nonsense"), cfg)


def test_config_normalises_and_validates():
    a = WeightsConfig(source_multipliers={"b": 2, "a": 1.5})
    b = WeightsConfig(source_multipliers=[("a", 1.5), ("b", 2.0)])
    assert a == b and a.source_multipliers == (("a", 1.5), ("b", 2.0)) and hash(a) == hash(b)
    for bad in (dict(cap=0.5), dict(synthetic_ceiling=1.5), dict(source_multipliers={"x": -1}),
                dict(rare_fraction_start=0.1, rare_fraction_full=0.05)):
        with pytest.raises(ValueError):
            WeightsConfig(**bad)


@pytest.mark.parametrize("ceiling", [0.001, 0.01, 0.2, 0.5])
def test_synthetic_weight_keeps_share_under_ceiling(ceiling):
    values = [0, 1, 7, 1000, 123_456.789, 3e9, 1e12]
    for h in values:
        for s in values:
            w = synthetic_weight(h, s, ceiling)
            assert 0.0 <= w <= 1.0
            share = w * s / (h + w * s) if h + w * s > 0 else 0.0
            assert share <= ceiling, (h, s, w)
            if s and h and w < 1.0:  # not wasteful: the ceiling is reached, not undershot
                assert share == pytest.approx(ceiling, rel=1e-9)


def test_synthetic_weight_edge_cases():
    assert synthetic_weight(1000, 0, 0.001) == 1.0  # nothing synthetic
    assert synthetic_weight(0, 0, 0.001) == 1.0
    assert synthetic_weight(0, 500, 0.001) == 0.0  # no human tokens: any weight breaks the ceiling
    assert synthetic_weight(1000, 1, 0.5) == 1.0  # far under the ceiling: no down-weighting
    assert synthetic_weight(1000, 1000, 0.0) == 0.0
    assert synthetic_weight(0, 500, 1.0) == 1.0
    with pytest.raises(ValueError):
        synthetic_weight(-1, 5, 0.1)
