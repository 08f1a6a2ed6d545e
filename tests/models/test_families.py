"""Generator families: the unit a detector is held out on."""

import pytest

from collapseguard.models.families import family


@pytest.mark.parametrize("generator,fam", [
    ("gpt-3.5-turbo", "openai"), ("gpt-4o", "openai"), ("gpt-4-turbo-preview", "openai"),
    ("claude-3-opus", "anthropic"), ("claude-agent", "anthropic"), ("gemini-1.5-pro", "google"),
    ("gpt2-xl", "gpt2-era"), ("gpt-neox-20b", "gpt2-era"), ("gpt-neo-2.7B", "gpt2-era"),
    ("gpt-j-6B", "gpt2-era"), ("opt-2.7b", "gpt2-era"), ("smollm2-135m-instruct", "smollm2"),
    ("some-new-model", "some-new-model")])
def test_generators_map_to_their_family(generator, fam):
    assert family(generator) == fam


def test_case_and_spaces_do_not_change_the_family():
    assert family("  Claude-3-Sonnet ") == "anthropic" and family("GPT-4o") == "openai"
