"""deploy/ glue: every command the launch scripts and the Flex Template entry point would run is
one our CLI accepts (each flag known to us or to Beam, values valid), checked without a cloud.
"""

import importlib.util
import json
import os
import subprocess

import pytest
from integration_support import REPO

from collapseguard.pipeline.options import parse_run_args

pytestmark = pytest.mark.integration

DEPLOY = REPO / "deploy"
ENV = {"PROJECT": "my-project", "BUCKET": "gs://b/cg", "INPUT": "gs://b/raw/*.jsonl.gz",
       "OUTPUT": "gs://b/out/run-1", "IMAGE": "europe-docker.pkg.dev/p/r/collapseguard:0.1.0",
       "CONFIG": "gs://b/cg.yaml", "FLINK_MASTER": "flink-jm:8081", "SPARK_MASTER": "spark://spark-m:7077",
       "JOB_ENDPOINT": "jobserver:8099", "TEMPLATE": "gs://b/templates/collapseguard.json",
       "FLEX_IMAGE": "europe-docker.pkg.dev/p/r/collapseguard-flex:0.1.0", "DRY_RUN": "1"}


def dry_run(script, *args, **env):
    proc = subprocess.run(["bash", str(DEPLOY / script), *args], capture_output=True, text=True,
                          env={**os.environ, **ENV, **env}, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def flex_main():
    spec = importlib.util.spec_from_file_location("flex_main", DEPLOY / "dataflow" / "flex_main.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("script,mode", [("dataflow/launch.sh", "direct"), ("flink/run.sh", "embedded"),
                                         ("flink/run.sh", "jobserver"), ("spark/run.sh", "embedded"),
                                         ("spark/run.sh", "jobserver")])
def test_script_commands_are_accepted_by_the_cli(script, mode):
    argv = dry_run(script, mode)
    assert argv[:2] == ["collapseguard", "run"]
    ns, beam_args = parse_run_args(argv[2:])  # UsageError on an unknown or invalid flag
    assert ns.inputs == [ENV["INPUT"]] and ns.output == ENV["OUTPUT"] and ns.config == ENV["CONFIG"]
    runner = next(a.split("=", 1)[1] for a in beam_args if a.startswith("--runner="))
    engine = script.split("/")[0]
    assert runner == {"direct": "DataflowRunner", "jobserver": "PortableRunner",
                      "embedded": {"flink": "FlinkRunner", "spark": "SparkRunner"}.get(engine)}[mode]
    if script.startswith(("flink", "spark")):
        assert f"--environment_config={ENV['IMAGE']}" in beam_args


def test_dataflow_direct_flags():
    beam_args = set(parse_run_args(dry_run("dataflow/launch.sh", "direct")[2:])[1])
    assert {"--experiments=use_runner_v2", "--sdk_location=container",
            f"--sdk_container_image={ENV['IMAGE']}", "--temp_location=gs://b/cg/temp",
            "--staging_location=gs://b/cg/staging",
            "--dataflow_service_options=worker_accelerator=type:nvidia-l4;count:1;install-nvidia-driver",
            } <= beam_args
    cpu = set(parse_run_args(dry_run("dataflow/launch.sh", "direct", GPU="")[2:])[1])
    assert not any(a.startswith("--dataflow_service_options") for a in cpu)


def test_flex_template_parameters_reach_the_cli():
    """What the Flex launcher passes (metadata parameters + Dataflow's own) is accepted."""
    params = {p["name"] for p in json.loads((DEPLOY / "dataflow" / "metadata.json").read_text())["parameters"]}
    assert params == {"input", "output", "config", "scoring_model", "lm_sample_rate"}
    template = dry_run("dataflow/launch.sh", "template")
    assert template[:4] == ["gcloud", "dataflow", "flex-template", "run"]
    passed = [a.split("=", 1)[1].removeprefix("^~^") for a in template if a.startswith("--parameters=")]
    launcher_argv = [f"--{p}" for p in passed] + [
        "--runner=DataflowRunner", "--project=my-project", "--region=us-central1",
        "--temp_location=gs://b/cg/temp", "--staging_location=gs://b/cg/staging",
        "--job_name=collapseguard-1", "--experiments=use_runner_v2", "--machine_type=g2-standard-8"]
    assert {a.split("=", 1)[0][2:] for a in launcher_argv} >= params - {"config"} | {"sdk_container_image"}
    cli = flex_main().cli_args(launcher_argv)
    assert cli[0] == "run"
    ns, beam_args = parse_run_args(cli[1:])
    assert ns.scoring_model == "default" and ns.lm_sample_rate == 1.0 and ns.config == ENV["CONFIG"]
    assert "--dataflow_service_options=worker_accelerator=type:nvidia-l4;count:1;install-nvidia-driver" in beam_args


def test_build_template_uses_the_metadata():
    argv = dry_run("dataflow/build_template.sh")
    assert argv[:4] == ["gcloud", "dataflow", "flex-template", "build"]
    assert f"--metadata-file={DEPLOY / 'dataflow' / 'metadata.json'}" in argv
    assert "--sdk-language=PYTHON" in argv


def test_airflow_dag_is_valid_python():
    """The full import check needs Airflow (optional: make test-airflow); this one does not."""
    source = (DEPLOY / "airflow" / "collapseguard_dag.py").read_text()
    compile(source, "collapseguard_dag.py", "exec")
    assert "BeamRunPythonPipelineOperator" in source
