"""What a recipe search returns: every recipe it tried, and the one it chose with the final's
timings (fp32's and onnxruntime's defaults' among them), as data and as JSON."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edgefit.passes._recipe import Recipe

if TYPE_CHECKING:  # numpy loads only when a search runs: edgefit.passes stays light
    from edgefit.calibrate._measure import Interleaved


@dataclass(frozen=True)
class Tried:
    """One recipe the search built: its accuracy, its latency in the stage that timed it (None when
    the stage decided on accuracy alone) and whether it was kept."""

    recipe: Recipe
    stage: str
    accuracy: float
    latency_s: float | None = None
    spread: float | None = None
    eligible: bool = True
    kept: bool = False
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipe": self.recipe.label(),
            "stage": self.stage,
            "accuracy": self.accuracy,
            "latency_s": self.latency_s,
            "spread": self.spread,
            "eligible": self.eligible,
            "kept": self.kept,
            "note": self.note,
        }


@dataclass(frozen=True)
class RecipeChoice:
    """The chosen recipe with its accuracy and final latency, fp32's and the ORT defaults' by the
    same protocol, and every recipe tried."""

    recipe: Recipe
    accuracy: float
    latency: Interleaved
    fp32_accuracy: float
    fp32_latency: Interleaved
    defaults_accuracy: float
    defaults_latency: Interleaved | None  # None when onnxruntime's defaults fail on the model
    tried: tuple[Tried, ...]
    sensitivity: tuple[tuple[str, float], ...] = ()
    notes: tuple[str, ...] = field(default=())
    protocol: str = ""
    # every model of the final with its timing and accuracy, in the order timed
    final: tuple[tuple[Recipe, Interleaved, float], ...] = ()
    max_drop: float = 0.01  # the eligibility bar below fp32 the search used
    defaults: Recipe | None = None  # onnxruntime's defaults as the final timed them
    cap_s: float | None = None  # the search's time cap (None: it had none)
    stages_skipped: tuple[str, ...] = ()  # the stages the cap left out, in order
    seconds: float | None = None  # how long the search took, by the clock the cap is kept on

    @property
    def capped(self) -> bool:
        """Whether the time cap cut the search short (its final ran among fewer recipes)."""
        return bool(self.stages_skipped)

    def int8_finalists(self, slots: int) -> list[Recipe]:
        """Up to ``slots`` distinct int8 recipes for a caller that builds several int8 models
        (see :func:`int8_finalists`)."""
        return [Recipe.from_dict(d) for d in int8_finalists(self.to_dict(), slots)]

    @property
    def int8(self) -> Recipe | None:
        """The int8 recipe to use where the precision is int8 anyway: the chosen recipe when it is
        int8, else the fastest eligible int8 recipe of the final (possibly onnxruntime's defaults),
        else the most accurate int8 one; None when no int8 recipe was timed in the final."""
        if self.recipe.precision == "int8":
            return self.recipe
        int8 = [(r, t, a) for r, t, a in self.final if r.precision == "int8"]
        if not int8:
            return None
        floor = self.fp32_accuracy - self.max_drop
        ok = [x for x in int8 if x[2] >= floor - 1e-12]
        if ok:
            return min(ok, key=lambda x: x[1].median_s)[0]
        return max(int8, key=lambda x: x[2])[0]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary: the chosen recipe (and the int8 one), the protocol, the final's
        rounds and spreads per model (fp32 and onnxruntime's defaults among them), what was
        tried."""

        def timing(t: Interleaved | None) -> dict[str, Any] | None:
            if t is None:
                return None
            return {
                "median_s": t.median_s,
                "round_medians_s": list(t.round_medians_s),
                "rounds": len(t.round_medians_s),
                "spread": t.spread,
                "p99_s": t.p99_s if math.isfinite(t.p99_s) else None,
                "runs": t.runs,
            }

        int8 = self.int8
        return {
            "recipe": self.recipe.to_dict(),
            "label": self.recipe.label(),
            "int8_recipe": int8.to_dict() if int8 else None,
            "int8_label": int8.label() if int8 else None,
            "accuracy": self.accuracy,
            "latency": timing(self.latency),
            "fp32": {"accuracy": self.fp32_accuracy, "latency": timing(self.fp32_latency)},
            "defaults": {
                "recipe": "onnxruntime quantize_static defaults: QDQ, S8S8, per-tensor, MinMax, "
                "no pre-processing",
                "accuracy": self.defaults_accuracy,
                "latency": timing(self.defaults_latency),
            },
            "protocol": self.protocol,
            "final": [
                {
                    "recipe": r.label(),
                    "config": r.to_dict(),
                    "accuracy": a,
                    "eligible": a >= self.fp32_accuracy - self.max_drop - 1e-12,
                    "changes": r.changes(),
                    "defaults": r == self.defaults,
                    **(timing(t) or {}),
                }
                for r, t, a in self.final
            ],
            "tried": [t.to_dict() for t in self.tried],
            "sensitivity": [list(s) for s in self.sensitivity],
            "notes": list(self.notes),
            "cap_s": self.cap_s,
            "capped": self.capped,
            "stages_skipped": list(self.stages_skipped),
            "seconds": self.seconds,
        }

    def table(self) -> str:
        """The tried recipes as a text table (one line each)."""
        rows = [f"{'stage':<10} {'acc':>6} {'µs':>9} {'spread':>6}  recipe"]
        for t in self.tried:
            us = f"{t.latency_s * 1e6:9.1f}" if t.latency_s is not None else f"{'-':>9}"
            sp = f"{t.spread:6.1%}" if t.spread is not None else f"{'-':>6}"
            mark = "*" if t.kept else (" " if t.eligible else "x")
            rows.append(f"{t.stage:<10} {t.accuracy:6.3f} {us} {sp} {mark}{t.recipe.label()}")
        return "\n".join(rows)


def int8_finalists(summary: dict[str, Any], slots: int) -> list[dict[str, Any]]:
    """Up to ``slots`` distinct int8 recipes (as dicts) from a search's summary
    (:meth:`RecipeChoice.to_dict`), for a caller that builds several int8 models (edgefit
    optimize's int8 candidates): the int8 recipe to use first, then the final's eligible int8
    recipes by median, with onnxruntime's defaults among them when eligible and there are two
    slots or more, so that the caller's own measurements compare with the defaults too."""
    first = summary.get("int8_recipe")
    if first is None or slots < 1:
        return []
    rows = sorted(
        (
            r
            for r in summary.get("final", [])
            if r["config"]["precision"] == "int8" and r["eligible"]
        ),
        key=lambda r: r["median_s"],
    )
    out: list[dict[str, Any]] = [first]
    for r in rows:
        if r["config"] not in out:
            out.append(r["config"])
    out = out[:slots]
    defaults = next((r["config"] for r in rows if r.get("defaults")), None)
    if slots >= 2 and defaults is not None and defaults not in out:
        out = [*out[: slots - 1], defaults]
    return out
