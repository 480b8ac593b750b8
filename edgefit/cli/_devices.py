"""`edgefit devices`: the Ray device farm — nodes, the targets they serve, the runtimes that run
there."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from edgefit import _format as fmt
from edgefit.cli._common import JsonOpt, console, emit
from edgefit.distributed import require_ray
from edgefit.distributed._devices import list_devices


def devices(
    ray_address: Annotated[
        str,
        typer.Option(
            "--ray-address",
            help="Ray cluster: auto (started with `ray start`), HOST:PORT, or local (start one "
            "here for a look).",
        ),
    ] = "auto",
    as_json: JsonOpt = False,
) -> None:
    """List the Ray cluster's nodes, the devices each serves and what runs there.

    A node serves a device when it offers the resource device:<target>.
    """
    require_ray()
    farm = list_devices(ray_address)
    emit(farm, as_json, lambda: _render(farm))


def _render(farm: dict) -> None:
    table = Table(title=f"Ray cluster at {farm['address']}: {len(farm['nodes'])} live node(s)")
    for col in (
        "node",
        "CPUs / GPUs",
        "memory",
        "serves",
        "native runtimes that run there",
        "runtimes available",
    ):
        table.add_column(col, overflow="fold")
    for n in farm["nodes"]:
        serves = [
            f"{d['resource']} → {d['target']}"
            if d["target"]
            else f"{d['resource']} (unknown target)"
            for d in n["devices"]
        ]
        runs = [
            "; ".join(
                f"{d['target']}: {', '.join(d['runs_here']) or 'none'}"
                for d in n["devices"]
                if d["target"]
            )
        ]
        avail = ", ".join(r["name"] for r in n.get("runtimes", []) if r["available"]) or n["probe"]
        table.add_row(
            escape(f"{n.get('host') or '?'} ({n['address']})"),
            f"{n['cpus']:g} / {n['gpus']:g}",
            fmt.nbytes(n["memory_bytes"]),
            escape("\n".join(serves) or "-"),
            escape(runs[0] or "-"),
            escape(avail),
        )
    console.print(table)
    if not any(n["devices"] for n in farm["nodes"]):
        console.print(
            "no node serves a device: start one with ray start --address=HEAD:6379 "
            "--resources='{\"device:orin\": 1}'",
            markup=False,
        )
