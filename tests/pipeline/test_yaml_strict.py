"""The strict YAML loader on its own: what it refuses, where it says it is, and what it keeps."""

import time

import pytest
import yaml

from collapseguard.pipeline.yaml_strict import RefusedYaml, StrictLoader

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n" for i in range(8))


def load(text):
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass


def test_plain_yaml_loads_as_safe_load_does():
    text = "read: {fields: {text: body}}\nweights:\n  cap: 3.0\n  source_multipliers: {arxiv: 1.5}\nx: [1, 2]\n"
    assert load(text) == yaml.safe_load(text)


def test_a_billion_laughs_is_refused_at_its_first_anchor_fast():
    start = time.perf_counter()
    with pytest.raises(RefusedYaml, match=r"^a: YAML anchors and aliases .* \(line 1\)"):
        load(BOMB)
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize("text,where", [
    ("base: &b {cap: 2}\nweights: *b\n", "base"),
    ("weights:\n  cap: 2\nentropy: {quantile: *q}\n", r"entropy\.quantile"),
    ("weights:\n  <<: &m {cap: 2}\n", r"weights\.<<"),
    ("provenance:\n  verified_sources: [a, &s b]\n", r"provenance\.verified_sources\[1\]"),
])
def test_anchors_and_aliases_anywhere_name_the_key(text, where):
    with pytest.raises(RefusedYaml, match=f"^{where}: YAML anchors"):
        load(text)


def test_a_repeated_key_names_both_lines():
    with pytest.raises(RefusedYaml, match=r"^entropy\.quantile: set twice \(lines 2 and 3\)$"):
        load("entropy:\n  quantile: 0.1\n  quantile: 0.2\n")
