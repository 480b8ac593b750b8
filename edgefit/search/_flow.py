"""`edgefit optimize` as one library call: intake, search, final pick, results.json, target
formats and reports.

The CLI parses its options into an :class:`~edgefit.search.OptimizeConfig` and calls
:func:`optimize`; a Python caller does the same and gets the same files and the same
:class:`~edgefit.search.OptimizeResult` the CLI prints.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from edgefit._io import to_json, write_atomic
from edgefit.errors import EdgefitError, require
from edgefit.search._base import Base, resize_inputs, resolve_base
from edgefit.search._config import (
    DEFAULT_TARGET,
    OptimizeConfig,
    ThreadsWarning,
    oversubscribed,
    threads_from,
    usable_cores,
    with_output,
)
from edgefit.search._engine import Run
from edgefit.search._engine import optimize as search
from edgefit.search._export import export_target_formats
from edgefit.search._final import remeasure_leaders
from edgefit.search._outcome import OptimizeResult, ThreadsResult
from edgefit.search._results import results_record, write_outputs
from edgefit.search._select import pick
from edgefit.targets import load_target

ModelLike = str | os.PathLike[str] | None
ProgressFn = Callable[[str, int, int], None]


def optimize(
    model: ModelLike = None,
    target: str | os.PathLike[str] | None = None,
    *,
    data: str | os.PathLike[str] | None = None,
    train_data: str | os.PathLike[str] | None = None,
    input_shape: str | None = None,
    config: OptimizeConfig | None = None,
    progress: ProgressFn | None = None,
) -> OptimizeResult | ThreadsResult:
    """Find the variant of ``model`` that fits ``target``'s envelope with the least accuracy lost,
    and write it with its results and reports into the output folder.

    ``model``: None (the built-in digits classifier, trained on real data), a built-in example
    name (``edgefit examples list``), a ``"module:function"`` factory building the model from knobs
    (give ``input_shape``), or an ONNX file. ``target``: a target id, alias or YAML path (default
    ``config.target``, itself ``host-cpu`` by default). ``data``: an evaluation ``.npz`` (``x``,
    optional ``y`` labels); ``train_data``: a training ``.npz`` for recovery fine-tuning.
    ``config`` holds every other setting; ``progress(label, done, total)`` is called as the search
    goes, and ``progress.close()``, when it has one, once the search ends (before the final
    re-measurement, so that a display thread is quiet while the leaders are timed).

    ``config.threads`` is the deployment thread count measured and optimized for (left out: the
    target's ``deployment_threads``, else 1). Several counts run the whole optimization once per
    count, each into ``out_dir/threads-N`` (a complete run), and return a
    :class:`~edgefit.search.ThreadsResult` whose summary is ``out_dir/threads.json``; a count
    above this machine's cores is a :class:`ThreadsWarning`, not an error.

    Bad input raises :class:`~edgefit.errors.EdgefitError` before any work. Ctrl-C during the
    search keeps every finished candidate: the result is the best so far (``interrupted``).

    >>> import edgefit
    >>> result = edgefit.optimize("ds-cnn-kws", "orin",
    ...                           config=edgefit.OptimizeConfig(trials=4))  # doctest: +SKIP
    >>> result.chosen.label if result.ok else result.selection.reason  # doctest: +SKIP
    """
    config = _with_target(config, target)
    found = load_target(config.target)
    name = str(config.target)
    config = with_output(
        replace(config, target=name if name.endswith((".yaml", ".yml")) else found.id), found.id
    )
    config, source = threads_from(config, found)
    counts = config.thread_counts
    if len(counts) > 1 and config.storage is not None:
        raise EdgefitError(
            f"--storage holds one study, and --threads {','.join(map(str, counts))} runs one "
            "study per thread count",
            where="--storage",
            fix="leave --storage out (each threads-N folder keeps its own study.db), or run one "
            "count at a time, each with its own --storage",
        )
    if config.executor == "ray":  # the install line now, before any work
        require("ray", extra="ray", purpose="--executor ray")
    warning = oversubscribed(counts, usable_cores())
    if warning:
        warnings.warn(warning, ThreadsWarning, stacklevel=2)
    path, example, factory = model_source(model)
    base = resolve_base(path, example, factory, input_shape, _path(data), _path(train_data))
    if config.metric == "top1" and base.eval_y is None:
        raise EdgefitError(
            "--metric top1 needs labelled data",
            where="--metric",
            fix="pass --data eval.npz with y labels, or use --metric agreement",
        )
    if len(counts) == 1:
        return _run(config, base, found, progress, source)
    return _run_each(config, base, found, progress, source, [warning] if warning else [])


def _run(
    config: OptimizeConfig, base: Base, target: Any, progress: ProgressFn | None, source: str
) -> OptimizeResult:
    """One whole run at one thread count: the search, then :func:`finish_run`."""
    try:
        run = search(config, base, progress=progress)
    finally:
        close = getattr(progress, "close", None)
        if callable(close):
            close()
    return finish_run(run, target, threads_from=source)


def _run_each(
    config: OptimizeConfig,
    base: Base,
    target: Any,
    progress: ProgressFn | None,
    source: str,
    notes: list[str],
) -> ThreadsResult:
    """One whole run per thread count, each in ``threads-N`` (a stable folder: a rerun reuses
    its finished candidates), then threads.json. A Ctrl-C ends the list: the counts not started
    are named, and the next run resumes them."""
    out_dir = config.out_dir if config.out_dir is not None else Path("edgefit-out") / target.id
    runs: dict[int, OptimizeResult] = {}
    counts = config.thread_counts
    left: tuple[int, ...] = ()
    for i, n in enumerate(counts):
        sub = replace(config, threads=n, thread_list=(), out_dir=out_dir / f"threads-{n}")
        try:
            runs[n] = _run(sub, base, target, _Labelled(progress, n), source)
        except KeyboardInterrupt:  # outside the search (which keeps its own): before or after it
            left = counts[i:]
            break
        if runs[n].interrupted:
            left = counts[i + 1 :]
            break
    if left:
        notes.append(
            f"interrupted: --threads {','.join(map(str, left))} not finished; rerun the same "
            "command to resume (every finished candidate is reused)"
        )
    result = ThreadsResult(counts, source, target.id, runs, left, tuple(notes))
    note = result.differ_note()
    if note:
        result = replace(result, notes=(*result.notes, note))
    path = write_atomic(out_dir / "threads.json", to_json(result.to_dict()) + "\n")
    files = {
        "threads": str(path),
        **{f"threads-{n}/{k}": v for n, r in runs.items() for k, v in r.files.items()},
    }
    return replace(result, files=files)


class _Labelled:
    """``progress`` with each label prefixed by the thread count the run measures at."""

    def __init__(self, progress: ProgressFn | None, threads: int) -> None:
        self.progress, self.prefix = progress, f"{threads} thread{'s' * (threads != 1)}: "

    def __call__(self, label: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(self.prefix + label, done, total)

    def close(self) -> None:
        close = getattr(self.progress, "close", None)
        if callable(close):
            close()


def finish_run(run: Run, target: Any, *, threads_from: str | None = None) -> OptimizeResult:
    """Everything after the search: re-measure the leaders, pick, export the winner in the
    target's formats, write the reports and results.json (last); the result names every file.

    ``threads_from`` (``"user"`` or ``"target"``), when given, is recorded beside the thread
    count in results.json's ``config``."""
    cfg = run.config
    out_dir = cfg.out_dir if cfg.out_dir is not None else Path("edgefit-out") / target.id
    protocol = remeasure_leaders(run)  # nothing else runs now: the search and its display ended
    chosen = pick(
        list(run.candidates.values()),
        run.base_accuracy,
        max_drop=cfg.max_drop,
        relative=cfg.relative_drop,
        select=cfg.select,
        protocol=protocol,
    )
    warning = oversubscribed(cfg.thread_counts, usable_cores())
    if warning:
        run.notes.append(warning)
    exports = None
    if chosen.winner is not None and not cfg.export:
        run.notes.append("the winner was not converted to the target's formats (--no-export)")
    elif chosen.winner is not None:
        shape = run.base.shape_for(chosen.winner.choice.resolution)
        exports = export_target_formats(
            target, chosen.winner, out_dir, resize_inputs(run.base.calibration, shape)
        )
    record = results_record(
        run,
        chosen,
        run.base_key,
        run.base_accuracy,
        protocol,
        threads_from=threads_from,
        exports=exports,
    )
    res = record.to_dict()
    files = write_outputs(out_dir, record)
    files.update(
        {
            f"export:{e['runtime']}": e["path"]
            for e in res.get("exports", [])
            if e["status"] == "written"
        }
    )
    return OptimizeResult.from_dict(res, files)


def model_source(model: ModelLike | Base) -> tuple[Path | None, str | None, str | None]:
    """``(ONNX path, example name, factory)`` for ``model``, one of them set (all None: the
    default example).

    >>> model_source("digits-cnn"), model_source("pkg.nets:build")
    ((None, 'digits-cnn', None), (None, None, 'pkg.nets:build'))
    >>> model_source("net.onnx")
    (PosixPath('net.onnx'), None, None)
    """
    if model is None:
        return None, None, None
    if isinstance(model, Base):
        raise EdgefitError(
            "optimize takes the model itself, not a resolved Base",
            where="model",
            fix="pass the example name, the 'module:function' factory or the ONNX path",
        )
    if not isinstance(model, str | os.PathLike):
        raise EdgefitError(
            f"cannot optimize a {type(model).__name__}",
            where="model",
            fix="pass a built-in example name, a 'module:function' factory or an .onnx path "
            "(export a torch module to ONNX first, or register it as an example)",
        )
    if not isinstance(model, str) or Path(model).is_file():
        return Path(model), None, None
    if ":" in model:
        return None, None, model
    if Path(model).suffix or os.sep in model:
        return Path(model), None, None
    return None, model, None


def _with_target(
    config: OptimizeConfig | None, target: str | os.PathLike[str] | None
) -> OptimizeConfig:
    """``config`` for ``target``: the target is given once, as the argument or in the config."""
    if config is None:
        return OptimizeConfig(target=str(target) if target is not None else DEFAULT_TARGET)
    if not isinstance(config, OptimizeConfig):
        raise EdgefitError(
            f"config is a {type(config).__name__}, not an OptimizeConfig",
            where="config",
            fix="pass edgefit.OptimizeConfig(...)",
        )
    if target is None or str(target) == config.target:
        return config
    if config.target != DEFAULT_TARGET:
        raise EdgefitError(
            f"two targets given: '{target}' and config.target '{config.target}'",
            where="target",
            fix="give the target once, as the argument or in OptimizeConfig",
        )
    return replace(config, target=str(target))


def _path(value: str | os.PathLike[str] | None) -> Path | None:
    return None if value is None else Path(value)
