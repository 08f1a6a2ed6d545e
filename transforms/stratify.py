"""Strata: where each document goes. Pure functions.

The anchor split is a deterministic hash-of-id fraction of verified-human documents (the same
id lands in the same split on every run and runner). Anchor documents are a clean human
reference that never enters a training stratum (Yi et al. 2025: verification converges to
the verifier's view, so the anchor must stay independent of it).
"""

from __future__ import annotations

import hashlib

import apache_beam as beam

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


def plan_shard(
    records: list[dict],
    rejected: list[dict],
    duplicates: list[tuple[int, str]],
    status: dict,
    floor_info: dict,
    duplicate_mode: str,
    clip_chars: int,
    window_tokens: int,
) -> tuple[dict[str, list[dict]], list[dict], dict]:
    """Decides where every record of one input shard goes.

    Returns (rows per output folder, rejected rows, shard stats). Everything is sorted by input
    line, and every record read lands in exactly one of the two (the stats prove it).
    """
    from collapseguard.pipeline.schema import ALL_OUTPUTS, REVIEW
    from collapseguard.transforms.entropy import audit_shard, hold_reason, packed_windows
    from collapseguard.transforms.validate import rejection

    first_of = dict(duplicates)
    rejected = list(rejected)
    kept: list[dict] = []
    for r in sorted(records, key=lambda r: r["line"]):
        if r["line"] in first_of:
            if duplicate_mode == "reject":
                raw = {k: r.get(k) for k in ("id", "source", "text")}
                rejected.append(rejection(r["shard"], r["line"], "duplicate_id",
                                          f"id {r['id']!r} first seen at {first_of[r['line']]}", raw, clip_chars))
                continue
            r["is_duplicate_id"] = True
        kept.append(r)

    floor = floor_info.get("floor_bits")
    values = [w for r in kept for w in r.get("_windows") or ()]
    values += packed_windows((r.get("_tail") or "" for r in kept), window_tokens)
    audit = audit_shard(values, floor)
    outputs: dict[str, list[dict]] = {name: [] for name in ALL_OUTPUTS}
    for r in kept:
        r["hold_reasons"] = []
        if audit["below_floor"]:
            r["hold_reasons"] = [hold_reason(audit, floor), f"would_be:{r['stratum']}"]
            r["stratum"] = REVIEW
        outputs[r["stratum"]].append(r)
    rejected.sort(key=lambda x: (x["line"], x["reason"]))

    by_reason: dict[str, int] = {}
    for x in rejected:
        by_reason[x["reason"]] = by_reason.get(x["reason"], 0) + 1
    stats = {
        "shard": status["shard"],
        "shard_key": status["shard_key"],
        "records_read": status["records_read"],
        "records_rejected": len(rejected),
        "rejected_by_reason": dict(sorted(by_reason.items())),
        "records_by_stratum": {k: len(v) for k, v in outputs.items()},
        "error": status["error"],
        "entropy": audit,
    }
    stats["conserved"] = stats["records_read"] == len(rejected) + sum(stats["records_by_stratum"].values())
    return outputs, rejected, stats


class FinalizeShardFn(beam.DoFn):
    """Per input shard: dedup marks, entropy hold, write strata + rejected, emit stats.

    Input: (shard_key, [(kind, value)]) with kind in record / rejected / status / duplicate.
    """

    def __init__(self, output: str, duplicate_mode: str, clip_chars: int, window_tokens: int,
                 run_fingerprint: str = ""):
        self._output = output
        self._fingerprint = run_fingerprint
        self._duplicate_mode = duplicate_mode
        self._clip = clip_chars
        self._window_tokens = window_tokens

    def process(self, item, floor_info):
        from collapseguard.transforms.commit import marker, write_commit
        from collapseguard.transforms.write import join, write_jsonl, write_parquet

        shard_key, tagged = item
        groups: dict[str, list] = {"record": [], "rejected": [], "status": [], "duplicate": []}
        for kind, value in tagged:
            groups[kind].append(value)
        if len(groups["status"]) != 1:  # every shard reports exactly once; anything else is a bug
            raise RuntimeError(f"shard {shard_key}: expected one status, got {len(groups['status'])}")
        outputs, rejected, stats = plan_shard(
            groups["record"], groups["rejected"], groups["duplicate"],
            groups["status"][0], floor_info, self._duplicate_mode, self._clip, self._window_tokens,
        )
        for name, rows in outputs.items():
            if rows:
                write_parquet(join(self._output, name, f"{shard_key}.parquet"), rows)
        if rejected:
            write_jsonl(join(self._output, "rejected", f"{shard_key}.jsonl"), rejected)
        # last: the marker that says this shard is complete (see transforms/commit.py)
        write_commit(self._output, shard_key, marker(stats, floor_info, self._fingerprint))
        yield stats
