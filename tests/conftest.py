"""Fixtures shared by every test folder."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def run_cli(capsys):
    """Run ``edgefit ARGS…`` through :func:`edgefit.cli.main` (which turns an EdgefitError into one
    line and an exit code); returns ``(exit code, stdout, stderr)``."""
    from edgefit.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture
def run_ok(run_cli):
    """``edgefit ARGS… --json`` that must exit 0; returns its parsed JSON (the stderr tail on
    failure)."""

    def run(*args: str) -> dict:
        code, out, err = run_cli(*args)
        assert code == 0, err[-3000:]
        return json.loads(out)

    return run



@pytest.fixture
def one_try_per_timing(monkeypatch):
    """Calibration's quiet-machine retries off: every timing is taken once, disturbed or not.

    For the smoke tests that run a whole calibration on the parallel lane and assert only what it
    writes (a profile's shape, its fingerprint), never a timing's value. There the other xdist
    worker keeps a CPU busy, and the retries, which wait for a quiet machine, stretched a 9 s
    roofline sweep to 52 s and a 27 s learned calibration to 94 s beside a 2-thread matmul loop.
    The retries themselves are tested with scripted timers (tests/calibrate/test_measure_order.py,
    tests/estimate/test_learned.py)."""
    from edgefit.calibrate import _collect, _measure

    monkeypatch.setattr(_measure, "MAX_ATTEMPTS", 1)
    monkeypatch.setattr(_measure, "ROUND_ATTEMPTS", 1)
    monkeypatch.setattr(_collect, "PASSES", 1)


@pytest.fixture(autouse=True)
def _measured_runs_stay_out_of_the_users_cache(monkeypatch, tmp_path_factory):
    """`edgefit bench` keeps each onnxruntime run it times for `calibrate --refit`
    (edgefit/calibrate/_observed.py); the suite's benchmarks never join the user's."""
    monkeypatch.setenv("EDGEFIT_MEASURED_DIR", str(tmp_path_factory.getbasetemp() / "measured"))
