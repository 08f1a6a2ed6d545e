"""Run configuration: one YAML file, validated up front, frozen, picklable.

Every setting is declared once, on its dataclass field, in the step that uses it (`ReadConfig`
in transforms/read.py, `EntropyConfig` in transforms/entropy.py, ...; this module composes them
into `Config`): its type is the annotation, its constraints (a `Range`, `choices`, `nonempty`,
`below`) are the field's metadata (`core.settings.setting`).
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
from dataclasses import dataclass
from typing import Any, Mapping

import yaml

from collapseguard.core.settings import ConfigError, Range, num, setting
from collapseguard.pipeline.yaml_strict import RefusedYaml, StrictLoader
from collapseguard.transforms.entropy import EntropyConfig
from collapseguard.transforms.provenance import ProvenanceConfig, parse_cutoff
from collapseguard.transforms.read import ReadConfig
from collapseguard.transforms.signals import SignalsConfig
from collapseguard.transforms.stratify import StratifyConfig
from collapseguard.transforms.validate import FieldsConfig
from collapseguard.transforms.weights import RAMPS, WeightsConfig

__all__ = ["Config", "ConfigError", "EntropyConfig", "FieldsConfig", "ProvenanceConfig", "ReadConfig", "SignalsConfig",
           "StratifyConfig", "WeightsSection", "from_dict", "load", "parse_cutoff", "validate"]


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


# --- the generic checker ------------------------------------------------------------------


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
            raise ConfigError(f"{path}.{f.name}: must be below {path}.{other} ({num(getattr(obj, other))}), "
                              f"got {num(getattr(obj, f.name))}")


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
