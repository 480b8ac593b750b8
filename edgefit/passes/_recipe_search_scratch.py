"""The recipe search's scratch folder, and the removal of those a killed search left behind.

A search builds dozens of model files into a temporary folder (``edgefit-recipe-*`` in the
system's temp dir) that is removed when it ends; a search killed with ``kill -9`` (or a machine
that lost power) leaves it behind, tens of MB each. Each folder holds a marker with the owning
process's id and host, so the next search can tell a folder left behind from one in use: it
removes those older than :data:`STALE_AFTER_S` whose owner, on this host, is no longer alive.
A folder without a readable marker, another host's, or another user's is left alone.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PREFIX = "edgefit-recipe-"
MARKER = ".edgefit-owner"  # "<pid> <host>": the process that made the folder
# a search takes seconds to minutes: a folder a day old whose owner is gone is not in use
STALE_AFTER_S = 24 * 3600.0


@contextmanager
def scratch_folder() -> Iterator[Path]:
    """A fresh scratch folder marked as this process's, removed on exit; stale ones left by
    killed searches are removed first (:func:`remove_stale`)."""
    remove_stale()
    with tempfile.TemporaryDirectory(prefix=PREFIX) as tmp:
        folder = Path(tmp)
        (folder / MARKER).write_text(f"{os.getpid()} {socket.gethostname()}\n")
        yield folder


def remove_stale(root: Path | None = None, *, now: float | None = None) -> list[Path]:
    """Remove the ``edgefit-recipe-*`` folders in ``root`` (default: the temp dir) that are older
    than a day and whose owner is not alive; returns those removed. Never raises: a folder that
    cannot be read or removed stays."""
    root = Path(tempfile.gettempdir()) if root is None else root
    cutoff = (time.time() if now is None else now) - STALE_AFTER_S
    removed = []
    try:
        entries = list(root.glob(PREFIX + "*"))
    except OSError:
        return []
    for folder in entries:
        if _stale(folder, cutoff):
            shutil.rmtree(folder, ignore_errors=True)
            if not folder.exists():
                removed.append(folder)
    return removed


def _stale(folder: Path, cutoff: float) -> bool:
    try:
        st = folder.lstat()
        text = (folder / MARKER).read_text()
    except (OSError, UnicodeDecodeError):
        return False  # gone, unreadable, or made before folders were marked
    if not stat.S_ISDIR(st.st_mode) or st.st_mtime > cutoff:
        return False
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return False
    parts = text.split()
    if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) < 1:
        return False
    if parts[1] != socket.gethostname():  # another host's process: no way to tell from here
        return False
    return not alive(int(parts[0]))


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (one of another user counts as alive; on
    Windows, where signal 0 would end the process, every process counts as alive)."""
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, under another user
        return True
    return True
