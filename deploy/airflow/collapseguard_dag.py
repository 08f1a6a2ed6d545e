"""Airflow 3 DAG: runs `collapseguard run` through the Apache Beam provider. Glue only.

Needs apache-airflow>=3, apache-airflow-providers-apache-beam and (for DataflowRunner, and
because the operator imports it) apache-airflow-providers-google on the Airflow workers, plus
collapseguard installed in the interpreter named by $COLLAPSEGUARD_PYTHON (default `python3`).

BeamRunPythonPipelineOperator runs `[py_interpreter, *py_options, py_file, --key=value...]`.
collapseguard is a module with a `run` sub-command, not a script file, so
`py_options=["-m", "collapseguard.pipeline.cli"]` and `py_file="run"` give
`python -m collapseguard.pipeline.cli run --input=... --output=... [Beam flags]`.

Trigger with params (UI or `airflow dags trigger collapseguard -c '{"runner": ...}'`):
  runner: DirectRunner (default) or DataflowRunner; on Dataflow also project, region,
  temp_location, sdk_container_image (the image built from the top-level Dockerfile).
"""

from __future__ import annotations

import os

from airflow.providers.apache.beam.operators.beam import BeamRunPythonPipelineOperator
from airflow.sdk import DAG, Param

with DAG(
    dag_id="collapseguard",
    schedule=None,
    catchup=False,
    tags=["collapseguard", "beam"],
    # "{{ params.x }}" renders to the param's own value (None stays None, and the Beam hook
    # then leaves that flag out instead of passing the string "None").
    render_template_as_native_obj=True,
    params={
        "input": Param("gs://BUCKET/raw/*.jsonl.gz", type="string", description="comma-separated globs"),
        "output": Param("gs://BUCKET/collapseguard/run-1", type="string"),
        "config": Param(None, type=["null", "string"], description="YAML config URL or path"),
        "scoring_model": Param("default", type="string", description="none | default | path / HF id"),
        "lm_sample_rate": Param(1.0, type="number", exclusiveMinimum=0, maximum=1),
        "runner": Param("DirectRunner", enum=["DirectRunner", "DataflowRunner"]),
        "project": Param(None, type=["null", "string"], description="GCP project (Dataflow)"),
        "region": Param("us-central1", type="string", description="Dataflow region"),
        "temp_location": Param(None, type=["null", "string"], description="gs:// temp (Dataflow)"),
        "sdk_container_image": Param(None, type=["null", "string"],
                                     description="worker image from the Dockerfile (Dataflow)"),
        "machine_type": Param("g2-standard-8", type="string", description="Dataflow worker type"),
        "worker_accelerator": Param("type:nvidia-l4;count:1;install-nvidia-driver", type=["null", "string"],
                                    description="Dataflow GPU per worker; null for CPU-only"),
    },
) as dag:
    BeamRunPythonPipelineOperator(
        task_id="collapseguard_run",
        runner="{{ params.runner }}",
        py_interpreter=os.environ.get("COLLAPSEGUARD_PYTHON", "python3"),
        py_options=["-m", "collapseguard.pipeline.cli"],
        py_file="run",
        pipeline_options={
            "input": "{{ params.input }}",
            "output": "{{ params.output }}",
            "config": "{{ params.config }}",
            "scoring-model": "{{ params.scoring_model }}",
            "lm-sample-rate": "{{ params.lm_sample_rate }}",
            "overwrite": True,
            # Beam flags; None (the default) leaves a flag out.
            "temp_location": "{{ params.temp_location }}",
            "sdk_container_image": "{{ params.sdk_container_image }}",
            "sdk_location": "{{ 'container' if params.sdk_container_image else None }}",
            "machine_type": "{{ params.machine_type if params.runner == 'DataflowRunner' else None }}",
            "experiments": "{{ ['use_runner_v2'] if params.runner == 'DataflowRunner' else None }}",
            "dataflow_service_options": "{{ ['worker_accelerator=' ~ params.worker_accelerator] "
                                        "if params.runner == 'DataflowRunner' and params.worker_accelerator "
                                        "else None }}",
        },
        # Used only when runner is DataflowRunner (the operator adds job_name, project, region).
        dataflow_config={
            "job_name": "collapseguard",
            "project_id": "{{ params.project }}",
            "location": "{{ params.region }}",
            "wait_until_finished": True,
        },
    )
