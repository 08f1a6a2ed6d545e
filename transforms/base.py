"""Shared Beam plumbing: the batched per-record scorer DoFn, histogram merging."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows


class BatchedDoFn(beam.DoFn):
    """Buffers records and scores them `batch_size` at a time (one library call per batch).

    Subclasses implement `score_batch(records) -> records`; what is left at the end of a bundle
    is flushed in `finish_bundle`. Records live in the global window (batch pipelines).
    """

    def __init__(self, batch_size: int = 256):
        self._batch_size = batch_size
        self._buffer: list[dict] = []

    def score_batch(self, records: list[dict]) -> list[dict]:  # pragma: no cover - abstract
        raise NotImplementedError

    def start_bundle(self):
        self._buffer = []

    def process(self, record: dict):
        self._buffer.append(record)
        if len(self._buffer) >= self._batch_size:
            yield from self._flush()

    def finish_bundle(self):
        for rec in self._flush():
            yield GlobalWindows.windowed_value(rec)

    def _flush(self):
        batch, self._buffer = self._buffer, []
        return self.score_batch(batch) if batch else []


def merge_histograms(accs) -> dict[int, int]:
    """Sums {bin: count} histograms (CombineFn.merge_accumulators of the integer histograms that
    make the entropy floor and the rarity ramp independent of merge order)."""
    out: dict[int, int] = {}
    for a in accs:
        for b, c in a.items():
            out[b] = out.get(b, 0) + c
    return out
