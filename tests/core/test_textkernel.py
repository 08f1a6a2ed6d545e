"""The compiled kernel (core/_textkernel.c) gives exactly what the pure-Python definitions give.

Every function is run against its Python definition on random text drawn from alphabets that hold
what a shortcut could get wrong (apostrophes next to every kind of character, runs of sentence
ends, every whitespace str.split() knows, underscores, control characters, other scripts), and on
prose;
`compute_signals` and the classifier's input are compared field by field, bit for bit.
"""

import random

import pytest

from collapseguard.core import text as core_text
from collapseguard.models import classifier
from collapseguard.transforms import signals
from fixtures_data import HUMAN

kernel = core_text.kernel
pytestmark = pytest.mark.skipif(kernel is None, reason="the compiled kernel is not built here (no C compiler)")

ALPHABETS = [
    "ab'1 ._\n",
    "aZ09'_ -.,!?\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x00\x7f\"",
    "ab c. d! e? f... ''' '",
    "ab  c.\x0b d?\r e!\x1f",
    # other scripts: curly apostrophes, Unicode spaces and stops, letters that change length when
    # lower-cased, combining marks, numerics, astral characters
    "a’b' .。！？\x85\xa0\u2028\u3000éÉßİǅﬁ²½٣中ـ\u0301\u200d\U0001d7d8",
    "aé ’'.!\u3000。x",
]
COMMON = frozenset(["a", "b", "ab", "the", "1", "a'b", "ba", "é", "a’b", "中", "²"])


def random_texts(alphabet, n=2000, longest=60, seed=3):
    rng = random.Random(seed)
    for _ in range(n):
        yield "".join(rng.choice(alphabet) for _ in range(rng.randint(0, longest)))


def prose():
    rng = random.Random(5)
    docs = list(HUMAN)
    yield from docs
    for _ in range(50):  # longer documents: several windows, repeated n-grams
        yield " ".join(rng.choice(docs) for _ in range(rng.randint(2, 8)))


@pytest.fixture
def python_only(monkeypatch):
    def run(fn, *args, **kw):
        with monkeypatch.context() as m:
            m.setattr(core_text, "kernel", None)
            return fn(*args, **kw)
    return run


def same(a, b):
    """Equal, with floats compared bit for bit (repr) and None kept apart from 0."""
    return repr(a) == repr(b)


@pytest.mark.parametrize("alphabet", ALPHABETS)
@pytest.mark.parametrize("window,ngram", [(3, 1), (5, 2), (10, 3), (7, 5)])
def test_word_stats_equals_the_python_counts(alphabet, window, ngram):
    for text in random_texts(alphabet, n=600, longest=80):
        low = text.lower()
        for common in (None, COMMON):
            got = kernel.word_stats(low, window, ngram, common)
            n, wins, n_types, grams, rare, words, tail = signals.word_counts(
                core_text.lower_tokens(low), window, ngram, common)
            want = (n, [tuple(c) for c in wins], n_types, grams, rare, words, tail)
            assert got[2] == len(set(core_text.lower_tokens(low)))
            if wins:  # Python counts types only where a signal reads them (no full window)
                got = got[:2] + (None,) + got[3:]
            assert got == want, (text, common)


@pytest.mark.parametrize("alphabet", ALPHABETS)
def test_sentence_lengths_equal_the_python_definition(alphabet):
    for text in random_texts(alphabet):
        assert kernel.sentence_lengths(text) == signals.sentence_lengths(text), repr(text)
    for text in prose():
        assert kernel.sentence_lengths(text) == signals.sentence_lengths(text)


@pytest.mark.parametrize("alphabet", ALPHABETS)
def test_word_punct_join_equals_the_classifier_view(alphabet, python_only):
    for text in list(random_texts(alphabet)) + list(prose()):
        for t in (text, text.lower()):
            assert kernel.word_punct_join(t) == " ".join(classifier._TOKEN.findall(t)), repr(t)
            assert classifier.prepare(t) == python_only(classifier.prepare, t)


def test_compute_signals_is_bit_identical_with_and_without_the_kernel(python_only):
    texts = list(prose()) + list(random_texts(ALPHABETS[1], n=300, longest=400)) + ["", " ", "..."]
    for text in texts:
        for common in (None, COMMON):
            for kw in (dict(window_tokens=100, max_chars=200_000, repetition_ngram=3),
                       dict(window_tokens=10, max_chars=1000, repetition_ngram=1)):
                args = dict(kw, common_words=common)
                assert same(signals.compute_signals(text, **args),
                            python_only(signals.compute_signals, text, **args)), (text[:80], args)


def test_the_kernel_rejects_bad_arguments_without_crashing():
    with pytest.raises(ValueError):
        kernel.word_stats("a b", 0, 3, None)
    with pytest.raises(TypeError):
        kernel.word_stats(b"a b", 10, 3, None)
    with pytest.raises(TypeError):
        kernel.sentence_lengths(None)
    with pytest.raises(TypeError):
        kernel.word_punct_join(3)


def test_rare_counts_agree_for_every_kind_of_word_set():
    """A frozenset is looked up through the kernel's own table (built once, kept for 64 sets);
    a set, or a frozenset holding more than strings, the way Python would."""
    text = "The cat’s naïve café, a b ab 1 2 the é zz zz. Ab a'b ba"
    low = text.lower()
    tokens = core_text.lower_tokens(low)
    sets = [COMMON, set(COMMON), frozenset(COMMON | {1, None, ("a",)}), frozenset(), frozenset(["zz"])]
    sets += [frozenset(COMMON | {f"w{i}"}) for i in range(70)]  # more sets than the kernel keeps
    for common in sets + sets[:3]:
        assert kernel.word_stats(low, 5, 2, common)[4:6] == signals.rare_word_counts(tokens, common)
