"""Small I/O helpers: atomic writes (no half-written output file, ever) and JSON for machines.

Every output file goes through :func:`write_atomic` or :func:`copy_atomic`: the bytes land in a
hidden temporary file beside the target (``.NAME.<pid>.<random>.tmp``) and ``os.replace`` puts it
in place, so a reader — or a rerun after ``kill -9`` — sees the old file or the new one, never half
of one. A killed writer leaves its temporary file behind; :func:`remove_stale_temps` deletes those
whose process is gone.

A full disk, a read-only folder or missing rights is an :class:`~edgefit.errors.EdgefitError` (one
line, exit 2) naming the path and the fix, raised here so that every writer — library or CLI — says
the same.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgefit.errors import EdgefitError

TEMP_SUFFIX = ".tmp"
# errors that say "this place cannot take the file" (not a bug): what → fix
_WRITE_ERRORS = {
    errno.ENOSPC: ("the disk is full", "free space there, or pass another --out folder"),
    errno.EDQUOT: ("the disk quota is exceeded", "free space there, or pass another --out folder"),
    errno.EROFS: ("the file system is read-only", "pass an --out folder on a writable disk"),
    errno.EACCES: (
        "permission denied",
        "make the folder writable for this user, or pass another --out folder",
    ),
    errno.EPERM: (
        "operation not permitted",
        "make the folder writable for this user, or pass another --out folder",
    ),
}


class WriteError(EdgefitError):
    """An output file cannot be written: the disk is full, the folder read-only, or the rights
    missing."""


def write_error(exc: OSError, path: str | Path) -> WriteError | None:
    """The one-line error for an ``OSError`` that means "cannot write here" (full, read-only, no
    rights), or None for any other ``OSError`` (a bug, re-raised as is)."""
    known = _WRITE_ERRORS.get(exc.errno or -1)
    if known is None:
        return None
    what, fix = known
    return WriteError(f"cannot write here: {what}", where=str(path), fix=fix)


def _guarded(path: Path, action: Callable[[], Any]) -> Any:
    try:
        return action()
    except OSError as exc:
        err = write_error(exc, path)
        if err is None:
            raise
        raise err from exc


def ensure_dir(path: str | Path) -> Path:
    """Create folder ``path`` (and its parents) and check that files can be written in it, so that
    a read-only or full output folder fails at once with one line instead of after the work is
    done."""
    path = Path(path)
    _guarded(path, lambda: path.mkdir(parents=True, exist_ok=True))
    probe = write_atomic(path / ".edgefit-write-check", b"edgefit checks that it can write here\n")
    probe.unlink(missing_ok=True)
    return path


def _temp_in(folder: Path, name: str) -> tuple[int, str]:
    return tempfile.mkstemp(prefix=f".{name}.{os.getpid()}.", suffix=TEMP_SUFFIX, dir=folder)


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file, ``fsync`` and ``os.replace``.

    >>> write_atomic("out/results.json", "{}\\n")  # doctest: +SKIP
    PosixPath('out/results.json')
    """
    path = Path(path)
    _guarded(path.parent, lambda: path.parent.mkdir(parents=True, exist_ok=True))
    payload = data if isinstance(data, bytes) else data.encode("utf-8")
    fd, tmp = _guarded(path, lambda: _temp_in(path.parent, path.name))
    try:
        try:
            _guarded(path, lambda: _write_all(fd, payload))
        finally:
            os.close(fd)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        _guarded(path, lambda: os.replace(tmp, path))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _write_all(fd: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)  # the bytes are on disk before the name points at them


def copy_atomic(src: str | Path, dst: str | Path) -> Path:
    """Copy file ``src`` to ``dst`` atomically (same guarantees as :func:`write_atomic`)."""
    dst = Path(dst)
    _guarded(dst.parent, lambda: dst.parent.mkdir(parents=True, exist_ok=True))
    fd, tmp = _guarded(dst, lambda: _temp_in(dst.parent, dst.name))
    os.close(fd)
    try:

        def copy() -> None:
            shutil.copyfile(src, tmp)
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, dst)

        _guarded(dst, copy)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dst


def remove_stale_temps(folder: str | Path, *, recursive: bool = False, name: str = "") -> int:
    """Delete temporary files (and folders) named like those of :func:`write_atomic`
    (``.NAME.<pid>.<x>.tmp``) in ``folder`` whose writing process no longer runs (left by a killed
    run); returns how many. A live writer's file is kept. ``name`` limits it to temporaries of that
    name (``.NAME.…``)."""
    folder = Path(folder)
    pattern = f"{'**/' if recursive else ''}.{name}*{TEMP_SUFFIX}"
    removed = 0
    for tmp in folder.glob(pattern):
        parts = tmp.name[: -len(TEMP_SUFFIX)].rsplit(".", 2)  # ".NAME", pid, random
        if len(parts) != 3 or not parts[1].isdigit() or _alive(int(parts[1])):
            continue
        try:
            if tmp.is_dir():  # a folder being built (exports)
                shutil.rmtree(tmp)
            else:
                tmp.unlink()
            removed += 1
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _plain(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def to_json(obj: Any, *, indent: int | None = 2) -> str:
    """JSON with NaN/inf as null and numpy scalars as numbers (strict JSON for other tools)."""
    return json.dumps(_plain(obj), indent=indent, allow_nan=False)
