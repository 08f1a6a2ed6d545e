"""The Beam graph, built by a plain function a test can call on a TestPipeline.

  shards -> Read+validate -> cheap signals -> [LM signals] -> provenance + base stratum
         -> (verified-human windows -> entropy floor: side input)
         -> (ids -> duplicate marks)
         -> group per shard -> finalize (hold / write strata + rejected) -> manifest
"""

from __future__ import annotations

import apache_beam as beam

from collapseguard.pipeline.config import Config
from collapseguard.transforms.commit import fingerprint
from collapseguard.transforms.dedup import duplicate_losers
from collapseguard.transforms.entropy import WindowHistogram, entropy_floor
from collapseguard.transforms.manifest import write_manifest
from collapseguard.transforms.provenance import AttestFn
from collapseguard.transforms.read import ReadShards, Shard
from collapseguard.transforms.signals import CheapSignalsFn
from collapseguard.transforms.stratify import FinalizeShardFn


def build(p: beam.Pipeline, cfg: Config, shards: list[Shard], output: str, run_info: dict,
          lm_transform: beam.PTransform | None = None,
          committed: dict[str, dict] | None = None, committed_floor: dict | None = None):
    """Adds the whole stage to pipeline `p`. Returns the PCollection holding the manifest.

    `committed` (shard key -> commit marker) and `committed_floor` come from --resume: those
    shards are only read for their ids; the floor their run used is reused.
    """
    committed = committed or {}
    run_fp = fingerprint(run_info)
    read = (
        p
        | "Shards" >> beam.Create(shards)
        | "Spread" >> beam.Reshuffle()
        | "Read" >> beam.ParDo(ReadShards(cfg.read, frozenset(committed))).with_outputs(
            ReadShards.REJECTED, ReadShards.STATUS, ReadShards.IDS, main="records")
    )
    records = read.records | "CheapSignals" >> beam.ParDo(CheapSignalsFn(cfg.signals))
    if lm_transform is not None:
        records = records | "LMSignals" >> lm_transform
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
    duplicates = (
        read.ids
        | "GroupIds" >> beam.GroupByKey()
        | "DuplicateIds" >> beam.FlatMap(
            lambda item, done: [x for x in duplicate_losers(item) if x[0] not in done], frozenset(committed))
    )
    # One keyed, tagged stream per shard (a Flatten + GroupByKey: CoGroupByKey's work without
    # its per-element re-tagging).
    stats = (
        (routed.records, read.rejected, read.status, duplicates)
        | "Merge" >> beam.Flatten()
        | "GroupByShard" >> beam.GroupByKey()
        | "FinalizeShards" >> beam.ParDo(
            FinalizeShardFn(output, cfg.read.duplicate_ids, cfg.read.raw_clip_chars,
                            cfg.signals.window_tokens, run_fp),
            floor_info=beam.pvalue.AsSingleton(floor))
    )
    return (
        stats
        | "CollectStats" >> beam.combiners.ToList()
        | "WriteManifest" >> beam.Map(
            lambda s, floor_info: write_manifest(
                s + [m["stats"] for m in committed.values()], floor_info, output, run_info),
            floor_info=beam.pvalue.AsSingleton(floor))
    )
