# `make pipeline` installs everything and runs the pipeline; `make test` installs and runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Stage commands in dvc.yaml call `python`: make it the environment's.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: pipeline test lint bench bench-sharing s3-server constraints

pipeline: $(VENV)/installed
	$(BIN)/dvc repro

test: $(VENV)/installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

bench: $(VENV)/installed
	$(BIN)/python benchmarks/train_speed.py

bench-sharing: $(VENV)/installed
	$(BIN)/python benchmarks/sharing.py

# An S3 server on 127.0.0.1 to try `dvc push`/`dvc pull` with: it prints the `dvc remote` lines.
s3-server: $(VENV)/installed
	$(BIN)/python -m mnist_pipeline.s3_server

# Reinstall whenever a requirements file changes.
$(VENV)/installed: requirements.txt requirements-dev.txt constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	touch $@

constraints: $(VENV)/installed
	{ echo "# Every package of a working install, pinned (pip freeze); regenerate with: make constraints"; \
	  $(BIN)/python -m pip freeze --exclude-editable; } > constraints.txt
