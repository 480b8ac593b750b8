"""`edgefit inspect MODEL`: the layer table, totals and peak activation memory."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from edgefit import _format as fmt
from edgefit.cli._common import (
    ExampleOpt,
    InputShapeOpt,
    JsonOpt,
    ModelArg,
    console,
    emit,
    err_console,
)
from edgefit.cli._model import resolve_model


def inspect(
    model: ModelArg = None,
    example: ExampleOpt = None,
    input_shape: InputShapeOpt = None,
    top: Annotated[
        int, typer.Option(help="Show this many layers (by MACs); 0 = all in order.")
    ] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Per-layer MACs, parameters, bytes and dtype; totals; peak activation memory.

    Counted from the graph's shapes.
    """
    graph = resolve_model(model, example, input_shape)

    def render() -> None:
        layers = sorted(graph.layers, key=lambda layer: -layer.macs)[:top] if top else graph.layers
        table = Table(
            title=f"{graph.source}: {len(graph.layers)} layers (counted from the ONNX graph)"
        )
        for col in (
            "#",
            "name",
            "op",
            "kind",
            "dtype",
            "MACs",
            "params",
            "weights",
            "out",
            "output shape",
        ):
            table.add_column(
                col,
                justify="right" if col in ("#", "MACs", "params", "weights", "out") else "left",
            )
        for layer in layers:
            table.add_row(
                str(layer.index),
                layer.name,
                layer.op,
                layer.kind,
                layer.dtype,
                fmt.count(layer.macs) if layer.macs else "-",
                fmt.count(layer.params) if layer.params else "-",
                fmt.nbytes(layer.weight_bytes) if layer.weight_bytes else "-",
                fmt.nbytes(layer.output_bytes),
                "×".join(map(str, layer.output_shape)),
            )
        console.print(table)
        s = graph.summary()
        console.print(
            f"total: {fmt.count(s['macs'], 'MACs')}, {fmt.count(s['params'])} params, weights "
            f"{fmt.nbytes(s['weight_bytes'])}, peak activation memory "
            f"{fmt.nbytes(s['peak_activation_bytes'])} "
            f"(at {s['peak_at_layer']}), compute dtype {s['compute_dtype']}"
        )
        for note in graph.notes:
            console.print(f"note: {note}")
        for warning in graph.warnings:
            err_console.print(f"warning: {warning}")

    emit(graph.to_dict(), as_json, render)
