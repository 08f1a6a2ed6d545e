from collapseguard.core.schema import ALL_OUTPUTS
from collapseguard.transforms.manifest import build_manifest


def stats(name, read, rejected, strata, below=False, error=None, chunk=0, part=0):
    """One chunk's stats, as transforms/plan.py `finalize_chunk` writes them."""
    by = {k: 0 for k in ALL_OUTPUTS}
    by.update(strata)
    mixture = {k: {"documents": v, "tokens": 10 * v, "weighted_units": 0} for k, v in by.items()}
    return {"shard": name, "shard_key": f"{name}-k", "part": part, "chunk": chunk, "records_read": read,
            "records_rejected": rejected, "text_bytes": 100 * read,
            "rejected_by_reason": {"invalid_json": rejected} if rejected else {},
            "records_by_stratum": by, "error": error, "entropy": {"below_floor": below}, "mixture": mixture}


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


def test_a_shards_chunks_sum_to_one_entry():
    chunks = [stats("a", 4, 1, {"human_verified": 3}, chunk=1), stats("a", 5, 0, {"human_verified": 5}, chunk=0),
              stats("a", 2, 0, {"anchor": 1, "human_verified": 1}, chunk=0, part=1, error="OSError: y"),
              stats("b", 1, 0, {"review": 1})]
    m = build_manifest(chunks, {}, {})
    a = m["shards"][0]
    assert [s["shard"] for s in m["shards"]] == ["a", "b"] and a["chunks"] == 3 and m["chunks_total"] == 4
    assert a["records_read"] == 11 and a["records_by_stratum"]["human_verified"] == 9 and a["conserved"]
    assert a["mixture"]["human_verified"] == {"documents": 9, "tokens": 90, "weighted_units": 0}
    assert a["error"] == "OSError: y" and m["shards_with_errors"] == [{"shard": "a", "error": "OSError: y"}]
    assert m["largest_element"] == {"step": "GroupByChunk", "documents": 5, "text_bytes": 500}
