"""Strata: where each document goes. Pure functions.

The anchor split is a deterministic hash-of-id fraction of verified-human documents (the same
id lands in the same split on every run and runner). Anchor documents are a clean human
reference that never enters a training stratum (Yi et al. 2025: verification converges to
the verifier's view, so the anchor must stay independent of it).
"""

from __future__ import annotations

import hashlib


_BASE_STRATUM = {
    "verified_human": "human_verified",
    "unverified_human": "human_unverified",
    "known_synthetic": "synthetic_known",
    "suspected_synthetic": "synthetic_suspected",
}


def hash_fraction(key: str, salt: str) -> float:
    """Uniform value in [0, 1) from sha256(salt, key): stable across runs, runners, Pythons."""
    digest = hashlib.sha256(f"{salt}\x00{key}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def in_anchor(doc_id: str, fraction: float, salt: str) -> bool:
    return fraction > 0 and hash_fraction(doc_id, salt) < fraction


def base_stratum(provenance: str, doc_id: str, anchor_fraction: float, salt: str) -> str:
    if provenance == "verified_human" and in_anchor(doc_id, anchor_fraction, salt):
        return "anchor"
    return _BASE_STRATUM[provenance]
