"""--resume: what a run killed part-way left committed, and how the next run counts it.

A chunk is committed exactly when its marker exists (transforms/commit.py). `ResumeState` is
what the graph needs of the committed chunks: their markers (stats, window summaries, mixture
counts), and the entropy floor and rarity ramp their run used, so that decisions and weights
match an uninterrupted run. The graph skips their processing, reads them only for their ids
(duplicate detection sees the whole input), feeds their window summaries to their shard's audit,
their mixture counts to the synthetic weight, their written rows (`ReplayCommittedFn`) to the
report's combiners, and their stats to the manifest.
"""

from __future__ import annotations

import dataclasses
import json

import pyarrow.parquet as pq
from fsspec.core import url_to_fs

from collapseguard.core.schema import ALL_OUTPUTS
from collapseguard.transforms.commit import read_commits
from collapseguard.transforms.outputs import COVERAGE_DOCS, SideOutputsFn, coverage_cut
from collapseguard.transforms.write import join


class ResumeError(ValueError):
    """Committed chunks in --output come from a run with other inputs or config."""


@dataclasses.dataclass(frozen=True)
class ResumeState:
    """The committed chunks (chunk key -> marker) and the floor and ramp their run used; empty
    for a fresh run."""

    committed: dict = dataclasses.field(default_factory=dict)
    floor: dict | None = None
    ramp: dict | None = None

    def markers(self) -> list[dict]:
        """The markers in chunk-key order (what every Create of them uses: a fixed order)."""
        return [m for _, m in sorted(self.committed.items())]

    def fully_committed_shards(self) -> set[str]:
        """Shard keys all of whose chunks are committed (in every part, its last chunk and every
        one before it): their bytes need no progress accounting."""
        chunks: dict[tuple[str, int], set[int]] = {}
        last: dict[tuple[str, int], int] = {}
        parts: dict[str, int] = {}
        for m in self.committed.values():
            st = m["stats"]
            key = (st["shard_key"], st.get("part", 0))
            parts[st["shard_key"]] = st.get("parts", 1)
            chunks.setdefault(key, set()).add(st["chunk"])
            if st.get("last_chunk"):
                last[key] = st["chunk"]
        done = {k for k, n in last.items() if chunks[k] == set(range(n + 1))}
        return {s for s, n in parts.items() if all((s, i) in done for i in range(n))}


def resume_state(output: str, run_fingerprint: str) -> ResumeState:
    """The committed chunks under `output`, checked against this run's fingerprint."""
    commits = read_commits(output)
    if not commits:
        return ResumeState()
    wrong = sorted(k for k, m in commits.items() if m["fingerprint"] != run_fingerprint)
    if wrong:
        raise ResumeError(f"--resume: {len(wrong)} committed chunk(s) in the output come from a run with "
                          f"other inputs/config/scoring model (e.g. {wrong[0]}); use a new --output or --overwrite")
    floors = {json.dumps(m["floor_info"], sort_keys=True) for m in commits.values()}
    if len(floors) != 1:
        raise ResumeError("--resume: committed chunks disagree on the entropy floor; use --overwrite")
    ramps = {json.dumps(m.get("rarity_ramp"), sort_keys=True) for m in commits.values()}
    if len(ramps) != 1 or None in (m.get("rarity_ramp") for m in commits.values()):
        raise ResumeError("--resume: committed chunks disagree on (or lack) the rarity ramp; use --overwrite")
    first = next(iter(commits.values()))
    return ResumeState(commits, first["floor_info"], first["rarity_ramp"])


class ReplayCommittedFn(SideOutputsFn):
    """On --resume, per chunk an earlier run committed: reads its strata Parquet files back and
    emits the same report / diversity / coverage elements WriteChunkFn emitted for it, so the
    manifest's diversity, report.html and mixture.json's coverage cover the whole run, exactly as
    an uninterrupted run's do."""

    def process(self, chunk_key, weighting):
        cut = coverage_cut(weighting, COVERAGE_DOCS)
        for name in ALL_OUTPUTS:
            fs, path = url_to_fs(join(self._output, name, f"{chunk_key}.parquet"))
            if not fs.exists(path):
                continue
            with fs.open(path, "rb") as f:
                rows = pq.read_table(f, columns=sorted(set(self._columns) | {"id", "text", "lang"})).to_pylist()
            rows.sort(key=lambda r: r["id"])  # element order is irrelevant to the combiners; fixed anyway
            for r in rows:
                yield from self._side_outputs(name, r, cut)
