"""The manifest: what went in, where every record went, and the thresholds that put it there.

Deterministic: no wall-clock, shards sorted by name, keys sorted when written.
"""

from __future__ import annotations

import platform

import apache_beam
import pyarrow

import collapseguard
from collapseguard.core.schema import ALL_OUTPUTS, SIGNAL_VERSIONS, SYNTHETIC_STRATA
from collapseguard.transforms.mixture import UNITS, SumMixture, build_mixture, synthetic_weighting
from collapseguard.transforms.report import render_report
from collapseguard.transforms.write import join, write_bytes, write_json

MANIFEST_VERSION = 1


def versions() -> dict:


    return {
        "collapseguard": collapseguard.__version__,
        "apache_beam": apache_beam.__version__,
        "pyarrow": pyarrow.__version__,
        "python": platform.python_version(),
        "signals": dict(SIGNAL_VERSIONS),
    }


def shards_from_chunks(chunk_stats: list[dict]) -> list[dict]:
    """Per input shard, its chunks' stats summed (counts, reasons, strata, mixture), its audit
    (the same for every chunk), its error (the last chunk's), sorted by shard name."""
    out: dict[str, dict] = {}
    for c in sorted(chunk_stats, key=lambda c: (c["shard"], c.get("chunk", 0))):
        s = out.get(c["shard"])
        if s is None:
            s = out[c["shard"]] = {
                "shard": c["shard"], "shard_key": c["shard_key"], "chunks": 0, "records_read": 0,
                "records_rejected": 0, "rejected_by_reason": {}, "records_by_stratum": dict.fromkeys(ALL_OUTPUTS, 0),
                "error": None, "row_groups_failed": 0, "entropy": c["entropy"],
                "mixture": SumMixture().create_accumulator(),
                "max_chunk_documents": 0, "max_chunk_text_bytes": 0}
        s["chunks"] += 1
        for k in ("records_read", "records_rejected", "row_groups_failed"):
            s[k] += c.get(k, 0)
        for reason, n in c["rejected_by_reason"].items():
            s["rejected_by_reason"][reason] = s["rejected_by_reason"].get(reason, 0) + n
        for name in ALL_OUTPUTS:
            s["records_by_stratum"][name] += c["records_by_stratum"][name]
        SumMixture().add_input(s["mixture"], c["mixture"])
        s["error"] = s["error"] or c["error"]
        s["max_chunk_documents"] = max(s["max_chunk_documents"], c["records_read"])
        s["max_chunk_text_bytes"] = max(s["max_chunk_text_bytes"], c.get("text_bytes", 0))
    for s in out.values():
        s["rejected_by_reason"] = dict(sorted(s["rejected_by_reason"].items()))
        s["conserved"] = s["records_read"] == s["records_rejected"] + sum(s["records_by_stratum"].values())
    return [out[k] for k in sorted(out)]


def build_manifest(chunk_stats: list[dict], floor_info: dict, run_info: dict) -> dict:
    shards = shards_from_chunks(chunk_stats)
    by_stratum = {name: sum(s["records_by_stratum"][name] for s in shards) for name in ALL_OUTPUTS}
    by_reason: dict[str, int] = {}
    for s in shards:
        for reason, n in s["rejected_by_reason"].items():
            by_reason[reason] = by_reason.get(reason, 0) + n
    records_read = sum(s["records_read"] for s in shards)
    records_rejected = sum(s["records_rejected"] for s in shards)
    held = [s["shard"] for s in shards if s["entropy"]["below_floor"]]
    return {
        "manifest_version": MANIFEST_VERSION,
        "records_read": records_read,
        "records_rejected": records_rejected,
        "rejected_by_reason": dict(sorted(by_reason.items())),
        "records_by_stratum": by_stratum,
        "conserved": records_read == records_rejected + sum(by_stratum.values()),
        "shards_total": len(shards),
        "chunks_total": sum(s["chunks"] for s in shards),
        # the largest grouped element of the graph (GroupByChunk: one chunk's records); the
        # other grouped steps hold ids' locations or integer histograms, never documents
        "largest_element": {
            "step": "GroupByChunk",
            "documents": max((s["max_chunk_documents"] for s in shards), default=0),
            "text_bytes": max((s["max_chunk_text_bytes"] for s in shards), default=0)},
        "shards_with_errors": [{"shard": s["shard"], "error": s["error"]} for s in shards if s["error"]],
        "shards_held_for_review": held,
        "entropy": floor_info,
        "shards": shards,
        **run_info,
        "versions": versions(),
    }


def mixture_from_stats(shard_stats: list[dict], ceiling: float, rare_coverage: dict) -> dict:
    """mixture.json from the shards' integer token counts and the final synthetic weight."""

    combine = SumMixture()
    acc = combine.create_accumulator()
    for s in shard_stats:
        combine.add_input(acc, s["mixture"])
    w_syn = synthetic_weighting(acc, ceiling)["synthetic_weight"]
    tokens = {name: m["tokens"] for name, m in acc.items()}
    weighted = {name: (m["tokens"] * w_syn if name in SYNTHETIC_STRATA else m["weighted_units"] / UNITS)
                for name, m in acc.items()}
    mixture = build_mixture(tokens, weighted, rare_coverage, ceiling)
    mixture["synthetic_weight"] = w_syn
    return mixture


def write_summary(chunk_stats: list[dict], floor_info: dict, output: str, run_info: dict, ceiling: float,
                  report_stats: dict, diversity: dict, rare_coverage: dict, rarity_ramp: dict | None = None) -> dict:
    """Writes manifest.json, mixture.json and report.html (the manifest last: it closes the run).

    `rarity_ramp` (the run's `weights.rarity_ramp`) goes to the manifest's `weights` section."""

    manifest = build_manifest(chunk_stats, floor_info, run_info)
    manifest["diversity"] = {k: diversity[k] for k in sorted(diversity)}
    manifest["weights"] = {"rarity_ramp": rarity_ramp}
    mixture = mixture_from_stats(chunk_stats, ceiling, rare_coverage)
    stats = dict(report_stats, diversity=manifest["diversity"])
    write_json(join(output, "mixture.json"), mixture)
    write_bytes(join(output, "report.html"), render_report(manifest, mixture, stats).encode("utf-8"))
    write_json(join(output, "manifest.json"), manifest)
    return manifest
