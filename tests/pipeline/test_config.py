import json
import math
import pickle
import re
import time

import pytest

from collapseguard.pipeline.cli import main
from collapseguard.pipeline.config import Config, ConfigError, from_dict, load
from collapseguard.pipeline.options import sample_config


def test_defaults():
    cfg = from_dict({})
    assert cfg == Config() and cfg.provenance.cutoff == "2022-11-30" and cfg.stratify.anchor_fraction == 0.05


@pytest.mark.parametrize(
    "data, message",
    [
        ({"provenence": {}}, "unknown key"),
        ({"entropy": {"flor": 3}}, r"entropy: unknown key\(s\) \['flor'\]"),
        ({"entropy": {"floor": "high"}}, "entropy.floor"),
        ({"stratify": {"anchor_fraction": 0.9}}, "anchor_fraction"),
        ({"provenance": {"cutoff": "soon"}}, "cutoff"),
        ({"provenance": {"verified_sources": "arxiv"}}, "list of strings"),
        ({"read": {"duplicate_ids": "merge"}}, "duplicate_ids"),
        ({"signals": {"window_tokens": "100"}}, "expected an integer"),
        ({"weights": {"rare_fraction_start": 0.05}}, r"weights: unknown key\(s\) \['rare_fraction_start'\]"),
        ({"weights": {"ramp": "adaptive"}}, "weights.ramp"),
        ({"weights": {"ramp_start_quantile": 0.9, "ramp_full_quantile": 0.8}}, "ramp_start_quantile"),
        ({"weights": {"rare_density_start": 0.05, "rare_density_full": 0.04}}, "rare_density_start"),
    ],
)
def test_invalid_config_fails_with_clear_message(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(data)


def test_weights_section_reaches_the_weights_config():
    w = from_dict({"weights": {"ramp": "fixed", "ramp_start_quantile": 0.6, "min_calibration_documents": 50,
                               "rare_density_start": 0.02, "rare_density_full": 0.03}}).weights.to_weights_config()
    assert (w.ramp, w.ramp_start_quantile, w.ramp_full_quantile, w.min_calibration_documents) == ("fixed", 0.6, 0.8, 50)
    assert (w.rare_density_start, w.rare_density_full) == (0.02, 0.03)
    assert from_dict({}).weights.to_weights_config().ramp == "auto"


def test_load_yaml(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("provenance:\n  verified_sources: [arxiv]\nentropy:\n  floor: 5.5\n")
    cfg = load(str(p))
    assert cfg.provenance.verified_sources == ("arxiv",) and cfg.entropy.floor == 5.5
    with pytest.raises(ConfigError, match="not found"):
        load(str(tmp_path / "missing.yaml"))
    (tmp_path / "bad.yaml").write_text("a: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(str(tmp_path / "bad.yaml"))


# --- every bad value: ConfigError, one line, starting with the dotted key ----------------


def refused(call, key: str) -> str:
    """Runs `call`, expects a ConfigError whose message is one line starting with `key: `."""
    with pytest.raises(ConfigError) as e:
        call()
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"{key}: "), message
    return message


def load_text(tmp_path, text: str):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return lambda: load(str(path))


@pytest.mark.parametrize(
    "text, key, date",
    [
        ("provenance:\n  cutoff: 2022-11-30\n", "provenance.cutoff", "2022-11-30"),
        ("stratify:\n  anchor_salt: 2024-01-01\n", "stratify.anchor_salt", "2024-01-01"),
        ("read:\n  fields:\n    timestamp: 2024-01-01\n", "read.fields.timestamp", "2024-01-01"),
        ("provenance:\n  verified_sources: [arxiv, 2024-01-01]\n", "provenance.verified_sources[1]", "2024-01-01"),
        ("provenance:\n  cutoff: 2022-11-30T12:00:00\n", "provenance.cutoff", "2022-11-30T12:00:00"),
    ],
)
def test_unquoted_yaml_date_where_a_string_belongs_says_to_quote_it(tmp_path, text, key, date):
    message = refused(load_text(tmp_path, text), key)
    assert f'string, got the date {date} (quote it: "{date}")' in message


@pytest.mark.parametrize(
    "data, key",
    [
        ({"signals": {"window_tokens": 100.5}}, "signals.window_tokens"),
        ({"entropy": {"min_calibration_windows": 1e3}}, "entropy.min_calibration_windows"),
        ({"read": {"chunk_bytes": 65536.0}}, "read.chunk_bytes"),
        ({"signals": {"repetition_ngram": True}}, "signals.repetition_ngram"),
        ({"weights": {"min_calibration_documents": "100"}}, "weights.min_calibration_documents"),
        ({"signals": {"lid_chars": None}}, "signals.lid_chars"),
    ],
)
def test_an_int_field_takes_only_an_int(data, key):
    assert "expected an integer" in refused(lambda: from_dict(data), key)


@pytest.mark.parametrize(
    "text, key",
    [
        ("signals:\n  window_tokens: 100.5\n", "signals.window_tokens"),
        ("entropy:\n  min_calibration_windows: 1e3\n", "entropy.min_calibration_windows"),  # YAML: a string
        ("entropy:\n  min_calibration_windows: 1.0e+3\n", "entropy.min_calibration_windows"),
        ("signals:\n  max_chars: yes\n", "signals.max_chars"),
    ],
)
def test_an_int_field_takes_only_an_int_from_yaml(tmp_path, text, key):
    assert "expected an integer" in refused(load_text(tmp_path, text), key)


@pytest.mark.parametrize(
    "data, key",
    [
        ({"read": {"fields": {"text": ["a", "b"]}}}, "read.fields.text"),
        ({"read": {"fields": {"source": {"a": 1}}}}, "read.fields.source"),
        ({"read": {"fields": {"id": 5}}}, "read.fields.id"),
        ({"read": {"fields": {"url": ""}}}, "read.fields.url"),
        ({"stratify": {"anchor_salt": None}}, "stratify.anchor_salt"),
        ({"provenance": {"cutoff": 20221130}}, "provenance.cutoff"),
        ({"read": {"duplicate_ids": ["reject"]}}, "read.duplicate_ids"),
        ({"weights": {"ramp": 1}}, "weights.ramp"),
        ({"provenance": {"trusted_archives": ["a", ["b"]]}}, "provenance.trusted_archives[1]"),
        ({"provenance": {"known_synthetic_sources": {"a": 1}}}, "provenance.known_synthetic_sources"),
        ({"read": {"fields": ["text"]}}, "read.fields"),
        ({"entropy": 5}, "entropy"),
    ],
)
def test_a_string_or_section_takes_nothing_else(data, key):
    assert "expected " in refused(lambda: from_dict(data), key)


@pytest.mark.parametrize(
    "data, key",
    [
        ({"signals": {"rare_zipf": math.nan}}, "signals.rare_zipf"),
        ({"entropy": {"floor": math.inf}}, "entropy.floor"),
        ({"entropy": {"fallback_floor_bits": -math.inf}}, "entropy.fallback_floor_bits"),
        ({"entropy": {"quantile": math.nan}}, "entropy.quantile"),
        ({"stratify": {"anchor_fraction": math.nan}}, "stratify.anchor_fraction"),
        ({"weights": {"cap": math.nan}}, "weights.cap"),
        ({"weights": {"synthetic_ceiling": math.nan}}, "weights.synthetic_ceiling"),
        ({"weights": {"ramp_full_quantile": math.inf}}, "weights.ramp_full_quantile"),
        ({"weights": {"source_multipliers": {"arxiv": math.nan}}}, "weights.source_multipliers['arxiv']"),
        ({"weights": {"rare_density_start": 10**400}}, "weights.rare_density_start"),  # no float holds it
    ],
)
def test_nan_and_infinity_are_refused(data, key):
    assert "finite number" in refused(lambda: from_dict(data), key)


@pytest.mark.parametrize(
    "text, key",
    [
        ("signals:\n  rare_zipf: .nan\n", "signals.rare_zipf"),
        ("entropy:\n  floor: .inf\n", "entropy.floor"),
        ("weights:\n  cap: -.inf\n", "weights.cap"),
    ],
)
def test_nan_and_infinity_are_refused_from_yaml(tmp_path, text, key):
    refused(load_text(tmp_path, text), key)


@pytest.mark.parametrize(
    "data, key",
    [
        ({"read": {"chunk_bytes": 0}}, "read.chunk_bytes"),  # read(0) is b"": every shard empty
        ({"read": {"chunk_bytes": 4095}}, "read.chunk_bytes"),
        ({"read": {"chunk_bytes": 1 << 40}}, "read.chunk_bytes"),
        ({"read": {"raw_clip_chars": -1}}, "read.raw_clip_chars"),
        ({"signals": {"window_tokens": 5}}, "signals.window_tokens"),
        ({"signals": {"max_chars": 999}}, "signals.max_chars"),
        ({"signals": {"lid_chars": 0}}, "signals.lid_chars"),
        ({"signals": {"rare_zipf": 9.0}}, "signals.rare_zipf"),
        ({"signals": {"rare_zipf": -0.5}}, "signals.rare_zipf"),
        ({"signals": {"repetition_ngram": 0}}, "signals.repetition_ngram"),
        ({"entropy": {"floor": -1}}, "entropy.floor"),
        ({"entropy": {"quantile": 0.0}}, "entropy.quantile"),
        ({"entropy": {"min_calibration_windows": 0}}, "entropy.min_calibration_windows"),
        ({"entropy": {"fallback_floor_bits": 0.0}}, "entropy.fallback_floor_bits"),
        ({"entropy": {"fallback_floor_bits": 21}}, "entropy.fallback_floor_bits"),
        ({"stratify": {"anchor_fraction": -0.1}}, "stratify.anchor_fraction"),
        ({"weights": {"cap": 0.5}}, "weights.cap"),
        ({"weights": {"synthetic_ceiling": 1.5}}, "weights.synthetic_ceiling"),
        ({"weights": {"source_multipliers": {"arxiv": 0}}}, "weights.source_multipliers['arxiv']"),
        ({"weights": {"source_multipliers": {"arxiv": -2.0}}}, "weights.source_multipliers['arxiv']"),
        ({"weights": {"min_calibration_documents": 0}}, "weights.min_calibration_documents"),
        ({"weights": {"rare_density_full": 1.5}}, "weights.rare_density_full"),
    ],
)
def test_every_number_has_a_declared_range(data, key):
    assert re.search(r" in [\[(][-\d.e]+, [-\d.e]+[\])], got ", refused(lambda: from_dict(data), key))


@pytest.mark.parametrize(
    "data, key, allowed",
    [
        ({"read": {"duplicate_ids": "merge"}}, "read.duplicate_ids", "one of 'reject', 'keep'"),
        ({"weights": {"ramp": "adaptive"}}, "weights.ramp", "one of 'auto', 'fixed'"),
        ({"entropy": {"floor": "high"}}, "entropy.floor", "one of 'auto', 'off' or a finite number in [0, 20]"),
        ({"entropy": {"floor": False}}, "entropy.floor", "quote it"),  # YAML's unquoted `off`
    ],
)
def test_choice_fields_name_what_they_allow(data, key, allowed):
    assert allowed in refused(lambda: from_dict(data), key)


@pytest.mark.parametrize(
    "data, key",
    [
        ({"weights": {"ramp_start_quantile": 0.8}}, "weights.ramp_start_quantile"),
        ({"weights": {"rare_density_start": 0.045}}, "weights.rare_density_start"),
        ({"weights": {"rare_density_start": 0.5, "rare_density_full": 0.1}}, "weights.rare_density_start"),
    ],
)
def test_ordered_pairs_are_checked(data, key):
    assert "must be below" in refused(lambda: from_dict(data), key)


def test_weights_source_multipliers_are_a_mapping_of_names_to_numbers():
    refused(lambda: from_dict({"weights": {"source_multipliers": [1.5]}}), "weights.source_multipliers")
    refused(lambda: from_dict({"weights": {"source_multipliers": {2024: 1.5}}}), "weights.source_multipliers")
    refused(lambda: from_dict({"weights": {"source_multipliers": {"a": "x"}}}), "weights.source_multipliers['a']")
    w = from_dict({"weights": {"source_multipliers": {"b": 2, "a": 1.5}}}).weights
    assert w.source_multipliers == {"a": 1.5, "b": 2.0} and w.to_weights_config().multiplier("b") == 2.0


BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8)
)


@pytest.mark.parametrize(
    "text, key, line",
    [
        (BOMB, "a", 1),
        ("provenance:\n  verified_sources: [x, &s y]\n  trusted_archives: [*s]\n", "provenance.verified_sources[1]", 2),
        ("base: &base {floor: 5}\nentropy:\n  <<: *base\n", "base", 1),
        ("entropy:\n  quantile: 0.1\nsignals:\n  rare_zipf: *q\n", "signals.rare_zipf", 4),
    ],
)
def test_yaml_anchors_and_aliases_are_refused_at_once(tmp_path, text, key, line):
    start = time.perf_counter()
    message = refused(load_text(tmp_path, text), key)
    assert time.perf_counter() - start < 0.5
    assert "anchors and aliases" in message and f"(line {line})" in message


@pytest.mark.parametrize(
    "text, key",
    [
        ("entropy:\n  quantile: 0.1\n  quantile: 0.2\n", "entropy.quantile"),
        ("signals: {}\nsignals: {window_tokens: 50}\n", "signals"),
    ],
)
def test_a_key_set_twice_is_refused(tmp_path, text, key):
    assert "set twice" in refused(load_text(tmp_path, text), key)


@pytest.mark.parametrize(
    "data, key",
    [
        ({"read": {1: 2, "x": 3}}, "read"),  # keys of mixed types are reported, not a crash in sorted()
        ({"signals": {"window": 100}}, "signals"),
        ({"weights": {"rare_zipf": 3.0}}, "weights"),  # a WeightsConfig field the section does not expose
    ],
)
def test_unknown_keys_still_fail(data, key):
    assert "unknown key(s)" in refused(lambda: from_dict(data), key)


def test_empty_file_is_the_defaults_and_a_top_level_list_is_refused(tmp_path):
    assert load_text(tmp_path, "")() == Config()
    assert load_text(tmp_path, "# nothing set\n")() == Config()
    refused(load_text(tmp_path, "[1, 2]\n"), "config")
    message = str(pytest.raises(ConfigError, load_text(tmp_path, "a: [unclosed\n")).value)
    assert "not valid YAML" in message and "\n" not in message


def test_the_defaults_and_the_sample_config_pass_their_own_schema():
    assert from_dict(Config().to_dict()) == Config()
    cfg = load(sample_config())
    assert cfg.entropy.min_calibration_windows == 100 and cfg.provenance.cutoff == "2022-11-30"
    assert pickle.loads(pickle.dumps(cfg)) == cfg
    json.dumps(cfg.to_dict(), allow_nan=False)


def test_valid_values_are_normalised():
    cfg = from_dict({"entropy": {"floor": 5, "fallback_floor_bits": 6}, "weights": {"cap": 2},
                     "provenance": {"verified_sources": ["a", "b"]}})
    assert cfg.entropy.floor == 5.0 and isinstance(cfg.entropy.floor, float)
    assert isinstance(cfg.entropy.fallback_floor_bits, float) and isinstance(cfg.weights.cap, float)
    assert cfg.provenance.verified_sources == ("a", "b")
    assert from_dict({"entropy": {"floor": "off"}}).entropy.floor == "off"


@pytest.mark.parametrize(
    "text, key",
    [
        ("provenance:\n  cutoff: 2022-11-30\n", "provenance.cutoff"),
        ("read:\n  chunk_bytes: 0\n", "read.chunk_bytes"),
        (BOMB, "a"),
    ],
)
def test_cli_refuses_a_bad_config_with_exit_2_before_any_work(tmp_path, capsys, text, key):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    out = tmp_path / "o"
    code = main(["run", "--config", str(path), "--output", str(out), "--scoring-model", "none"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith(f"collapseguard: error: {key}: ") and "\n" not in err
    assert not out.exists()
