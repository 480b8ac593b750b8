# edgefit developer entry points. `make demo` and `make test` are the README's quick start;
# .ci/run calls `make test`. Both create .venv with the tested pins (constraints.txt) on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Extras the test suite exercises (everything that installs on a CPU-only Linux machine).
EXTRAS ?= dev,vela,prune,litert,litert-convert,coreml,torchao,ray
STAMP  := $(VENV)/.edgefit-installed
PYTEST_ARGS ?=

.PHONY: setup demo test bench bench-ci schema clean

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

# The suite runs in two lanes. Folders whose tests time nothing (parsing, estimates, reports, fuzzing,
# training, packaging) run on both cores at once (pytest-xdist); every other folder, the ones that
# measure latency and assert on it, runs alone afterwards, so no test is timed while another builds
# or trains on the second core. A new folder lands in the serial lane until it is listed here.
# The runtime backends' tests assert the shape of a timing (ordered percentiles, a unit, a
# provenance), never its value, and their waits are time limits with wide margins
# (test_runtime_faults crashes and hangs measuring children on purpose, 6-20 s limits asserted with
# 60-120 s margins). The passes (recipe search included) script their timers or assert only the
# shape of a real timing; the recipe-search files in search/ script the search's timer. Vela's time
# is its compiler's estimate, not a clock. The serving planner and its CLI estimate. The kill -9
# and full-disk faults, the learned-calibration smoke test, the optimize runs on device targets
# (estimated, never timed here), the roofline calibration's smoke test (its profile's shape and a
# loose bandwidth range), the torchao candidate (a timing's shape) and the search logic (scripted
# candidates; an ONNX-only run's notes) assert what is recorded, resumed and reused, never a
# timing's value; they are listed first so that xdist starts these long ones early. The Ray executor's
# tests stay serial: their kills race a worker's next task, and lose that race on a loaded machine.
PARALLEL_TESTS := tests/search/test_faults.py tests/calibrate/test_learned_calibrate_cli.py \
                  tests/search/test_optimize_devices.py tests/calibrate/test_vela_conv1d_calibrate.py \
                  tests/calibrate/test_calibrate.py tests/search/test_torchao_candidate.py \
                  tests/search/test_search_logic.py \
                  tests/fuzz tests/targets tests/graph tests/report tests/cascade tests/iteration \
                  tests/evaluate tests/packaging tests/cli tests/estimate tests/examples tests/records \
                  tests/passes tests/runtimes \
                  tests/calibrate/test_vela.py tests/calibrate/test_vela_fit.py \
                  tests/calibrate/test_zoo.py tests/calibrate/test_measure_order.py \
                  tests/serve/test_plan.py tests/serve/test_serve_cli.py tests/serve/test_arch.py \
                  tests/serve/test_model.py tests/serve/test_published.py tests/serve/test_import.py \
                  tests/search/test_recipe_in_optimize.py tests/search/test_recipe_budget.py
# pytest exits 5 when it collects no test; that is not a failure of the code under test.
test: setup
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup $(PYTEST_ARGS) $(PARALLEL_TESTS); a=$$?; [ $$a -eq 5 ] && a=0; \
	$(BIN)/python -m pytest -q $(PYTEST_ARGS) tests $(addprefix --ignore=,$(PARALLEL_TESTS)); \
	b=$$?; [ $$b -eq 5 ] && b=0; [ $$a -eq 0 ] && exit $$b; exit $$a

bench: setup
	@mkdir -p .benchmarks
	$(BIN)/python -m pytest -q bench --benchmark-json=.benchmarks/latest.json; rc=$$?; [ $$rc -eq 5 ] && rc=0; exit $$rc

# CI's benchmark gate: the estimator and int8/fp32 ratio suites under pytest-benchmark, then their
# ratios (not absolute times) against the committed bench/baseline.json; exit 1 on a regression.
# --benchmark-only skips the suites' assertions on absolute speed (a shared CI box cannot promise them).
bench-ci: setup
	@mkdir -p .benchmarks
	$(BIN)/python -m pytest -q bench/test_bench_estimator.py bench/test_bench_ratios.py bench/test_bench_startup.py --benchmark-only --benchmark-json=.benchmarks/ci.json
	$(BIN)/python bench/compare.py .benchmarks/ci.json

# results.json's JSON Schema is generated from the typed records (edgefit.records); the shipped
# copy is rewritten here after a record changes (tests/records checks it is up to date).
schema: setup
	$(BIN)/python -c "from edgefit.records import results_schema_text; import pathlib; pathlib.Path('edgefit/report/results.schema.json').write_text(results_schema_text())"

clean:
	rm -rf $(VENV) dist build .pytest_cache .benchmarks
