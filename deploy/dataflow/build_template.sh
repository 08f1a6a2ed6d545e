#!/usr/bin/env bash
# Builds the Flex Template spec (a small JSON on GCS naming the image and the parameters of
# metadata.json). Build and push the two images first (deploy/dataflow/README.md).
#
#   PROJECT=... REGION=... FLEX_IMAGE=...collapseguard-flex:0.1.0 \
#   TEMPLATE=gs://bucket/templates/collapseguard.json deploy/dataflow/build_template.sh
set -euo pipefail
: "${FLEX_IMAGE:?set FLEX_IMAGE (deploy/dataflow/Dockerfile.flex)}"
: "${TEMPLATE:?set TEMPLATE=gs://.../collapseguard.json}" "${PROJECT:?set PROJECT}"
here=$(cd "$(dirname "$0")" && pwd)
cmd=(gcloud dataflow flex-template build "$TEMPLATE"
  --project="$PROJECT"
  --image="$FLEX_IMAGE"
  --sdk-language=PYTHON
  --metadata-file="$here/metadata.json")
if [[ -n ${DRY_RUN:-} ]]; then printf '%s\n' "${cmd[@]}"; else exec "${cmd[@]}"; fi
