"""Provenance by attestation: each tag is earned by evidence, and keeps its reasons.

- verified_human: an external attestation, never a detector score: the source is on the
  verified allowlist, or the source is a trusted archive and the timestamp predates the
  cutoff (default 2022-11-30, the public release of ChatGPT).
- known_synthetic: an attestation that it was generated: a non-empty `generator` field, or a
  source on the known-synthetic list. It wins over a human attestation (both reasons kept).
- suspected_synthetic: no attestation, and the calibrated detector's p_synthetic is at or over
  its threshold (wired in by the detector; without one nothing is suspected).
- unverified_human: everything else.

A present-but-malformed attestation never makes a record human (transforms/validate.py says
what malformed means; provenance reads its input warnings, never parses the kept text):
- `generator_malformed` (an object, array, true/false, unencodable string...): known_synthetic,
  reason `generator_field_malformed:<json type>`. An empty or whitespace-only `generator`
  string is absent, not malformed.
- `source_malformed`: the source matches neither the verified allowlist nor the trusted
  archives, so it can't earn verified_human; each string inside it (`_source_strings`) that is
  on the known-synthetic list makes the record known_synthetic
  (`known_synthetic_source:<that string>`). A malformed source alone adds no reason.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.pvalue import TaggedOutput

from collapseguard.core.settings import ConfigError
from collapseguard.transforms.plan import summary_view
from collapseguard.transforms.stratify import base_stratum
from collapseguard.transforms.validate import parse_timestamp


@dataclass(frozen=True)
class ProvenanceConfig:
    verified_sources: tuple[str, ...] = ()
    trusted_archives: tuple[str, ...] = ()
    cutoff: str = "2022-11-30"  # ISO-8601; checked by parse_cutoff when the config is loaded
    known_synthetic_sources: tuple[str, ...] = ()



def parse_cutoff(value: str) -> dt.datetime:
    try:
        d = dt.datetime.fromisoformat(str(value))
    except ValueError as e:
        raise ConfigError(f"provenance.cutoff: not an ISO-8601 date: {value!r}") from e
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.timezone.utc)
    return d


@dataclasses.dataclass(frozen=True)
class ProvenanceRules:
    verified_sources: frozenset[str]
    trusted_archives: frozenset[str]
    known_synthetic_sources: frozenset[str]
    cutoff_us: int

    @classmethod
    def from_config(cls, cfg: ProvenanceConfig) -> "ProvenanceRules":
        low = lambda xs: frozenset(x.strip().lower() for x in xs)  # noqa: E731
        cutoff = parse_timestamp(parse_cutoff(cfg.cutoff).isoformat())
        return cls(low(cfg.verified_sources), low(cfg.trusted_archives), low(cfg.known_synthetic_sources), cutoff)


def attest(record: dict, rules: ProvenanceRules) -> tuple[str, list[str]]:
    """Attestation-only provenance of a record: (label, reasons)."""
    warnings = record.get("input_warnings") or ()
    malformed = record.get("_malformed") or {}
    source = "" if "source_malformed" in warnings else (record.get("source") or "").strip()
    src = source.lower()
    human: list[str] = []
    synthetic: list[str] = []
    if src and src in rules.verified_sources:
        human.append(f"source_allowlist:{source}")
    ts = record.get("timestamp")
    if src and src in rules.trusted_archives:
        if ts is not None and ts < rules.cutoff_us:
            human.append(f"trusted_archive_before_cutoff:{source}")
    generator = (record.get("generator") or "").strip()
    if "generator_malformed" in warnings:
        synthetic.append(f"generator_field_malformed:{malformed.get('generator', 'unknown')}")
    elif generator:
        synthetic.append(f"generator_field:{generator}")
    if src and src in rules.known_synthetic_sources:
        synthetic.append(f"known_synthetic_source:{source}")
    if "source_malformed" in warnings:
        inside = dict.fromkeys(x.strip() for x in record.get("_source_strings") or ())
        synthetic += [f"known_synthetic_source:{x}" for x in inside if x and x.lower() in rules.known_synthetic_sources]
    if synthetic:
        return "known_synthetic", synthetic + human
    if human:
        return "verified_human", human
    return "unverified_human", []


def apply_detector(
    label: str, reasons: list[str], p_synthetic: float | None, threshold: float | None
) -> tuple[str, list[str]]:
    """Upgrades an unattested record to suspected_synthetic when the detector says so."""
    if label != "unverified_human" or p_synthetic is None or threshold is None:
        return label, reasons
    if p_synthetic >= threshold:
        return "suspected_synthetic", reasons + [f"detector:p={p_synthetic:.3f}>={threshold:.3f}"]
    return label, reasons


class AttestFn(beam.DoFn):
    """Provenance + base stratum per record, and the record's routing in one step.

    Main output: (chunk_key, ("record", record)) for the per-chunk plan. Tagged outputs
    'summaries': (chunk_key, ("record", plan.summary_view(record))), the few fields the chunk's
    summary reads, grouped apart from the texts; 'verified_windows': window entropies of
    verified-human documents, for the floor. One DoFn instead of several Maps: each Beam step
    costs per-element overhead on the non-LM path.
    """

    VERIFIED_WINDOWS = "verified_windows"
    SUMMARIES = "summaries"

    def __init__(self, cfg):
        self._rules = ProvenanceRules.from_config(cfg.provenance)
        self._strat = cfg.stratify

    def process(self, record: dict):
        label, reasons = attest(record, self._rules)
        label, reasons = apply_detector(label, reasons, record.get("p_synthetic"), record.get("detector_threshold"))
        record["provenance"], record["provenance_reasons"] = label, reasons
        record["stratum"] = base_stratum(label, record["id"], self._strat.anchor_fraction, self._strat.anchor_salt)
        if label == "verified_human" and record.get("_windows"):
            yield TaggedOutput(self.VERIFIED_WINDOWS, record["_windows"])
        yield TaggedOutput(self.SUMMARIES, (record["chunk_key"], ("record", summary_view(record))))
        record.pop("_windows", None)  # the summary has read them; they need not travel on
        record.pop("_tail", None)
        yield record["chunk_key"], ("record", record)
