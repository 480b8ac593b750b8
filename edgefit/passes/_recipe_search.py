"""Search the int8 recipe of an ONNX file by measurement: screening, then an interleaved final.

Budget (N = weight-bearing nodes, n = calibration samples): about 14 builds and evaluations for
the recipe axes, N more (each quantizing one node) for the per-node sensitivity, up to 5 for the
nodes kept float, N more for per-node latency (one timing of N + 1 models), 1 for fp16; about 12
screening timings of 2-4 models × 3 interleaved rounds; one final of up to 4 leaders + fp32 +
onnxruntime's defaults × ≥ 5 rounds. Calibration runs once per (method, sample count, graph),
reused through onnxruntime's calibration cache. On the bench's digits tasks (12-24 weight nodes,
256 calibration samples, 359 eval samples) one search takes 15-40 s on 2 cores.

Screening walks the axes one at a time from the better of this CPU's recipe and onnxruntime's
defaults (coordinate descent). Types, format, which ops (all, or only weight-bearing ones),
per-channel, symmetric activations and ``quant_pre_process`` change the kernels: the incumbent is
timed interleaved with its alternatives. ``reduce_range``, calibration method and sample count
change only the scales, so they are decided on accuracy alone. Then nodes are kept float: the top-k
by measured sensitivity (each node quantized alone, scored on the eval data), and depthwise
convolutions as a group (their int8 kernels are often no faster); then per-node latency: each
weight node kept float alone, timed against the incumbent, and the nodes that time faster float are
kept float together. fp16 stays a candidate only where it times faster than fp32. Graph
optimization level and thread count are timed last. The final re-times the leaders, fp32 and
onnxruntime's defaults interleaved (rotating order, median of round medians); a pair whose
round-by-round ratio is not clearly below 1 (median under 0.95 and faster in 3 of 4 rounds; a gap
the rounds disagree on gets 11 rounds first) ties, and a tie goes to the smaller change (fp32, then
onnxruntime's default int8, then recipes by how many choices differ from it), then to the lower
median. Accuracy only decides eligibility there. The 5% bar is measured: the same file in two
sessions timed up to 1.09× apart on this project's 2-core machine.

Nothing is built or evaluated while a timing runs: each stage builds its candidates, then times
them; the timer is the only code running during a timing in this process. A time cap stops the
search starting new stages and leaves it its final (:mod:`edgefit.passes._recipe_search_cap`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefit.errors import EdgefitError
from edgefit.passes import _onnx
from edgefit.passes._recipe import (
    EvalFn,
    Recipe,
    Workspace,
    calibration_order,
    ort_defaults,
    with_,
)
from edgefit.passes._recipe_choice import RecipeChoice, Tried
from edgefit.passes._recipe_search_cap import SearchCap
from edgefit.passes._recipe_search_scratch import scratch_folder
from edgefit.passes._recipe_timing import (
    MAX_ROUNDS,
    MIN_NOISE,
    Timer,
    faster,
    interleaved_timer,
    unsettled,
)

if TYPE_CHECKING:  # numpy and onnx load only when a search runs: edgefit.passes stays light
    from edgefit.calibrate._measure import Interleaved

SCREEN_ROUNDS = 3
FINAL_ROUNDS = 5
LEADERS = 4
KEEP_FLOAT_TOP = 3
MAX_SENSITIVITY_NODES = 48
SAMPLE_COUNTS = (16, 64, 256)
# the stages a search walks, in order (progress reports "stage k of STAGES")
STAGES = (
    "start", "types", "format", "ops", "channel", "symmetric", "preprocess", "range", "calib",
    "samples", "float", "node-time", "fp16", "session", "threads", "final",
)  # fmt: skip
Progress = Callable[[str, int, int], None]


def search_recipe(
    model: Any,
    feeds: Sequence[dict],
    eval_fn: EvalFn,
    *,
    threads: int | Sequence[int] = 1,
    max_drop: float = 0.01,
    seed: int = 0,
    timer: Timer | None = None,
    reduce_range: bool | None = None,
    folder: Path | None = None,
    progress: Progress | None = None,
    time_cap_s: float | None = None,
) -> RecipeChoice:
    """Choose how to run ``model`` (ONNX path or proto) on onnxruntime's CPU provider.

    ``feeds``: calibration inputs from the training data (the seed shuffles them);
    ``eval_fn(path)`` scores a model file on the eval data (higher is better, e.g. accuracy); a
    recipe is eligible when it scores at least fp32's minus ``max_drop``. ``threads``: the
    deployment's intra-op threads, or several to choose from. ``timer``: how latency is measured
    (default: interleaved rounds here); ``reduce_range``: the starting point's (default: this
    CPU's int8 path, :func:`host_int8_recipe`). ``folder`` keeps the built files (default: a
    temporary folder, see :func:`scratch_folder`). ``progress(label, done, total)`` is called as
    each stage starts. ``time_cap_s``: once the seconds spent plus the final's expected time reach
    it, no new recipe is tried and the final runs among those tried (fp32, the defaults and the
    best timed so far); the first stage and the final always run (see
    :mod:`~edgefit.passes._recipe_search_cap`), and the choice says what the cap left out.

    >>> choice = search_recipe("model.onnx", calib_feeds, accuracy_on_val)  # doctest: +SKIP
    >>> choice.recipe.label(), choice.latency.median_s                      # doctest: +SKIP
    >>> print(choice.table())                                               # doctest: +SKIP
    """
    thread_choices = (threads,) if isinstance(threads, int) else tuple(threads)
    if not thread_choices or any(isinstance(t, bool) or t < 1 for t in thread_choices):
        raise EdgefitError(
            f"threads={threads!r} is not allowed",
            where="search_recipe",
            fix="use a positive thread count or a list of them",
        )
    cap = SearchCap(time_cap_s)  # the clock starts here: the folder and the calibration count
    shuffled = calibration_order(feeds, seed)
    if timer is None:
        timer = interleaved_timer(shuffled[0])
    if folder is None:
        with scratch_folder() as tmp:
            return _Search(model, shuffled, eval_fn, tmp, timer, max_drop, progress, cap).run(
                thread_choices, reduce_range
            )
    folder.mkdir(parents=True, exist_ok=True)
    return _Search(model, shuffled, eval_fn, folder, timer, max_drop, progress, cap).run(
        thread_choices, reduce_range
    )


class _Search:
    def __init__(
        self,
        model,
        feeds,
        eval_fn,
        folder,
        timer: Timer,
        max_drop: float,
        progress=None,
        cap: SearchCap | None = None,
    ) -> None:
        self.progress: Progress | None = progress
        self.cap = SearchCap(None) if cap is None else cap
        self.ws = Workspace(model, feeds, eval_fn, folder)
        self.timer, self.n = timer, len(feeds)
        self.tried: list[Tried] = []
        self.floor = -math.inf
        self.max_drop = max_drop
        self.timed: dict[Recipe, Interleaved] = {}
        self.dropped: set[Recipe] = set()
        self.failed: dict[Recipe, str] = {}

    def acc(self, r: Recipe) -> float:
        """``r``'s score; ``-inf`` when it cannot be built (recorded, and the search goes on)."""
        if r in self.failed:
            return -math.inf
        try:
            return self.ws.score(r)
        except EdgefitError as exc:
            self.failed[r] = exc.args[0] if exc.args else str(exc)
            self.tried.append(Tried(r, "build", -math.inf, eligible=False, note=self.failed[r]))
            return -math.inf

    def node_loss(self, base: Recipe, fp32_score: float, name: str) -> float:
        """fp32's score minus the score with only ``name`` quantized (nan when that fails)."""
        try:
            return fp32_score - self.ws.score(base, only=name)
        except EdgefitError as exc:
            self.ws.notes.append(f"sensitivity of {name} not measured: {exc.args[0][:200]}")
            return math.nan

    def ok(self, r: Recipe) -> bool:
        return self.acc(r) >= self.floor - 1e-12

    def over(self, stage: str) -> bool:
        """The time cap leaves no room for ``stage`` and then the final (the most it times:
        the leaders, fp32 and the defaults): skip it."""
        return self.cap.stop(stage, items=LEADERS + 2, rounds=FINAL_ROUNDS)

    def run(self, thread_choices: tuple[int, ...], reduce_range: bool | None) -> RecipeChoice:
        t0 = thread_choices[0]
        fp32 = Recipe(precision="fp32", threads=t0)
        self.floor = self.acc(fp32) - self.max_drop
        rr = _onnx.host_int8_recipe()[0] if reduce_range is None else reduce_range
        defaults = ort_defaults(self.n, t0)
        host = Recipe(reduce_range=rr, samples=min(64, self.n), threads=t0)
        inc = self.screen("start", host, [defaults], timed=True)
        inc = self.axes(inc)
        inc, sens = self.keep_float(inc)
        inc = self.fp16(inc, fp32)
        inc = self.screen("session", inc, [with_(inc, opt_level=o) for o in ("extended", "basic")])
        if len(thread_choices) > 1:
            inc = self.screen("threads", inc, [with_(inc, threads=t) for t in thread_choices[1:]])
        return self.final(inc, fp32, defaults, sens)

    def axes(self, inc: Recipe) -> Recipe:
        types = [("U8", "S8"), ("S8", "S8")]
        inc = self.screen(
            "types",
            inc,
            [with_(inc, activations=a, weights=w) for a, w in types],
        )
        inc = self.screen("format", inc, [with_(inc, quant_format="QOperator")])
        inc = self.screen("ops", inc, [with_(inc, op_scope="weights")])
        inc = self.screen("channel", inc, [with_(inc, per_channel=not inc.per_channel)])
        inc = self.screen(
            "symmetric", inc, [with_(inc, symmetric_activations=not inc.symmetric_activations)]
        )
        inc = self.screen("preprocess", inc, [with_(inc, preprocess=not inc.preprocess)])
        inc = self.screen("range", inc, [with_(inc, reduce_range=not inc.reduce_range)], False)
        methods = ("minmax", "entropy", "percentile")
        inc = self.screen("calib", inc, [with_(inc, calibration=m) for m in methods], False)
        counts = sorted({min(c, self.n) for c in SAMPLE_COUNTS})
        return self.screen("samples", inc, [with_(inc, samples=c) for c in counts], False)

    def keep_float(self, inc: Recipe) -> tuple[Recipe, tuple[tuple[str, float], ...]]:
        if self.over("float"):
            self.over("node-time")  # recorded too: it times the nodes the float stage found
            return inc, ()
        self.stage("float")
        if inc.precision != "int8":
            return inc, ()
        base = with_(inc, quant_format="QDQ", keep_float=())
        nodes = self.ws.weight_nodes(base.preprocess)
        if len(nodes) > MAX_SENSITIVITY_NODES:
            self.ws.notes.append(
                f"per-node sensitivity skipped: {len(nodes)} weight nodes "
                f"(the budget is {MAX_SENSITIVITY_NODES})"
            )
            return inc, ()
        fp32_score = self.acc(Recipe(precision="fp32", threads=inc.threads))
        losses: list[tuple[str, float]] = []
        for name, _ in nodes:  # N builds and evaluations: the cap may fall among them
            if self.over("float"):
                self.ws.notes.append(
                    f"per-node sensitivity stopped by the time cap after {len(losses)} of "
                    f"{len(nodes)} weight nodes: no node kept float"
                )
                self.over("node-time")
                return inc, ()
            losses.append((name, self.node_loss(base, fp32_score, name)))
        ranked = sorted(
            (nl for nl in losses if not math.isnan(nl[1])), key=lambda nl: (-nl[1], nl[0])
        )
        top = [name for name, loss in ranked if loss > 0][:KEEP_FLOAT_TOP]
        groups = [tuple(top[: k + 1]) for k in range(len(top))]
        groups.append(tuple(self.ws.depthwise_nodes(base.preprocess)))
        # a group that keeps every weight node float is fp32 with extra casts: not a candidate
        cands = [with_(base, keep_float=g) for g in groups if 0 < len(g) < len(nodes)]
        inc = self.screen("float", inc, cands)
        return self.slow_nodes(inc, [name for name, _ in nodes]), tuple(ranked)

    def slow_nodes(self, inc: Recipe, nodes: list[str]) -> Recipe:
        """Per-node latency: each weight node kept float alone, all timed interleaved with the
        incumbent; the nodes whose float version times faster beyond the noise are then tried
        float together (and alone)."""
        if self.over("node-time"):
            return inc
        self.stage("node-time")
        if inc.precision != "int8" or inc.quant_format != "QDQ" or not self.ok(inc):
            return inc
        singles = {
            n: with_(inc, keep_float=(*inc.keep_float, n))
            for n in nodes
            if n not in inc.keep_float and len(inc.keep_float) + 1 < len(nodes)
        }
        pool = [inc, *[r for r in singles.values() if self.ok(r)]]
        if len(pool) < 2:
            return inc
        t = self._time("node-time", pool, SCREEN_ROUNDS)
        quicker = [n for n, r in singles.items() if r in t and faster(t[r], t[inc])]
        if not quicker:
            return self._choose("node-time", inc, [], t)
        together = with_(inc, keep_float=(*inc.keep_float, *quicker))
        alone = [singles[n] for n in quicker]
        if len(quicker) == 1 or len(together.keep_float) >= len(nodes):
            return self._choose("node-time", inc, alone, t)
        return self.screen("node-time", inc, [together, *alone])

    def fp16(self, inc: Recipe, fp32: Recipe) -> Recipe:
        if self.over("fp16"):
            return inc
        self.stage("fp16")
        half = with_(fp32, precision="fp16")
        if not self.ok(half):
            return inc  # fp16 could not be built or scores below the floor
        items = [inc, fp32, half] if inc != fp32 else [fp32, half]
        t = self._time("fp16", items, SCREEN_ROUNDS)
        if not faster(t[half], t[fp32]):
            self._mark(half, "dropped: fp16 does not time faster than fp32 here")
            self.dropped.add(half)
            return inc
        return self._choose("fp16", inc, [half], t)

    def screen(
        self, stage: str, inc: Recipe, alternatives: Sequence[Recipe], timed: bool = True
    ) -> Recipe:
        if stage != "start" and self.over(stage):  # the first stage gives the final its leader
            return inc
        self.stage(stage)
        alts = [a for a in dict.fromkeys(alternatives) if a != inc]
        if not alts:
            return inc
        for r in [inc, *alts]:  # build and score everything before any timing
            self.acc(r)
        if not timed:
            for r in alts:
                self.tried.append(Tried(r, stage, self.acc(r), eligible=self.ok(r)))
            return self._choose(stage, inc, alts, {})
        pool = [inc, *[a for a in alts if self.ok(a) or not self.ok(inc)]]
        pool = [r for r in pool if r not in self.failed]
        if len(pool) < 2:
            return self._choose(stage, inc, alts, {})
        t = self._time(stage, pool, SCREEN_ROUNDS)
        for r in alts:
            if r not in t and r not in self.failed:
                self.tried.append(Tried(r, stage, self.acc(r), eligible=False, note="not timed"))
        return self._choose(stage, inc, alts, t)

    def stage(self, name: str) -> None:
        if self.progress is not None:
            self.progress(f"int8 recipe search: {name}", STAGES.index(name), len(STAGES))

    def _time(self, stage: str, items: Sequence[Recipe], rounds: int) -> dict[Recipe, Interleaved]:
        paths = [(self.ws.build(r), r) for r in items]
        began = self.cap.elapsed()
        results = dict(zip(items, self.timer(paths, rounds)))
        self.cap.timed(self.cap.elapsed() - began, len(items), rounds)
        for r, res in results.items():
            self.timed[r] = res
            self.tried.append(Tried(r, stage, self.acc(r), res.median_s, res.spread, self.ok(r)))
        return results

    def _choose(
        self, stage: str, inc: Recipe, alts: Sequence[Recipe], t: dict[Recipe, Interleaved]
    ) -> Recipe:
        best = inc
        for r in sorted(alts, key=lambda r: t[r].median_s if r in t else 0.0):
            if self._better(r, best, t):
                best = r
        self._mark(best, "")
        return best

    def _better(self, a: Recipe, b: Recipe, t: dict[Recipe, Interleaved]) -> bool:
        if not self.ok(b):
            return self.ok(a) or self.acc(a) > self.acc(b)
        if not self.ok(a):
            return False
        if a in t and b in t:  # timed: only a win beyond the noise moves the search
            return faster(t[a], t[b])
        return self.acc(a) > self.acc(b)  # the axis changes scales only: accuracy decides

    def _mark(self, r: Recipe, note: str) -> None:
        for i in range(len(self.tried) - 1, -1, -1):
            if self.tried[i].recipe == r:
                old = self.tried[i]
                self.tried[i] = Tried(
                    r,
                    old.stage,
                    old.accuracy,
                    old.latency_s,
                    old.spread,
                    old.eligible,
                    kept=not note,
                    note=note or old.note,
                )
                return

    def final(
        self, inc: Recipe, fp32: Recipe, defaults: Recipe, sens: tuple[tuple[str, float], ...]
    ) -> RecipeChoice:
        ranked = sorted(
            (
                r
                for r in self.timed
                if self.ok(r) and r.precision != "fp32" and r not in self.dropped
            ),
            key=lambda r: self.timed[r].median_s,
        )
        self.stage("final")
        leaders = list(dict.fromkeys([inc, *ranked]))[:LEADERS]
        defaults = with_(defaults, threads=inc.threads)
        fp32 = with_(fp32, threads=inc.threads)
        items = [r for r in dict.fromkeys([*leaders, fp32, defaults]) if r not in self.failed]
        t = self._time("final", items, FINAL_ROUNDS)
        pool = [r for r in items if self.ok(r)]  # the defaults too: never worse than them
        best = min(pool, key=lambda r: t[r].median_s)
        ties = [r for r in pool if not faster(t[best], t[r])]
        if any(unsettled(t[best], t[r]) for r in ties if r != best) and not self.cap.stop(
            "final+", items=len(items), rounds=MAX_ROUNDS
        ):
            # a median gap the rounds disagree on: more rounds, not a verdict (unless the cap
            # leaves no time for them: then it stays a tie, which goes to the smaller change)
            t = self._time("final+", items, MAX_ROUNDS)
            best = min(pool, key=lambda r: t[r].median_s)
            ties = [r for r in pool if not faster(t[best], t[r])]
        winner = min(ties, key=lambda r: (r.changes(), t[r].median_s))
        self._mark(winner, "")
        if self.cap.capped:
            self.ws.notes.append(
                f"time cap of {self.cap.cap_s:.1f} s: stage(s) {', '.join(self.cap.skipped)} "
                f"skipped; the final chose among fp32, onnxruntime's defaults and the "
                f"{len(leaders)} leading recipe(s) tried"
            )
        return RecipeChoice(
            recipe=winner,
            accuracy=self.acc(winner),
            latency=t[winner],
            fp32_accuracy=self.acc(fp32),
            fp32_latency=t[fp32],
            defaults_accuracy=self.acc(defaults),
            defaults_latency=t.get(defaults),
            tried=tuple(self.tried),
            sensitivity=sens,
            notes=tuple(self.ws.notes),
            final=tuple((r, t[r], self.acc(r)) for r in items),
            max_drop=self.max_drop,
            defaults=defaults,
            cap_s=self.cap.cap_s,
            stages_skipped=tuple(self.cap.skipped),
            seconds=self.cap.elapsed(),
            protocol=(
                f"screening: {SCREEN_ROUNDS} interleaved rounds per stage; final: "
                f"{len(items)} models × ≥ {FINAL_ROUNDS} interleaved rounds (rotating order), "
                f"median of round medians; not faster in ≥ 3 of 4 rounds by a median "
                f"≥ {MIN_NOISE:.0%} is a tie, which goes to the smaller change, then the lower "
                "median"
            ),
        )
