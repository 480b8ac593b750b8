"""Tensor lifetimes over the execution order and the peak activation memory they imply.

A tensor is born when its producer runs (graph inputs before the first node) and dies after its
last consumer (graph outputs live to the end). While node ``i`` runs, its inputs and outputs are
all live: that is the memory an arena-style runtime must hold at that step. Weights are not
activations and are accounted separately (they live in flash/DRAM for the whole run).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Lifetime:
    tensor: str
    nbytes: int
    born: int  # index of the producing node; -1 for graph inputs
    dies: int  # index of the last consuming node; n_nodes for graph outputs


def lifetimes(
    nodes: list[tuple[list[str], list[str]]],
    graph_inputs: list[str],
    graph_outputs: list[str],
    nbytes: dict[str, int],
) -> list[Lifetime]:
    """Lifetimes of every activation tensor; ``nodes`` is ``[(inputs, outputs), ...]`` in execution
    order."""
    born: dict[str, int] = {name: -1 for name in graph_inputs if name in nbytes}
    dies: dict[str, int] = {}
    for i, (ins, outs) in enumerate(nodes):
        for name in ins:
            if name in nbytes:
                dies[name] = i
        for name in outs:
            if name in nbytes:
                born.setdefault(name, i)
    end = len(nodes)
    for name in graph_outputs:
        if name in born:
            dies[name] = end
    return [Lifetime(t, nbytes[t], b, dies.get(t, b)) for t, b in born.items()]


def peak_memory(lives: list[Lifetime], n_nodes: int) -> tuple[int, int]:
    """``(peak_bytes, node_index)``: the most activation bytes live while any one node runs."""
    delta = [0] * (n_nodes + 2)
    for life in lives:
        start = max(life.born, 0)
        stop = min(max(life.dies, start), n_nodes - 1) if n_nodes else 0
        delta[start] += life.nbytes
        delta[stop + 1] -= life.nbytes
    peak, at, live = 0, 0, 0
    for i in range(max(n_nodes, 1)):
        live += delta[i]
        if live > peak:
            peak, at = live, i
    return peak, at
