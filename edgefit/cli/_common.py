"""Shared CLI pieces: options and output (rich tables or --json).

Every command imports this module, so it stays light: model intake lives in
:mod:`edgefit.cli._model`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from edgefit._io import to_json

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print only the result (no progress).")
]
ExecutorOpt = Annotated[
    str,
    typer.Option(
        "--executor", help='local (this process) or ray (Ray tasks; pip install "edgefit[ray]").'
    ),
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="Ray cluster: auto, HOST:PORT or ray://HOST:10001 (default: start Ray here).",
    ),
]
ModelArg = Annotated[
    Path | None,
    typer.Argument(
        help="An .onnx file. Omit it and pass --example to use a built-in model.",
        show_default=False,
    ),
]
ExampleOpt = Annotated[
    str | None,
    typer.Option("--example", "-e", help="A built-in example (edgefit examples list)."),
]
InputShapeOpt = Annotated[
    str | None,
    typer.Option(
        "--input-shape", help="Fix dynamic dims: 1x3x224x224 or name:1x3x224x224;name2:1x10"
    ),
]


def emit(data: Any, as_json: bool, render: Callable[[], None]) -> None:
    """Print ``data`` as JSON for machines, or call ``render`` for people."""
    if as_json:
        sys.stdout.write(to_json(data) + "\n")
    else:
        render()
