"""The Beam graph, built by a plain function a test can call on a TestPipeline.

  shards -> Read+validate -> cheap signals -> [LM signals] -> provenance + base stratum
         -> (verified-human windows -> entropy floor: side input)
         -> (ids -> duplicate marks)
         -> group per shard -> finalize (hold / write strata + rejected) -> manifest
"""

from __future__ import annotations

import apache_beam as beam

from collapseguard.pipeline.config import Config
from collapseguard.transforms.dedup import duplicate_losers
from collapseguard.transforms.entropy import WindowHistogram, entropy_floor
from collapseguard.transforms.manifest import write_manifest
from collapseguard.transforms.provenance import AttestFn
from collapseguard.transforms.read import ReadShards, Shard
from collapseguard.transforms.signals import CheapSignalsFn
from collapseguard.transforms.stratify import FinalizeShardFn


def build(p: beam.Pipeline, cfg: Config, shards: list[Shard], output: str, run_info: dict,
          lm_transform: beam.PTransform | None = None):
    """Adds the whole stage to pipeline `p`. Returns the PCollection holding the manifest."""
    read = (
        p
        | "Shards" >> beam.Create(shards)
        | "Spread" >> beam.Reshuffle()
        | "Read" >> beam.ParDo(ReadShards(cfg.read)).with_outputs(
            ReadShards.REJECTED, ReadShards.STATUS, main="records")
    )
    records = read.records | "CheapSignals" >> beam.ParDo(CheapSignalsFn(cfg.signals))
    if lm_transform is not None:
        records = records | "LMSignals" >> lm_transform
    routed = records | "Provenance" >> beam.ParDo(AttestFn(cfg)).with_outputs(
        AttestFn.IDS, AttestFn.VERIFIED_WINDOWS, main="records")

    floor = (
        routed.verified_windows
        | "WindowHistogram" >> beam.CombineGlobally(WindowHistogram())
        | "EntropyFloor" >> beam.Map(lambda hist, ecfg: entropy_floor(ecfg, hist), cfg.entropy)
    )
    duplicates = (
        routed.ids
        | "GroupIds" >> beam.GroupByKey()
        | "DuplicateIds" >> beam.FlatMap(duplicate_losers)
    )
    # One keyed, tagged stream per shard (a Flatten + GroupByKey: CoGroupByKey's work without
    # its per-element re-tagging).
    stats = (
        (routed.records, read.rejected, read.status, duplicates)
        | "Merge" >> beam.Flatten()
        | "GroupByShard" >> beam.GroupByKey()
        | "FinalizeShards" >> beam.ParDo(
            FinalizeShardFn(output, cfg.read.duplicate_ids, cfg.read.raw_clip_chars,
                            cfg.signals.window_tokens),
            floor_info=beam.pvalue.AsSingleton(floor))
    )
    return (
        stats
        | "CollectStats" >> beam.combiners.ToList()
        | "WriteManifest" >> beam.Map(
            lambda s, floor_info: write_manifest(s, floor_info, output, run_info),
            floor_info=beam.pvalue.AsSingleton(floor))
    )
