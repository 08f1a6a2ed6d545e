"""Strata: where each document goes. Pure functions.

The anchor split is a deterministic hash-of-id fraction of verified-human documents (the same
id lands in the same split on every run and runner). Anchor documents are a clean human
reference that never enters a training stratum (Yi et al. 2025: verification converges to
the verifier's view, so the anchor must stay independent of it).
"""

from __future__ import annotations

import hashlib

import apache_beam as beam

from collapseguard.transforms.base import merge_histograms

_BASE_STRATUM = {
    "verified_human": "human_verified",
    "unverified_human": "human_unverified",
    "known_synthetic": "synthetic_known",
    "suspected_synthetic": "synthetic_suspected",
}


def hash_fraction(key: str, salt: str) -> float:
    """Uniform value in [0, 1) from sha256(salt, key): stable across runs, runners, Pythons."""
    digest = hashlib.sha256(f"{salt}\x00{key}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def in_anchor(doc_id: str, fraction: float, salt: str) -> bool:
    return fraction > 0 and hash_fraction(doc_id, salt) < fraction


def base_stratum(provenance: str, doc_id: str, anchor_fraction: float, salt: str) -> str:
    if provenance == "verified_human" and in_anchor(doc_id, anchor_fraction, salt):
        return "anchor"
    return _BASE_STRATUM[provenance]


def plan_shard(
    records: list[dict],
    rejected: list[dict],
    duplicates: list[tuple[int, str]],
    status: dict,
    floor_info: dict,
    duplicate_mode: str,
    clip_chars: int,
    window_tokens: int,
    weights_cfg=None,
    ramp: dict | None = None,
) -> tuple[dict[str, list[dict]], list[dict], dict]:
    """Decides where every record of one input shard goes.

    `ramp` is the run's rarity ramp (`weights.rarity_ramp`); None means the config's fixed one.

    Returns (rows per output folder, rejected rows, shard stats). Everything is sorted by input
    line, and every record read lands in exactly one of the two (the stats prove it).
    """
    from collapseguard.pipeline.schema import ALL_OUTPUTS, REVIEW
    from collapseguard.transforms.entropy import audit_shard, hold_reason, packed_windows
    from collapseguard.transforms.mixture import weighted_units
    from collapseguard.transforms.validate import rejection
    from collapseguard.transforms.weights import human_weight

    first_of = dict(duplicates)
    rejected = list(rejected)
    kept: list[dict] = []
    for r in sorted(records, key=lambda r: r["line"]):
        if r["line"] in first_of:
            if duplicate_mode == "reject":
                raw = {k: r.get(k) for k in ("id", "source", "text")}
                rejected.append(rejection(r["shard"], r["line"], "duplicate_id",
                                          f"id {r['id']!r} first seen at {first_of[r['line']]}"
                                          + ("; ids compare as text, so 7 and \"7\" are one id"
                                             if r["id"].lstrip("-").isdecimal() else ""), raw, clip_chars))
                continue
            r["is_duplicate_id"] = True
        kept.append(r)

    floor = floor_info.get("floor_bits")
    values = [w for r in kept for w in r.get("_windows") or ()]
    values += packed_windows((r.get("_tail") or "" for r in kept), window_tokens)
    audit = audit_shard(values, floor)
    outputs: dict[str, list[dict]] = {name: [] for name in ALL_OUTPUTS}
    mixture = {name: {"documents": 0, "tokens": 0, "weighted_units": 0} for name in ALL_OUTPUTS}
    for r in kept:
        r["hold_reasons"] = []
        if audit["below_floor"]:
            r["hold_reasons"] = [hold_reason(audit, floor), f"would_be:{r['stratum']}"]
            r["stratum"] = REVIEW
        outputs[r["stratum"]].append(r)
        if weights_cfg is not None:  # synthetic strata: 0 here, their one global weight comes later
            r["sample_weight"] = human_weight(r, weights_cfg, ramp)
            m = mixture[r["stratum"]]
            m["documents"] += 1
            m["tokens"] += r.get("n_words") or 0
            m["weighted_units"] += weighted_units(r.get("n_words") or 0, r["sample_weight"])
    rejected.sort(key=lambda x: (x["line"], x["reason"]))

    by_reason: dict[str, int] = {}
    for x in rejected:
        by_reason[x["reason"]] = by_reason.get(x["reason"], 0) + 1
    stats = {
        "shard": status["shard"],
        "shard_key": status["shard_key"],
        "records_read": status["records_read"],
        "records_rejected": len(rejected),
        "rejected_by_reason": dict(sorted(by_reason.items())),
        "records_by_stratum": {k: len(v) for k, v in outputs.items()},
        "error": status["error"],
        "entropy": audit,
        "mixture": mixture,
    }
    stats["conserved"] = stats["records_read"] == len(rejected) + sum(stats["records_by_stratum"].values())
    return outputs, rejected, stats


def _group(tagged) -> dict[str, list]:
    groups: dict[str, list] = {"record": [], "rejected": [], "status": [], "duplicate": []}
    for kind, value in tagged:
        groups[kind].append(value)
    return groups


class PlanShardFn(beam.DoFn):
    """Per input shard: duplicate marks, entropy hold, strata, human weights (plan_shard).

    Input: (shard_key, [(kind, value)]) with kind in record / rejected / status / duplicate.
    Output: (shard_key, (rows per output folder, rejected rows, stats)).
    """

    def __init__(self, duplicate_mode: str, clip_chars: int, window_tokens: int, weights_cfg):
        self._duplicate_mode = duplicate_mode
        self._clip = clip_chars
        self._window_tokens = window_tokens
        self._weights_cfg = weights_cfg

    def process(self, item, floor_info, ramp):
        shard_key, tagged = item
        groups = _group(tagged)
        if len(groups["status"]) != 1:  # every shard reports exactly once; anything else is a bug
            raise RuntimeError(f"shard {shard_key}: expected one status, got {len(groups['status'])}")
        yield shard_key, plan_shard(
            groups["record"], groups["rejected"], groups["duplicate"], groups["status"][0], floor_info,
            self._duplicate_mode, self._clip, self._window_tokens, self._weights_cfg, ramp)


class DensityHistogram(beam.CombineFn):
    """{density_bin: count} of rare_word_density over the human strata's documents, the input of
    `weights.rarity_ramp`. Input: the routed (shard_key, ("record", record)) elements; integer
    counts, so the ramp is the same for any merge order."""

    def create_accumulator(self):
        return {}

    def add_input(self, acc, element):
        from collapseguard.transforms.weights import count_density

        return count_density(acc, element[1][1])

    def merge_accumulators(self, accs):
        return merge_histograms(accs)

    def extract_output(self, acc):
        return acc


def synthetic_weighting(mixture: dict, ceiling: float) -> dict:
    """The one synthetic sample_weight from summed per-shard mixture counts (integers)."""
    from collapseguard.transforms.mixture import UNITS
    from collapseguard.transforms.weights import HUMAN_STRATA, SYNTHETIC_STRATA, synthetic_weight

    human_units = sum(mixture[s]["weighted_units"] for s in HUMAN_STRATA)
    synthetic_tokens = sum(mixture[s]["tokens"] for s in SYNTHETIC_STRATA)
    training_docs = sum(mixture[s]["documents"] for s in HUMAN_STRATA + SYNTHETIC_STRATA)
    return {"synthetic_weight": synthetic_weight(human_units / UNITS, synthetic_tokens, ceiling),
            "training_documents": training_docs}


class SumMixture(beam.CombineFn):
    """Sums per-shard mixture counts {stratum: {documents, tokens, weighted_units}} (ints)."""

    def create_accumulator(self):
        from collapseguard.pipeline.schema import ALL_OUTPUTS

        return {name: {"documents": 0, "tokens": 0, "weighted_units": 0} for name in ALL_OUTPUTS}

    def add_input(self, acc, mixture):
        for name, m in mixture.items():
            for k, v in m.items():
                acc[name][k] += v
        return acc

    def merge_accumulators(self, accs):
        accs = list(accs)
        out = accs[0]
        for a in accs[1:]:
            self.add_input(out, a)
        return out

    def extract_output(self, acc):
        return acc


def report_columns() -> tuple[str, ...]:
    """What ReportStats reads of a written row (text never travels to it): output columns only, so
    a row in memory and the same row read back from Parquet give the same element."""
    from collapseguard.pipeline.schema import OUTPUT_COLUMNS
    from collapseguard.transforms.report import HIST_COLUMNS

    wanted = ("provenance", "stratum", "source", "n_words", "sample_weight") + tuple(c for c, *_ in HIST_COLUMNS)
    return tuple(c for c in wanted if c in OUTPUT_COLUMNS)


def coverage_cut(weighting: dict, sample_docs: int) -> int:
    """Documents whose sample_key is under this cut are candidates for the rare-coverage sample:
    a superset of the `sample_docs` smallest hashes, whatever the runner's bundling."""
    n = max(1, weighting["training_documents"])
    return int(2**64 * min(1.0, 2.0 * sample_docs / n))


def side_outputs(name: str, r: dict, cut: int, tables, rare_zipf: float, columns: tuple[str, ...]):
    """(tag, element) pairs of one written row for the report, diversity and coverage combiners.
    A pure function of the row as written, so the rows of shards committed by an earlier run,
    read back from their Parquet files on --resume, give exactly what the first run gave."""
    from collapseguard.transforms.mixture import sample_key
    from collapseguard.transforms.signals import tokenize
    from collapseguard.transforms.weights import TRAINING_STRATA_ALL, doc_rarity

    yield _SideOutputsFn.REPORT, {k: r.get(k) for k in columns}
    yield _SideOutputsFn.DIVERSITY, (name, (r["id"], r["text"][:20_000]))
    if name in TRAINING_STRATA_ALL and sample_key(r["id"]) < cut:
        rare = doc_rarity(tokenize(r["text"][:20_000]), r.get("lang"), tables, rare_zipf)
        yield _SideOutputsFn.COVERAGE, (r["id"], name, r.get("n_words") or 0, r["sample_weight"], rare["rare_words"])


class _SideOutputsFn(beam.DoFn):
    """Base of the DoFns that feed written rows to the report, diversity and coverage combiners
    (`side_outputs`): the tags, the rarity tables, the report columns."""

    REPORT, DIVERSITY, COVERAGE = "report", "diversity", "coverage"
    COVERAGE_DOCS = 2000

    def __init__(self, output: str, rare_zipf: float):
        self._output = output
        self._rare_zipf = rare_zipf
        self._tables = None
        self._columns = ()

    def setup(self):
        from collapseguard.transforms.weights import RarityTables

        self._tables = RarityTables()
        self._columns = report_columns()

    def _side_outputs(self, name: str, r: dict, cut: int):
        from apache_beam.pvalue import TaggedOutput

        for tag, element in side_outputs(name, r, cut, self._tables, self._rare_zipf, self._columns):
            yield TaggedOutput(tag, element)


class WriteShardFn(_SideOutputsFn):
    """Per planned shard: final synthetic weights, write strata + rejected, then the commit marker.

    Main output: the shard's stats. Tagged 'report': light per-document rows for the report's
    combiners (no text); 'diversity': (stratum, (id, text)); 'coverage': rare-word sample rows
    for the documents a hash preselects (only those pay for the rarity lookup).
    """

    def __init__(self, output: str, run_fingerprint: str, rare_zipf: float):
        super().__init__(output, rare_zipf)
        self._fingerprint = run_fingerprint

    def process(self, item, floor_info, weighting, ramp):
        from collapseguard.transforms.commit import marker, write_commit
        from collapseguard.transforms.weights import SYNTHETIC_STRATA
        from collapseguard.transforms.write import join, write_jsonl, write_parquet

        shard_key, (outputs, rejected, stats) = item
        w_syn = weighting["synthetic_weight"]
        cut = coverage_cut(weighting, self.COVERAGE_DOCS)
        for name, rows in outputs.items():
            for r in rows:
                if name in SYNTHETIC_STRATA:
                    r["sample_weight"] = w_syn
                yield from self._side_outputs(name, r, cut)
            if rows:
                write_parquet(join(self._output, name, f"{shard_key}.parquet"), rows)
        if rejected:
            write_jsonl(join(self._output, "rejected", f"{shard_key}.jsonl"), rejected)
        # last: the marker that says this shard is complete (see transforms/commit.py)
        write_commit(self._output, shard_key, marker(stats, floor_info, self._fingerprint, ramp))
        yield stats


class ReplayCommittedFn(_SideOutputsFn):
    """On --resume, per shard an earlier run committed: reads its strata Parquet files back and
    emits the same report / diversity / coverage elements WriteShardFn emitted for it, so the
    manifest's diversity, report.html and mixture.json's coverage cover the whole run, exactly as
    an uninterrupted run's do."""

    def process(self, shard_key, weighting):
        import pyarrow.parquet as pq
        from fsspec.core import url_to_fs

        from collapseguard.pipeline.schema import ALL_OUTPUTS
        from collapseguard.transforms.write import join

        cut = coverage_cut(weighting, self.COVERAGE_DOCS)
        for name in ALL_OUTPUTS:
            fs, path = url_to_fs(join(self._output, name, f"{shard_key}.parquet"))
            if not fs.exists(path):
                continue
            with fs.open(path, "rb") as f:
                rows = pq.read_table(f, columns=sorted(set(self._columns) | {"id", "text", "lang"})).to_pylist()
            rows.sort(key=lambda r: r["id"])  # element order is irrelevant to the combiners; fixed anyway
            for r in rows:
                yield from self._side_outputs(name, r, cut)
