"""Shared fixtures."""

import pytest

from fixtures_data import write_hostile


@pytest.fixture(scope="session")
def hostile_dir(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("hostile"))
    expect = write_hostile(folder)
    return folder, expect


@pytest.fixture(scope="session")
def sample_shards():
    from collapseguard.pipeline.options import sample_inputs

    return sample_inputs()
