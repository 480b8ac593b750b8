"""The recipe search's scratch folders (edgefit.passes._recipe_search_scratch): marked with the
owner's pid, and those a killed search left behind (a day old, owner gone) removed at the start of
the next search, never one in use."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from edgefit.passes import _recipe_search_scratch as scratch

DAY = 24 * 3600


def _dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _folder(root: Path, name: str, pid: int | None, age_s: float) -> Path:
    folder = root / f"{scratch.PREFIX}{name}"
    (folder / "raw").mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"x" * 100)
    if pid is not None:
        (folder / scratch.MARKER).write_text(f"{pid} {socket.gethostname()}\n")
    old = time.time() - age_s
    os.utime(folder, (old, old))
    return folder


@pytest.fixture
def temp_root(tmp_path, monkeypatch) -> Path:
    """The system temp dir, as tempfile sees it, is a test folder."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


@pytest.mark.skipif(os.name == "nt", reason="pid liveness is not probed on Windows (kept)")
def test_only_a_day_old_folder_of_a_dead_process_is_removed(temp_root):
    dead = _folder(temp_root, "dead", _dead_pid(), 2 * DAY)
    live = _folder(temp_root, "live", os.getpid(), 2 * DAY)
    fresh = _folder(temp_root, "fresh", _dead_pid(), 3600)
    unmarked = _folder(temp_root, "unmarked", None, 2 * DAY)
    other_host = _folder(temp_root, "elsewhere", None, 2 * DAY)
    (other_host / scratch.MARKER).write_text(f"{_dead_pid()} not-{socket.gethostname()}\n")
    other_tool = temp_root / "someone-else-1"
    other_tool.mkdir()
    os.utime(other_tool, (0, 0))

    assert scratch.remove_stale() == [dead]
    assert not dead.exists()
    assert all(p.is_dir() for p in (live, fresh, unmarked, other_host, other_tool))


def test_a_search_folder_is_marked_removes_stale_ones_and_goes_away(temp_root):
    dead = _folder(temp_root, "dead", _dead_pid(), 2 * DAY)
    live = _folder(temp_root, "live", os.getpid(), 2 * DAY)
    with scratch.scratch_folder() as folder:
        assert folder.parent == temp_root and folder.name.startswith(scratch.PREFIX)
        pid, host = (folder / scratch.MARKER).read_text().split()
        assert (int(pid), host) == (os.getpid(), socket.gethostname())
        assert not dead.exists() and live.is_dir()
        # a search running beside this one (same pid here) never removes it, however old
        os.utime(folder, (0, 0))
        assert scratch.remove_stale() == []
    assert not folder.exists()


def test_a_garbled_marker_is_left_alone(temp_root):
    folder = _folder(temp_root, "garbled", None, 2 * DAY)
    for text in ("", "x y", "0 " + socket.gethostname(), "-5 " + socket.gethostname()):
        (folder / scratch.MARKER).write_text(text)
        assert scratch.remove_stale() == [] and folder.is_dir()


def test_liveness():
    assert scratch.alive(os.getpid())
    if os.name != "nt":
        assert not scratch.alive(_dead_pid())
