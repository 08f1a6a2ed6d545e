import pickle

import pytest

from collapseguard.transforms.weights import (
    RarityTables,
    WeightsConfig,
    count_density,
    density_bin,
    doc_rarity,
    human_weight,
    rarity_ramp,
    rarity_weight,
    sample_weight,
    synthetic_weight,
)


def human(density, source=None, stratum="human_unverified"):
    return {"stratum": stratum, "rare_word_density": density, "source": source}


def histogram(densities, stratum="human_unverified"):
    hist = {}
    for d in densities:
        count_density(hist, {"stratum": stratum, "rare_word_density": d})
    return hist


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
    # the weight reads the density, not the share of distinct words
    assert human_weight({"stratum": "human_unverified", "rare_word_fraction": 0.9}, cfg) == 1.0


def test_weight_rises_monotonically_and_is_capped():
    cfg = WeightsConfig()  # fixed ramp 0.035 -> 0.045 when no run ramp is given
    densities = [i / 1000 for i in range(0, 1001)]
    ramp = {"rare_density_start": 0.01, "rare_density_full": 0.3}
    for r in (None, ramp):
        weights = [human_weight(human(d), cfg, r) for d in densities]
        assert all(a <= b for a, b in zip(weights, weights[1:]))
        assert weights[0] == 1.0 and weights[-1] == cfg.cap and max(weights) <= cfg.cap
    assert human_weight(human(0.040), cfg) == pytest.approx(2.5)  # half way up the fixed ramp
    assert human_weight(human(0.155), cfg, ramp) == pytest.approx(2.5)  # half way up the run's ramp
    assert human_weight(human(0.040), cfg, ramp) < human_weight(human(0.040), cfg)
    assert rarity_weight(float("nan"), cfg) == 1.0


def test_density_histogram_counts_human_documents_only():
    hist = {}
    for rec in ({"stratum": "human_verified", "rare_word_density": 0.01234},
                {"stratum": "human_unverified", "rare_word_density": 0.01239},
                {"stratum": "human_unverified", "rare_word_density": None},
                {"stratum": "human_unverified", "rare_word_density": float("nan")},
                {"stratum": "anchor", "rare_word_density": 0.5},
                {"stratum": "synthetic_known", "rare_word_density": 0.5}):
        count_density(hist, rec)
    assert hist == {123: 2}  # 0.0001-wide bins
    assert density_bin(0.0) == 0 and density_bin(1.0) == density_bin(7.0) == 10_000


def test_run_ramp_sits_on_the_run_percentiles():
    cfg = WeightsConfig(min_calibration_documents=100)
    densities = [(i + 0.5) / 1000 for i in range(100)]  # 0.0005, 0.0015, ..., 0.0995
    ramp = rarity_ramp(cfg, histogram(densities))
    # ranks q * (n - 1) = 69.3 and 79.2: the 70th and 80th smallest values, 0.0695 and 0.0795,
    # each the lower edge of its 0.0001-wide bin
    assert ramp == {"rare_density_start": 0.0695, "rare_density_full": 0.0795, "source": "calibrated",
                    "calibration_documents": 100, "quantiles": [0.7, 0.8]}
    weights = [human_weight(human(d), cfg, ramp) for d in densities]
    assert weights.count(1.0) == 70 and weights.count(cfg.cap) == 21  # the densest fifth at the cap
    # the ramp moves with the corpus: the same document weighs less among denser ones
    denser = rarity_ramp(cfg, histogram([d + 0.05 for d in densities]))
    assert human_weight(human(0.09), cfg, denser) < human_weight(human(0.09), cfg, ramp)


def test_run_ramp_fallbacks_and_degenerate_histograms():
    cfg = WeightsConfig(min_calibration_documents=100)
    few = rarity_ramp(cfg, histogram([0.2] * 99))
    assert few["source"] == "fallback_too_few_documents" and few["calibration_documents"] == 99
    assert (few["rare_density_start"], few["rare_density_full"]) == (0.035, 0.045)
    fixed = rarity_ramp(WeightsConfig(ramp="fixed"), histogram([0.2] * 500))
    assert fixed["source"] == "config" and fixed["rare_density_start"] == 0.035
    # most documents without rare words: both percentiles at 0, the ramp becomes a step
    step = rarity_ramp(cfg, histogram([0.0] * 90 + [0.05] * 10))
    assert (step["rare_density_start"], step["rare_density_full"]) == (0.0, 0.0001)
    assert human_weight(human(0.0), cfg, step) == 1.0 and human_weight(human(0.001), cfg, step) == cfg.cap
    # the histogram is a set of counts: any split and merge order gives the same ramp
    assert rarity_ramp(cfg, histogram(sorted([0.03, 0.01] * 60))) == rarity_ramp(cfg, histogram([0.01, 0.03] * 60))


def test_source_multipliers_stay_under_the_cap():
    cfg = WeightsConfig(cap=4.0, source_multipliers={"arxiv": 1.5, "gutenberg": 2.0, "huge": 50.0, "noisy": 0.5})
    assert human_weight(human(0.0, "gutenberg"), cfg) == 2.0
    assert human_weight(human(0.0, "arxiv"), cfg) == 1.5
    assert human_weight(human(0.0, "noisy"), cfg) == 0.5
    for src in ("arxiv", "gutenberg", "huge", "other", None):
        ws = [human_weight(human(i / 1000, src), cfg) for i in range(101)]
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
    ramp = {"rare_density_start": 0.0, "rare_density_full": 0.1}
    assert sample_weight(human(0.05), cfg, 0.25, ramp) == human_weight(human(0.05), cfg, ramp) == 2.5
    with pytest.raises(ValueError):
        human_weight(human(0.1, stratum="nonsense"), cfg)


def test_config_normalises_and_validates():
    a = WeightsConfig(source_multipliers={"b": 2, "a": 1.5})
    b = WeightsConfig(source_multipliers=[("a", 1.5), ("b", 2.0)])
    assert a == b and a.source_multipliers == (("a", 1.5), ("b", 2.0)) and hash(a) == hash(b)
    for bad in (dict(cap=0.5), dict(synthetic_ceiling=1.5), dict(source_multipliers={"x": -1}),
                dict(rare_density_start=0.1, rare_density_full=0.05), dict(ramp="adaptive"),
                dict(ramp_start_quantile=0.8, ramp_full_quantile=0.8), dict(ramp_full_quantile=1.2),
                dict(min_calibration_documents=0)):
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
                assert share == pytest.approx(ceiling, rel=1e-6)


def test_synthetic_weight_edge_cases():
    assert synthetic_weight(1000, 0, 0.001) == 1.0  # nothing synthetic
    assert synthetic_weight(0, 0, 0.001) == 1.0
    assert synthetic_weight(0, 500, 0.001) == 0.0  # no human tokens: any weight breaks the ceiling
    assert synthetic_weight(1000, 1, 0.5) == 1.0  # far under the ceiling: no down-weighting
    assert synthetic_weight(1000, 1000, 0.0) == 0.0
    assert synthetic_weight(0, 500, 1.0) == 1.0
    with pytest.raises(ValueError):
        synthetic_weight(-1, 5, 0.1)


def test_density_histogram_merges_in_any_order():
    from collapseguard.transforms.weights import DensityHistogram

    fn = DensityHistogram()
    elements = [("k", ("record", {"stratum": s, "rare_word_density": d}))
                for s, d in [("human_verified", 0.01), ("human_unverified", 0.01), ("human_unverified", 0.3),
                             ("anchor", 0.5), ("synthetic_suspected", 0.5), ("human_verified", None)]]
    parts = []
    for chunk in (elements[:2], elements[2:]):
        acc = fn.create_accumulator()
        for e in chunk:
            acc = fn.add_input(acc, e)
        parts.append(acc)
    assert fn.merge_accumulators(parts) == fn.merge_accumulators(parts[::-1]) == {100: 2, 3000: 1}


def test_rare_words_is_doc_raritys_rare_list(tables):
    from collapseguard.transforms.signals import tokenize
    from collapseguard.transforms.weights import rare_words

    text = ("The cartographer's apprentice catalogued sesquipedalian marginalia, vellum palimpsests "
            "and the the the quotidian ephemera of zzyzx 42 times; Über-Straße! don't") * 3
    tokens = tokenize(text)
    for lang in ("en", "de", None, "zh"):
        assert rare_words(tokens, lang, tables) == doc_rarity(tokens, lang, tables)["rare_words"]
    assert rare_words(tokens, "en", tables, rare_zipf=4.0, min_rare_len=5) == \
        doc_rarity(tokens, "en", tables, rare_zipf=4.0, min_rare_len=5)["rare_words"]
    assert "sesquipedalian" in rare_words(tokens, "en", tables)


@pytest.mark.parametrize("rare_zipf", [0.0, 1.0, 3.0, 4.5, 8.0])
def test_rare_words_equals_its_definition_word_by_word(tables, rare_zipf):
    """The set-difference shortcut picks exactly the words the definition picks, at every
    threshold, including words whose Zipf value sits right at it and words the table lacks."""
    import random

    from collapseguard.transforms.weights import rare_words, zipf

    freqs, stop = tables.lookup("en")
    rng = random.Random(5)
    words = rng.sample(sorted(freqs), 3000) + sorted(stop)[:20] + ["zzyzxq", "qwxpt", "ab", "x1y", "don't"]
    at = [w for w in freqs if zipf(freqs[w]) == rare_zipf][:5]  # boundary words, if any
    tokens = words + at
    expected = sorted({w for w in tokens if len(w) >= 3 and w not in stop and w.isalpha()
                       and zipf(freqs.get(w, 0.0)) < rare_zipf})
    assert rare_words(tokens, "en", tables, rare_zipf=rare_zipf) == expected
