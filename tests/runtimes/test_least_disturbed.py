"""The one busy-machine guard (#15 "one measurement path"): `edgefit optimize`, `edgefit check` and
calibration all time again while another process kept edgefit waiting for a CPU, and keep the least
disturbed timing. Scripted waits: nothing here is timed."""

from __future__ import annotations

from edgefit.runtimes._measure import QUIET_CPU_WAIT, least_disturbed


def _script(waits):
    calls = []

    def measure():
        calls.append(waits[len(calls)])
        return {"n": len(calls), "wait": calls[-1]}

    return measure, calls


def test_it_measures_again_until_a_timing_kept_its_cpu():
    measure, calls = _script([0.30, 0.10, QUIET_CPU_WAIT / 2, 0.0])
    got = least_disturbed(measure, lambda r: r["wait"], attempts=4)
    assert got["n"] == 3 and len(calls) == 3


def test_on_a_machine_that_stays_busy_it_keeps_the_least_disturbed_of_its_attempts():
    measure, calls = _script([0.30, 0.20, 0.40, 0.25, 0.01])
    got = least_disturbed(measure, lambda r: r["wait"], attempts=4)
    assert got["wait"] == 0.20 and len(calls) == 4  # the fifth, quiet one is never tried


def test_without_scheduler_statistics_the_first_timing_stands():
    measure, calls = _script([None, None])
    assert least_disturbed(measure, lambda r: r["wait"], attempts=4)["n"] == 1 and len(calls) == 1
