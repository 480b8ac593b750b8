"""`edgefit examples list`: the built-in models."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from edgefit.cli._common import JsonOpt, console, emit
from edgefit.examples import list_examples

app = typer.Typer(
    help="Built-in example models (use them with --example NAME).", no_args_is_help=True
)


@app.command("list")
def list_(
    pattern: Annotated[str, typer.Argument(help="Shell-style pattern.")] = "*",
    as_json: JsonOpt = False,
) -> None:
    """List the built-in examples."""
    specs = list_examples(pattern)
    rows = [
        {
            "name": s.name,
            "track": s.track,
            "trained": s.trained,
            "input_shape": list(s.input_shape),
            "description": s.description,
        }
        for s in specs
    ]

    def render() -> None:
        table = Table(title="built-in examples")
        for col in ("name", "track", "weights", "input", "description"):
            table.add_column(col, overflow="fold")
        for s in specs:
            table.add_row(
                s.name,
                s.track,
                "trained on real data" if s.trained else "random (architecture only)",
                "×".join(map(str, s.input_shape)),
                s.description,
            )
        console.print(table)

    emit(rows, as_json, render)
