"""The stage as composite PTransforms: `Curate` for a team's own Beam pipeline, and the
`CurateChunks` core that both it and the file-based graph (`pipeline/graph.py`) run.

    import collapseguard
    with beam.Pipeline() as p:
        records = p | ReadFromBigQuery(...) | beam.Map(to_dict)       # dicts: text, id, source, ...
        out = records | collapseguard.Curate(collapseguard.load_config("curate.yaml"))
        out["human_verified"] | WriteToParquet(...)                        # also out["anchor"], ...
        out["rejected"] | WriteToText(...); out["summary"] | beam.Map(print)

`Curate` takes records as dicts with the config's field names (`read.fields`: text, id, source,
url, timestamp, generator, metadata), validates them exactly as the file reader does, and returns
one PCollection of output rows per stratum and review/ (`schema.ALL_OUTPUTS`), "rejected" (rows
with a reason), and "summary" (one dict: the manifest's counts, the entropy floor and audits,
mixture.json's figures). Records have no shard or line here: all of them form one shard named by
`source_name`, a record's line is a hash of its content (so which of two records with one id is
"first" does not depend on the order a runner delivers them), and records are cut into
chunks of about `read.chunk_documents` by hash.
"""

from __future__ import annotations

import hashlib
import json
import math

import apache_beam as beam
from apache_beam.pvalue import TaggedOutput

from collapseguard.pipeline.config import Config
from collapseguard.core.schema import ALL_OUTPUTS, OUTPUT_COLUMNS
from collapseguard.transforms.dedup import duplicate_losers, id_location
from collapseguard.transforms.detect import DetectFn
from collapseguard.transforms.diversity import DiversityStats
from collapseguard.transforms.entropy import ShardWindows, WindowHistogram, audit_shard, entropy_floor, summary_from_json
from collapseguard.transforms.manifest import build_manifest, mixture_from_stats
from collapseguard.transforms.mixture import RareCoverageSample, SumMixture, SumMixturePairs, synthetic_weighting
from collapseguard.transforms.outputs import COVERAGE, DIVERSITY, REPORT, FinalizeChunkFn
from collapseguard.transforms.plan import SummarizeChunkFn, audit_pick
from collapseguard.transforms.provenance import AttestFn
from collapseguard.transforms.read import chunk_key, chunk_status, utf8_len
from collapseguard.transforms.report import ReportStats
from collapseguard.transforms.resume import ResumeState
from collapseguard.transforms.signals import CheapSignalsFn
from collapseguard.transforms.validate import coerce_record
from collapseguard.transforms.weights import DensityHistogram, rarity_ramp


class CurateChunks(beam.PTransform):
    """The stage between reading and writing. Input: (records, rejected, status, ids) as the
    reader gives them (records carry `chunk_key`; rejected and status are keyed by chunk; ids
    are `dedup.id_location` pairs). Output: a dict of PCollections: "chunks" (`FinalChunk`s),
    "report", "diversity", "coverage" (the report's combined figures), "floor", "ramp",
    "weighting" (singletons).

    `resume` (transforms/resume.py) and `replay` (a function (pipeline, weighting) -> (report,
    diversity, coverage) rows of the committed chunks) are --resume's: committed chunks count in
    every run-wide figure without being redone.
    """

    def __init__(self, cfg: Config, lm_transform: beam.PTransform | None = None,
                 detector: tuple[str, str] | None = None, keep_embedding: bool = False,
                 resume: ResumeState | None = None, replay=None):
        super().__init__()
        self._cfg = cfg
        self._lm = lm_transform
        self._detector = detector
        self._keep_embedding = keep_embedding
        self._resume = resume or ResumeState()
        self._replay = replay

    def expand(self, streams):
        records, rejected, status, ids = streams
        p, cfg, resume = records.pipeline, self._cfg, self._resume
        committed = resume.committed
        wcfg = cfg.weights.to_weights_config()
        records = records | "CheapSignals" >> beam.ParDo(CheapSignalsFn(cfg.signals))
        if self._lm is not None:
            records = records | "LMSignals" >> self._lm
        if self._detector is not None:
            records = records | "Detector" >> beam.ParDo(DetectFn(*self._detector, keep_embedding=self._keep_embedding))
        routed = records | "Provenance" >> beam.ParDo(AttestFn(cfg)).with_outputs(
            AttestFn.VERIFIED_WINDOWS, AttestFn.SUMMARIES, main="records")

        if resume.floor is not None:
            floor = p | "CommittedFloor" >> beam.Create([resume.floor])
        else:
            floor = (
                routed.verified_windows
                | "WindowHistogram" >> beam.CombineGlobally(WindowHistogram())
                | "EntropyFloor" >> beam.Map(lambda hist, ecfg: entropy_floor(ecfg, hist), cfg.entropy)
            )
        # The rarity ramp sits on the run's own human documents (percentiles of rare_word_density).
        if resume.ramp is not None:
            ramp = p | "CommittedRamp" >> beam.Create([resume.ramp])
        else:
            ramp = (
                routed.records
                | "DensityHistogram" >> beam.CombineGlobally(DensityHistogram())
                | "RarityRamp" >> beam.Map(lambda hist, w: rarity_ramp(w, hist), wcfg)
            )
        duplicates = (
            ids
            | "GroupIds" >> beam.GroupByKey()
            | "DuplicateIds" >> beam.FlatMap(
                lambda item, done: [x for x in duplicate_losers(item) if x[0] not in done], frozenset(committed))
        )
        # Each chunk's summary (window summary, mixture counts) from its records' summary views,
        # grouped apart from the texts, so the audit and the weighting are ready before any chunk
        # is finalized; the summary itself joins its chunk's texts below.
        summaries = (
            (routed.summaries, status, duplicates)
            | "MergeSummaries" >> beam.Flatten()
            | "GroupSummaries" >> beam.GroupByKey()
            | "SummarizeChunks" >> beam.ParDo(
                SummarizeChunkFn(cfg.read.duplicate_ids, cfg.signals.window_tokens, wcfg),
                ramp=beam.pvalue.AsSingleton(ramp)).with_outputs(
                    SummarizeChunkFn.WINDOWS, SummarizeChunkFn.MIXTURES, SummarizeChunkFn.SUMMARY)
        )
        # Each shard's entropy audit, from its chunks' integer window summaries (committed ones too).
        windows = [summaries.windows]
        if committed:  # a fresh run builds none of the resume-only steps (each step costs start-up)
            windows.append(p | "CommittedWindows" >> beam.Create(
                [(m["shard_key"], summary_from_json(m["windows"])) for m in resume.markers()]))
        audits = (
            windows
            | "AllWindows" >> beam.Flatten()
            | "ShardWindows" >> beam.CombinePerKey(ShardWindows())
            | "AuditShards" >> beam.Map(lambda kv, floor_info: (kv[0], audit_shard(kv[1], floor_info.get("floor_bits"))),
                                        floor_info=beam.pvalue.AsSingleton(floor))
        )
        # The synthetic weight needs the whole run's token totals (committed chunks' included):
        # per shard, its chunks' counts if kept and if held, summed, then the audit picks one.
        mixtures = [summaries.mixtures
                    | "ShardMixturePairs" >> beam.CombinePerKey(SumMixturePairs())
                    | "ShardMixtures" >> beam.Map(lambda kv, audits: audit_pick(kv[1], audits[kv[0]]),
                                                  audits=beam.pvalue.AsDict(audits))]
        if committed:
            mixtures.append(p | "CommittedMixtures" >> beam.Create([m["stats"]["mixture"] for m in resume.markers()]))
        weighting = (
            mixtures
            | "AllMixtures" >> beam.Flatten()
            | "SumMixture" >> beam.CombineGlobally(SumMixture())
            | "SyntheticWeight" >> beam.Map(synthetic_weighting, wcfg.synthetic_ceiling)
        )
        # One keyed, tagged stream per chunk (a Flatten + GroupByKey: CoGroupByKey's work without
        # its per-element re-tagging): the only step that moves texts between workers. Every side
        # input of FinalizeChunks is ready before it, so the write fuses with it.
        final = (
            (routed.records, rejected, status, duplicates, summaries.summary)
            | "Merge" >> beam.Flatten()
            | "GroupByChunk" >> beam.GroupByKey()
            | "FinalizeChunks" >> beam.ParDo(
                FinalizeChunkFn(cfg.read.duplicate_ids, cfg.read.raw_clip_chars, cfg.signals.rare_zipf, wcfg),
                floor_info=beam.pvalue.AsSingleton(floor), weighting=beam.pvalue.AsSingleton(weighting),
                ramp=beam.pvalue.AsSingleton(ramp), audits=beam.pvalue.AsDict(audits),
            ).with_outputs(REPORT, DIVERSITY, COVERAGE, main="chunks")
        )
        feeds = [(final.report, final.diversity, final.coverage)]
        if self._replay is not None and committed:
            feeds.append(self._replay(p, weighting))
        report, diversity, coverage = ([f[i] for f in feeds] for i in range(3))
        return {
            "chunks": final.chunks,
            "report": report | "AllReportRows" >> beam.Flatten() | "ReportStats" >> beam.CombineGlobally(ReportStats()),
            "diversity": diversity | "AllDiversityRows" >> beam.Flatten() | "Diversity" >> beam.CombinePerKey(DiversityStats()),
            "coverage": coverage | "AllCoverageRows" >> beam.Flatten() | "RareCoverage" >> beam.CombineGlobally(RareCoverageSample()),
            "floor": floor, "ramp": ramp, "weighting": weighting,
        }


def record_line(record: dict) -> int:
    """A record's stand-in line number: a hash of its content (canonical JSON), 1 .. 2^48."""
    blob = json.dumps(record, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.sha256(blob).digest()[:6], "big") + 1


class _ValidateFn(beam.DoFn):
    """One in-memory record -> a validated record with its chunk (main output) or a rejection
    (tagged), and its id's location (tagged), as the file reader gives them."""

    REJECTED, IDS = "rejected", "ids"

    def __init__(self, cfg: Config, shard: str):
        self._cfg = cfg
        self._shard = shard
        self._shard_key = f"{shard}-{hashlib.sha1(shard.encode('utf-8')).hexdigest()[:8]}"

    def process(self, row, n_chunks):
        line = record_line(row if isinstance(row, dict) else {"_": repr(row)})
        key = chunk_key(self._shard_key, 0, line % n_chunks)
        record, rejected = coerce_record(row, self._shard, line, self._cfg.read.fields, row,
                                         self._cfg.read.raw_clip_chars)
        if record is None:
            yield TaggedOutput(self.REJECTED, (key, ("rejected", rejected)))
            return
        record.update(shard_key=self._shard_key, shard_index=0, chunk_key=key)
        yield TaggedOutput(self.IDS, id_location(record))
        yield record


def _chunk_status(item, shard: str):
    key, (n, nbytes) = item
    shard_key, _part, chunk = key.rsplit(".", 2)
    return key, ("status", chunk_status(shard, shard_key, 0, 1, int(chunk), n, nbytes, {}))


def _sum_pairs(pairs) -> tuple[int, int]:
    n = b = 0
    for x, y in pairs:
        n, b = n + x, b + y
    return n, b


class Curate(beam.PTransform):
    """The whole stage over a PCollection of record dicts (see the module doc). Returns a dict:
    one PCollection of rows per output folder (`schema.ALL_OUTPUTS`), "rejected", "summary"."""

    def __init__(self, config: Config | None = None, *, source_name: str = "input",
                 lm_transform: beam.PTransform | None = None, detector: tuple[str, str] | None = None):
        super().__init__()
        self._cfg = config or Config()
        self._shard = source_name
        self._lm = lm_transform
        self._detector = detector

    def expand(self, rows):
        cfg, shard = self._cfg, self._shard
        n_chunks = (
            rows
            | "Count" >> beam.combiners.Count.Globally()
            | "Chunks" >> beam.Map(lambda n, per: max(1, math.ceil(n / per)), cfg.read.chunk_documents)
        )
        v = rows | "Validate" >> beam.ParDo(_ValidateFn(cfg, shard), n_chunks=beam.pvalue.AsSingleton(n_chunks)).with_outputs(
            _ValidateFn.REJECTED, _ValidateFn.IDS, main="records")
        # every chunk reports its size once, as the reader's status does
        sizes = (
            ((v.records | "RecordSizes" >> beam.Map(
                lambda r: (r["chunk_key"], (1, utf8_len(r["text"]))))),
             (v.rejected | "RejectedSizes" >> beam.Map(lambda kv: (kv[0], (1, 0)))))
            | "AllSizes" >> beam.Flatten()
            | "ChunkSizes" >> beam.CombinePerKey(_sum_pairs)
            | "Status" >> beam.Map(_chunk_status, shard)
        )
        core = (v.records, v.rejected, sizes, v.ids) | "Curate" >> CurateChunks(
            cfg, lm_transform=self._lm, detector=self._detector)
        split = core["chunks"] | "Strata" >> beam.FlatMap(_rows_by_output).with_outputs(*ALL_OUTPUTS, "rejected")
        summary = (
            core["chunks"]
            | "Stats" >> beam.Map(lambda c: c.stats)
            | "AllStats" >> beam.combiners.ToList()
            | "Summary" >> beam.Map(_summary, cfg.weights.to_weights_config().synthetic_ceiling,
                                    floor_info=beam.pvalue.AsSingleton(core["floor"]),
                                    coverage=beam.pvalue.AsSingleton(core["coverage"]),
                                    diversity=beam.pvalue.AsDict(core["diversity"]))
        )
        out = {name: split[name] for name in ALL_OUTPUTS}
        out.update(rejected=split.rejected, summary=summary)
        return out


def _rows_by_output(chunk):
    for name, rows in chunk.outputs.items():
        for r in rows:
            yield TaggedOutput(name, {c: r.get(c) for c in OUTPUT_COLUMNS})  # what its Parquet file holds
    for r in chunk.rejected:
        yield TaggedOutput("rejected", r)


def _summary(stats: list[dict], ceiling: float, floor_info: dict, coverage: dict, diversity: dict) -> dict:
    manifest = build_manifest(stats, floor_info, {})
    manifest["diversity"] = {k: diversity[k] for k in sorted(diversity)}
    manifest["mixture"] = mixture_from_stats(stats, ceiling, coverage)
    return manifest
