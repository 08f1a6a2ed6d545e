"""Per chunk: where each record of a chunk goes. Pure functions, and the DoFn that runs them.

A chunk (`read.iter_chunks`: at most `read.chunk_documents` records of one shard, in line order)
is the largest unit any grouped element of the graph holds. The decisions that belong to the
whole shard reach a chunk as small values:

- duplicate-id losers: from the keyed join on id (`dedup.duplicate_losers`), addressed to the
  chunk that holds the loser;
- the shard's entropy audit: each chunk's windows are summarised as integers
  (`entropy.window_summary`), combined per shard, audited against the floor, and read back by
  the write step as a side input keyed by shard.

The audit and the run's mixture must be known before any chunk is finalized, and texts must
cross between workers only once. So a chunk's summary (its window summary and its mixture counts
both ways, kept or held) is computed from its records' `summary_view`s, grouped per chunk apart
from the texts (`summarize_chunk`); it feeds the audit and the mixture, and reaches the one
grouping of texts as one more small value, like the duplicate losers. There `plan_chunk`
(duplicates, line order) and `finalize_chunk` (with the audit: the hold, the strata, the human
weights, the stats) run in one step whose side inputs are all ready, so nothing after it moves
the texts again.
"""

from __future__ import annotations

import dataclasses

import apache_beam as beam
from apache_beam.pvalue import TaggedOutput

from collapseguard.core.schema import ALL_OUTPUTS, REVIEW
from collapseguard.transforms.entropy import hold_reason, packed_windows, window_summary
from collapseguard.transforms.mixture import SumMixture, weighted_units
from collapseguard.transforms.validate import rejection
from collapseguard.transforms.weights import human_weight


@dataclasses.dataclass
class PlannedChunk:
    """One chunk between the plan and the write: its rows (line order, duplicates settled), its
    rejected rows, its status from the reader, and its mixture counts if kept and if held."""

    rows: list
    rejected: list
    status: dict
    mixture_kept: dict
    mixture_held: dict
    windows: dict  # the chunk's `entropy.window_summary` (its commit marker keeps it for --resume)

    @property
    def chunk_key(self) -> str:
        return self.status["chunk_key"]

    @property
    def shard_key(self) -> str:
        return self.status["shard_key"]

    def mixture(self, audit: dict) -> dict:
        return audit_pick((self.mixture_kept, self.mixture_held), audit)


def audit_pick(kept_and_held: tuple, audit: dict):
    """Of a (kept, held) pair, the one the shard's audit decides."""
    return kept_and_held[1] if audit["below_floor"] else kept_and_held[0]


def empty_mixture() -> dict:
    return SumMixture().create_accumulator()


def chunk_mixture(rows: list[dict], weights_cfg, ramp: dict | None, held: bool) -> dict:
    """{stratum: documents, tokens, weighted_units (integers)} of the rows as they would be
    written: in their strata, or all in review/ when the shard is held."""
    mixture = empty_mixture()
    for r in rows:
        stratum = REVIEW if held else r["stratum"]
        w = human_weight({**r, "stratum": stratum}, weights_cfg, ramp)
        m = mixture[stratum]
        m["documents"] += 1
        m["tokens"] += r.get("n_words") or 0
        m["weighted_units"] += weighted_units(r.get("n_words") or 0, w)
    return mixture


# What a chunk's summary reads of a record (`summarize_chunk`, through `chunk_mixture` and
# `weights.human_weight`): never its text.
SUMMARY_FIELDS = ("line", "stratum", "n_words", "rare_word_density", "source", "_windows", "_tail")


def summary_view(record: dict) -> dict:
    """The part of a record its chunk's summary reads (`SUMMARY_FIELDS`)."""
    return {k: record.get(k) for k in SUMMARY_FIELDS}


def settle_duplicates(records: list[dict], duplicates: list[tuple[int, str]],
                      duplicate_mode: str) -> tuple[list[dict], list[tuple[dict, str]]]:
    """(kept rows sorted by line, [(loser, where its id was first seen)]). With `duplicate_mode`
    "reject" a duplicate id's later occurrences are the losers; with "keep" they stay, flagged
    `is_duplicate_id`."""
    first_of = dict(duplicates)
    kept: list[dict] = []
    losers: list[tuple[dict, str]] = []
    for r in sorted(records, key=lambda r: r["line"]):
        if r["line"] in first_of:
            if duplicate_mode == "reject":
                losers.append((r, first_of[r["line"]]))
                continue
            r["is_duplicate_id"] = True
        kept.append(r)
    return kept, losers


def summarize_chunk(views: list[dict], duplicates: list[tuple[int, str]], duplicate_mode: str,
                    window_tokens: int, weights_cfg, ramp: dict | None) -> tuple[dict, dict, dict]:
    """A chunk's (window summary, mixture if kept, mixture if held) from its records'
    `summary_view`s (or the records themselves: it reads nothing else), duplicates settled as
    `plan_chunk` settles them, rows in line order."""
    kept, _losers = settle_duplicates(views, duplicates, duplicate_mode)
    values = [w for r in kept for w in r.get("_windows") or ()]
    values += packed_windows((r.get("_tail") or "" for r in kept), window_tokens)
    return (window_summary(values), chunk_mixture(kept, weights_cfg, ramp, held=False),
            chunk_mixture(kept, weights_cfg, ramp, held=True))


def plan_chunk(records: list[dict], rejected: list[dict], duplicates: list[tuple[int, str]], status: dict,
               duplicate_mode: str, clip_chars: int, summary: tuple[dict, dict, dict]) -> PlannedChunk:
    """The planned chunk. Rows sorted by line; duplicates settled (`settle_duplicates`), a
    rejected loser's row saying where its id was first seen. `summary` is the chunk's
    (window summary, mixture if kept, mixture if held) from `summarize_chunk`."""
    kept, losers = settle_duplicates(records, duplicates, duplicate_mode)
    rejected = list(rejected)
    for r, first in losers:
        raw = {k: r.get(k) for k in ("id", "source", "text")}
        rejected.append(rejection(r["shard"], r["line"], "duplicate_id",
                                  f"id {r['id']!r} first seen at {first}"
                                  + ("; ids compare as text, so 7 and \"7\" are one id"
                                     if r["id"].lstrip("-").isdecimal() else ""), raw, clip_chars))
    rejected.sort(key=lambda x: (x["line"], x["reason"]))
    windows, mixture_kept, mixture_held = summary
    return PlannedChunk(rows=kept, rejected=rejected, status=status, mixture_kept=mixture_kept,
                        mixture_held=mixture_held, windows=windows)


def finalize_chunk(planned: PlannedChunk, audit: dict, floor_bits: float | None, weights_cfg,
                   ramp: dict | None) -> tuple[dict[str, list[dict]], dict]:
    """(rows per output folder, chunk stats) once the shard's audit is known: a held shard's rows
    go to review/ with their hold reasons; human rows get their sample weight (synthetic rows
    get theirs, one for the whole run, when written). Every record read lands in exactly one
    output or in the rejected rows, and the stats say so (`conserved`)."""
    outputs: dict[str, list[dict]] = {name: [] for name in ALL_OUTPUTS}
    for r in planned.rows:
        r["hold_reasons"] = []
        if audit["below_floor"]:
            r["hold_reasons"] = [hold_reason(audit, floor_bits), f"would_be:{r['stratum']}"]
            r["stratum"] = REVIEW
        r["sample_weight"] = human_weight(r, weights_cfg, ramp)
        outputs[r["stratum"]].append(r)
    by_reason: dict[str, int] = {}
    for x in planned.rejected:
        by_reason[x["reason"]] = by_reason.get(x["reason"], 0) + 1
    status = planned.status
    stats = {
        "shard": status["shard"],
        "shard_key": status["shard_key"],
        "part": status["part"],
        "parts": status["parts"],
        "chunk": status["chunk"],
        "chunk_key": status["chunk_key"],
        "last_chunk": status["last"],
        "records_read": status["records_read"],
        "text_bytes": status["text_bytes"],
        "records_rejected": len(planned.rejected),
        "rejected_by_reason": dict(sorted(by_reason.items())),
        "records_by_stratum": {k: len(v) for k, v in outputs.items()},
        "error": status["error"],
        "row_groups_failed": status["row_groups_failed"],
        "entropy": audit,
        "mixture": planned.mixture(audit),
    }
    stats["conserved"] = stats["records_read"] == len(planned.rejected) + sum(stats["records_by_stratum"].values())
    return outputs, stats


def grouped_chunk(item, kinds: tuple[str, ...] = ("record", "rejected", "status", "duplicate")) -> tuple[dict, dict[str, list]]:
    """(status, {kind: [values]}) of one grouped chunk: (chunk_key, [(kind, value)]) with kind
    one of `kinds`. Every chunk reports exactly one status."""
    chunk_key, tagged = item
    groups: dict[str, list] = {k: [] for k in kinds}
    for kind, value in tagged:
        groups[kind].append(value)
    if len(groups["status"]) != 1:  # anything else is a bug
        raise RuntimeError(f"chunk {chunk_key}: expected one status, got {len(groups['status'])}")
    return groups["status"][0], groups


class SummarizeChunkFn(beam.DoFn):
    """Per chunk, from its records' `summary_view`s, its status and its duplicate losers
    (`summarize_chunk`). Tagged outputs (no main one): 'windows': (shard_key, window summary),
    for the shard's audit; 'mixtures': (shard_key, (mixture if kept, mixture if held)), for the
    run's weighting; 'summary': (chunk_key, ("summary", the three)), for the chunk's own plan."""

    WINDOWS = "windows"
    MIXTURES = "mixtures"
    SUMMARY = "summary"

    def __init__(self, duplicate_mode: str, window_tokens: int, weights_cfg):
        self._duplicate_mode = duplicate_mode
        self._window_tokens = window_tokens
        self._weights_cfg = weights_cfg

    def process(self, item, ramp):
        status, groups = grouped_chunk(item)
        summary = summarize_chunk(groups["record"], groups["duplicate"], self._duplicate_mode,
                                  self._window_tokens, self._weights_cfg, ramp)
        windows, kept, held = summary
        yield TaggedOutput(self.WINDOWS, (status["shard_key"], windows))
        yield TaggedOutput(self.MIXTURES, (status["shard_key"], (kept, held)))
        yield TaggedOutput(self.SUMMARY, (status["chunk_key"], ("summary", summary)))
