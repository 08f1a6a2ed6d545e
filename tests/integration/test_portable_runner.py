"""The stage on PortableRunner (Beam's Job API, the one Flink and Spark job servers speak)
against Beam's own local job service, LOOPBACK workers: outputs byte-identical to DirectRunner.

DirectRunner in-memory vs multi_processing is checked in tests/pipeline/test_graph.py.
"""

import json
import os
import sys

import pytest
from integration_support import free_port, run_cli, server, tree_digest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def job_endpoint(tmp_path_factory):
    """Beam's local job service on a free localhost port, stopped after the module."""
    port = free_port()
    log = tmp_path_factory.mktemp("job-service") / "job_service.log"
    cmd = [sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main",
           "--port", str(port)]
    with server(cmd, port, log, timeout=90):
        yield f"localhost:{port}"


def test_portable_runner_output_is_byte_identical_to_direct(job_endpoint, direct_run, sample_args, tmp_path):
    out = str(tmp_path / "portable")
    run_cli(["run", *sample_args, "--output", out, "--runner=PortableRunner",
             f"--job_endpoint={job_endpoint}", "--environment_type=LOOPBACK"])
    direct, portable = tree_digest(direct_run), tree_digest(out)
    assert any(p.endswith(".parquet") for p in direct) and any(p.startswith("rejected/") for p in direct)
    assert "manifest.json" in direct
    # Every Parquet file, every rejected file and the manifest, byte for byte.
    assert portable == direct
    manifest = json.load(open(os.path.join(out, "manifest.json")))
    assert manifest["conserved"] is True and manifest["records_read"] > 0
