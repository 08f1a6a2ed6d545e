import pytest

from collapseguard.transforms.stratify import base_stratum, hash_fraction, in_anchor, plan_shard

FLOOR = {"floor_bits": 5.0}
STATUS = {"shard": "s.jsonl", "shard_key": "s-1", "records_read": 0, "error": None}


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


def rec(line, stratum="human_unverified", windows=(6.0,), tail=()):
    return {"id": f"id{line}", "shard": "s.jsonl", "line": line, "text": "t", "stratum": stratum,
            "_windows": list(windows), "_tail": " ".join(tail)}


def test_plan_shard_conserves_and_sorts():
    records = [rec(3), rec(1, "anchor"), rec(2, "synthetic_known")]
    rejected = [{"line": 4, "reason": "invalid_json"}]
    outputs, rej, stats = plan_shard(records, rejected, [], dict(STATUS, records_read=4), FLOOR, "reject", 100, 10)
    assert [r["line"] for r in outputs["human_unverified"]] == [3]
    assert outputs["anchor"][0]["line"] == 1 and outputs["review"] == []
    assert stats["conserved"] and stats["records_rejected"] == 1
    assert stats["rejected_by_reason"] == {"invalid_json": 1}


def test_plan_shard_holds_low_entropy_shard_for_review():
    records = [rec(1, windows=(3.0,)), rec(2, "anchor", windows=(3.5,))]
    outputs, _, stats = plan_shard(records, [], [], dict(STATUS, records_read=2), FLOOR, "reject", 100, 10)
    assert [r["line"] for r in outputs["review"]] == [1, 2]
    assert outputs["anchor"] == [] and stats["entropy"]["below_floor"]
    assert outputs["review"][1]["hold_reasons"] == ["shard_entropy_below_floor:3.250<5.000", "would_be:anchor"]


def test_plan_shard_duplicates_reject_or_flag():
    records = [rec(1), rec(2)]
    dups = [(2, "other.jsonl:9")]
    outputs, rej, stats = plan_shard([dict(r) for r in records], [], dups, dict(STATUS, records_read=2),
                                     FLOOR, "reject", 100, 10)
    assert [x["reason"] for x in rej] == ["duplicate_id"] and "other.jsonl:9" in rej[0]["detail"]
    assert stats["conserved"] and len(outputs["human_unverified"]) == 1
    outputs, rej, stats = plan_shard([dict(r) for r in records], [], dups, dict(STATUS, records_read=2),
                                     FLOOR, "keep", 100, 10)
    assert rej == [] and stats["conserved"]
    assert [r.get("is_duplicate_id", False) for r in outputs["human_unverified"]] == [False, True]


def test_plan_shard_packs_tails_of_short_documents():
    records = [rec(i, windows=(), tail=["buy", "now"] * 3) for i in range(1, 6)]  # 30 tokens, 3 windows
    _, _, stats = plan_shard(records, [], [], dict(STATUS, records_read=5), FLOOR, "reject", 100, 10)
    assert stats["entropy"]["windows"] == 3 and stats["entropy"]["below_floor"]


def test_plan_shard_weighs_human_documents_on_the_run_ramp():
    from collapseguard.transforms.weights import WeightsConfig

    records = [dict(rec(1), rare_word_density=0.01, n_words=100), dict(rec(2), rare_word_density=0.2, n_words=100),
               dict(rec(3, "anchor"), rare_word_density=0.2, n_words=100),
               dict(rec(4, "synthetic_known"), rare_word_density=0.2, n_words=100)]
    ramp = {"rare_density_start": 0.05, "rare_density_full": 0.1}
    outputs, _, stats = plan_shard(records, [], [], dict(STATUS, records_read=4), FLOOR, "reject", 100, 10,
                                   WeightsConfig(), ramp)
    assert [r["sample_weight"] for r in outputs["human_unverified"]] == [1.0, 4.0]
    assert outputs["anchor"][0]["sample_weight"] == 0.0 and outputs["synthetic_known"][0]["sample_weight"] == 0.0
    assert stats["mixture"]["human_unverified"]["weighted_units"] == 500 * 10**6


def test_density_histogram_merges_in_any_order():
    from collapseguard.transforms.stratify import DensityHistogram

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
