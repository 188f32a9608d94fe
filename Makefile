# exportkit: `make export` sets everything up and builds the default matrix; `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export YOLO_OFFLINE := 1
export YOLO_AUTOINSTALL := False
export YOLO_CONFIG_DIR := $(CURDIR)/.cache/ultralytics
export PYTHONPATH := $(CURDIR)

.PHONY: help venv export test test-fast mutation mutation-report lint models clean cpp-deps cpp-build kotlin-deps kotlin-test

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all,dev]'
	touch $(STAMP)

venv: $(STAMP)  ## create .venv and install exportkit with every extra that runs here

export: $(STAMP)  ## build the default matrix (bundled detect model -> onnx, torchscript, openvino)
	$(PY) -m doit export validate report
	@echo "artifacts: $(CURDIR)/exports/shapes-det/{onnx,torchscript,openvino}-fp32  report: $(CURDIR)/exports/report.md"

test: $(STAMP) cpp-deps kotlin-deps  ## install what the tests need and run them all (what CI runs)
	$(PY) -m pytest -q --durations=25
	$(MAKE) -C runtimes/cpp test
	$(MAKE) -C runtimes/kotlin test

kotlin-deps:  ## Kotlin runtime: apt kotlin 1.3, libjna-java, junit4 (skipped when installed)
	$(MAKE) -C runtimes/kotlin deps

kotlin-test: $(STAMP) kotlin-deps  ## Kotlin runtime: JUnit core tests + parity with the Python runtime on a TFLite export
	$(MAKE) -C runtimes/kotlin test

cpp-deps: $(STAMP)  ## C++ runtime: apt packages (cmake, g++, OpenCV, nlohmann-json) + ONNX Runtime into .cache/onnxruntime
	$(MAKE) -C runtimes/cpp deps

cpp-build: cpp-deps  ## build the C++ runtime (runtimes/cpp/build/yolo_infer)
	$(MAKE) -C runtimes/cpp build

test-fast: $(STAMP)  ## the tests that export nothing
	$(PY) -m pytest -q -m "not slow"

mutation: $(STAMP)  ## mutmut over the core against the fast tier, then the kill rate per module (long: ~30 min on 2 cores)
	rm -rf mutants && mkdir mutants  # must exist before Python starts: a missing sys.path folder is cached as absent
	mkdir mutants/exportkit && ln -s ../conf mutants/exportkit/conf && ln -s ../models/samples mutants/exportkit/samples  # the package's links (mutmut skips them)
	PYTHONPATH=$(CURDIR)/mutants nice -n 15 $(VENV)/bin/mutmut run --max-children 1 > mutants.log 2>&1 || (tail -40 mutants.log; exit 1)
	$(PY) scripts/mutation_report.py

mutation-report:  ## the kill rate per module from the last `make mutation` (--survivors lists them)
	$(PY) scripts/mutation_report.py

lint: $(STAMP)  ## ruff
	$(PY) -m ruff check exportkit tests scripts runtimes benchmarks dodo.py export.py

models: $(STAMP)  ## retrain the bundled shapes models on the CPU (about an hour on 2 cores)
	$(PY) scripts/train_models.py

clean:  ## remove build outputs (keeps .venv)
	rm -rf exports .cache/exportkit build runtimes/cpp/build mutants mutants.log
