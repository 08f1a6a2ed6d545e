"""Runs inside the Airflow venv (not collected by pytest): loads deploy/airflow with a DagBag
and prints, as JSON, the import errors and the command line the Beam operator would run for
each runner, rendered from the DAG's default params.

usage: python airflow_probe.py DAG_FOLDER
"""

import json
import sys


def main(folder: str) -> None:
    from airflow.models import DagBag  # airflow.dag_processing.dagbag.DagBag in Airflow 3
    from airflow.providers.apache.beam.hooks.beam import beam_options_to_args

    bag = DagBag(dag_folder=folder)  # examples off: AIRFLOW__CORE__LOAD_EXAMPLES=False
    out = {"import_errors": {k: str(v) for k, v in bag.import_errors.items()},
           "dag_ids": sorted(bag.dag_ids), "commands": {}}
    dag = bag.dags.get("collapseguard")
    if dag is not None:
        task = dag.get_task("collapseguard_run")
        out["operator"] = type(task).__name__
        for runner in ("DirectRunner", "DataflowRunner"):
            params = {k: dag.params[k] for k in dag.params}
            params.update(runner=runner, project="my-project", temp_location="gs://b/tmp",
                          sdk_container_image="europe-docker.pkg.dev/p/r/collapseguard:0.1.0")
            env = dag.get_template_env()
            render = lambda v: (env.from_string(v).render(params=params)  # noqa: E731
                                if isinstance(v, str) else v)
            options = {k: render(v) for k, v in task.pipeline_options.items()}
            options = {k: v for k, v in options.items() if v is not None}
            # What the operator adds at execute time (BeamRunPythonPipelineOperator.execute and
            # _set_dataflow in the provider): a version label, and on Dataflow the job's
            # name, project and region from dataflow_config.
            options["labels"] = ["airflow-version=v3"]
            if runner == "DataflowRunner":
                config = {k: render(v) for k, v in task.dataflow_config.items()}
                options.update(job_name=f"{config['job_name']}-0a1b2c3d", project=config["project_id"],
                               region=config["location"])
            out["commands"][runner] = {
                "runner": render(task.runner),
                "argv": [task.py_interpreter, *task.py_options, render(task.py_file),
                         *beam_options_to_args(options)],
            }
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
