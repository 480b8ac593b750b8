"""Shared pieces of the fuzz suite: a per-input time limit and the checks every CLI answer must pass."""

from __future__ import annotations

import contextlib
import faulthandler
import signal
import sys

import pytest

PER_INPUT_S = 10  # generous on a loaded 2-core machine; the inputs take milliseconds when nothing hangs


class InputTimeout(Exception):
    """An input ran past its time limit: a hang, which the suite reports as a failure."""


@contextlib.contextmanager
def _limit(seconds: int, label: str):
    def expire(signum, frame):
        raise InputTimeout(f"{label} ran past {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    # SIGALRM cannot interrupt a hang inside C code (protobuf, onnx): past twice the limit, dump
    # every thread's stack and end the run, so a hang fails loudly instead of stalling CI
    faulthandler.dump_traceback_later(2 * seconds + 5, exit=True, file=sys.__stderr__)  # capsys swaps sys.stderr
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def time_limit():
    """``with time_limit(label):`` — fail with :class:`InputTimeout` if the block runs past PER_INPUT_S."""
    return lambda label, seconds=PER_INPUT_S: _limit(seconds, label)


def _assert_one_line_error(code: int, out: str, err: str, label: str) -> str:
    assert "Traceback" not in out + err, f"{label}: traceback\n{err}"
    assert code == 2, f"{label}: exit {code}, stderr: {err!r}"
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("edgefit: error: "), f"{label}: stderr is {err!r}"
    return lines[0]


@pytest.fixture
def one_line_error():
    """``one_line_error(code, out, err, label)``: exit 2, one ``edgefit: error:`` line on stderr, no
    traceback; returns the line."""
    return _assert_one_line_error
