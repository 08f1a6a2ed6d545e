#!/usr/bin/env bash
# Runs collapseguard on Google Cloud Dataflow.
#
#   deploy/dataflow/launch.sh direct   [extra collapseguard/Beam flags]   # from this machine
#   deploy/dataflow/launch.sh template [extra gcloud flags]               # a built Flex Template
#
# Environment (required unless a default is shown):
#   PROJECT, REGION=us-central1, BUCKET (gs://bucket/prefix for temp + staging), INPUT, OUTPUT,
#   IMAGE          worker image built from the top-level Dockerfile (GPU build for GPU workers)
#   CONFIG         optional gs:// YAML config
#   SCORING_MODEL=default, LM_SAMPLE_RATE=1
#   MACHINE_TYPE=g2-standard-8 (the L4 machine family), MAX_WORKERS=10
#   GPU=nvidia-l4  accelerator type, one per worker; GPU= (empty) for CPU-only workers
#                  (then also MACHINE_TYPE=n2-standard-8 or similar)
#   TEMPLATE       (template mode) gs:// path of the spec written by build_template.sh
#   DRY_RUN=1      print the command instead of running it
set -euo pipefail

mode=${1:-}
[[ $mode == direct || $mode == template ]] || { sed -n '2,20p' "$0"; exit 2; }
shift

: "${PROJECT:?set PROJECT}" "${BUCKET:?set BUCKET=gs://bucket/prefix}"
: "${INPUT:?set INPUT=gs://.../*.jsonl.gz}" "${OUTPUT:?set OUTPUT=gs://.../run-N}"
: "${IMAGE:?set IMAGE to the worker image (top-level Dockerfile)}"
REGION=${REGION:-us-central1}
SCORING_MODEL=${SCORING_MODEL:-default}
LM_SAMPLE_RATE=${LM_SAMPLE_RATE:-1}
MACHINE_TYPE=${MACHINE_TYPE:-g2-standard-8}
MAX_WORKERS=${MAX_WORKERS:-10}
GPU=${GPU-nvidia-l4}
JOB_NAME=${JOB_NAME:-collapseguard-$(date -u +%Y%m%d-%H%M%S)}

# One accelerator per worker, driver installed by Dataflow (the image brings CUDA via torch).
accelerator=()
if [[ -n $GPU ]]; then
  accelerator=("worker_accelerator=type:${GPU};count:1;install-nvidia-driver")
fi

if [[ $mode == direct ]]; then
  cmd=(collapseguard run
    --input "$INPUT" --output "$OUTPUT"
    --scoring-model "$SCORING_MODEL" --lm-sample-rate "$LM_SAMPLE_RATE"
    --runner=DataflowRunner
    --project="$PROJECT" --region="$REGION" --job_name="$JOB_NAME"
    --temp_location="$BUCKET/temp" --staging_location="$BUCKET/staging"
    --sdk_container_image="$IMAGE" --sdk_location=container
    --machine_type="$MACHINE_TYPE" --max_num_workers="$MAX_WORKERS"
    --experiments=use_runner_v2)
  if [[ -n ${CONFIG:-} ]]; then cmd+=(--config "$CONFIG"); fi
  if [[ -n $GPU ]]; then cmd+=(--dataflow_service_options="${accelerator[0]}"); fi
else
  : "${TEMPLATE:?set TEMPLATE=gs://.../collapseguard.json (build_template.sh)}"
  cmd=(gcloud dataflow flex-template run "$JOB_NAME"
    --project="$PROJECT" --region="$REGION"
    --template-file-gcs-location="$TEMPLATE"
    --temp-location="$BUCKET/temp" --staging-location="$BUCKET/staging"
    --worker-machine-type="$MACHINE_TYPE" --max-workers="$MAX_WORKERS"
    --additional-experiments=use_runner_v2
    --parameters="input=$INPUT"
    --parameters="output=$OUTPUT"
    --parameters="scoring_model=$SCORING_MODEL"
    --parameters="lm_sample_rate=$LM_SAMPLE_RATE"
    --parameters="sdk_container_image=$IMAGE")
  if [[ -n ${CONFIG:-} ]]; then cmd+=(--parameters="config=$CONFIG"); fi
  # '^~^' makes '~' gcloud's list delimiter, so the ';' and ':' in the value pass intact.
  if [[ -n $GPU ]]; then cmd+=(--parameters="^~^dataflow_service_options=${accelerator[0]}"); fi
fi
cmd+=("$@")

if [[ -n ${DRY_RUN:-} ]]; then
  printf '%s\n' "${cmd[@]}"
else
  exec "${cmd[@]}"
fi
