"""The `edgefit` command: one Typer sub-app per noun, composed here.

Each command's module is imported only when that command runs (:mod:`edgefit.cli._lazy`), so a call
pays for what it uses: `edgefit targets list` loads pydantic and YAML, not onnx, torch or optuna.
The order below is the order `edgefit --help` lists them in (commands, then command groups).
"""

from __future__ import annotations

from typing import Annotated

import typer

from edgefit._version import __version__
from edgefit.cli._lazy import LazyCommand, lazy_group

COMMANDS = (
    LazyCommand(
        "inspect",
        "edgefit.cli._inspect:inspect",
        "Per-layer MACs, parameters, bytes and dtype; totals; peak activation memory.",
    ),
    LazyCommand(
        "bench",
        "edgefit.cli._bench:bench",
        "Convert MODEL for a runtime, time it in an isolated child, check outputs against fp32.",
    ),
    LazyCommand(
        "optimize",
        "edgefit.cli._optimize:optimize",
        "Find the variant of a model that fits a target's envelope with the least accuracy lost.",
    ),
    LazyCommand(
        "estimate",
        "edgefit.cli._estimate:estimate",
        "Estimate a model on one or more targets (datasheet or calibrated, with error bars).",
    ),
    LazyCommand(
        "calibrate",
        "edgefit.cli._calibrate:calibrate",
        "Measure the kernel catalog on a runtime, fit efficiencies, write the profile.",
    ),
    LazyCommand(
        "fidelity",
        "edgefit.cli._fidelity:fidelity",
        "Estimate vs measured latency on a model zoo, or vs a target's published measurements.",
    ),
    LazyCommand(
        "plan",
        "edgefit.cli._plan:plan",
        "The iteration tax: cycle and cost per iteration, bottleneck, what-ifs, accuracy by the "
        "deadline, goal.",
    ),
    LazyCommand(
        "check",
        "edgefit.cli._check:check",
        "Check a model against a target's envelope (and a baseline run) with CI exit codes: 0 "
        "pass, 1 fail, 2 usage.",
    ),
    LazyCommand(
        "serve-plan",
        "edgefit.cli._serve:serve_plan",
        "Plan LLM serving: what fits memory, time per token and to first token, tokens/s.",
    ),
    LazyCommand(
        "cascade",
        "edgefit.cli._cascade:cascade",
        "Plan a cascade of tiers: calibrate each, pick thresholds under a budget, write outputs.",
    ),
    LazyCommand(
        "devices",
        "edgefit.cli._devices:devices",
        "List the Ray cluster's nodes, the devices each serves and what runs there.",
    ),
    LazyCommand(
        "targets",
        "edgefit.cli._targets:app",
        "Hardware target profiles: list, inspect, validate, export.",
    ),
    LazyCommand(
        "examples",
        "edgefit.cli._examples:app",
        "Built-in example models (use them with --example NAME).",
    ),
    LazyCommand(
        "runtimes",
        "edgefit.cli._runtimes:app",
        "Inference runtimes edgefit can convert for and measure on.",
    ),
    LazyCommand(
        "report",
        "edgefit.cli._report:app",
        "Reports of a run: report.html (plots) and report.md from results.json; the results "
        "schema.",
    ),
)

app = typer.Typer(
    name="edgefit",
    help="Fit a trained model to a device's latency, memory and power envelope.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=lazy_group(COMMANDS),
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"edgefit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool | None,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = None,
) -> None:
    """edgefit: hardware-aware model optimization."""
