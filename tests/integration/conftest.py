"""Fixtures and markers for the integration tests (helpers: integration_support.py)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from integration_support import run_cli  # noqa: E402


@pytest.fixture(scope="session")
def sample_args():
    """The CLI arguments that run the embedded sample with its config, without the LM."""
    from collapseguard.pipeline.options import sample_config, sample_inputs

    return ["--input", sample_inputs(), "--config", sample_config(), "--scoring-model", "none"]


@pytest.fixture(scope="session")
def direct_run(tmp_path_factory, sample_args):
    """One DirectRunner run of the sample, the reference every other runner is compared with."""
    out = str(tmp_path_factory.mktemp("direct") / "out")
    run_cli(["run", *sample_args, "--output", out])
    return out


# --------------------------------------------------------------------------- markers


def pytest_configure(config):
    config.addinivalue_line("markers", "airflow: optional; installs Airflow 3 into .cache/ "
                            "(minutes); run with `make test-airflow` (pytest -m airflow)")


def pytest_collection_modifyitems(config, items):
    """`airflow` tests run only when asked for by marker (`-m airflow`, `make test-airflow`);
    `make test` deselects them (a separate, optional job), it does not skip them."""
    if "airflow" in (config.getoption("-m") or ""):
        return
    optional = [i for i in items if i.get_closest_marker("airflow") is not None]
    if optional:
        config.hook.pytest_deselected(items=optional)
        items[:] = [i for i in items if i.get_closest_marker("airflow") is None]
