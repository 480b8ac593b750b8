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

Its time counts against ``--budget`` (the run's clock starts before it) and, with a budget, it is
capped at :data:`RECIPE_SHARE` of it (never past what is left): it then stops trying new recipes
and runs its final among those tried. A cap under
:data:`~edgefit.passes._recipe_search_cap.MIN_CAP_S` skips it (a run note says so), and int8
candidates keep the space's own recipes.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgefit import passes
from edgefit._io import to_json, write_atomic
from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError
from edgefit.passes import PassContext
from edgefit.passes._onnx import host_int8_recipe
from edgefit.passes._recipe import RECIPE_VERSION
from edgefit.passes._recipe_choice import int8_finalists
from edgefit.passes._recipe_search_cap import MIN_CAP_S
from edgefit.passes._recipe_search_scratch import scratch_folder
from edgefit.search._base import resize_inputs
from edgefit.search._candidate import score_model
from edgefit.search._select import accuracy_floor

if TYPE_CHECKING:
    import onnx
    import onnxruntime
else:  # onnxruntime loads when the recipe search runs, not by importing search
    onnx, onnxruntime = lazy_import("onnx", "onnxruntime")

RECIPE_FILE = Path("recipe") / "recipe.json"
STEP_VERSION = 1
# With --budget, the recipe search may take at most this share of it: the search only chooses the
# int8 recipe, and the candidates built with it, measured and re-timed in the optimizer's final,
# are what the run is for; half leaves them at least as long as the search had (a whole search,
# 6-27 s on the bench's digits tasks on 2 cores, mostly fits a budget of a minute uncut).
RECIPE_SHARE = 0.5


def recipe_cap(budget_s: float | None, left_s: float | None) -> float | None:
    """The recipe search's time cap: :data:`RECIPE_SHARE` of the budget, and no more than is
    left of it (``left_s``); None without a budget.

    >>> recipe_cap(60.0, 55.0), recipe_cap(60.0, 20.0), recipe_cap(None, None)
    (30.0, 20.0, None)
    """
    if budget_s is None:
        return None
    left = budget_s if left_s is None else left_s
    return max(0.0, min(RECIPE_SHARE * budget_s, left))


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
    cap_s: float | None = None,
) -> dict[str, Any] | None:
    """The run's recipe record (see :meth:`~edgefit.passes.RecipeChoice.to_dict`), reused from
    ``out_dir/recipe/recipe.json`` when its key matches (a search the cap cut short only by a run
    whose cap is no larger), else searched and written there.

    ``max_drop``: the accuracy (metric units) an eligible recipe may lose against the baseline.
    ``cap_s``: the search's time cap (None: none). None when the search failed or the cap is under
    :data:`MIN_CAP_S`: ``notes`` says why, and int8 candidates keep the default recipe.
    """
    proto_bytes = Path(base.onnx_path).read_bytes()
    ctx = PassContext(
        calibration=resize_inputs(base.calibration, base.input_shape), seed=settings.seed
    )
    feeds, where = ctx.calibration_feeds(onnx.load_from_string(proto_bytes))
    key = _key(proto_bytes, base, settings, max_drop, RECIPE_VERSION)
    path = out_dir / RECIPE_FILE
    cached = _cached(path, key, cap_s)
    if cached is not None:
        notes.append(f"int8 recipe reused from {path} (same model, data and settings)")
        return {**cached, "reused": True}
    if cap_s is not None and cap_s < MIN_CAP_S:
        notes.append(
            f"int8 recipe search skipped: --budget leaves it {cap_s:.1f} s (at most "
            f"{RECIPE_SHARE:.0%} of the budget), under the {MIN_CAP_S:.0f} s its first stage and "
            "final need; int8 candidates use the default recipe (a larger --budget, or none, "
            "searches it)"
        )
        return None
    start = time.perf_counter()
    # the search's scratch files (dozens of models) live outside the output folder: only its
    # record, written whole at the end, shows there
    try:
        with scratch_folder() as tmp:
            choice = _search(base, settings, feeds, reference, max_drop, tmp, progress, cap_s)
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
        **choice.to_dict(),
    }
    if record.get("seconds") is None:  # a stand-in search that does not time itself
        record["seconds"] = time.perf_counter() - start
    write_atomic(path, to_json(record) + "\n")
    return {**record, "reused": False}


def with_recipe(
    run: Any,
    settings: Any,
    survivors: list,
    reference: Any,
    progress: Any,
    *,
    budget_left_s: float | None = None,
):
    """``settings`` with a searched int8 recipe for each int8 choice of the model as it came
    (the search's leading int8 recipes, its choice first: :func:`int8_finalists`), and the
    survivors less the int8 choices left without one; unchanged where the search does not apply
    (not an ONNX file, an estimated target, no such int8 survivor) or fails (the notes say
    why). Pruned or swapped int8 choices keep the space's recipe. ``budget_left_s``: what is
    left of ``--budget`` (the search is capped by :func:`recipe_cap`)."""
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
            cap_s=recipe_cap(cfg.budget_s, budget_left_s),
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


def _search(base, settings, feeds, reference, max_drop, work: Path, progress, cap_s):
    def eval_fn(model_path: Path) -> float:
        return score_model(base, model_path, reference, settings.threads, settings.metric).value

    # read off the package when called, so that a test can stand in for the measured search
    return passes.search_recipe(
        base.onnx_path,
        feeds,
        eval_fn,
        threads=settings.threads,
        max_drop=max_drop,
        seed=settings.seed,
        folder=work,
        progress=progress,
        time_cap_s=cap_s,
    )


def _key(proto_bytes: bytes, base, settings, max_drop: float, recipe_version: int) -> str:
    """Everything the search's outcome depends on: the model, the data, the settings, this CPU's
    int8 path and the onnxruntime version."""
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


def _cached(path: Path, key: str, cap_s: float | None = None) -> dict[str, Any] | None:
    """The record a previous run wrote for ``key``; None when absent, unreadable or for other
    inputs (written atomically: a file present is whole), or when its search was cut short by a
    time cap smaller than ``cap_s`` (None: no cap), which this run would search further."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("key") != key:
        return None
    if record.get("version") != STEP_VERSION or "recipe" not in record:
        return None
    if record.get("capped"):
        was = record.get("cap_s")
        if cap_s is None or not isinstance(was, int | float) or cap_s > was:
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
    cut = ""
    if record.get("capped"):
        cut = (
            f"; capped at {record['cap_s']:.1f} s of the --budget (took "
            f"{record.get('seconds') or 0:.1f} s): stage(s) "
            f"{', '.join(record.get('stages_skipped') or [])} skipped"
        )
    return f"int8 recipe searched by measurement: {record['label']}{ratio}{use}{cut}"
