"""Write a cascade run's files: cascade.json, cascade-config.json, cascade.html, cascade.md and a
model card per tier, each atomically.

Everything is rendered, and the config validated against its schema, before the first file is
written: a config the app could not read stops the run with one line instead of leaving a half-new
folder. (The calibrated models and sidecars are written earlier, by the run; the result already
names them.)
"""

from __future__ import annotations

import re
from pathlib import Path

from edgefit._io import ensure_dir, to_json, write_atomic
from edgefit.cascade._card import model_card
from edgefit.cascade._config import cascade_config, validate_config
from edgefit.cascade._render import render_cascade_html, render_cascade_md
from edgefit.cascade._types import CascadeResult

CARDS_DIR = "model-cards"


def card_names(result: CascadeResult) -> list[str]:
    """One file name per tier: its name made safe for a file system, numbered where two would
    clash."""
    names: list[str] = []
    for k, tier in enumerate(result.tiers):
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", tier.spec.name).strip("._") or f"tier{k + 1}"
        names.append(f"{stem}.md" if f"{stem}.md" not in names else f"{k + 1}-{stem}.md")
    return names


def write_outputs(result: CascadeResult, out_dir: str | Path, *, command: str) -> dict[str, Path]:
    """Write the run's outputs into ``out_dir``; returns file name (relative to ``out_dir``) →
    path.

    >>> out = Path("edgefit-out/cascade")
    >>> write_outputs(result, out, command="edgefit cascade --example digits")  # doctest: +SKIP
    {'cascade.json': PosixPath('edgefit-out/cascade/cascade.json'), …,
     'model-cards/tier1.md': …}
    """
    out_dir = ensure_dir(out_dir)  # a read-only or full folder: one line before any rendering work
    config = cascade_config(result, base=out_dir)
    validate_config(config)
    texts = {
        "cascade.json": to_json(result.to_dict()) + "\n",
        "cascade-config.json": to_json(config) + "\n",
        "cascade.html": render_cascade_html(result),
        "cascade.md": render_cascade_md(result),
    }
    for k, name in enumerate(card_names(result)):
        texts[f"{CARDS_DIR}/{name}"] = model_card(result, k, command=command)
    return {name: write_atomic(out_dir / name, text) for name, text in texts.items()}
