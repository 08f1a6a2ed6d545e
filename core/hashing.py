"""Salted hashes: the one way this code turns an id into a stable number (anchor split, sampling,
hold-out folds). sha256 of "salt NUL key": the same on every run, runner, machine and Python.
The bottom layer: it imports nothing of ours."""

from __future__ import annotations

import hashlib


def salted_digest(salt: str, key: str) -> bytes:
    return hashlib.sha256(f"{salt}\x00{key}".encode("utf-8")).digest()


def salted_int(salt: str, key: str) -> int:
    """A 64-bit integer (the digest's first 8 bytes, big-endian)."""
    return int.from_bytes(salted_digest(salt, key)[:8], "big")


def salted_fraction(salt: str, key: str) -> float:
    """Uniform in [0, 1)."""
    return salted_int(salt, key) / 2**64
