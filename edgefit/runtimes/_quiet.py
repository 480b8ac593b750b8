"""Silence converters that print progress bars and C++ log lines straight to file descriptors 1 and
2.

litert-torch, its MLIR converter (absl/glog) and coremltools write to the process's stdout/stderr,
which would garble ``edgefit bench --json``. :func:`captured_output` points both descriptors at a
temporary file for the duration of a call and keeps the text, so a failure can still show it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator


class Captured:
    """What was written while captured (filled when the block exits)."""

    text: str = ""

    def tail(self, chars: int = 1500) -> str:
        return self.text[-chars:]


@contextlib.contextmanager
def captured_output() -> Iterator[Captured]:
    """Redirect fds 1 and 2 (and Python's sys.stdout/stderr) to a temporary file inside the
    block."""
    result = Captured()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, ValueError):
            pass
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = [os.dup(1), os.dup(2)]
        py_streams = (sys.stdout, sys.stderr)
        text_sink = open(sink.fileno(), "w", closefd=False, buffering=1, errors="replace")
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            sys.stdout = sys.stderr = text_sink
            yield result
        finally:
            text_sink.flush()
            sys.stdout, sys.stderr = py_streams
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            result.text = sink.read().decode(errors="replace")
