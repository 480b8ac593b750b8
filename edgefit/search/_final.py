"""The final stage of a run on a measured target: re-measure the leaders interleaved, once nothing
else runs.

During the search a candidate is measured while the machine does whatever else it does (on a 2-core
machine the next candidate's build can share it), one candidate after another, so a drift in load
becomes a difference between candidates. Before the pick, the eligible candidates that lead by
their first measurement and the baseline are timed again in interleaved rounds (A B C … C B A …) by
:func:`edgefit.calibrate._measure.interleaved`: a noisy stretch hits all of them alike, and the
spread of each one's round medians says how far its median can be trusted.
"""

from __future__ import annotations

import gc
import time
from pathlib import Path

from edgefit.calibrate import _observed
from edgefit.calibrate._measure import SENTINEL_SLOWDOWN, feeds_for, interleaved, session
from edgefit.iteration import as_loop
from edgefit.passes._recipe import Recipe
from edgefit.passes._recipe_timing import interleaved_timer
from edgefit.records import DoneCandidate, FinalLatency
from edgefit.runtimes._measure import run_queue_wait_ns
from edgefit.search._select import (
    FinalTiming,
    Protocol,
    accuracy_floor,
    eligible,
    latency_of,
)

LEADERS = 4
ROUNDS = 5
MAX_ROUNDS = 11
MAX_SPREAD = 0.10
ROUND_RUNS = 40  # a round lasts about this many runs of the slowest model …
MIN_ROUND_S, MAX_ROUND_S = (
    0.01,
    0.5,
)  # … within these bounds (tiny models: the whole stage stays ~1 s)
SETTLE_S = 0.2


def remeasure_leaders(
    run,
    *,
    leaders: int = LEADERS,
    rounds: int = ROUNDS,
    round_s: float | None = None,
    max_spread: float = MAX_SPREAD,
    max_rounds: int = MAX_ROUNDS,
    settle_s: float = SETTLE_S,
) -> Protocol | None:
    """Re-measure the ``leaders`` fastest eligible candidates of ``run`` (an
    :class:`~edgefit.search.Run`) and its baseline, interleaved, at the run's threads; add each
    one's figures to its latency block (``latency.final``) and return the :class:`Protocol` for
    :func:`~edgefit.search.pick`.

    Eligible: finished, fits the envelope, accuracy ≥ the run's floor. None (and nothing timed)
    when the target is estimated rather than measured, nothing is eligible, or the stage cannot run
    here (a Ray run measured on its workers; a leader on another runtime than onnxruntime):
    ``run.notes`` says which, and the pick then uses the first measurements.

    The timing runs in this process, after the search has finished: ``interleaved`` alternates
    sessions round by round, which one isolated child per artifact cannot do, and a child's
    start-up (importing onnxruntime) would cost more than the whole stage on small models. The
    files were already measured in isolated children, so a runtime crash would have shown there.
    Before timing, this process sleeps ``settle_s``: torch's OpenMP workers spin for a while after
    their last parallel region (up to 200 ms with Intel's OpenMP), and ``torch.set_num_threads(1)``
    does not stop threads already spinning. The search's heap is frozen out of the garbage
    collector meanwhile (``gc.freeze``): ``interleaved`` collects before every round, which over
    torch's and optuna's objects took 0.1 s a round (3 s of an optimize run on the digits example,
    against 0.7 s for the whole stage frozen).

    >>> protocol = remeasure_leaders(run)                            # doctest: +SKIP
    >>> winner = pick(list(run.candidates.values()), run.base_accuracy, max_drop=0.01,
    ...               relative=False, select="latency", protocol=protocol).winner  # doctest: +SKIP
    """
    cfg = run.config
    if run.interrupted:
        return None  # Ctrl-C asked for the best so far, now
    floor = accuracy_floor(run.base_accuracy, max_drop=cfg.max_drop, relative=cfg.relative_drop)
    pool = [
        c for c in eligible(list(run.candidates.values()), floor) if c.latency.source == "measured"
    ]
    if not pool:
        return None  # an estimated target, or nothing to pick from
    if cfg.executor == "ray":
        run.notes.append(
            "final re-measurement skipped: with --executor ray the candidates were measured on "
            "the "
            "workers, not here; the pick uses each one's first measurement"
        )
        return None
    chosen = sorted(pool, key=latency_of)[: max(1, leaders)]
    n_leaders = len(chosen)
    base = run.candidates.get(run.base_key)
    with_base = (
        isinstance(base, DoneCandidate)
        and base.latency.source == "measured"
        and all(c.key != run.base_key for c in chosen)
    )
    if isinstance(base, DoneCandidate) and with_base:
        chosen.append(base)  # for reference: how much faster the pick is, by the same protocol
    why = _cannot_time(chosen)
    if why:
        run.notes.append(
            f"final re-measurement skipped: {why}; the pick uses each one's first measurement"
        )
        return None
    if round_s is None:
        round_s = min(
            MAX_ROUND_S, max(MIN_ROUND_S, ROUND_RUNS * max(latency_of(c) for c in chosen))
        )
    try:
        results, wait = _timed(
            chosen,
            cfg.threads,
            rounds=rounds,
            round_s=round_s,
            max_spread=max_spread,
            max_rounds=max_rounds,
            settle_s=settle_s,
        )
    except KeyboardInterrupt:
        run.notes.append(
            "final re-measurement interrupted: the pick uses each one's first measurement"
        )
        return None
    except Exception as exc:  # noqa: BLE001 - onnxruntime's own errors; the first measurements still stand
        run.notes.append(
            f"final re-measurement failed ({type(exc).__name__}: {str(exc)[:200]}); "
            "the pick uses each one's first measurement"
        )
        return None
    triggers = _certification_triggers(cfg.target)
    timings = []
    for c, r in zip(chosen, results):
        t = FinalTiming(
            c.key,
            r.median_s,
            tuple(r.round_medians_s),
            r.p99_s,
            r.runs,
            latency_of(c),
            _triggers_of(c, triggers),
            c.passes,
            baseline=c.key == run.base_key,
            rounds_left_out=getattr(r, "left_out", 0),
        )
        timings.append(t)
        run.candidates[c.key] = c.with_final(_final_block(t, cfg.threads))
    if cfg.record:
        run.notes += _record(chosen, [r.median_s for r in results], cfg.threads)
    protocol = Protocol(
        rounds, max_rounds, max_spread, round_s, cfg.threads, settle_s, tuple(timings), wait
    )
    run.notes.append(
        f"final pick: the {n_leaders} fastest eligible "
        f"candidate(s){' and the baseline' * with_base} "
        f"re-measured interleaved after the search, "
        f"≥ {rounds} rounds of {round_s * 1e3:.0f} ms at {cfg.threads} thread(s)"
    )
    left_out = sum(t.rounds_left_out for t in timings)
    if left_out:
        run.notes.append(
            f"final pick: {left_out} round(s) over {SENTINEL_SLOWDOWN:.0%} slower than the same "
            "candidate's fastest "
            f"were left out as the machine's slow mode, and rounds added until {rounds} were "
            f"quiet (at most {max_rounds} in all)"
        )
    return protocol


def _record(chosen: list[DoneCandidate], medians_s: list[float], threads: int) -> list[str]:
    """Keep the final timings for `edgefit calibrate --refit`
    (:mod:`edgefit.calibrate._observed`): each model is profiled once more, after the timing.
    Only models at onnxruntime's default graph optimization level, the level calibration lowers
    at. A failure loses a record, never the pick; the notes say what was kept."""
    kept, folder, failed = 0, "", []
    for c, median_s in zip(chosen, medians_s):
        if _opt_level(c) != "all":
            continue
        got = _observed.keep(Path(c.path), threads=threads, measured_s=median_s, source="optimize")
        if got["error"]:
            failed.append(f"'{c.label}' ({got['error'][:120]})")
        else:
            kept, folder = kept + 1, str(Path(got["path"]).parent)
    notes = []
    if kept:
        notes.append(
            f"final pick: {kept} timing(s) kept with their kernels for `edgefit calibrate "
            f"--refit` in {folder} (--no-record: skip)"
        )
    if failed:
        notes.append(f"final pick: not kept for `calibrate --refit`: {', '.join(failed)}")
    return notes


def _cannot_time(chosen: list[DoneCandidate]) -> str:
    for c in chosen:
        if c.runtime != "onnxruntime":
            return (
                f"'{c.label}' runs on {c.runtime}, which the interleaved timer "
                "(onnxruntime) cannot time"
            )
        if not Path(c.path).is_file():
            return f"the model file of '{c.label}' is gone ({c.path})"
    return ""


def _timed(
    chosen: list[DoneCandidate],
    threads: int,
    *,
    rounds: int,
    round_s: float,
    max_spread: float,
    max_rounds: int,
    settle_s: float,
):
    """``interleaved`` on the chosen files after ``settle_s`` of quiet, and the share of the timing
    this process's threads spent waiting for a CPU held by someone else (None off Linux)."""
    levels = [_opt_level(c) for c in chosen]

    gc.collect()
    # each round starts with gc.collect(): over a search's heap (torch, optuna) 0.1 s each, frozen
    # ~0
    gc.freeze()
    try:
        time.sleep(settle_s)
        before, start = run_queue_wait_ns(), time.perf_counter()
        if all(level == "all" for level in levels):
            results = interleaved(
                [c.path for c in chosen],
                threads,
                rounds=rounds,
                round_s=round_s,
                max_spread=max_spread,
                max_rounds=max_rounds,
                quiet_only=True,
                min_quiet=rounds,  # the protocol's ≥ rounds, all of them quiet ones
            )
        else:  # a searched recipe chose another graph optimization level: time it as it runs
            results = _with_levels([c.path for c in chosen], levels, threads, rounds)
        elapsed, after = time.perf_counter() - start, run_queue_wait_ns()
    finally:
        gc.unfreeze()
    wait = (
        None
        if before is None or after is None or elapsed <= 0
        else min(1.0, (after - before) / 1e9 / (elapsed * max(threads, 1)))
    )
    return results, wait


def _opt_level(c: DoneCandidate) -> str:
    """The graph optimization level the candidate is to run at (its artifact's session options,
    set by a searched int8 recipe; onnxruntime's default "all" otherwise)."""
    options = (c.artifact.options if c.artifact is not None else None) or {}
    return str(options.get("graph_optimization_level", "all"))


def _with_levels(paths: list[str], levels: list[str], threads: int, rounds: int):
    """Interleaved rounds as :func:`~edgefit.passes._recipe_timing.interleaved_timer` times
    recipes: each session opened at its own graph optimization level."""
    feed = feeds_for(session(paths[0], threads))
    items = [
        (Path(p), Recipe(precision="fp32", opt_level=lvl, threads=threads))
        for p, lvl in zip(paths, levels)
    ]
    return interleaved_timer(feed)(items, rounds)


def _certification_triggers(target: str) -> frozenset[str] | None:
    """The change kinds that trigger the target's certification loop (None: the target no longer
    loads)."""

    try:
        return frozenset(as_loop(target).certification.triggers)
    except Exception:  # noqa: BLE001 - a user's YAML moved mid-run: fall back to the record's flag
        return None


def _triggers_of(c: DoneCandidate, triggers: frozenset[str] | None) -> tuple[str, ...]:
    kinds = tuple(c.change_kinds or c.iteration.change_kinds)
    if triggers is None:
        return kinds if c.iteration.certification else ()
    return tuple(k for k in kinds if k in triggers)


def _final_block(t: FinalTiming, threads: int) -> FinalLatency:
    return FinalLatency(
        method="interleaved",
        median_s=t.median_s,
        round_medians_s=list(t.round_medians_s),
        rounds=len(t.round_medians_s),
        spread=t.spread,
        p99_s=t.p99_s,
        runs=t.runs,
        threads=threads,
    )
