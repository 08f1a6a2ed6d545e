#!/usr/bin/env bash
# Runs collapseguard on an Apache Spark (3.x, standalone) cluster.
#
#   deploy/spark/run.sh embedded  [extra flags]  # SparkRunner: Beam starts its Spark job server here
#   deploy/spark/run.sh jobserver [extra flags]  # PortableRunner against a running job server
#
# Environment (required unless a default is shown):
#   INPUT, OUTPUT  URLs every executor can read/write (gs://, s3://, a shared mount), not local paths
#   IMAGE          worker image from the top-level Dockerfile; executors need Docker to start it
#   SPARK_MASTER   (embedded) spark://host:7077
#   JOB_ENDPOINT   (jobserver) the job server's Job API, host:8099
#   CONFIG, SCORING_MODEL=default
#   DRY_RUN=1      print the command instead of running it
set -euo pipefail

mode=${1:-}
[[ $mode == embedded || $mode == jobserver ]] || { sed -n '2,16p' "$0"; exit 2; }
shift
: "${INPUT:?set INPUT}" "${OUTPUT:?set OUTPUT}" "${IMAGE:?set IMAGE (top-level Dockerfile)}"

cmd=(collapseguard run --input "$INPUT" --output "$OUTPUT"
  --scoring-model "${SCORING_MODEL:-default}")
if [[ -n ${CONFIG:-} ]]; then cmd+=(--config "$CONFIG"); fi

if [[ $mode == embedded ]]; then
  : "${SPARK_MASTER:?set SPARK_MASTER=spark://host:7077}"
  # Needs Java 11+ here: Beam downloads beam-runners-spark-3-job-server-2.77.0.jar from Maven
  # Central into ~/.apache_beam/cache/jars on first use; it runs as the Spark driver, here.
  cmd+=(--runner=SparkRunner --spark_master_url="$SPARK_MASTER")
else
  : "${JOB_ENDPOINT:?set JOB_ENDPOINT=host:8099}"
  cmd+=(--runner=PortableRunner --job_endpoint="$JOB_ENDPOINT")
fi
cmd+=(--environment_type=DOCKER --environment_config="$IMAGE")
cmd+=("$@")

if [[ -n ${DRY_RUN:-} ]]; then printf '%s\n' "${cmd[@]}"; else exec "${cmd[@]}"; fi
