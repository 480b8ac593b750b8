"""`edgefit bench MODEL --runtime NAME`: convert, measure in a child process, print latency and
parity."""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from edgefit import _format as fmt
from edgefit._lazy import lazy_import
from edgefit.cli._common import (
    ExampleOpt,
    ExecutorOpt,
    InputShapeOpt,
    JsonOpt,
    ModelArg,
    RayAddressOpt,
    console,
    emit,
    err_console,
)
from edgefit.cli._model import resolve_model
from edgefit.distributed import LOCAL_DEVICE, require_ray
from edgefit.distributed._remote import measure_on_device
from edgefit.errors import EdgefitError
from edgefit.runtimes import MeasureSettings, get_runtime
from edgefit.targets import load_target

_observed = lazy_import("edgefit.calibrate._observed")

CONTENDED = 0.05  # above this CPU-wait share, say that the figures carry foreign load
RuntimeOpt = Annotated[
    str, typer.Option("--runtime", "-r", help="A runtime (edgefit runtimes list).")
]
PrecisionOpt = Annotated[
    str, typer.Option("--precision", "-p", help="fp32, fp16, int8 (static QDQ) or int8-dynamic.")
]


def parse_cpus(text: str | None) -> tuple[int, ...] | None:
    """``"1"``, ``"0,2"`` or ``"0-3"`` → CPU ids.

    >>> parse_cpus("0-2,5")
    (0, 1, 2, 5)
    """
    if text is None:
        return None
    cpus: list[int] = []
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            lo, _, hi = part.partition("-")
            cpus.extend(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        cpus = []
    if not cpus:
        raise EdgefitError(
            f"cannot read CPU list '{text}'", where="--cpus", fix="write it like 1, 0,2 or 0-3"
        )
    return tuple(cpus)


def bench(
    model: ModelArg = None,
    example: ExampleOpt = None,
    input_shape: InputShapeOpt = None,
    runtime: RuntimeOpt = "onnxruntime",
    precision: Annotated[
        str | None,
        typer.Option(
            "--precision",
            "-p",
            help="fp32, fp16, int8 (static QDQ) or int8-dynamic (default: the runtime's own, fp32 "
            "for most; int8 for Vela).",
        ),
    ] = None,
    threads: Annotated[
        int, typer.Option(help="Intra-op threads (1: the most repeatable figure on a busy host).")
    ] = 1,
    runs: Annotated[
        int,
        typer.Option(help="Timed runs at least; extended to 200 for a stable p99 within 10 s."),
    ] = 100,
    warmup: Annotated[int, typer.Option(help="Untimed warm-up runs.")] = 10,
    cpus: Annotated[
        str | None, typer.Option(help="Pin the measurement to these CPUs: 1, 0,2 or 0-3.")
    ] = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out-dir", "-o", help="Keep the converted model here (default: discard)."),
    ] = None,
    executor: ExecutorOpt = "local",
    ray_address: RayAddressOpt = None,
    device: Annotated[
        str,
        typer.Option(
            "--device",
            help="With --executor ray: the target whose farm node measures (device:<target>).",
        ),
    ] = "host-cpu",
    record: Annotated[
        bool,
        typer.Option(
            help="onnxruntime here: profile the model after timing it and keep the run for "
            "`edgefit calibrate --refit` (<cache>/measured/).",
        ),
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Convert MODEL for a runtime, time it in an isolated child, check outputs against fp32."""
    rt = get_runtime(runtime)
    rt.require_available()
    remote = _remote_device(executor, device, ray_address)
    if remote is None:
        # e.g. Core ML converts on Linux but runs only on macOS: say so before converting
        rt.require_runnable()
    precision = precision or str(getattr(rt, "default_precision", "fp32"))
    rt.check_precision(precision)
    settings = MeasureSettings(
        warmup=warmup, runs=runs, threads=threads, cpus=parse_cpus(cpus)
    )  # fail before work
    graph = resolve_model(model, example, input_shape)
    with tempfile.TemporaryDirectory(prefix="edgefit-bench-") as tmp:
        target = out_dir or Path(tmp)
        if not as_json:
            err_console.print(f"converting {graph.source} to {precision} for {rt.name} …")
        artifact = rt.convert(graph.model, precision, target)
        if not as_json and remote is None and getattr(rt, "timing_kind", "measured") == "measured":
            err_console.print(
                f"measuring in a child process ({warmup} warm-up runs, at least {runs} timed) …"
            )
        if remote is None:
            timing = rt.measure(artifact, **asdict(settings))
        else:
            if not as_json:
                err_console.print(f"measuring on the Ray node that serves device:{remote.id} …")
            timing = measure_on_device(artifact, settings, remote, ray_address)
        recorded = (
            _record(artifact.path, threads, timing.p50, as_json)
            if record and remote is None and rt.name == "onnxruntime"
            else None
        )
    report = {
        "model": graph.source,
        "runtime": rt.name,
        "precision": precision,
        "executor": executor,
        "measured_on": timing.environment.get("host") if remote is not None else "this machine",
        "artifact": {**artifact.to_dict(), "path": str(artifact.path) if out_dir else None},
        "timing": timing.to_dict(),
        "parity": artifact.metadata.get("parity"),
        "notes": graph.notes,
        "recorded": recorded,
    }
    emit(report, as_json, lambda: _render(report, timing, artifact))


def _record(path: Path, threads: int, p50_s: float, quiet: bool) -> dict:
    """Keep the timed run for `calibrate --refit` (:mod:`edgefit.calibrate._observed`); after the
    timing, never beside it."""
    if not quiet:
        err_console.print(
            "profiling it once more for `edgefit calibrate --refit` (--no-record: skip) …"
        )
    return _observed.keep(Path(path), threads=threads, measured_s=p50_s, source="bench")


def _remote_device(executor: str, device: str, address: str | None):
    """The target whose Ray farm node measures (``--executor ray``), or None for this machine."""
    if executor not in ("local", "ray"):
        raise EdgefitError(
            f"unknown executor '{executor}'", where="--executor", fix="use local or ray"
        )
    if executor == "local":
        return None
    require_ray()
    target = load_target(device)
    if (
        address in (None, "", "local") and target.id != LOCAL_DEVICE
    ):  # fail before converting anything
        raise EdgefitError(
            f"a Ray started here serves only device:{LOCAL_DEVICE}, not device:{target.id}",
            where="--device",
            fix="give --ray-address of the cluster that has the device node",
        )
    return target


def _render(report: dict, timing, artifact) -> None:
    env = timing.environment
    pinned = f", pinned to CPU {','.join(map(str, env['cpus']))}" if env.get("cpus") else ""
    where = f" on {report['measured_on']} (Ray)" if report["executor"] == "ray" else ""
    console.print(
        escape(
            f"{report['model']} at {report['precision']}: {timing.provenance}{where}{pinned} "
            f"(providers: {', '.join(env.get('providers') or ['-'])})"
        ),
        soft_wrap=True,
    )
    table = Table()
    table.add_column("latency")
    table.add_column("value", justify="right")
    if env.get("estimate"):  # a vendor compiler's figure (Vela): one number, no run statistics
        table.add_row("inference time (vendor compiler estimate)", fmt.seconds(timing.p50))
    else:
        for label, value in (
            ("p50", timing.p50),
            ("p90", timing.p90),
            ("p99", timing.p99),
            ("max", timing.max),
            ("mean", timing.mean),
            ("std", timing.std),
            ("jitter (p99 − p50)", timing.jitter),
        ):
            table.add_row(label, fmt.seconds(value))
        table.add_row("timed runs", f"{timing.n_runs} (after {env.get('warmup', '?')} warm-up)")
    if timing.peak_rss_bytes:
        table.add_row("peak RSS (whole child process)", fmt.nbytes(timing.peak_rss_bytes))
    if timing.cpu_wait_fraction is not None:
        table.add_row(
            "time waiting for a CPU (other processes)", f"{timing.cpu_wait_fraction:.1%}"
        )
    console.print(table)
    if (timing.cpu_wait_fraction or 0) > CONTENDED:
        err_console.print(
            f"warning: the measuring threads waited {timing.cpu_wait_fraction:.0%} of the time "
            "for a CPU "
            "held by other processes; these wall-clock figures include that load and will not "
            "repeat "
            "on a quiet machine (measure again when the machine is idle)"
        )
    meta = artifact.metadata
    p = meta.get("parity")
    if p:
        top1 = f"{p['top1_agreement']:.0%}" if p["top1_agreement"] is not None else "n/a"
        sqnr = "identical" if p["sqnr_db"] in (None, float("inf")) else f"{p['sqnr_db']:.1f} dB"
        console.print(
            escape(
                f"parity vs the fp32 source ({meta.get('parity_inputs', '?')}): max abs "
                f"{p['max_abs']:.3g}, max rel {p['max_rel']:.3g}, top-1 agreement {top1}, SQNR "
                f"{sqnr}"
            ),
            soft_wrap=True,
        )
    if meta.get("recipe"):
        console.print(
            escape(
                f"recipe: {meta['recipe']}"
                + (f"; calibration: {meta['calibration']}" if meta.get("calibration") else "")
            ),
            soft_wrap=True,
        )
    if report["artifact"]["path"]:
        console.print(escape(f"artifact: {report['artifact']['path']}"), soft_wrap=True)
    for note in report["notes"] + ([meta["note"]] if meta.get("note") else []):
        console.print(escape(f"note: {note}"), soft_wrap=True)
    if meta.get("warning"):
        err_console.print(escape(f"warning: {meta['warning']}"), soft_wrap=True)
