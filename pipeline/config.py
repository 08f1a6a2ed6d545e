"""Run configuration: one YAML file, validated up front, frozen, picklable.

Every setting is declared once, on its dataclass field: its type is the annotation, its
constraints (a `Range`, `choices`, `nonempty`, `below`) are the field's metadata (`setting`).
One generic checker (`_build`) reads both, so a value of the wrong type, out of range, NaN or
infinite fails the run before any work starts, with a one-line message that begins with the
dotted key (`signals.window_tokens: expected an integer in [10, 10000], got 100.5`). Unknown
keys fail the same way (misspelled settings must not pass silently). The YAML itself is read
without anchors, aliases or repeated keys (`yaml_strict.StrictLoader`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping

import yaml

from collapseguard.pipeline.yaml_strict import RefusedYaml, StrictLoader
from collapseguard.transforms.weights import RAMPS, WeightsConfig


class ConfigError(ValueError):
    """A configuration value or key is invalid. The message says which and why, on one line."""


# --- the schema: constraints declared next to each field ----------------------------------


@dataclass(frozen=True)
class Range:
    """Closed bounds by default; `lo_open` / `hi_open` exclude an end."""

    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False

    def __contains__(self, x: float) -> bool:
        above = x > self.lo if self.lo_open else x >= self.lo
        below = x < self.hi if self.hi_open else x <= self.hi
        return above and below

    def __str__(self) -> str:
        return f"{'(' if self.lo_open else '['}{_num(self.lo)}, {_num(self.hi)}{')' if self.hi_open else ']'}"


def setting(default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING,
            within: Range | None = None, choices: tuple = (), nonempty: bool = False,
            below: str | None = None):
    """A dataclass field with its constraints as metadata, read by `_check`.

    within: the numeric range (of each value, for a mapping of numbers); choices: the strings
    allowed; nonempty: refuse ""; below: the value must be smaller than that sibling field's.
    """
    meta = {"range": within, "choices": tuple(choices), "nonempty": nonempty, "below": below}
    return field(default=default, default_factory=factory,
                 metadata={k: v for k, v in meta.items() if v})


def _name(default: str):
    """An input field name: an empty one would look up a key no record has."""
    return setting(default, nonempty=True)


@dataclass(frozen=True)
class FieldsConfig:
    """Names of the input fields (so shards with other schemas need no rewrite)."""

    text: str = _name("text")
    id: str = _name("id")
    source: str = _name("source")
    url: str = _name("url")
    timestamp: str = _name("timestamp")
    generator: str = _name("generator")
    metadata: str = _name("metadata")


@dataclass(frozen=True)
class ReadConfig:
    fields: FieldsConfig = setting(factory=FieldsConfig)
    # "reject": later occurrences of an id go to rejected/ (reason duplicate_id);
    # "keep": they stay, flagged is_duplicate_id=True.
    duplicate_ids: str = setting("reject", choices=("reject", "keep"))
    # raw line kept in rejected/ records, clipped (0: none kept)
    raw_clip_chars: int = setting(2000, within=Range(0, 10_000_000))
    # read size when splitting shards into lines: read(0) returns b"" (every shard would read
    # as empty), tiny reads crawl, and each worker holds one chunk in memory
    chunk_bytes: int = setting(1 << 20, within=Range(4096, 1 << 28))
    # A shard is cut into chunks, in line order: every grouped element of the graph holds one
    # chunk at most (a worker's memory depends on these two, never on a shard's size). A chunk
    # ends after `chunk_documents` records, or before a record that would take its text over
    # `chunk_text_bytes` (a record larger than that is a chunk of its own).
    chunk_documents: int = setting(10_000, within=Range(1, 10_000_000))
    chunk_text_bytes: int = setting(64 << 20, within=Range(1024, 1 << 31))
    # A shard larger than this is read in parts of about this size by different workers, where
    # its format allows (uncompressed JSONL: byte ranges on line boundaries; Parquet: row groups).
    split_bytes: int = setting(64 << 20, within=Range(1 << 16, 1 << 40))


@dataclass(frozen=True)
class SignalsConfig:
    # fixed token window for TTR and entropy (the entropy audit's unit, entropy.py)
    window_tokens: int = setting(100, within=Range(10, 10_000))
    # signals are computed on this prefix of huge documents
    max_chars: int = setting(200_000, within=Range(1000, 100_000_000))
    # language id reads this prefix (fastText lid is reliable well below 500)
    lid_chars: int = setting(500, within=Range(1, 1_000_000))
    # a word under this Zipf frequency counts as rare (wordfreq's scale runs from 0 to about 8)
    rare_zipf: float = setting(3.0, within=Range(0.0, 8.0))
    repetition_ngram: int = setting(3, within=Range(1, 100))


@dataclass(frozen=True)
class ProvenanceConfig:
    verified_sources: tuple[str, ...] = ()
    trusted_archives: tuple[str, ...] = ()
    cutoff: str = "2022-11-30"  # ISO-8601; checked by parse_cutoff in validate
    known_synthetic_sources: tuple[str, ...] = ()


# Window entropy in bits: log2 of the window size bounds it (log2(10_000) is about 13.3).
_BITS = Range(0.0, 20.0)


@dataclass(frozen=True)
class EntropyConfig:
    # "auto": calibrate in-run from verified-human windows; a number: absolute floor in bits;
    # "off": no audit.
    floor: str | float = setting("auto", choices=("auto", "off"), within=_BITS)
    quantile: float = setting(0.05, within=Range(0.0, 0.5, lo_open=True, hi_open=True))
    min_calibration_windows: int = setting(200, within=Range(1, 1_000_000_000))
    # just under the 1% quantile of human windows in labeled-dev (5.76-6.06)
    fallback_floor_bits: float = setting(5.5, within=Range(0.0, 20.0, lo_open=True))


@dataclass(frozen=True)
class StratifyConfig:
    anchor_fraction: float = setting(0.05, within=Range(0.0, 0.5))
    anchor_salt: str = "collapseguard-anchor-v1"


_WEIGHTS = WeightsConfig()  # the defaults live there, once
_SHARE = Range(0.0, 1.0)


@dataclass(frozen=True)
class WeightsSection:
    """sample_weight: tail oversampling of human text, a ceiling on synthetic tokens. Every key
    here is a `transforms.weights.WeightsConfig` field of the same name and default; the
    ranges here are the stricter ones (WeightsConfig checks again when built)."""

    cap: float = setting(_WEIGHTS.cap, within=Range(1.0, 100.0))
    # weighted token share of synthetic text (Dohmatob et al. 2025)
    synthetic_ceiling: float = setting(_WEIGHTS.synthetic_ceiling, within=_SHARE)
    # e.g. {arxiv: 1.5, gutenberg: 2.0}; the weight is capped at `cap` anyway
    source_multipliers: dict[str, float] = setting(factory=dict, within=Range(0.0, 100.0, lo_open=True))
    # rarity ramp over rare_word_density: "auto" = between these quantiles of the run's human
    # documents (fixed ramp below with fewer than min_calibration_documents); "fixed" = always
    # the fixed ramp (see transforms/weights.py: rarity_ramp)
    ramp: str = setting(_WEIGHTS.ramp, choices=RAMPS)
    ramp_start_quantile: float = setting(_WEIGHTS.ramp_start_quantile, within=_SHARE,
                                         below="ramp_full_quantile")
    ramp_full_quantile: float = setting(_WEIGHTS.ramp_full_quantile, within=_SHARE)
    min_calibration_documents: int = setting(_WEIGHTS.min_calibration_documents,
                                             within=Range(1, 1_000_000_000))
    rare_density_start: float = setting(_WEIGHTS.rare_density_start, within=_SHARE,
                                        below="rare_density_full")
    rare_density_full: float = setting(_WEIGHTS.rare_density_full, within=_SHARE)

    def to_weights_config(self) -> WeightsConfig:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return WeightsConfig(**{**values, "source_multipliers": dict(self.source_multipliers)})


@dataclass(frozen=True)
class Config:
    read: ReadConfig = setting(factory=ReadConfig)
    signals: SignalsConfig = setting(factory=SignalsConfig)
    provenance: ProvenanceConfig = setting(factory=ProvenanceConfig)
    entropy: EntropyConfig = setting(factory=EntropyConfig)
    stratify: StratifyConfig = setting(factory=StratifyConfig)
    weights: WeightsSection = setting(factory=WeightsSection)

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


# --- the generic checker ------------------------------------------------------------------


def _num(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def _clip(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


def _shown(value: Any, wants_text: bool) -> str:
    """The offending value as a message shows it: short, one line, and where YAML turned
    unquoted text into a date or a boolean, how to keep it text."""
    if isinstance(value, dt.date):  # datetime too
        text = value.isoformat()
        return f'the date {text} (quote it: "{text}")' if wants_text else f"the date {text}"
    if isinstance(value, bool):
        hint = " (YAML reads unquoted yes/no/on/off/true/false as booleans: quote it)" if wants_text else ""
        return f"the boolean {str(value).lower()}{hint}"
    if value is None:
        return "nothing (null)"
    if isinstance(value, int):
        return repr(value) if abs(value) < 10**18 else "an integer of more than 18 digits"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return f"the string {_clip(repr(value))}"
    if isinstance(value, (list, tuple)):
        return f"a list {_clip(repr(value))}"
    if isinstance(value, Mapping):
        return f"a mapping {_clip(repr(dict(value)))}"
    return f"a {type(value).__name__}"


def _arms(tp) -> tuple:
    """The alternatives of a union annotation (`str | float`), or (tp,)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return typing.get_args(tp)
    return (tp,)


def _expected(tp, meta: Mapping) -> str:
    """What the declared type and constraints accept, in words."""
    words = []
    for arm in _arms(tp):
        origin = typing.get_origin(arm)
        if origin is tuple:
            words.append("a list of strings")
        elif origin is dict:
            words.append(f"a mapping {{name: {_expected(typing.get_args(arm)[1], meta)}}}")
        elif arm is str and meta.get("choices"):
            words.append("one of " + ", ".join(map(repr, meta["choices"])))
        elif arm is str:
            words.append("a non-empty string" if meta.get("nonempty") else "a string")
        else:
            kind = {int: "an integer", float: "a finite number"}[arm]
            words.append(f"{kind} in {meta['range']}" if meta.get("range") else kind)
    return " or ".join(words)


def _fits(value: Any, arm) -> bool:
    """Whether `value` is of the kind `arm` declares (constraints aside). bool is no number."""
    origin = typing.get_origin(arm)
    if origin is tuple:
        return isinstance(value, (list, tuple))
    if origin is dict:
        return isinstance(value, Mapping)
    if arm is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if arm is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, arm)


def _refused(key: str, value: Any, tp, meta: Mapping) -> ConfigError:
    return ConfigError(f"{key}: expected {_expected(tp, meta)}, got {_shown(value, str in _arms(tp))}")


def _as_float(value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:  # an int too large for a float
        return math.inf


def _check(key: str, value: Any, tp, meta: Mapping) -> Any:
    """`value` checked against the annotation `tp` and the field's constraints `meta`; returns
    it normalised (float fields as float, lists as tuples, mappings sorted)."""
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    arm = next((a for a in _arms(tp) if _fits(value, a)), None)
    if arm is None:
        raise _refused(key, value, tp, meta)
    origin = typing.get_origin(arm)
    if origin is tuple:
        return tuple(_check(f"{key}[{i}]", v, typing.get_args(arm)[0], {}) for i, v in enumerate(value))
    if origin is dict:
        return _check_mapping(key, value, typing.get_args(arm)[1], meta)
    if arm is str:
        ok = (not meta.get("nonempty") or value) and (not meta.get("choices") or value in meta["choices"])
        checked = value
    else:
        checked = _as_float(value) if arm is float else value
        ok = (arm is int or math.isfinite(checked)) and (not meta.get("range") or checked in meta["range"])
    if not ok:
        raise _refused(key, value, tp, meta)
    return checked


def _check_mapping(key: str, value: Mapping, value_tp, meta: Mapping) -> dict:
    bad = next((k for k in value if not (isinstance(k, str) and k)), None)
    if bad is not None:
        raise ConfigError(f"{key}: expected names (non-empty strings) as keys, got {_shown(bad, True)}")
    return {k: _check(f"{key}[{k!r}]", value[k], value_tp, meta) for k in sorted(value)}


def _check_order(obj, path: str) -> None:
    """The `below` constraints: a field that must be smaller than a sibling."""
    for f in dataclasses.fields(obj):
        other = f.metadata.get("below")
        if other and not getattr(obj, f.name) < getattr(obj, other):
            raise ConfigError(f"{path}.{f.name}: must be below {path}.{other} ({_num(getattr(obj, other))}), "
                              f"got {_num(getattr(obj, f.name))}")


def _build(cls, data: Mapping[str, Any] | None, path: str):
    """Builds dataclass ``cls`` from a mapping, every value checked against its field's
    declared type and constraints; unknown keys are refused. A missing section (None) is
    the defaults."""
    if data is None:
        return cls()
    where = path or "config"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {_shown(data, False)}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted((k for k in data if k not in known), key=str)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {_clip(repr(unknown), 200)}; known: {sorted(known)}")
    hints = typing.get_type_hints(cls)
    obj = cls(**{name: _check(f"{path}.{name}" if path else name, value, hints[name], known[name].metadata)
                 for name, value in data.items()})
    _check_order(obj, where)
    return obj


def validate(cfg: Config) -> Config:
    """The checks one field's schema cannot express: the cutoff parses as a date, and the
    weights build (WeightsConfig repeats its own checks). Returns cfg or raises ConfigError."""
    parse_cutoff(cfg.provenance.cutoff)
    try:
        cfg.weights.to_weights_config()
    except ValueError as e:
        raise ConfigError(str(e)) from e
    return cfg


def from_dict(data: Mapping[str, Any] | None) -> Config:
    return validate(_build(Config, data or {}, ""))


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def load(path: str | None) -> Config:
    """Loads a YAML config (any fsspec URL); None gives the defaults, so does an empty file."""
    if path is None:
        return from_dict({})
    import fsspec

    try:
        with fsspec.open(path, "rt", encoding="utf-8") as f:
            data = yaml.load(f, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except RefusedYaml as e:
        raise ConfigError(str(e)) from e
    except FileNotFoundError as e:
        raise ConfigError(f"config file not found: {path}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {_one_line(e)}") from e
    except (OSError, ValueError) as e:  # not UTF-8, a directory, an integer of 5000 digits...
        raise ConfigError(f"config file {path} cannot be read: {_one_line(e)}") from e
    return from_dict(data)
