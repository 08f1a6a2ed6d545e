"""Per chunk: where each record of a chunk goes. Pure functions, and the DoFn that runs them.

A chunk (`read.iter_chunks`: at most `read.chunk_documents` records of one shard, in line order)
is the largest unit any grouped element of the graph holds. The decisions that belong to the
whole shard reach a chunk as small values:

- duplicate-id losers: from the keyed join on id (`dedup.duplicate_losers`), addressed to the
  chunk that holds the loser;
- the shard's entropy audit: each chunk's windows are summarised as integers
  (`entropy.window_summary`), combined per shard, audited against the floor, and read back by
  the write step as a side input keyed by shard.

So planning is two steps: `plan_chunk` (before the audit is known: duplicates, line order, the
chunk's window summary, and the chunk's mixture counts both ways, kept or held) and
`finalize_chunk` (with the audit: the hold, the strata, the human weights, the stats).
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


def plan_chunk(records: list[dict], rejected: list[dict], duplicates: list[tuple[int, str]], status: dict,
               duplicate_mode: str, clip_chars: int, window_tokens: int, weights_cfg,
               ramp: dict | None) -> PlannedChunk:
    """The planned chunk (its `windows` feed the shard's audit). Rows sorted by line;
    with `duplicate_mode` "reject" a duplicate id's later occurrences move to the rejected rows,
    with "keep" they are flagged `is_duplicate_id`."""
    first_of = dict(duplicates)
    rejected = list(rejected)
    kept: list[dict] = []
    for r in sorted(records, key=lambda r: r["line"]):
        if r["line"] in first_of:
            if duplicate_mode == "reject":
                raw = {k: r.get(k) for k in ("id", "source", "text")}
                rejected.append(rejection(r["shard"], r["line"], "duplicate_id",
                                          f"id {r['id']!r} first seen at {first_of[r['line']]}"
                                          + ("; ids compare as text, so 7 and \"7\" are one id"
                                             if r["id"].lstrip("-").isdecimal() else ""), raw, clip_chars))
                continue
            r["is_duplicate_id"] = True
        kept.append(r)
    rejected.sort(key=lambda x: (x["line"], x["reason"]))
    values = [w for r in kept for w in r.get("_windows") or ()]
    values += packed_windows((r.get("_tail") or "" for r in kept), window_tokens)
    return PlannedChunk(
        rows=kept, rejected=rejected, status=status,
        mixture_kept=chunk_mixture(kept, weights_cfg, ramp, held=False),
        mixture_held=chunk_mixture(kept, weights_cfg, ramp, held=True),
        windows=window_summary(values))


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


def _group(tagged) -> dict[str, list]:
    groups: dict[str, list] = {"record": [], "rejected": [], "status": [], "duplicate": []}
    for kind, value in tagged:
        groups[kind].append(value)
    return groups


class PlanChunkFn(beam.DoFn):
    """Per chunk (`plan_chunk`). Input: (chunk_key, [(kind, value)]) with kind in record /
    rejected / status / duplicate. Main output: the `PlannedChunk`; tagged 'windows':
    (shard_key, window summary) and 'mixtures': (shard_key, (mixture if kept, mixture if held)). Records the size of every grouped element in two Beam
    Distribution metrics (chunk_documents, chunk_text_bytes)."""

    WINDOWS = "windows"
    MIXTURES = "mixtures"

    def __init__(self, duplicate_mode: str, clip_chars: int, window_tokens: int, weights_cfg):
        self._duplicate_mode = duplicate_mode
        self._clip = clip_chars
        self._window_tokens = window_tokens
        self._weights_cfg = weights_cfg
        self._docs = beam.metrics.Metrics.distribution("collapseguard", "chunk_documents")
        self._bytes = beam.metrics.Metrics.distribution("collapseguard", "chunk_text_bytes")

    def process(self, item, ramp):
        chunk_key, tagged = item
        groups = _group(tagged)
        if len(groups["status"]) != 1:  # every chunk reports exactly once; anything else is a bug
            raise RuntimeError(f"chunk {chunk_key}: expected one status, got {len(groups['status'])}")
        status = groups["status"][0]
        self._docs.update(status["records_read"])
        self._bytes.update(status["text_bytes"])
        planned = plan_chunk(groups["record"], groups["rejected"], groups["duplicate"], status,
                                      self._duplicate_mode, self._clip, self._window_tokens,
                                      self._weights_cfg, ramp)
        yield TaggedOutput(self.WINDOWS, (planned.shard_key, planned.windows))
        yield TaggedOutput(self.MIXTURES, (planned.shard_key, (planned.mixture_kept, planned.mixture_held)))
        yield planned
