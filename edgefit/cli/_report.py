"""`edgefit report RESULTS.json [--html|--md]`: re-render a run's reports; `edgefit report schema`:
its JSON Schema.

``render`` is the default subcommand, so ``edgefit report out/results.json`` works as the issue
asks.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from edgefit._io import to_json
from edgefit.cli._common import JsonOpt, QuietOpt, console, emit, err_console
from edgefit.errors import EdgefitError
from edgefit.report import (
    build_report,
    load_results,
    render_html,
    render_md,
    results_schema,
    write_reports,
)


class _RenderByDefault(TyperGroup):
    """``edgefit report X …`` means ``edgefit report render X …`` unless X names a subcommand."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["render", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_RenderByDefault,
    no_args_is_help=True,
    help="Reports of a run: report.html (plots) and report.md from results.json; the results "
    "schema.",
)


@app.command("render")
def render(
    results: Annotated[
        Path,
        typer.Argument(help="A results.json written by `edgefit optimize`.", show_default=False),
    ],
    html: Annotated[bool, typer.Option("--html", help="Write report.html only.")] = False,
    md: Annotated[bool, typer.Option("--md", help="Write report.md only.")] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Output folder (default: next to RESULTS); "
            "'-' prints the one format chosen by --html or --md.",
        ),
    ] = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Re-render report.html and report.md from a results.json (both, unless --html or --md)."""
    res = load_results(results)
    both = html == md
    if out is not None and str(out) == "-":
        _print(res, results.parent, html=html, md=md)
        return
    status = (
        None
        if (quiet or as_json)
        else err_console.status("rendering the report (re-estimating the chosen model)")
    )
    if status:
        status.start()
    try:
        files = write_reports(
            out or results.parent,
            res,
            html=both or html,
            md=both or md,
            results_dir=results.parent,
        )
    finally:
        if status:
            status.stop()
    emit({"files": files}, as_json, lambda: console.print("wrote " + ", ".join(files.values())))


def _print(res: dict, results_dir: Path, *, html: bool, md: bool) -> None:
    if html == md:
        raise EdgefitError("--out - prints one report", where="--out", fix="add --html or --md")
    rep = build_report(res, results_dir=results_dir)
    sys.stdout.write(render_html(rep) if html else render_md(rep))


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema (draft 2020-12) of results.json, for pipelines that validate without
    edgefit."""
    sys.stdout.write(to_json(results_schema()) + "\n")
