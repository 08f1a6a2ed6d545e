"""Finalizing and writing a grouped chunk: its strata Parquet files, its rejected rows, its
commit marker, and the light rows the report, diversity and coverage combiners read (never the
text, except the diversity sample's prefix).

Files are one per (output folder, chunk): `<folder>/<chunk_key>.parquet`, rows in line order,
`rejected/<chunk_key>.jsonl`, then `_commits/<chunk_key>.json` last (transforms/commit.py).
"""

from __future__ import annotations

import dataclasses

import apache_beam as beam
from apache_beam.pvalue import TaggedOutput

from collapseguard.core.schema import OUTPUT_COLUMNS
from collapseguard.core.text import tokenize
from collapseguard.transforms.commit import marker, write_commit
from collapseguard.transforms.entropy import summary_to_json
from collapseguard.transforms.mixture import sample_key
from collapseguard.transforms.plan import finalize_chunk, grouped_chunk, plan_chunk
from collapseguard.transforms.report import HIST_COLUMNS
from collapseguard.transforms.weights import SYNTHETIC_STRATA, TRAINING_STRATA_ALL, RarityTables, rare_words
from collapseguard.transforms.write import join, write_jsonl, write_parquet

COVERAGE_DOCS = 2000  # documents the rare-coverage sample aims at


def report_columns() -> tuple[str, ...]:
    """What ReportStats reads of a written row (text never travels to it): output columns only, so
    a row in memory and the same row read back from Parquet give the same element."""
    wanted = ("provenance", "stratum", "source", "n_words", "sample_weight") + tuple(c for c, *_ in HIST_COLUMNS)
    return tuple(c for c in wanted if c in OUTPUT_COLUMNS)


def coverage_cut(weighting: dict, sample_docs: int) -> int:
    """Documents whose sample_key is under this cut are candidates for the rare-coverage sample:
    a superset of the `sample_docs` smallest hashes, whatever the runner's bundling."""
    n = max(1, weighting["training_documents"])
    return int(2**64 * min(1.0, 2.0 * sample_docs / n))


REPORT, DIVERSITY, COVERAGE = "report", "diversity", "coverage"


def side_outputs(name: str, r: dict, cut: int, tables, rare_zipf: float, columns: tuple[str, ...]):
    """(tag, element) pairs of one written row for the report, diversity and coverage combiners.
    A pure function of the row as written, so the rows of chunks committed by an earlier run,
    read back from their Parquet files on --resume, give exactly what the first run gave."""
    yield REPORT, {k: r.get(k) for k in columns}
    yield DIVERSITY, (name, (r["id"], r["text"][:20_000]))
    if name in TRAINING_STRATA_ALL and sample_key(r["id"]) < cut:
        rare = rare_words(tokenize(r["text"][:20_000]), r.get("lang"), tables, rare_zipf)
        yield COVERAGE, (r["id"], name, r.get("n_words") or 0, r["sample_weight"], rare)


class SideOutputsFn(beam.DoFn):
    """Base of the DoFns that feed written rows to the combiners (`side_outputs`)."""

    REPORT, DIVERSITY, COVERAGE = REPORT, DIVERSITY, COVERAGE

    def __init__(self, output: str, rare_zipf: float):
        self._output = output
        self._rare_zipf = rare_zipf
        self._tables = None
        self._columns = ()

    def setup(self):
        self._tables = RarityTables()
        self._columns = report_columns()

    def _side_outputs(self, name: str, r: dict, cut: int):
        for tag, element in side_outputs(name, r, cut, self._tables, self._rare_zipf, self._columns):
            yield TaggedOutput(tag, element)


@dataclasses.dataclass
class FinalChunk:
    """A chunk as it leaves the stage: rows per output folder (line order, final strata and
    weights), rejected rows, stats, and the window summary its commit marker keeps."""

    chunk_key: str
    outputs: dict
    rejected: list
    stats: dict
    windows: dict


class FinalizeChunkFn(SideOutputsFn):
    """Per grouped chunk (the one grouping of texts): `plan_chunk` (duplicates, line order), then
    the shard's audit decides the hold (`finalize_chunk`) and synthetic rows get the run's one
    synthetic weight. Its side inputs come from the chunks' summaries (`plan.SummarizeChunkFn`),
    not from this step, so the write fuses with it and the texts never cross workers again.

    Input: (chunk_key, [(kind, value)]), kind in record / rejected / status / duplicate /
    summary (the chunk's own, exactly one). Main output: the `FinalChunk`; tagged 'report',
    'diversity', 'coverage' (`side_outputs`). Records the size of every grouped element in two
    Beam Distribution metrics (chunk_documents, chunk_text_bytes)."""

    KINDS = ("record", "rejected", "status", "duplicate", "summary")

    def __init__(self, duplicate_mode: str, clip_chars: int, rare_zipf: float, weights_cfg):
        super().__init__("", rare_zipf)
        self._duplicate_mode = duplicate_mode
        self._clip = clip_chars
        self._weights_cfg = weights_cfg
        self._docs = beam.metrics.Metrics.distribution("collapseguard", "chunk_documents")
        self._bytes = beam.metrics.Metrics.distribution("collapseguard", "chunk_text_bytes")

    def process(self, item, floor_info, weighting, ramp, audits):
        status, groups = grouped_chunk(item, self.KINDS)
        if len(groups["summary"]) != 1:  # every chunk with a status is summarized once
            raise RuntimeError(f"chunk {item[0]}: expected one summary, got {len(groups['summary'])}")
        self._docs.update(status["records_read"])
        self._bytes.update(status["text_bytes"])
        planned = plan_chunk(groups["record"], groups["rejected"], groups["duplicate"], status,
                             self._duplicate_mode, self._clip, groups["summary"][0])
        outputs, stats = finalize_chunk(planned, audits[planned.shard_key], floor_info.get("floor_bits"),
                                        self._weights_cfg, ramp)
        w_syn = weighting["synthetic_weight"]
        cut = coverage_cut(weighting, COVERAGE_DOCS)
        for name, rows in outputs.items():
            for r in rows:
                if name in SYNTHETIC_STRATA:
                    r["sample_weight"] = w_syn
                yield from self._side_outputs(name, r, cut)
        yield FinalChunk(planned.chunk_key, outputs, planned.rejected, stats, planned.windows)


class WriteChunkFn(beam.DoFn):
    """Per final chunk: its strata Parquet files and rejected JSONL, then its commit marker
    (last: the marker says the chunk is complete, transforms/commit.py). Output: its stats."""

    def __init__(self, output: str, run_fingerprint: str):
        self._output = output
        self._fingerprint = run_fingerprint

    def process(self, chunk: FinalChunk, floor_info, ramp):
        for name, rows in chunk.outputs.items():
            if rows:
                write_parquet(join(self._output, name, f"{chunk.chunk_key}.parquet"), rows)
        if chunk.rejected:
            write_jsonl(join(self._output, "rejected", f"{chunk.chunk_key}.jsonl"), chunk.rejected)
        content = marker(chunk.stats, floor_info, self._fingerprint, ramp)
        content["windows"] = summary_to_json(chunk.windows)
        write_commit(self._output, chunk.chunk_key, content)
        yield chunk.stats
