"""The int8 recipe of a run whose model is an ONNX file and whose target is measured here.

`edgefit optimize model.onnx --target host-cpu` has one job for int8: beat what a user gets from
``onnxruntime.quantization.quantize_static`` at its defaults. The space's int8 choices (calibration
method, k sensitive layers float) are a coarse grid of that; :func:`~edgefit.passes.search_recipe`
searches the whole recipe (types, format, per-channel, symmetric, reduce_range, calibration,
``quant_pre_process``, nodes kept float, session options) by measurement, with an interleaved final
against fp32 and the defaults. It runs once per run, after the baseline is scored and before any
candidate is built or measured (so nothing else runs while it times), and its record is kept in
``<out>/recipe/recipe.json``: a rerun of the same command (after a kill, or to resume) reuses it
when the model, data and settings are the same, exactly as finished candidates are reused. The
int8 candidates of the model as it came are then the search's leading int8 recipes (its choice
first, onnxruntime's defaults among them; ``QuantizeConfig.recipe``), which the optimizer
measures and re-times in its own final like any candidate.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgefit._io import to_json, write_atomic
from edgefit.errors import EdgefitError
from edgefit.passes import PassContext
from edgefit.passes._onnx import host_int8_recipe
from edgefit.passes._recipe import RECIPE_VERSION
from edgefit.passes._recipe_choice import int8_finalists

RECIPE_FILE = Path("recipe") / "recipe.json"
STEP_VERSION = 1


def recipe_applies(base: Any, measure_runtime: str | None, precisions: list[str]) -> bool:
    """The search runs for an ONNX file on a target measured with onnxruntime here, when an int8
    candidate is to be built; anything else keeps the space's own int8 recipes."""
    return base.kind == "onnx" and measure_runtime == "onnxruntime" and "int8" in precisions


def searched_recipe(
    base: Any,
    settings: Any,
    out_dir: Path,
    *,
    reference: Any,
    max_drop: float,
    progress: Callable[[str, int, int], None] | None = None,
    notes: list[str],
) -> dict[str, Any] | None:
    """The run's recipe record (see :meth:`~edgefit.passes.RecipeChoice.to_dict`), reused from
    ``out_dir/recipe/recipe.json`` when its key matches, else searched and written there.

    ``max_drop``: the accuracy (metric units) an eligible recipe may lose against the baseline.
    None when the search failed: ``notes`` says why, and int8 candidates keep the default recipe.
    """
    from edgefit.search._base import resize_inputs

    proto_bytes = Path(base.onnx_path).read_bytes()
    ctx = PassContext(
        calibration=resize_inputs(base.calibration, base.input_shape), seed=settings.seed
    )
    import onnx

    feeds, where = ctx.calibration_feeds(onnx.load_from_string(proto_bytes))
    key = _key(proto_bytes, base, settings, max_drop, RECIPE_VERSION)
    path = out_dir / RECIPE_FILE
    cached = _cached(path, key)
    if cached is not None:
        notes.append(f"int8 recipe reused from {path} (same model, data and settings)")
        return {**cached, "reused": True}
    start = time.perf_counter()
    # the search's scratch files (dozens of models) live outside the output folder: only its
    # record, written whole at the end, shows there
    try:
        with tempfile.TemporaryDirectory(prefix="edgefit-recipe-") as tmp:
            choice = _search(base, settings, feeds, reference, max_drop, Path(tmp), progress)
    except EdgefitError as exc:
        notes.append(
            f"int8 recipe search failed ({str(exc.args[0])[:200]}): int8 candidates use the "
            "default recipe"
        )
        return None
    record = {
        "key": key,
        "version": STEP_VERSION,
        "threads": settings.threads,
        "max_drop": max_drop,
        "calibration": where,
        "seconds": time.perf_counter() - start,
        **choice.to_dict(),
    }
    write_atomic(path, to_json(record) + "\n")
    return {**record, "reused": False}


def with_recipe(run: Any, settings: Any, survivors: list, reference: Any, progress: Any):
    """``settings`` with a searched int8 recipe for each int8 choice of the model as it came
    (the search's leading int8 recipes, its choice first: :func:`int8_finalists`), and the
    survivors less the int8 choices left without one; unchanged where the search does not apply
    (not an ONNX file, an estimated target, no such int8 survivor) or fails (the notes say
    why). Pruned or swapped int8 choices keep the space's recipe."""
    from dataclasses import replace

    from edgefit.search._select import accuracy_floor

    cfg, base = run.config, run.base
    plain = [s.choice.precision for s in survivors if _searched(s.choice)]
    if not recipe_applies(base, settings.measure_runtime, plain):
        return settings, survivors
    floor = accuracy_floor(run.base_accuracy, max_drop=cfg.max_drop, relative=cfg.relative_drop)
    try:
        record = searched_recipe(
            base,
            settings,
            Path(cfg.out_dir),
            reference=reference,
            max_drop=max(0.0, run.base_accuracy - floor),
            progress=progress,
            notes=run.notes,
        )
    except KeyboardInterrupt:  # Ctrl-C: the run ends as a search interrupted before any candidate
        run.interrupted = True
        run.notes.append(
            "interrupted during the int8 recipe search: no candidate was started; rerun the same "
            "command to resume (finished candidates are reused, the recipe search starts again)"
        )
        return settings, survivors
    if record is None or not record.get("int8_recipe"):
        return settings, survivors
    run.recipe_search = record
    run.notes.append(summary(record))
    int8 = [s for s in survivors if _searched(s.choice)]
    finalists = int8_finalists(record, len(int8))
    slots = {_slot(s.choice): r for s, r in zip(int8, finalists)}
    settings = replace(settings, recipes=slots)
    kept = [s for s in survivors if not _searched(s.choice) or _slot(s.choice) in slots]
    if len(kept) < len(survivors):
        run.notes.append(
            f"{len(survivors) - len(kept)} int8 choice(s) left out: the recipe search's final "
            f"had {len(finalists)} eligible int8 recipe(s), one per int8 candidate"
        )
    else:
        run.notes.append(
            f"the {len(int8)} int8 candidate(s) are the recipe search's leading int8 recipes "
            "(its choice first"
            + (", onnxruntime's defaults among them)" if len(int8) > 1 else ")")
        )
    return settings, kept


def _searched(choice: Any) -> bool:
    """An int8 choice of the model as it came: the recipe was searched on that graph (its
    nodes kept float are that graph's nodes); a pruned or swapped int8 choice keeps the space's
    recipe."""
    return choice.precision == "int8" and not choice.retrains


def _slot(choice: Any) -> str:
    return json.dumps(choice.to_dict(), sort_keys=True)


def with_search(record: dict, search: dict | None) -> dict:
    """An int8 candidate built with the searched recipe carries the search's summary (recipe,
    protocol, the final's rounds and spreads, fp32's and the defaults' latency) in its
    ``materialize`` block; the whole record, every recipe tried, is ``recipe/recipe.json``."""
    plan = (record.get("plan") or {}).get("quantize") or {}
    mat = record.get("materialize")
    if search is None or not plan.get("recipe") or not isinstance(mat, dict):
        return record
    brief = {k: v for k, v in search.items() if k not in ("tried", "sensitivity", "key")}
    return {**record, "materialize": {**mat, "recipe_search": brief}}


def _search(base, settings, feeds, reference, max_drop, work: Path, progress):
    # looked up when called, so that a test can stand in for the measured search
    from edgefit.passes import search_recipe
    from edgefit.search._candidate import score_model

    def eval_fn(model_path: Path) -> float:
        return score_model(base, model_path, reference, settings.threads, settings.metric).value

    return search_recipe(
        base.onnx_path,
        feeds,
        eval_fn,
        threads=settings.threads,
        max_drop=max_drop,
        seed=settings.seed,
        folder=work,
        progress=progress,
    )


def _key(proto_bytes: bytes, base, settings, max_drop: float, recipe_version: int) -> str:
    """Everything the search's outcome depends on: the model, the data, the settings, this CPU's
    int8 path and the onnxruntime version."""
    import numpy as np
    import onnxruntime

    h = hashlib.sha256(proto_bytes)
    for arr in (base.calibration, base.eval_x, base.eval_y):
        h.update(b"-" if arr is None else np.ascontiguousarray(arr).tobytes())
    h.update(
        json.dumps(
            {
                "threads": settings.threads,
                "seed": settings.seed,
                "metric": settings.metric,
                "max_drop": round(max_drop, 12),
                "recipe_version": recipe_version,
                "step_version": STEP_VERSION,
                "onnxruntime": onnxruntime.__version__,
                "reduce_range": host_int8_recipe()[0],
            },
            sort_keys=True,
        ).encode()
    )
    return h.hexdigest()[:16]


def _cached(path: Path, key: str) -> dict[str, Any] | None:
    """The record a previous run wrote for ``key``; None when absent, unreadable or for other
    inputs (written atomically: a file present is whole)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("key") != key:
        return None
    if record.get("version") != STEP_VERSION or "recipe" not in record:
        return None
    return record


def summary(record: dict[str, Any]) -> str:
    """One line for the run's notes: the recipe, and how it and fp32 timed against the
    defaults."""
    lat = record.get("latency") or {}
    dflt = (record.get("defaults") or {}).get("latency") or {}
    fp32 = (record.get("fp32") or {}).get("latency") or {}
    ratio = ""
    if lat.get("median_s") and dflt.get("median_s"):
        ratio = (
            f"; interleaved final at {record['threads']} thread(s): "
            f"{lat['median_s'] * 1e6:.1f} µs vs onnxruntime's quantize_static defaults "
            f"{dflt['median_s'] * 1e6:.1f} µs ({lat['median_s'] / dflt['median_s']:.2f}×) and "
            f"fp32 {fp32.get('median_s', float('nan')) * 1e6:.1f} µs"
        )
    int8 = record.get("int8_label")
    use = f"; the first int8 candidate uses {int8}" if int8 and int8 != record["label"] else ""
    return f"int8 recipe searched by measurement: {record['label']}{ratio}{use}"
