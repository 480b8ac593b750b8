"""Find the shipped data folders (targets/, profiles/, kernels/).

In a wheel they live at ``edgefit/_data/<name>`` (hatchling force-include); in a source checkout
they are the repository's top-level folders. ``EDGEFIT_DATA_DIR`` overrides both (tests, custom
installs).
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_FOLDERS = ("targets", "profiles", "kernels")
_PACKAGE_DIR = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """Return the folder holding the shipped ``name`` data (one of :data:`DATA_FOLDERS`).

    >>> data_dir("targets").name
    'targets'
    """
    if name not in DATA_FOLDERS:
        raise ValueError(f"unknown data folder {name!r}; expected one of {DATA_FOLDERS}")
    override = os.environ.get("EDGEFIT_DATA_DIR")
    if override:
        return Path(override) / name
    installed = _PACKAGE_DIR / "_data" / name
    if installed.is_dir():
        return installed
    return _PACKAGE_DIR.parent / name


def user_cache_dir() -> Path:
    """Where edgefit caches trained examples and exported models (``EDGEFIT_CACHE_DIR``
    overrides)."""
    override = os.environ.get("EDGEFIT_CACHE_DIR")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgefit"
