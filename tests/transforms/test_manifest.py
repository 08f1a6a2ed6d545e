from collapseguard.pipeline.schema import ALL_OUTPUTS
from collapseguard.transforms.manifest import build_manifest


def stats(name, read, rejected, strata, below=False, error=None):
    by = {k: 0 for k in ALL_OUTPUTS}
    by.update(strata)
    return {"shard": name, "records_read": read, "records_rejected": rejected,
            "rejected_by_reason": {"invalid_json": rejected} if rejected else {},
            "records_by_stratum": by, "error": error, "entropy": {"below_floor": below}}


def test_manifest_totals_and_conservation():
    m = build_manifest([stats("b", 5, 1, {"review": 4}, below=True), stats("a", 3, 0, {"anchor": 1, "human_verified": 2})],
                       {"floor_bits": 6.0}, {"inputs": ["x"]})
    assert m["records_read"] == 8 and m["records_rejected"] == 1 and m["conserved"] is True
    assert m["records_by_stratum"]["review"] == 4 and set(m["records_by_stratum"]) == set(ALL_OUTPUTS)
    assert [s["shard"] for s in m["shards"]] == ["a", "b"]
    assert m["shards_held_for_review"] == ["b"] and m["inputs"] == ["x"]
    assert "apache_beam" in m["versions"]


def test_manifest_detects_lost_records():
    m = build_manifest([stats("a", 5, 1, {"human_unverified": 3}, error="EOFError: x")], {}, {})
    assert m["conserved"] is False
    assert m["shards_with_errors"] == [{"shard": "a", "error": "EOFError: x"}]
