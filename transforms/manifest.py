"""The manifest: what went in, where every record went, and the thresholds that put it there.

Deterministic: no wall-clock, shards sorted by name, keys sorted when written.
"""

from __future__ import annotations

import platform

from collapseguard.pipeline.schema import ALL_OUTPUTS, SIGNAL_VERSIONS

MANIFEST_VERSION = 1


def versions() -> dict:
    import apache_beam
    import pyarrow

    import collapseguard

    return {
        "collapseguard": collapseguard.__version__,
        "apache_beam": apache_beam.__version__,
        "pyarrow": pyarrow.__version__,
        "python": platform.python_version(),
        "signals": dict(SIGNAL_VERSIONS),
    }


def build_manifest(shard_stats: list[dict], floor_info: dict, run_info: dict) -> dict:
    shards = sorted(shard_stats, key=lambda s: s["shard"])
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
        "shards_with_errors": [{"shard": s["shard"], "error": s["error"]} for s in shards if s["error"]],
        "shards_held_for_review": held,
        "entropy": floor_info,
        "shards": shards,
        **run_info,
        "versions": versions(),
    }


def mixture_from_stats(shard_stats: list[dict], ceiling: float, rare_coverage: dict) -> dict:
    """mixture.json from the shards' integer token counts and the final synthetic weight."""
    from collapseguard.transforms.mixture import UNITS, build_mixture
    from collapseguard.transforms.stratify import SumMixture, synthetic_weighting
    from collapseguard.transforms.weights import SYNTHETIC_STRATA

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


def write_summary(shard_stats: list[dict], floor_info: dict, output: str, run_info: dict, ceiling: float,
                  report_stats: dict, diversity: dict, rare_coverage: dict, rarity_ramp: dict | None = None) -> dict:
    """Writes manifest.json, mixture.json and report.html (the manifest last: it closes the run).

    `rarity_ramp` (the run's `weights.rarity_ramp`) goes to the manifest's `weights` section."""
    from collapseguard.transforms.report import render_report
    from collapseguard.transforms.write import join, write_bytes, write_json

    manifest = build_manifest(shard_stats, floor_info, run_info)
    manifest["diversity"] = {k: diversity[k] for k in sorted(diversity)}
    manifest["weights"] = {"rarity_ramp": rarity_ramp}
    mixture = mixture_from_stats(shard_stats, ceiling, rare_coverage)
    stats = dict(report_stats, diversity=manifest["diversity"])
    write_json(join(output, "mixture.json"), mixture)
    write_bytes(join(output, "report.html"), render_report(manifest, mixture, stats).encode("utf-8"))
    write_json(join(output, "manifest.json"), manifest)
    return manifest
