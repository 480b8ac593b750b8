"""`edgefit serve-plan` as one library call: which LLM serving configurations fit a target, how
fast, the best one (:func:`serve_plan`, answered by a :class:`~edgefit.serve.ServePlan`).

:func:`~edgefit.serve.plan_serving` takes a built :class:`~edgefit.serve.ServeRequest`;
:func:`serve_plan` takes the command's options as Python values (durations and the overhead as
numbers or as the command's text) and builds the request.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import replace

from edgefit.errors import EdgefitError
from edgefit.serve._hardware import Assumptions
from edgefit.serve._plan import ServePlan, plan_serving
from edgefit.serve._request import ServeRequest, parse_duration, parse_overhead


def serve_plan(
    model: str | os.PathLike[str] | None,
    target: str | os.PathLike[str] = "h100",
    *,
    context: int | None = None,
    prompt: int | None = None,
    slo_tpot: str | float | None = None,
    slo_ttft: str | float | None = None,
    weights: str | Iterable[str] = (),
    kv: str | Iterable[str] = (),
    gpus: int = 1,
    overhead: str | None = None,
    bandwidth_efficiency: float | None = None,
    dataset_pb: float | None = None,
    usd_per_pb: float | None = None,
) -> ServePlan:
    """Plan serving ``model`` (a preset such as ``"llama-3-8b"`` or a Hugging Face
    ``config.json`` path) on ``gpus`` tensor-parallel devices of ``target``: every (weights, KV)
    dtype pair, what fits memory, time per output token and to first token, tokens/s, the best.

    ``context``: KV tokens per sequence (default min(8192, the model's max positions));
    ``prompt``: prefill tokens for the time to first token (default half the context).
    ``slo_tpot``/``slo_ttft``: objectives in seconds or as text (``"50ms"``; default TPOT: the
    target's latency budget). ``weights``/``kv``: dtypes, a list or comma-separated (default:
    every one the target runs). ``overhead``: memory held back per device, ``"4GB"`` or ``"5%"``.
    Bad input raises :class:`~edgefit.errors.EdgefitError`.

    >>> import edgefit
    >>> plan = edgefit.serve_plan("llama-3-8b", "h100", context=4096, weights="fp8", kv="fp8")
    >>> plan.best.weights, plan.best.kv, plan.best.batch > 1
    ('fp8', 'fp8', True)
    """
    if model is None:
        raise EdgefitError(
            "serve-plan needs a model",
            where="--model",
            fix="pass --model llama-3-70b (a preset or a config.json), or --published",
        )
    over_bytes, over_frac = parse_overhead(overhead) if overhead else (None, None)
    assumptions = Assumptions(overhead_bytes=over_bytes, bandwidth_efficiency=bandwidth_efficiency)
    if over_frac is not None:
        assumptions = replace(assumptions, overhead_fraction=over_frac)
    request = ServeRequest(
        model=str(model),
        target=str(target),
        context=context,
        prompt_tokens=prompt,
        slo_tpot_s=parse_duration(slo_tpot, "--slo-tpot") if slo_tpot is not None else None,
        slo_ttft_s=parse_duration(slo_ttft, "--slo-ttft") if slo_ttft is not None else None,
        weights=_names(weights),
        kv=_names(kv),
        gpus=gpus,
        dataset_pb=dataset_pb,
        usd_per_pb=usd_per_pb,
        assumptions=assumptions,
    )
    return plan_serving(request)


def _names(values: str | Iterable[str]) -> tuple[str, ...]:
    """A dtype list as ServeRequest takes it (it splits commas and checks each name)."""
    return (values,) if isinstance(values, str) else tuple(values)
