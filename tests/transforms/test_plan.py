"""A chunk's plan and its finalize: duplicates, line order, the shard audit's hold, weights, the
mixture counts both ways, and conservation."""

from collapseguard.transforms.entropy import audit_shard, merge_window_summaries
from collapseguard.transforms.plan import finalize_chunk, plan_chunk, summarize_chunk, summary_view
from collapseguard.transforms.weights import WeightsConfig

FLOOR = 5.0
STATUS = {"shard": "s.jsonl", "shard_key": "s-1", "part": 0, "parts": 1, "chunk": 0, "chunk_key": "s-1.00000.00000", "records_read": 0,
          "text_bytes": 0, "last": True, "error": None, "row_groups_failed": 0}


def rec(line, stratum="human_unverified", windows=(6.0,), tail=()):
    return {"id": f"id{line}", "shard": "s.jsonl", "line": line, "text": "t", "stratum": stratum,
            "_windows": list(windows), "_tail": " ".join(tail)}


def plan(records, rejected=(), dups=(), read=None, mode="reject", floor=FLOOR, ramp=None, other_chunks=()):
    """The chunk's summary from its records' summary views, plan_chunk, the shard's audit from
    this chunk's windows (and `other_chunks`' summaries), then finalize_chunk: what the graph
    does, in one process."""
    status = dict(STATUS, records_read=len(records) + len(rejected) if read is None else read)
    summary = summarize_chunk([summary_view(r) for r in records], list(dups), mode, 10, WeightsConfig(), ramp)
    planned = plan_chunk(list(records), list(rejected), list(dups), status, mode, 100, summary)
    audit = audit_shard(merge_window_summaries([planned.windows, *other_chunks]), floor)
    outputs, stats = finalize_chunk(planned, audit, floor, WeightsConfig(), ramp)
    return outputs, planned.rejected, stats, planned


def test_plan_conserves_and_sorts():
    records = [rec(3), rec(1, "anchor"), rec(2, "synthetic_known")]
    outputs, rej, stats, _ = plan(records, [{"line": 4, "reason": "invalid_json"}])
    assert [r["line"] for r in outputs["human_unverified"]] == [3]
    assert outputs["anchor"][0]["line"] == 1 and outputs["review"] == []
    assert stats["conserved"] and stats["records_rejected"] == 1 and stats["chunk_key"] == "s-1.00000.00000"
    assert stats["rejected_by_reason"] == {"invalid_json": 1}


def test_a_low_entropy_shard_is_held_for_review():
    records = [rec(1, windows=(3.0,)), rec(2, "anchor", windows=(3.5,))]
    outputs, _, stats, planned = plan(records)
    assert [r["line"] for r in outputs["review"]] == [1, 2]
    assert outputs["anchor"] == [] and stats["entropy"]["below_floor"]
    assert outputs["review"][1]["hold_reasons"] == ["shard_entropy_below_floor:3.250<5.000", "would_be:anchor"]
    assert stats["mixture"] == planned.mixture_held and stats["mixture"]["review"]["documents"] == 2


def test_the_hold_is_the_shards_not_the_chunks():
    """A chunk of low-entropy text in a shard whose other chunks are rich is not held, and a
    rich chunk of a poor shard is: the audit sums every chunk's windows."""
    from collapseguard.transforms.entropy import window_summary

    poor, rich = window_summary([3.0] * 5), window_summary([6.0] * 50)
    outputs, _, stats, _ = plan([rec(1, windows=(3.0,))], other_chunks=[rich])
    assert outputs["human_unverified"] and not stats["entropy"]["below_floor"] and stats["entropy"]["windows"] == 51
    outputs, _, stats, _ = plan([rec(1, windows=(6.0,))], other_chunks=[poor, poor])
    assert outputs["review"] and stats["entropy"]["below_floor"]


def test_duplicates_reject_or_flag():
    dups = [(2, "other.jsonl:9")]
    outputs, rej, stats, _ = plan([rec(1), rec(2)], dups=dups)
    assert [x["reason"] for x in rej] == ["duplicate_id"] and "other.jsonl:9" in rej[0]["detail"]
    assert stats["conserved"] and len(outputs["human_unverified"]) == 1
    outputs, rej, stats, _ = plan([rec(1), rec(2)], dups=dups, mode="keep")
    assert rej == [] and stats["conserved"]
    assert [r.get("is_duplicate_id", False) for r in outputs["human_unverified"]] == [False, True]


def test_tails_of_short_documents_are_packed():
    records = [rec(i, windows=(), tail=["buy", "now"] * 3) for i in range(1, 6)]  # 30 tokens, 3 windows
    _, _, stats, _ = plan(records)
    assert stats["entropy"]["windows"] == 3 and stats["entropy"]["below_floor"]


def test_human_documents_are_weighed_on_the_run_ramp():
    records = [dict(rec(1), rare_word_density=0.01, n_words=100), dict(rec(2), rare_word_density=0.2, n_words=100),
               dict(rec(3, "anchor"), rare_word_density=0.2, n_words=100),
               dict(rec(4, "synthetic_known"), rare_word_density=0.2, n_words=100)]
    ramp = {"rare_density_start": 0.05, "rare_density_full": 0.1}
    outputs, _, stats, planned = plan(records, ramp=ramp)
    assert [r["sample_weight"] for r in outputs["human_unverified"]] == [1.0, 4.0]
    assert outputs["anchor"][0]["sample_weight"] == 0.0 and outputs["synthetic_known"][0]["sample_weight"] == 0.0
    assert stats["mixture"]["human_unverified"]["weighted_units"] == 500 * 10**6
    assert stats["mixture"] == planned.mixture_kept
    assert planned.mixture_held["review"] == {"documents": 4, "tokens": 400, "weighted_units": 0}


def test_a_records_summary_view_carries_all_its_chunk_summary_reads():
    """The audit, the weighting and the commit marker read each chunk's summary computed from
    its records' summary views, grouped apart from the texts: it must be the summary of the
    whole records, duplicates settled either way."""
    import copy
    import random

    rng = random.Random(7)
    strata = ["human_unverified", "human_verified", "anchor", "synthetic_known", "synthetic_suspected"]
    records = []
    for line in rng.sample(range(1, 400), 60):  # not in line order, as a grouping delivers them
        words = [rng.choice(["buy", "now", "cheap", "tail", "rare", "lexeme"]) for _ in range(rng.randint(0, 9))]
        records.append(dict(rec(line, rng.choice(strata), windows=[rng.uniform(2, 7) for _ in range(rng.randint(0, 3))],
                                tail=words),
                            n_words=rng.randint(1, 900), rare_word_density=rng.choice([None, rng.random() / 5]),
                            source=rng.choice(["web", "news", None]), text="x" * rng.randint(1, 50)))
    dups = [(r["line"], "s.jsonl:1") for r in records[:7]]
    ramp = {"rare_density_start": 0.05, "rare_density_full": 0.1}
    wcfg = WeightsConfig(source_multipliers={"news": 1.5})
    for mode in ("reject", "keep"):
        views = [summary_view(r) for r in records]
        assert "text" not in views[0] and "id" not in views[0]
        windows, kept, held = summarize_chunk(views, list(dups), mode, 10, wcfg, ramp)
        assert (windows, kept, held) == summarize_chunk(copy.deepcopy(records), list(dups), mode, 10, wcfg, ramp)
        assert windows["n"] > 60  # per-document windows and packed tails both counted
        assert sum(m["documents"] for m in kept.values()) == (53 if mode == "reject" else 60)
        planned = plan_chunk(copy.deepcopy(records), [], list(dups), dict(STATUS), mode, 100, (windows, kept, held))
        assert [r["line"] for r in planned.rows] == sorted(r["line"] for r in records if mode == "keep" or r not in records[:7])
