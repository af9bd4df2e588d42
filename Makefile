# `make pipeline` installs everything and runs the pipeline; `make test` installs and runs the tests.
# `make plots` writes the plots page (works offline); `make figures` the PNGs of docs/plots.md.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Stage commands in dvc.yaml call `python`: make it the environment's.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: pipeline reproduce test lint bench constraints plots figures serve screenshot bench-web \
	bench-sharing s3-server slips

# CI checks every output with `make reproduce`, then runs this for the tests' data and model.
pipeline: $(VENV)/installed
	$(BIN)/dvc repro $(REPRO_FLAGS)

# Does this machine reproduce the committed results? Every stage rerun in a scratch clone.
reproduce: $(VENV)/installed
	$(BIN)/python -m mnist_pipeline.reproduce

test: $(VENV)/installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/pytest

# Each slip of tools/slips.py made in a scratch copy, one at a time, and the tests that must catch
# it run there (docs/testing.md, Slips): not part of `make test`; about 5 minutes.
slips: $(VENV)/installed
	$(BIN)/python tools/slips.py

# DVC's plots page with its scripts beside it, so it draws without a network: plots/index.html
# (not dvc_plots/, which `dvc plots show` overwrites with its page that loads from a CDN).
plots: $(VENV)/installed
	$(BIN)/python -m mnist_pipeline.figures page plots

# One PNG per plot of dvc.yaml, from the results in reports/: rerun and commit when they change.
figures: $(VENV)/installed
	$(BIN)/python -m mnist_pipeline.figures png docs/figures

# The train stage and train+evaluate against the tutorial, then a training step op by op and
# fit against the time its matrix products take (docs/performance.md).
bench: $(VENV)/installed
	$(BIN)/python benchmarks/train_speed.py
	$(BIN)/python -m benchmarks.step_profile

# The page to draw a digit on, for models/model.tflite, at http://127.0.0.1:8000 (after `make pipeline`;
# PORT=N serves on another port).
serve: $(VENV)/installed
	@$(BIN)/python -m mnist_pipeline.web $(if $(PORT),--port $(PORT))

# The README's picture of that page, drawn and taken by the browser tests' own code (needs chromium).
screenshot: $(VENV)/installed
	PYTHONPATH=. $(BIN)/python tests/support/webpage.py docs/web-page.png

# 500 requests from 8 clients to the page's server on loopback: throughput, latency, memory.
bench-web: $(VENV)/installed
	$(BIN)/python -m benchmarks.web_load

bench-sharing: $(VENV)/installed
	$(BIN)/python -m benchmarks.sharing

# An S3 server on 127.0.0.1 to try `dvc push`/`dvc pull` with: it prints the `dvc remote` lines
# (PORT=N listens on another port).
s3-server: $(VENV)/installed
	@$(BIN)/python -m mnist_pipeline.s3_server $(if $(PORT),--port $(PORT))

# Reinstall whenever a requirements file changes. With the extra `cluster` (Ray, for mnist-sweep).
$(VENV)/installed: requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing the pinned packages into $(VENV)/ (TensorFlow, DVC, ...: a few minutes the first time)"
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -c constraints.txt --editable '.[cluster]'
	touch $@

constraints: $(VENV)/installed
	{ echo "# Every package of a working install, pinned (pip freeze); regenerate with: make constraints"; \
	  $(BIN)/python -m pip freeze --exclude-editable; } > constraints.txt
