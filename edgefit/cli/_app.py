"""The `edgefit` command: one Typer sub-app per noun, composed here."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from edgefit._version import __version__
from edgefit.cli import _bench, _calibrate, _estimate, _examples, _inspect, _optimize, _plan, _runtimes, _targets
from edgefit.cli import _check, _report
from edgefit.cli import _devices, _serve

app = typer.Typer(
    name="edgefit",
    help="Fit a trained model to a device's latency, memory and power envelope.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(_targets.app, name="targets")
app.add_typer(_examples.app, name="examples")
app.command("inspect")(_inspect.inspect)
app.command("bench")(_bench.bench)
app.add_typer(_runtimes.app, name="runtimes")
app.command("optimize")(_optimize.optimize)
app.command("estimate")(_estimate.estimate)
app.command("calibrate")(_calibrate.calibrate)
app.command("fidelity")(_calibrate.fidelity)
app.command("plan")(_plan.plan)
app.add_typer(_report.app, name="report")
app.command("check")(_check.check)
app.command("serve-plan")(_serve.serve_plan)
app.command("devices")(_devices.devices)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"edgefit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                    help="Print the version and exit.")] = None,
) -> None:
    """edgefit: hardware-aware model optimization."""
