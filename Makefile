# `make pipeline` installs everything and runs the pipeline; `make test` installs and runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Stage commands in dvc.yaml call `python`: make it the environment's.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: pipeline test lint bench constraints

# CI rebuilds everything with `make pipeline REPRO_FLAGS=--force`.
pipeline: $(VENV)/installed
	$(BIN)/dvc repro $(REPRO_FLAGS)

test: $(VENV)/installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

bench: $(VENV)/installed
	$(BIN)/python benchmarks/train_speed.py

# Reinstall whenever a requirements file changes.
$(VENV)/installed: requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -c constraints.txt --editable .
	touch $@

constraints: $(VENV)/installed
	{ echo "# Every package of a working install, pinned (pip freeze); regenerate with: make constraints"; \
	  $(BIN)/python -m pip freeze --exclude-editable; } > constraints.txt
