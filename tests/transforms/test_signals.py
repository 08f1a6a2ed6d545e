import math
import random

import apache_beam as beam
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that

from collapseguard.pipeline.config import SignalsConfig
from collapseguard.transforms.signals import (
    CheapSignalsFn,
    burstiness,
    compute_signals,
    count_words,
    rare_word_counts,
    rare_word_density,
    rare_word_fraction,
    repetition,
    tokenize,
    window_entropy_bits,
    windows,
)
from fixtures_data import HUMAN


def sig(text, common=None, **kw):
    args = dict(window_tokens=100, max_chars=200_000, repetition_ngram=3, common_words=common)
    args.update(kw)
    return compute_signals(text, **args)


def test_window_entropy_matches_formula():
    w = ["a", "a", "b", "c"]
    plug_in = -(0.5 * math.log2(0.5) + 2 * 0.25 * math.log2(0.25))
    assert window_entropy_bits(w) == pytest.approx(plug_in + (3 - 1) / (2 * 4 * math.log(2)))
    assert window_entropy_bits(["x"] * 50) == pytest.approx(0.0)


def test_entropy_and_ttr_do_not_grow_with_length():
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(300)]
    short = " ".join(rng.choice(vocab) for _ in range(1_000))
    long = " ".join(rng.choice(vocab) for _ in range(20_000))
    a, b = sig(short), sig(long)
    assert abs(a["token_entropy_bits"] - b["token_entropy_bits"]) < 0.05
    assert abs(a["ttr"] - b["ttr"]) < 0.02


def test_repetitive_text_scores_low_entropy_high_repetition():
    spam = "buy cheap shoes now " * 100
    s, h = sig(spam), sig(HUMAN[0] + " " + HUMAN[1])
    assert s["token_entropy_bits"] < 2.5 < h["token_entropy_bits"]
    assert s["repetition"] > 0.9 > 0.1 > h["repetition"]
    assert s["ttr"] < 0.1 < h["ttr"]


def test_tokenize_strips_punctuation_keeps_inner_apostrophes():
    assert tokenize("Don't stop, (Believing)! snake_case 42") == ["don't", "stop", "believing", "snake", "case", "42"]
    assert tokenize("\u201cÉté\u201d \u2014 l’été, naïve.") == ["été", "l’été", "naïve"]


# characters where a tokenizer shortcut could part from the regex that defines it: apostrophes
# (straight and curly), underscores, every kind of whitespace str.split() knows, digits and
# numerics of other scripts, letters that change length when lower-cased, combining marks
_TRICKY = ("aZ09'’_ -.,!?\t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u2028\u3000"
           "éÉßİǅﬁ²½٣中ـ\u0301\u200d\U0001d7d8")


@pytest.mark.parametrize("alphabet", [_TRICKY, "ab'1 ._\n", "ab'’é _"])
def test_tokenize_equals_its_defining_regex_on_random_text(alphabet):
    from collapseguard.core.text import _WORD

    rng = random.Random(7)
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        assert tokenize(text) == _WORD.findall(text.lower()), repr(text)
    for text in HUMAN:
        assert tokenize(text) == _WORD.findall(text.lower())


def test_burstiness():
    assert burstiness("One two three. One two three. One two three.") == pytest.approx(0.0)
    assert burstiness("Short. This sentence is a good deal longer than the first.") > 0.5
    assert burstiness("no sentence end") is None


def test_repetition_and_rarity_on_known_tokens():
    assert repetition(["a", "b", "c", "a", "b", "c"], 3) == pytest.approx(1 - 3 / 4)
    assert repetition(["a"], 3) is None
    common = frozenset({"the", "cat"})
    assert rare_word_fraction(["the", "cat", "zyzzyva", "42"], common) == pytest.approx(1 / 3)
    assert rare_word_fraction(["the", "the", "zyzzyva", "zyzzyva"], common) == pytest.approx(1 / 2)  # types
    assert rare_word_fraction(["the"], None) is None
    assert rare_word_fraction(["42"], common) is None


def test_rare_word_density_counts_distinct_rare_words_per_token():
    common = frozenset({"the", "cat", "sat"})
    # 2 distinct rare words (zyzzyva, quillwort; "42" is not alphabetic) in 8 tokens
    tokens = ["the", "cat", "zyzzyva", "sat", "zyzzyva", "42", "quillwort", "the"]
    assert rare_word_counts(tokens, common) == (2, 5)  # distinct words: the, cat, sat + 2 rare
    assert rare_word_density(tokens, common) == pytest.approx(2 / 8)
    assert rare_word_fraction(tokens, common) == pytest.approx(2 / 5)  # unchanged meaning: share of types
    # repeating the rare word adds tokens, not rare words: the density halves, the fraction does not move
    padded = tokens + ["the", "cat", "sat", "zyzzyva"] * 2
    assert rare_word_density(padded, common) == pytest.approx(2 / 16)
    assert rare_word_fraction(padded, common) == pytest.approx(2 / 5)
    assert rare_word_density(["42", "the"], common) == 0.0
    assert rare_word_density([], common) is None and rare_word_density(["zyzzyva"], None) is None
    s = sig(" ".join(tokens), common)
    assert s["rare_word_density"] == pytest.approx(2 / 8) and s["rare_word_fraction"] == pytest.approx(2 / 5)
    assert sig("the cat", None)["rare_word_density"] is None


def test_huge_document_and_long_token_are_bounded():
    big = "word " * 2_000_000  # 10 MB
    s = sig(big, max_chars=50_000)
    assert s["n_chars"] == len(big) and s["n_words"] == 2_000_000
    t = sig("x" * 500_000)
    assert t["n_words"] == 1 and t["token_entropy_bits"] is None and t["_tail"] == "x" * 200_000
    assert sig("y" * 300_000 + " two words", max_chars=1000)["n_words"] == 3


def test_count_words_across_chunks_matches_tokenize():
    text = ("ab, " * 700_000) + "tail"
    assert count_words(text) == len(tokenize(text)) == 700_001
    assert count_words(text, 4) == 700_000
    s = sig(text, max_chars=10_001)
    assert s["n_words"] == 700_001


def test_short_document_has_tail_but_no_window():
    s = sig("only a few words here")
    assert s["_windows"] == [] and s["token_entropy_bits"] is None
    assert s["_tail"] == " ".join(tokenize("only a few words here"))
    assert windows(list("abcdefg"), 3) == [list("abc"), list("def")]


def test_cheap_signals_dofn_in_pipeline_batches_and_flushes():
    texts = [HUMAN[0], "Ceci est un texte en français, écrit pour vérifier la langue.", HUMAN[1]]
    records = [{"id": str(i), "text": t} for i, t in enumerate(texts)]

    def check(out):
        out = sorted(out, key=lambda r: r["id"])
        assert [r["lang"] for r in out] == ["en", "fr", "en"]
        assert all(0.5 < r["lang_score"] <= 1.0 for r in out)
        assert out[0]["rare_word_fraction"] is not None and out[0]["n_words"] == len(tokenize(texts[0]))
        assert 0.0 <= out[0]["rare_word_density"] <= out[0]["rare_word_fraction"]  # tokens >= types

    with TestPipeline() as p:
        out = p | beam.Create(records) | beam.ParDo(CheapSignalsFn(SignalsConfig(), batch_size=2))
        assert_that(out, check)
