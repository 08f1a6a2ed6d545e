import pytest

from collapseguard.transforms.stratify import base_stratum, hash_fraction, in_anchor


def test_hash_fraction_is_stable_and_uniform():
    assert hash_fraction("doc-1", "salt") == hash_fraction("doc-1", "salt")
    assert hash_fraction("doc-1", "salt") != hash_fraction("doc-1", "other")
    share = sum(in_anchor(f"d{i}", 0.05, "s") for i in range(20_000)) / 20_000
    assert share == pytest.approx(0.05, abs=0.006)
    assert not in_anchor("d1", 0.0, "s")


def test_anchor_only_from_verified_human():
    ids = [f"d{i}" for i in range(2000)]
    anchored = [i for i in ids if base_stratum("verified_human", i, 0.05, "s") == "anchor"]
    assert anchored and all(base_stratum("unverified_human", i, 0.05, "s") == "human_unverified" for i in anchored)
    assert all(base_stratum("known_synthetic", i, 0.05, "s") == "synthetic_known" for i in anchored)
