"""The Beam graph, built by a plain function a test can call on a TestPipeline.

  shards -> Read (cut into chunks) + validate -> cheap signals -> [LM signals] -> provenance
         -> (verified-human windows -> entropy floor: side input)
         -> (human documents' rare-word density -> rarity ramp: side input)
         -> (ids -> duplicate losers, addressed to their chunk)
         -> (records' summary views, grouped per chunk -> window summary, mixture counts
             -> shard audit: side input keyed by shard; synthetic weight under the ceiling;
             the chunk's own summary, addressed to it like its duplicate losers)
         -> group per chunk (the one shuffle of texts) -> plan (duplicates, line order),
            finalize (hold, strata, weights) and write strata + rejected + commit marker,
            fused: every side input is ready before the texts are grouped
         -> manifest.json, mixture.json, report.html

No element holds more than one chunk (`read.chunk_documents` records, `read.chunk_text_bytes` of
text, or a single larger record): a worker's memory follows the config, not the input.
"""

from __future__ import annotations

import apache_beam as beam

from collapseguard.pipeline.config import Config
from collapseguard.pipeline.curate import CurateChunks
from collapseguard.transforms.commit import fingerprint, fingerprint_parts
from collapseguard.transforms.manifest import write_summary
from collapseguard.transforms.outputs import COVERAGE, DIVERSITY, REPORT, WriteChunkFn
from collapseguard.transforms.read import ReadShards, Shard, plan_parts
from collapseguard.transforms.resume import ReplayCommittedFn, ResumeState


def build(p: beam.Pipeline, cfg: Config, shards: list[Shard], output: str, run_info: dict,
          lm_transform: beam.PTransform | None = None, resume: ResumeState | None = None,
          detector: tuple[str, str] | None = None, keep_embedding: bool = False,
          run_fingerprint: str | None = None):
    """Adds the whole stage to pipeline `p`: read the shards, `CurateChunks`, write each chunk's
    files and commit marker, then the summary files. Returns the PCollection holding the manifest.

    `resume` (from --resume, transforms/resume.py) holds the chunks an earlier run committed: they
    are only read for their ids, and count in every run-wide figure. `detector` is (classifier
    .ftz, calibration .json), or None for no p_synthetic (nothing is suspected). `keep_embedding`
    writes the LM's `lm_embedding` column instead of dropping it after the detector (the LM
    transform must have been asked for it). `run_fingerprint` (the launcher's, over inputs,
    options and versions) goes into every commit marker; by default one from `run_info`.
    """
    resume = resume or ResumeState()
    committed = resume.committed
    run_fp = run_fingerprint or fingerprint(fingerprint_parts(run_info))
    wcfg = cfg.weights.to_weights_config()
    done_shards = resume.fully_committed_shards()
    read = (
        p
        | "Shards" >> beam.Create(shards)
        | "Spread" >> beam.Reshuffle()
        | "PlanParts" >> beam.FlatMap(lambda shard, rcfg: [(shard, part) for part in plan_parts(shard, rcfg)], cfg.read)
        | "SpreadParts" >> beam.Reshuffle()  # a big shard's parts go to different workers
        | "Read" >> beam.ParDo(ReadShards(cfg.read, frozenset(committed),
                                          sum(s.size for s in shards if s.key not in done_shards))).with_outputs(
            ReadShards.REJECTED, ReadShards.STATUS, ReadShards.IDS, main="records")
    )

    def replay(pipeline, weighting):
        """Chunks an earlier run committed feed the combiners from their Parquet files."""
        replayed = (
            pipeline
            | "CommittedChunks" >> beam.Create(sorted(committed))
            | "ReplayCommitted" >> beam.ParDo(
                ReplayCommittedFn(output, cfg.signals.rare_zipf), weighting=beam.pvalue.AsSingleton(weighting),
            ).with_outputs(REPORT, DIVERSITY, COVERAGE)
        )
        return replayed.report, replayed.diversity, replayed.coverage

    cur = (read.records, read.rejected, read.status, read.ids) | "Curate" >> CurateChunks(
        cfg, lm_transform=lm_transform, detector=detector, keep_embedding=keep_embedding, resume=resume,
        replay=replay)
    written = cur["chunks"] | "WriteChunks" >> beam.ParDo(
        WriteChunkFn(output, run_fp),
        floor_info=beam.pvalue.AsSingleton(cur["floor"]), ramp=beam.pvalue.AsSingleton(cur["ramp"]))
    return (
        written
        | "CollectStats" >> beam.combiners.ToList()
        | "WriteSummary" >> beam.Map(
            lambda s, floor_info, report, div, cov, ramp: write_summary(
                s + [m["stats"] for m in resume.markers()], floor_info, output, run_info,
                wcfg.synthetic_ceiling, report, div, cov, ramp),
            floor_info=beam.pvalue.AsSingleton(cur["floor"]),
            ramp=beam.pvalue.AsSingleton(cur["ramp"]),
            report=beam.pvalue.AsSingleton(cur["report"]),
            div=beam.pvalue.AsDict(cur["diversity"]),
            cov=beam.pvalue.AsSingleton(cur["coverage"]))
    )
