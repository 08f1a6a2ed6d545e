#!/usr/bin/env bash
# Runs collapseguard on an Apache Flink cluster.
#
#   deploy/flink/run.sh embedded  [extra flags]  # FlinkRunner: Beam starts its Flink job server here
#   deploy/flink/run.sh jobserver [extra flags]  # PortableRunner against a running job server
#
# Environment (required unless a default is shown):
#   INPUT, OUTPUT  URLs every TaskManager can read/write (gs://, s3://, a shared mount), not local paths
#   IMAGE          worker image from the top-level Dockerfile; TaskManagers need Docker to start it
#   FLINK_MASTER   (embedded) JobManager REST address, host:8081
#   FLINK_VERSION=1.20  must match the cluster; Beam 2.77 publishes 1.19, 1.20, 2.0, 2.1, 2.2
#   JOB_ENDPOINT   (jobserver) the job server's Job API, host:8099
#   CONFIG, SCORING_MODEL=default, PARALLELISM=(cluster default)
#   DRY_RUN=1      print the command instead of running it
set -euo pipefail

mode=${1:-}
[[ $mode == embedded || $mode == jobserver ]] || { sed -n '2,18p' "$0"; exit 2; }
shift
: "${INPUT:?set INPUT}" "${OUTPUT:?set OUTPUT}" "${IMAGE:?set IMAGE (top-level Dockerfile)}"

cmd=(collapseguard run --input "$INPUT" --output "$OUTPUT"
  --scoring-model "${SCORING_MODEL:-default}")
if [[ -n ${CONFIG:-} ]]; then cmd+=(--config "$CONFIG"); fi

if [[ $mode == embedded ]]; then
  : "${FLINK_MASTER:?set FLINK_MASTER=host:8081}"
  # Needs Java 11+ here: Beam downloads beam-runners-flink-<FLINK_VERSION>-job-server-2.77.0.jar
  # from Maven Central into ~/.apache_beam/cache/jars on first use and runs it locally.
  cmd+=(--runner=FlinkRunner --flink_master="$FLINK_MASTER"
    --flink_version="${FLINK_VERSION:-1.20}")
else
  : "${JOB_ENDPOINT:?set JOB_ENDPOINT=host:8099}"
  cmd+=(--runner=PortableRunner --job_endpoint="$JOB_ENDPOINT")
fi
cmd+=(--environment_type=DOCKER --environment_config="$IMAGE")
if [[ -n ${PARALLELISM:-} ]]; then cmd+=(--parallelism="$PARALLELISM"); fi
cmd+=("$@")

if [[ -n ${DRY_RUN:-} ]]; then printf '%s\n' "${cmd[@]}"; else exec "${cmd[@]}"; fi
