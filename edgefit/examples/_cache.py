"""Cache of trained example weights under ``user_cache_dir()/examples``.

Files are plain ``state_dict``s written with ``torch.save`` and read back with
``weights_only=True``, so loading a cache file never unpickles arbitrary objects. Writes are atomic
(temporary file, then ``os.replace``): a crash or a concurrent build never leaves a half-written
file under the final name.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefit._io import write_atomic
from edgefit._lazy import lazy_import
from edgefit._resources import user_cache_dir

if TYPE_CHECKING:
    import torch
else:
    torch = lazy_import("torch")


def examples_cache_dir() -> Path:
    return user_cache_dir() / "examples"


def cache_key(payload: dict[str, Any]) -> str:
    """A short content hash of everything that determines a trained model.

    >>> cache_key({"a": 1, "b": [2, 3]}) == cache_key({"b": [2, 3], "a": 1})
    True
    """
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save_state_dict(state: dict[str, torch.Tensor], path: Path) -> Path:
    """Write ``state`` to ``path`` atomically; returns ``path``."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return write_atomic(path, buffer.getvalue())


def load_state_dict(path: Path) -> dict[str, torch.Tensor] | None:
    """The cached ``state_dict`` at ``path``, or ``None`` when missing or unreadable (then
    retrain)."""
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a corrupt or foreign file: treat as a cache miss, it gets overwritten
        return None
