"""The Beam graph, built by a plain function a test can call on a TestPipeline.

  shards -> Read+validate -> cheap signals -> [LM signals] -> provenance + base stratum
         -> (verified-human windows -> entropy floor: side input)
         -> (ids -> duplicate marks)
         -> CoGroupByKey per shard -> finalize (hold / write strata + rejected) -> manifest
"""

from __future__ import annotations

import apache_beam as beam

from collapseguard.pipeline.config import Config
from collapseguard.transforms.dedup import duplicate_losers, id_location
from collapseguard.transforms.entropy import WindowHistogram, entropy_floor
from collapseguard.transforms.manifest import write_manifest
from collapseguard.transforms.provenance import AttestFn
from collapseguard.transforms.read import ReadShards, Shard
from collapseguard.transforms.signals import CheapSignalsFn
from collapseguard.transforms.stratify import FinalizeShardFn


def _verified_windows(record: dict):
    if record["provenance"] == "verified_human" and record.get("_windows"):
        yield record["_windows"]


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
    records = records | "Provenance" >> beam.ParDo(AttestFn(cfg))

    floor = (
        records
        | "VerifiedWindows" >> beam.FlatMap(_verified_windows)
        | "WindowHistogram" >> beam.CombineGlobally(WindowHistogram())
        | "EntropyFloor" >> beam.Map(lambda hist, ecfg: entropy_floor(ecfg, hist), cfg.entropy)
    )
    duplicates = (
        records
        | "IdLocations" >> beam.Map(id_location)
        | "GroupIds" >> beam.GroupByKey()
        | "DuplicateIds" >> beam.FlatMap(duplicate_losers)
    )
    by_shard = records | "KeyByShard" >> beam.Map(lambda r: (r["shard_key"], r))
    stats = (
        {"records": by_shard, "rejected": read.rejected, "status": read.status, "duplicates": duplicates}
        | "GroupByShard" >> beam.CoGroupByKey()
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
