"""The Beam graph, built by a plain function a test can call on a TestPipeline.

  shards -> Read+validate -> cheap signals -> [LM signals] -> provenance + base stratum
         -> (verified-human windows -> entropy floor: side input)
         -> (human documents' rare-word density -> rarity ramp: side input)
         -> (ids -> duplicate marks)
         -> group per shard -> plan (duplicates, entropy hold, strata, human weights)
         -> (token totals -> synthetic weight under the ceiling: side input)
         -> write strata + rejected + commit marker
         -> manifest.json, mixture.json, report.html
"""

from __future__ import annotations

import apache_beam as beam

from collapseguard.pipeline.config import Config
from collapseguard.transforms.commit import fingerprint, fingerprint_parts
from collapseguard.transforms.dedup import duplicate_losers
from collapseguard.transforms.detect import DetectFn
from collapseguard.transforms.entropy import WindowHistogram, entropy_floor
from collapseguard.transforms.diversity import DiversityStats
from collapseguard.transforms.manifest import write_summary
from collapseguard.transforms.mixture import RareCoverageSample
from collapseguard.transforms.provenance import AttestFn
from collapseguard.transforms.read import ReadShards, Shard
from collapseguard.transforms.signals import CheapSignalsFn
from collapseguard.transforms.report import ReportStats
from collapseguard.transforms.stratify import (
    DensityHistogram, PlanShardFn, ReplayCommittedFn, SumMixture, WriteShardFn, synthetic_weighting)
from collapseguard.transforms.weights import rarity_ramp


def build(p: beam.Pipeline, cfg: Config, shards: list[Shard], output: str, run_info: dict,
          lm_transform: beam.PTransform | None = None,
          committed: dict[str, dict] | None = None, committed_floor: dict | None = None,
          committed_ramp: dict | None = None, detector: tuple[str, str] | None = None,
          keep_embedding: bool = False, run_fingerprint: str | None = None):
    """Adds the whole stage to pipeline `p`. Returns the PCollection holding the manifest.

    `committed` (shard key -> commit marker), `committed_floor` and `committed_ramp` come from
    --resume: those shards are only read for their ids; the entropy floor and the rarity ramp
    their run used are reused. `detector` is
    (classifier .ftz, calibration .json), or None for no p_synthetic (nothing is suspected).
    `keep_embedding` writes the LM's `lm_embedding` column instead of dropping it after the
    detector (the LM transform must have been asked for it). `run_fingerprint` (the launcher's,
    over inputs, options and versions) goes into every commit marker; by default one from `run_info`.
    """
    committed = committed or {}
    run_fp = run_fingerprint or fingerprint(fingerprint_parts(run_info))
    wcfg = cfg.weights.to_weights_config()
    read = (
        p
        | "Shards" >> beam.Create(shards)
        | "Spread" >> beam.Reshuffle()
        | "Read" >> beam.ParDo(ReadShards(cfg.read, frozenset(committed),
                                          sum(s.size for s in shards if s.key not in committed))).with_outputs(
            ReadShards.REJECTED, ReadShards.STATUS, ReadShards.IDS, main="records")
    )
    records = read.records | "CheapSignals" >> beam.ParDo(CheapSignalsFn(cfg.signals))
    if lm_transform is not None:
        records = records | "LMSignals" >> lm_transform
    if detector is not None:
        records = records | "Detector" >> beam.ParDo(DetectFn(*detector, keep_embedding=keep_embedding))
    routed = records | "Provenance" >> beam.ParDo(AttestFn(cfg)).with_outputs(
        AttestFn.VERIFIED_WINDOWS, main="records")

    if committed_floor is not None:
        floor = p | "CommittedFloor" >> beam.Create([committed_floor])
    else:
        floor = (
            routed.verified_windows
            | "WindowHistogram" >> beam.CombineGlobally(WindowHistogram())
            | "EntropyFloor" >> beam.Map(lambda hist, ecfg: entropy_floor(ecfg, hist), cfg.entropy)
        )
    # The rarity ramp sits on the run's own human documents (percentiles of rare_word_density).
    if committed_ramp is not None:
        ramp = p | "CommittedRamp" >> beam.Create([committed_ramp])
    else:
        ramp = (
            routed.records
            | "DensityHistogram" >> beam.CombineGlobally(DensityHistogram())
            | "RarityRamp" >> beam.Map(lambda hist, w: rarity_ramp(w, hist), wcfg)
        )
    duplicates = (
        read.ids
        | "GroupIds" >> beam.GroupByKey()
        | "DuplicateIds" >> beam.FlatMap(
            lambda item, done: [x for x in duplicate_losers(item) if x[0] not in done], frozenset(committed))
    )
    # One keyed, tagged stream per shard (a Flatten + GroupByKey: CoGroupByKey's work without
    # its per-element re-tagging).
    planned = (
        (routed.records, read.rejected, read.status, duplicates)
        | "Merge" >> beam.Flatten()
        | "GroupByShard" >> beam.GroupByKey()
        | "PlanShards" >> beam.ParDo(
            PlanShardFn(cfg.read.duplicate_ids, cfg.read.raw_clip_chars, cfg.signals.window_tokens, wcfg),
            floor_info=beam.pvalue.AsSingleton(floor), ramp=beam.pvalue.AsSingleton(ramp))
    )
    # The synthetic weight needs the whole run's token totals (committed shards' included).
    weighting = (
        (planned | "ShardMixtures" >> beam.Map(lambda kv: kv[1][2]["mixture"]),
         p | "CommittedMixtures" >> beam.Create([m["stats"]["mixture"] for m in committed.values()]))
        | "AllMixtures" >> beam.Flatten()
        | "SumMixture" >> beam.CombineGlobally(SumMixture())
        | "SyntheticWeight" >> beam.Map(synthetic_weighting, wcfg.synthetic_ceiling)
    )
    written = planned | "WriteShards" >> beam.ParDo(
        WriteShardFn(output, run_fp, cfg.signals.rare_zipf),
        floor_info=beam.pvalue.AsSingleton(floor), weighting=beam.pvalue.AsSingleton(weighting),
        ramp=beam.pvalue.AsSingleton(ramp),
    ).with_outputs(WriteShardFn.REPORT, WriteShardFn.DIVERSITY, WriteShardFn.COVERAGE, main="stats")

    # Shards an earlier run committed (--resume) feed the same combiners from their Parquet files.
    replayed = (
        p
        | "CommittedShards" >> beam.Create(sorted(committed))
        | "ReplayCommitted" >> beam.ParDo(
            ReplayCommittedFn(output, cfg.signals.rare_zipf), weighting=beam.pvalue.AsSingleton(weighting),
        ).with_outputs(WriteShardFn.REPORT, WriteShardFn.DIVERSITY, WriteShardFn.COVERAGE)
    )
    report_stats = (
        (written.report, replayed.report) | "AllReportRows" >> beam.Flatten()
        | "ReportStats" >> beam.CombineGlobally(ReportStats()))
    diversity = (
        (written.diversity, replayed.diversity) | "AllDiversityRows" >> beam.Flatten()
        | "Diversity" >> beam.CombinePerKey(DiversityStats()))
    coverage = (
        (written.coverage, replayed.coverage) | "AllCoverageRows" >> beam.Flatten()
        | "RareCoverage" >> beam.CombineGlobally(RareCoverageSample()))
    return (
        written.stats
        | "CollectStats" >> beam.combiners.ToList()
        | "WriteSummary" >> beam.Map(
            lambda s, floor_info, report, div, cov, ramp: write_summary(
                s + [m["stats"] for m in committed.values()], floor_info, output, run_info,
                wcfg.synthetic_ceiling, report, div, cov, ramp),
            floor_info=beam.pvalue.AsSingleton(floor),
            ramp=beam.pvalue.AsSingleton(ramp),
            report=beam.pvalue.AsSingleton(report_stats),
            div=beam.pvalue.AsDict(diversity),
            cov=beam.pvalue.AsSingleton(coverage))
    )
