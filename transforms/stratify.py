"""Strata: where each document goes. Pure functions.

The anchor split is a deterministic hash-of-id fraction of verified-human documents (the same
id lands in the same split on every run and runner). Anchor documents are a clean human
reference that never enters a training stratum (Yi et al. 2025: verification converges to
the verifier's view, so the anchor must stay independent of it).
"""

from __future__ import annotations

from dataclasses import dataclass

from collapseguard.core.hashing import salted_fraction
from collapseguard.core.schema import BASE_STRATUM
from collapseguard.core.settings import Range, setting


@dataclass(frozen=True)
class StratifyConfig:
    anchor_fraction: float = setting(0.05, within=Range(0.0, 0.5))
    anchor_salt: str = "collapseguard-anchor-v1"


def hash_fraction(key: str, salt: str) -> float:
    """Uniform value in [0, 1) from sha256(salt, key): stable across runs, runners, Pythons."""
    return salted_fraction(salt, key)


def in_anchor(doc_id: str, fraction: float, salt: str) -> bool:
    return fraction > 0 and hash_fraction(doc_id, salt) < fraction


def base_stratum(provenance: str, doc_id: str, anchor_fraction: float, salt: str) -> str:
    if provenance == "verified_human" and in_anchor(doc_id, anchor_fraction, salt):
        return "anchor"
    return BASE_STRATUM[provenance]
