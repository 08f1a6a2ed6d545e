import pytest

from collapseguard.pipeline.config import Config, ConfigError, from_dict, load


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
        ({"signals": {"window_tokens": "100"}}, "expected a number"),
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
