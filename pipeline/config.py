"""Run configuration: one YAML file, validated up front, frozen, picklable.

Unknown keys fail the run before any work starts (misspelled settings must not pass silently).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Mapping

import yaml

from collapseguard.transforms.weights import WeightsConfig


class ConfigError(ValueError):
    """A configuration value or key is invalid. The message says which and why."""


@dataclass(frozen=True)
class FieldsConfig:
    """Names of the input fields (so shards with other schemas need no rewrite)."""

    text: str = "text"
    id: str = "id"
    source: str = "source"
    url: str = "url"
    timestamp: str = "timestamp"
    generator: str = "generator"
    metadata: str = "metadata"


@dataclass(frozen=True)
class ReadConfig:
    fields: FieldsConfig = field(default_factory=FieldsConfig)
    # "reject": later occurrences of an id go to rejected/ (reason duplicate_id);
    # "keep": they stay, flagged is_duplicate_id=True.
    duplicate_ids: str = "reject"
    raw_clip_chars: int = 2000  # raw line kept in rejected/ records, clipped
    chunk_bytes: int = 1 << 20  # read size when splitting shards into lines


@dataclass(frozen=True)
class SignalsConfig:
    window_tokens: int = 100  # fixed token window for TTR and entropy
    max_chars: int = 200_000  # signals are computed on this prefix of huge documents
    lid_chars: int = 500  # language id reads this prefix (fastText lid is reliable well below this)
    rare_zipf: float = 3.0  # a word under this Zipf frequency counts as rare
    repetition_ngram: int = 3


@dataclass(frozen=True)
class ProvenanceConfig:
    verified_sources: tuple[str, ...] = ()
    trusted_archives: tuple[str, ...] = ()
    cutoff: str = "2022-11-30"
    known_synthetic_sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class EntropyConfig:
    # "auto": calibrate in-run from verified-human windows; a number: absolute floor in bits;
    # "off": no audit.
    floor: Any = "auto"
    quantile: float = 0.05
    min_calibration_windows: int = 200
    fallback_floor_bits: float = 5.5  # just under the 1% quantile of human windows in labeled-dev (5.76-6.06)


@dataclass(frozen=True)
class StratifyConfig:
    anchor_fraction: float = 0.05
    anchor_salt: str = "collapseguard-anchor-v1"


_WEIGHTS = WeightsConfig()  # the defaults live there, once


@dataclass(frozen=True)
class WeightsSection:
    """sample_weight: tail oversampling of human text, a ceiling on synthetic tokens. Every key
    here is a `transforms.weights.WeightsConfig` field of the same name and default."""

    cap: float = _WEIGHTS.cap
    # weighted token share of synthetic text (Dohmatob et al. 2025)
    synthetic_ceiling: float = _WEIGHTS.synthetic_ceiling
    source_multipliers: dict = field(default_factory=dict)  # e.g. {arxiv: 1.5, gutenberg: 2.0}
    # rarity ramp over rare_word_density: "auto" = between these quantiles of the run's human
    # documents (fixed ramp below with fewer than min_calibration_documents); "fixed" = always
    # the fixed ramp (see transforms/weights.py: rarity_ramp)
    ramp: str = _WEIGHTS.ramp
    ramp_start_quantile: float = _WEIGHTS.ramp_start_quantile
    ramp_full_quantile: float = _WEIGHTS.ramp_full_quantile
    min_calibration_documents: int = _WEIGHTS.min_calibration_documents
    rare_density_start: float = _WEIGHTS.rare_density_start
    rare_density_full: float = _WEIGHTS.rare_density_full

    def to_weights_config(self) -> WeightsConfig:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return WeightsConfig(**{**values, "source_multipliers": dict(self.source_multipliers)})


@dataclass(frozen=True)
class Config:
    read: ReadConfig = field(default_factory=ReadConfig)
    signals: SignalsConfig = field(default_factory=SignalsConfig)
    provenance: ProvenanceConfig = field(default_factory=ProvenanceConfig)
    entropy: EntropyConfig = field(default_factory=EntropyConfig)
    stratify: StratifyConfig = field(default_factory=StratifyConfig)
    weights: WeightsSection = field(default_factory=WeightsSection)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def cutoff_date(self) -> dt.datetime:
        return parse_cutoff(self.provenance.cutoff)


def parse_cutoff(value: str) -> dt.datetime:
    try:
        d = dt.datetime.fromisoformat(str(value))
    except ValueError as e:
        raise ConfigError(f"provenance.cutoff: not an ISO-8601 date: {value!r}") from e
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.timezone.utc)
    return d


def _build(cls, data: Mapping[str, Any] | None, path: str):
    """Builds dataclass ``cls`` from a mapping, rejecting unknown keys and wrong shapes."""
    if data is None:
        return cls()
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {type(data).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(
            f"{path or 'config'}: unknown key(s) {unknown}; known: {sorted(known)}"
        )
    kwargs = {}
    for name, value in data.items():
        f = known[name]
        sub = f"{path}.{name}" if path else name
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default):
            kwargs[name] = _build(type(default), value, sub)
        elif isinstance(default, dict):
            if not isinstance(value, Mapping) or not all(
                    isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)
                    for k, v in value.items()):
                raise ConfigError(f"{sub}: expected a mapping of names to numbers")
            kwargs[name] = {k: float(v) for k, v in sorted(value.items())}
        elif isinstance(default, tuple):
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{sub}: expected a list of strings")
            kwargs[name] = tuple(value)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{sub}: expected true/false, got {value!r}")
            kwargs[name] = value
        elif isinstance(default, (int, float)) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{sub}: expected a number, got {value!r}")
            kwargs[name] = type(default)(value) if isinstance(default, float) else value
        else:
            kwargs[name] = value
    return cls(**kwargs)


def validate(cfg: Config) -> Config:
    """Checks value ranges; returns cfg unchanged or raises ConfigError."""
    if cfg.read.duplicate_ids not in ("reject", "keep"):
        raise ConfigError("read.duplicate_ids: must be 'reject' or 'keep'")
    for name in ("text",):
        if not getattr(cfg.read.fields, name):
            raise ConfigError(f"read.fields.{name}: must be a non-empty field name")
    if cfg.signals.window_tokens < 10:
        raise ConfigError("signals.window_tokens: must be >= 10")
    if cfg.signals.max_chars < 1000:
        raise ConfigError("signals.max_chars: must be >= 1000")
    parse_cutoff(cfg.provenance.cutoff)
    floor = cfg.entropy.floor
    if not (floor in ("auto", "off") or (isinstance(floor, (int, float)) and not isinstance(floor, bool))):
        raise ConfigError(f"entropy.floor: 'auto', 'off' or a number of bits, got {floor!r}")
    if not 0.0 < cfg.entropy.quantile < 0.5:
        raise ConfigError("entropy.quantile: must be in (0, 0.5)")
    if not 0.0 <= cfg.stratify.anchor_fraction <= 0.5:
        raise ConfigError("stratify.anchor_fraction: must be in [0, 0.5]")
    try:
        cfg.weights.to_weights_config()
    except ValueError as e:
        raise ConfigError(f"weights: {e}") from e
    return cfg


def from_dict(data: Mapping[str, Any] | None) -> Config:
    return validate(_build(Config, data or {}, ""))


def load(path: str | None) -> Config:
    """Loads a YAML config (any fsspec URL); None gives the defaults."""
    if path is None:
        return from_dict({})
    import fsspec

    try:
        with fsspec.open(path, "rt", encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError as e:
        raise ConfigError(f"config file not found: {path}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}") from e
    return from_dict(data)
