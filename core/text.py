"""What a word is, and how the diversity of a body of text is counted: shared by the stage's
signals (transforms/signals.py), its per-stratum diversity report (transforms/diversity.py) and
the model monitor (models/monitor.py), so a "tail word" or a "distinct-2" means one thing
everywhere. Pure functions; imports nothing of ours.
"""

from __future__ import annotations

import re
from typing import Sequence

try:  # the compiled hot loops (core/_textkernel.c), built by `make install` where a compiler is
    from collapseguard.core import _textkernel as kernel

    if kernel.VERSION != 1:  # a stale build from an older kernel source: ignore it
        kernel = None
except ImportError:  # no compiler where it was installed: the pure-Python definitions run
    kernel = None
"""The optional compiled kernel, or None. Its functions return only integers and strings (every
float is computed in Python on either path), and each has a pure-Python definition giving the
same result (tests/core/test_textkernel.py checks each against it); tests set this to None to
run the pure-Python path."""

_WORD_ASCII = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens: runs of letters/digits, inner apostrophes kept ("don't").

    Defined by `_WORD` (`_WORD_ASCII` on ASCII text, the same tokens) and computed without
    running it over the whole text, the largest cost of the cheap path: ASCII text maps every
    character that is not a letter, digit or apostrophe to a space in one bytes.translate, drops
    the apostrophes that are not between two letters/digits, and splits (about 4x faster than
    the regex); other text is split on whitespace and only the pieces that are not one run of
    letters/digits go through the regex (about 2x). tests/test_signals.py checks both against
    the regex on random text.
    """
    return lower_tokens(text.lower())


def lower_tokens(low: str) -> list[str]:
    """`tokenize` of text already lower-cased."""
    if low.isascii():
        return _ascii_tokens(low)
    out: list[str] = []
    add, extend, findall = out.append, out.extend, _WORD.findall
    for piece in low.split():  # \w never matches whitespace: no token spans two pieces
        if piece.isalnum():  # [^\W_]: exactly one token
            add(piece)
        else:
            extend(findall(piece))
    return out


_ASCII_ALNUM = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789")
_ASCII_KEEP = bytes(c if c in _ASCII_ALNUM or c == 0x27 else 0x20 for c in range(256))


def _ascii_tokens(low: str) -> list[str]:
    """`_WORD_ASCII.findall(low)` for lower-cased ASCII text."""
    b = low.encode("ascii")
    i = b.find(b"'")
    if i >= 0:  # an apostrophe joins a token only between two letters/digits
        b = bytearray(b)
        last, alnum = len(b) - 1, _ASCII_ALNUM
        while i >= 0:
            if not (0 < i < last and b[i - 1] in alnum and b[i + 1] in alnum):
                b[i] = 0x20
            i = b.find(b"'", i + 1)
    return b.translate(_ASCII_KEEP).decode("ascii").split()


def ngrams(tokens: Sequence[str], n: int):
    return zip(*(tokens[i:] for i in range(n)))


def distinct_n(docs: Sequence[Sequence[str]], n: int) -> float | None:
    """Distinct n-grams / total n-grams over all documents; None without any n-gram."""
    seen = set()
    total = 0
    for tokens in docs:
        grams = list(ngrams(tokens, n))
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else None


def ttr_windows(docs: Sequence[Sequence[str]], size: int = 100) -> float | None:
    """Mean TTR of the full, non-overlapping `size`-token windows of every document."""
    values = [len(set(t[i:i + size])) / size for t in docs for i in range(0, len(t) - size + 1, size)]
    return sum(values) / len(values) if values else None


def self_similarity(docs: Sequence[Sequence[str]], n: int = 4) -> float | None:
    """Mean over documents of the share of their distinct n-grams found in another document."""
    sets = [set(ngrams(t, n)) for t in docs]
    sets = [s for s in sets if s]
    if len(sets) < 2:
        return None
    df: dict[tuple, int] = {}
    for s in sets:
        for g in s:
            df[g] = df.get(g, 0) + 1
    shares = [sum(1 for g in s if df[g] > 1) / len(s) for s in sets]
    return sum(shares) / len(shares)


def budget_prefix(docs: Sequence[Sequence[str]], token_budget: int) -> list[Sequence[str]]:
    out, used = [], 0
    for tokens in docs:
        if used >= token_budget:
            break
        out.append(tokens[: token_budget - used])
        used += len(out[-1])
    return out
