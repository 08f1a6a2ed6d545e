"""Optional (`make test-airflow`): the Airflow DAG in deploy/airflow imports cleanly under
Airflow 3 with the Beam and Google providers, and the command its operator would run is one
our CLI accepts.

Airflow is installed into its own venv under .cache/ (about 2 GB, several minutes the first
time): it is never part of the project's own install.
"""

import json
import os
import subprocess

import pytest
from integration_support import REPO, tool_venv

from collapseguard.pipeline.options import parse_run_args

pytestmark = [pytest.mark.integration, pytest.mark.airflow]


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    venv = tool_venv("airflow-venv")
    home = tmp_path_factory.mktemp("airflow-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False",
               AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "deploy" / "airflow"))
    proc = subprocess.run(
        [str(venv / "bin" / "python"), str(REPO / "tests" / "integration" / "airflow_probe.py"),
         str(REPO / "deploy" / "airflow")],
        capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-6000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_dag_imports_without_errors(probe):
    assert probe["import_errors"] == {}
    assert probe["dag_ids"] == ["collapseguard"]
    assert probe["operator"] == "BeamRunPythonPipelineOperator"


@pytest.mark.parametrize("runner", ["DirectRunner", "DataflowRunner"])
def test_operator_command_is_accepted_by_our_cli(probe, runner):
    cmd = probe["commands"][runner]
    assert cmd["runner"] == runner
    argv = cmd["argv"]
    assert argv[1:4] == ["-m", "collapseguard.pipeline.cli", "run"]
    ns, beam_args = parse_run_args(argv[4:])  # raises UsageError on any flag we would refuse
    assert ns.scoring_model == "default" and ns.overwrite and ns.config is None
    assert "--labels=airflow-version=v3" in beam_args
    if runner == "DataflowRunner":
        assert {"--experiments=use_runner_v2", "--project=my-project", "--region=us-central1",
                "--sdk_location=container",
                "--dataflow_service_options=worker_accelerator=type:nvidia-l4;count:1;install-nvidia-driver",
                } <= set(beam_args)
        assert any(a.startswith("--machine_type=") for a in beam_args)
    else:
        assert not any(a.startswith(("--experiments", "--machine_type", "--dataflow_service_options"))
                       for a in beam_args)
