# edgefit developer entry points. `make demo` and `make test` are the README's quick start;
# .ci/run calls `make test`. Both create .venv with the tested pins (constraints.txt) on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Extras the test suite exercises (everything that installs on a CPU-only Linux machine).
EXTRAS ?= dev,vela,prune,litert,litert-convert,coreml
STAMP  := $(VENV)/.edgefit-installed
PYTEST_ARGS ?=

.PHONY: setup demo test bench clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first, from the constraints file: an unpinned torch would pull a multi-GB CUDA build
	$(BIN)/python -m pip install -q -c constraints.txt torch
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[$(EXTRAS)]"
	@touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/edgefit optimize --target orin

# pytest exits 5 when it collects no test; that is not a failure of the code under test.
test: setup
	$(BIN)/python -m pytest -q $(PYTEST_ARGS) tests; rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

bench: setup
	$(BIN)/python -m pytest -q bench --benchmark-json=.benchmarks/latest.json; rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

clean:
	rm -rf $(VENV) dist build .pytest_cache .benchmarks
