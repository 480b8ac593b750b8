"""`edgefit serve-plan --model M --target T`: which LLM serving configurations fit, how fast, the
best one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

import edgefit
from edgefit import _format as fmt
from edgefit._lazy import lazy_import
from edgefit.cli._common import JsonOpt, console, emit

if TYPE_CHECKING:
    from edgefit import targets
    from edgefit.serve import _published as published
    from edgefit.serve._plan import ServeTax
    from edgefit.serve._published import ServingReport
else:  # published serving figures and the target model bring pydantic and YAML: loaded on use
    published, targets = lazy_import("edgefit.serve._published", "edgefit.targets")


def _opt(value: float | None, show) -> str:
    return "-" if value is None else show(value)


def serve_plan(
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="A preset (llama-3-70b, llama-3-8b, llama-2-70b, llama-2-7b, mistral-7b, gpt2) "
            "or a path to a Hugging Face config.json.",
        ),
    ] = None,
    target: Annotated[
        str, typer.Option("--target", "-t", help="Target id, alias or YAML path.")
    ] = "h100",
    context: Annotated[
        int | None,
        typer.Option(
            "--context",
            help="Tokens of KV cache per sequence (prompt + output). Default: min(8192, the "
            "model's max positions).",
        ),
    ] = None,
    prompt: Annotated[
        int | None,
        typer.Option(
            "--prompt",
            help="Prompt tokens prefilled for the time to first token. Default: half the context.",
        ),
    ] = None,
    slo_tpot: Annotated[
        str | None,
        typer.Option(
            "--slo-tpot",
            help="Objective on the time per output token, e.g. 50ms. Default: the target's "
            "latency budget.",
        ),
    ] = None,
    slo_ttft: Annotated[
        str | None,
        typer.Option("--slo-ttft", help="Objective on the time to first token, e.g. 2s."),
    ] = None,
    weights: Annotated[
        list[str] | None,
        typer.Option(
            "--weights",
            "-w",
            help="Weight dtype(s): fp32, fp16, bf16, fp8, int8, int4. Repeatable or "
            "comma-separated. Default: every one the target runs.",
        ),
    ] = None,
    kv: Annotated[
        list[str] | None,
        typer.Option(
            "--kv",
            help="KV cache dtype(s): fp32, fp16, bf16, fp8, int8. Default: fp16 and fp8 where the "
            "target runs them.",
        ),
    ] = None,
    gpus: Annotated[int, typer.Option("--gpus", "-n", help="Tensor-parallel devices.")] = 1,
    overhead: Annotated[
        str | None,
        typer.Option(
            "--overhead",
            help="Memory held back for the runtime per device: bytes (4GB) or a share (5%). "
            "Default: 5%.",
        ),
    ] = None,
    bandwidth_efficiency: Annotated[
        float | None,
        typer.Option(
            "--bandwidth-efficiency",
            help="Fraction of memory bandwidth decode reaches. Default: 0.8 (1.0 when "
            "calibrated).",
        ),
    ] = None,
    dataset_pb: Annotated[
        float | None,
        typer.Option(
            "--dataset-pb", help="Dataset moved per retraining iteration, in PB (iteration tax)."
        ),
    ] = None,
    usd_per_pb: Annotated[
        float | None,
        typer.Option("--usd-per-pb", help="Egress price in $ per PB (iteration tax)."),
    ] = None,
    published: Annotated[
        bool,
        typer.Option(
            "--published",
            help="Instead of planning: the planner against the target's published serving "
            "results (TTFT, TPOT, tokens/s per point, with sources).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Plan LLM serving: what fits memory, time per token and to first token, tokens/s."""
    if published:
        _published(target, as_json)
        return
    plan = edgefit.serve_plan(
        model,
        target,
        context=context,
        prompt=prompt,
        slo_tpot=slo_tpot,
        slo_ttft=slo_ttft,
        weights=weights or (),
        kv=kv or (),
        gpus=gpus,
        overhead=overhead,
        bandwidth_efficiency=bandwidth_efficiency,
        dataset_pb=dataset_pb,
        usd_per_pb=usd_per_pb,
    )
    emit(plan.to_dict(), as_json, lambda: _render(plan))


def _render(plan) -> None:
    a, hw, n = plan.arch, plan.hardware, plan.request.gpus
    label = "calibrated estimate" if hw.calibrated else "datasheet estimate"
    console.rule(
        f"[bold]{escape(a.name)}[/] on {n} × {escape(plan.target_name)} — serving plan ({label})"
    )
    console.print(
        f"model: {fmt.count(a.params)} parameters, {a.num_layers} layers, {a.num_heads} heads / "
        f"{a.num_kv_heads} KV heads × {a.head_dim}, vocab {a.vocab_size} "
        f"[dim]({escape(a.source)})[/]"
    )
    console.print(
        f"memory per device: {fmt.nbytes(hw.memory_budget.value)} {hw.memory_level}, "
        f"{fmt.nbytes(hw.overhead.value)} held back for the runtime; streams at "
        f"{fmt.rate(hw.bandwidth.value, 'B/s')} × {hw.bandwidth_efficiency.value:g} "
        f"({hw.stream_level})"
    )
    console.print(
        f"context {plan.context} tokens per sequence, prompt {plan.prompt_tokens}; objective: "
        "time per "
        f"output token ≤ {fmt.seconds(plan.slo_tpot_s)} "
        f"[dim]({escape(plan.slo_tpot_provenance)})[/]"
        + (
            f", time to first token ≤ {fmt.seconds(plan.request.slo_ttft_s)}"
            if plan.request.slo_ttft_s
            else ""
        )
    )
    console.print(_table(plan))
    for r in plan.rows:
        if r.reason:
            console.print(f"  {r.weights}/{r.kv}: {r.verdict}: {escape(r.reason)}")
    _best(plan)
    _tax(plan.tax)
    console.print("[dim]assumptions:[/]")
    for name, text in plan.assumptions.items():
        console.print(f"[dim]  {name}: {escape(text)}[/]")


def _table(plan) -> Table:
    per = " / GPU" if plan.request.gpus > 1 else ""
    table = Table(title=f"configurations at {plan.context}-token context (estimated)")
    cols = (
        "weights",
        "KV",
        f"weights{per}",
        "KV left",
        "KV / token",
        "max batch",
        "batch",
        "TPOT",
        "tokens/s",
        "batch-1 TPOT (bound)",
        "TTFT",
        "energy / token",
        "verdict",
    )
    for col in cols:
        table.add_column(col, justify="left" if col in ("weights", "KV", "verdict") else "right")
    for r in plan.rows:
        word = {"fits": "[green]fits[/]", "misses objective": "[yellow]misses objective[/]"}.get(
            r.verdict, "[red]does not fit[/]"
        )
        if plan.best is r:
            word = "[bold green]best[/]"
        table.add_row(
            r.weights,
            r.kv,
            fmt.nbytes(r.weight_bytes_per_device),
            fmt.nbytes(r.kv_budget_bytes) if r.kv_budget_bytes > 0 else "none",
            fmt.nbytes(r.kv_bytes_per_token),
            str(r.max_batch),
            str(r.batch) if r.batch else "-",
            fmt.seconds(r.at_batch.time_s) if r.at_batch else "-",
            f"{r.tokens_per_s:,.0f}" if r.batch else "-",
            f"{fmt.seconds(r.batch1.time_s)} ({fmt.seconds(r.batch1.floor_s)})",
            fmt.seconds(r.prefill.time_s),
            _opt(r.energy_per_token_j, fmt.joules),
            word,
        )
    return table


def _best(plan) -> None:
    best = plan.best
    if best is None:
        console.print("[red]no configuration fits and meets the objective[/]")
        return
    step = best.at_batch
    console.print(
        f"[bold]best:[/] weights {best.weights}, KV {best.kv}: batch {best.batch} → "
        f"{best.tokens_per_s:,.0f} tokens/s at {fmt.seconds(step.time_s)} per output token "
        f"({step.bound}-bound), TTFT {fmt.seconds(best.prefill.time_s)}, "
        f"{fmt.joules(best.energy_per_token_j)}/token (estimated)"
    )
    curve = ", ".join(f"{b}: {rate:,.0f}" for b, _, rate, _ in best.curve)
    console.print(f"tokens/s vs batch: {curve}")
    one = best.batch1
    console.print(
        f"bandwidth: batch-1 speed of light {fmt.seconds(one.floor_s)} per output token (the "
        f"step's bytes at the datasheet {fmt.rate(plan.hardware.bandwidth.value, 'B/s')}); "
        f"expected {one.floor_s / one.time_s:.0%} of it reached "
        f"({fmt.seconds(one.time_s)}: bandwidth efficiency, launches"
        + (", all-reduce)" if plan.request.gpus > 1 else ")")
        + (
            "; published batch-1 decode on H100 (NIM, TP2) reached 55-57%: "
            "`edgefit serve-plan --published`"
            if plan.hardware.target_id == "h100"
            else ""
        )
    )


def _published(target: str, as_json: bool) -> None:
    report = published.published_serving(targets.load_target(target))
    emit(report.to_dict(), as_json, lambda: _render_published(report))


_METRIC = {"ttft_ms": "TTFT", "tpot_ms": "TPOT", "output_tokens_per_s": "tokens/s"}


def _render_published(report: ServingReport) -> None:
    table = Table(
        title=f"serve-plan vs published serving results on {report.target} (nothing fitted)"
    )
    for col in ("#", "point", "TP", "ISL/OSL", "conc.", "metric", "published", "plan", "error"):
        table.add_column(col, justify="left" if col in ("point", "metric") else "right")
    for i, r in enumerate(report.rows, 1):
        p = r.point
        for j, c in enumerate(r.comparisons):
            unit = "ms" if c.metric.endswith("_ms") else "/s"
            table.add_row(
                str(i) if j == 0 else "",
                p.id if j == 0 else "",
                str(p.tp) if j == 0 else "",
                f"{p.isl}/{p.osl}" if j == 0 else "",
                str(p.concurrency) if j == 0 else "",
                _METRIC[c.metric],
                f"{c.published:,.1f} {unit}",
                f"{c.estimate:,.1f} {unit}",
                f"{c.error:+.0%}" if c.scored else "not scored",
            )
    console.print(table)
    for i, r in enumerate(report.rows, 1):
        bw = ""
        if r.sol_tpot_ms is not None:
            bw = (
                f" · decode speed of light {r.sol_tpot_ms:.2f} ms at batch "
                f"{r.batch}: plan reaches {r.planned_fraction:.0%}"
                + (
                    f", published {r.published_fraction:.0%}"
                    if r.published_fraction is not None
                    else ""
                )
            )
        console.print(f"  [{i}] {escape(r.point.source)} ({r.point.confidence}){bw}")
    every = report.overall
    console.print(
        f"{len(report.rows)} published points, {every.compared} figures compared: median "
        f"|error| {every.median_abs_error:.1%}, max {every.max_abs_error:.0%} "
        "("
        + ", ".join(
            f"{_METRIC[m]} {s.median_abs_error:.0%} over {s.compared}"
            for m, s in report.per_metric.items()
            if s.compared
        )
        + "); nothing fitted: the planner's default assumptions"
    )


def _tax(it: ServeTax) -> None:
    e = it.egress
    if e is None:
        console.print("iteration tax: no data egress on this target")
        return
    console.print(
        f"iteration tax: data egress ${e.usd_per_iteration:,.0f} per retraining iteration "
        f"({e.dataset_pb:g} PB × ${e.usd_per_pb:,.0f}/PB), {it.iterations_by_deadline} "
        "iterations "
        f"of {it.cycle_days:g} d by a {it.deadline_days:g}-day deadline → "
        f"${e.usd_by_deadline:,.0f} [dim]({escape(e.dataset_pb_provenance)}; "
        f"{escape(e.usd_per_pb_provenance)})[/]"
    )
