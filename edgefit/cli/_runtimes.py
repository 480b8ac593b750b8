"""`edgefit runtimes list`: the registered runtimes, whether each can run here, and why (not)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from edgefit.cli._common import JsonOpt, console, emit
from edgefit.runtimes import list_runtimes

app = typer.Typer(
    help="Inference runtimes edgefit can convert for and measure on.", no_args_is_help=True
)


@app.command("list")
def list_(
    pattern: Annotated[str, typer.Argument(help="Shell-style pattern on the name.")] = "*",
    as_json: JsonOpt = False,
) -> None:
    """List the runtimes with their availability on this machine and the reason."""
    infos = list_runtimes(pattern)
    rows = [info.to_dict() for info in infos]

    def render() -> None:
        table = Table(title="edgefit runtimes (availability checked on this machine)")
        for col in ("name", "available", "version", "reason", "description"):
            table.add_column(col, overflow="fold")
        for r in rows:
            table.add_row(
                r["name"],
                "[green]yes[/]" if r["available"] else "[red]no[/]",
                r["version"] or "-",
                escape(r["reason"]),
                escape(r["description"]),
            )
        console.print(table)

    emit(rows, as_json, render)
