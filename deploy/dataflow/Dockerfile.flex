# Flex Template image: the worker image (top-level Dockerfile) plus Google's Python template
# launcher, so launch and workers run the very same environment. Build after the worker image:
#
#   docker build -f deploy/dataflow/Dockerfile.flex \
#     --build-arg WORKER_IMAGE=REGION-docker.pkg.dev/PROJECT/REPO/collapseguard:0.1.0 \
#     --build-arg LAUNCHER_IMAGE=gcr.io/dataflow-templates-base/python311-template-launcher-base:TAG \
#     -t REGION-docker.pkg.dev/PROJECT/REPO/collapseguard-flex:0.1.0 deploy/dataflow
#
# TAG: a dated release tag of the launcher base (pin it; see deploy/dataflow/README.md).
ARG LAUNCHER_IMAGE
ARG WORKER_IMAGE
FROM ${LAUNCHER_IMAGE} AS launcher

FROM ${WORKER_IMAGE}
COPY --from=launcher /opt/google/dataflow/python_template_launcher /opt/google/dataflow/python_template_launcher
COPY flex_main.py /opt/collapseguard/flex_main.py
# The launcher runs `python $FLEX_TEMPLATE_PYTHON_PY_FILE --param=value ...`; the workers keep
# Beam's boot ENTRYPOINT from the worker image.
ENV FLEX_TEMPLATE_PYTHON_PY_FILE=/opt/collapseguard/flex_main.py
