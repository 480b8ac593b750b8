"""What a whole optimize run hands back: :class:`OptimizeResult`, a typed record of results.json.

results.json (schema ``edgefit-results/1``) stays the one serialization:
:meth:`OptimizeResult.to_dict` is its content, and :meth:`OptimizeResult.from_dict` reads any
results.json of that schema, older ones included (fields are only ever added). The candidate
records inside stay the JSON objects results.json holds; the selection is typed
(:class:`Selection`, with its :class:`Protocol`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edgefit._io import to_json
from edgefit.errors import EdgefitError
from edgefit.records import (
    RESULTS_SCHEMA_ID,
    DoneCandidate,
    FailedCandidate,
    Results,
    SelectionRecord,
    Tie,
    candidate_record,
)
from edgefit.report import load_results
from edgefit.search._config import threads_note
from edgefit.search._select import TIE_RULE, Pick, Protocol

# process exit codes of `edgefit optimize` (see edgefit.cli._optimize)
EXIT_CHOSEN, EXIT_NONE_QUALIFIED, EXIT_INTERRUPTED = 0, 3, 130


def protocol_rule(select: str) -> str:
    """What the final re-measurement decided under the selection rule ``select``."""
    if select == "latency":
        return f"the pick is among the re-measured candidates, by their final figures: {TIE_RULE}"
    return f"recorded for reference; --select {select} keeps its own rule"


@dataclass(frozen=True)
class Selection:
    """How the winner was chosen: results.json's ``selection`` block.

    ``winner`` and ``best_found`` are candidate keys; ``protocol`` is the final interleaved
    re-measurement of the leaders when there was one, with the ``ties`` the pick found in it.
    """

    rule: str
    accuracy_floor: float
    eligible: int
    winner: str | None
    reason: str
    best_found: str | None
    protocol: Protocol | None = None
    ties: tuple[Tie, ...] = ()

    @classmethod
    def of(cls, select: str, pick: Pick, protocol: Protocol | None) -> Selection:
        """The selection a :func:`~edgefit.search.pick` made under rule ``select``."""
        return cls(
            rule=select,
            accuracy_floor=pick.floor,
            eligible=pick.eligible,
            winner=pick.winner.key if pick.winner else None,
            reason=pick.reason,
            best_found=pick.best_found.key if pick.best_found else None,
            protocol=protocol,
            ties=tuple(pick.ties) if protocol is not None else (),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rule": self.rule,
            "accuracy_floor": self.accuracy_floor,
            "eligible": self.eligible,
            "winner": self.winner,
            "reason": self.reason,
            "best_found": self.best_found,
        }
        if self.protocol is not None:
            out["protocol"] = {
                **self.protocol.to_dict(),
                "ties": [t.to_dict() for t in self.ties],
                "rule": protocol_rule(self.rule),
            }
        return out

    @classmethod
    def of_record(cls, r: SelectionRecord) -> Selection:
        """The selection of a results.json ``selection`` block."""
        return cls(
            rule=r.rule,
            accuracy_floor=r.accuracy_floor,
            eligible=r.eligible,
            winner=r.winner,
            reason=r.reason,
            best_found=r.best_found,
            protocol=Protocol.of(r.protocol) if r.protocol else None,
            ties=tuple(r.protocol.ties) if r.protocol else (),
        )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Selection:
        return cls.of_record(SelectionRecord.model_validate(d))


@dataclass(frozen=True)
class Candidate:
    """One materialized candidate: the figures a caller reads, typed; ``record`` is its whole entry
    in results.json's ``candidates`` (every number there says where it came from).

    ``p50_s`` is the latency the pick used first (measured, or the estimate on an estimated
    target: ``latency_source``); ``final_median_s`` the interleaved re-measurement, when the
    candidate led. ``path`` is the file to deploy: the ONNX model, or a torchao winner's .pt2.
    """

    key: str
    label: str
    status: str  # done | failed
    accuracy: float | None
    accuracy_kind: str | None  # top1 | agreement | sqnr
    p50_s: float | None
    latency_source: str | None  # measured | estimated
    final_median_s: float | None
    fits: bool | None
    path: str | None
    error: str | None
    record: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def of(cls, c: DoneCandidate | FailedCandidate) -> Candidate:
        """The view of a typed candidate record."""
        if isinstance(c, FailedCandidate):
            return cls(
                key=c.key,
                label=c.label,
                status=c.status,
                accuracy=None,
                accuracy_kind=None,
                p50_s=None,
                latency_source=None,
                final_median_s=None,
                fits=None,
                path=None,
                error=c.error,
                record=c.to_dict(),
            )
        lat = c.latency
        return cls(
            key=c.key,
            label=c.label,
            status=c.status,
            accuracy=c.accuracy.value,
            accuracy_kind=c.accuracy.kind,
            p50_s=lat.p50_s,
            latency_source=lat.source,
            final_median_s=lat.final.median_s if lat.final else None,
            fits=c.fits,
            path=c.artifact.path if c.artifact else c.onnx,
            error=None,
            record=c.to_dict(),
        )

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Candidate:
        """The view of a results.json ``candidates`` entry (checked against its record)."""
        return cls.of(candidate_record(record))

    def to_dict(self) -> dict[str, Any]:
        """The candidate's results.json entry (a copy)."""
        return copy.deepcopy(dict(self.record))


@dataclass(frozen=True)
class OptimizeResult:
    """One optimize run: the chosen candidate, the frontier, the selection, what was written.

    ``chosen`` is the winner (a :class:`Candidate`), None when nothing met the accuracy floor and
    the envelope; ``best_found`` is then the closest one.
    ``frontier`` lists the keys of the Pareto set (accuracy ↑, latency ↓), fastest first. ``files``
    names every file written: ``results``, ``model`` (model.onnx), ``model_torch`` (a torchao
    winner's model.pt2), ``report``, ``html`` and ``export:<runtime>`` for each target format.

    >>> import edgefit
    >>> config = edgefit.OptimizeConfig(trials=4)
    >>> result = edgefit.optimize(None, "host-cpu", config=config)  # doctest: +SKIP
    >>> result.chosen.label, result.files["model"]  # doctest: +SKIP
    ('int8 static (minmax)', 'edgefit-out/host-cpu/model.onnx')
    """

    chosen: Candidate | None
    best_found: Candidate | None
    baseline_key: str
    baseline_accuracy: float
    frontier: tuple[str, ...]
    selection: Selection
    exports: tuple[dict, ...]
    notes: tuple[str, ...]
    interrupted: bool
    files: Mapping[str, str]
    results: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """Whether a candidate was chosen."""
        return self.chosen is not None

    @property
    def exit_code(self) -> int:
        """`edgefit optimize`'s exit code for this result: 0 chosen, 3 none qualified, 130
        interrupted before any candidate finished."""
        if self.chosen is not None:
            return EXIT_CHOSEN
        if self.interrupted and not self.results.get("candidates"):
            return EXIT_INTERRUPTED
        return EXIT_NONE_QUALIFIED

    @property
    def record(self) -> Results:
        """results.json as its typed record (:class:`edgefit.records.Results`): every candidate,
        the selection and the run's setting, as attributes."""
        return Results.model_validate(self.results)

    @property
    def candidates(self) -> tuple[Candidate, ...]:
        """Every materialized candidate, finished or failed, in results.json's order."""
        return tuple(
            Candidate.from_dict(c) for c in self.results.get("candidates", []) if "key" in c
        )

    def to_dict(self) -> dict[str, Any]:
        """results.json's content (a copy: the result itself stays as it was)."""
        return json.loads(to_json(self.results, indent=None))

    @classmethod
    def from_dict(
        cls, res: Mapping[str, Any], files: Mapping[str, str] | None = None
    ) -> OptimizeResult:
        """The record of a results.json dict (any ``edgefit-results/1`` file, older ones too)."""
        res = json.loads(to_json(res, indent=None))  # as written: NaN → null, numpy → numbers
        try:
            record = Results.model_validate(res)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise EdgefitError(
                f"not an {RESULTS_SCHEMA_ID} record: {where}: {first['msg']}",
                where="results",
                fix="`edgefit report schema` prints the schema a results.json follows",
            ) from None
        cands = {c.key: Candidate.of(c) for c in record.candidates}
        selection = Selection.of_record(record.selection)
        return cls(
            chosen=cands.get(selection.winner) if selection.winner else None,
            best_found=cands.get(selection.best_found) if selection.best_found else None,
            baseline_key=record.baseline.key,
            baseline_accuracy=record.baseline.accuracy,
            frontier=tuple(record.frontier),
            selection=selection,
            exports=tuple(record.exports or ()),
            notes=tuple(record.notes),
            interrupted=record.interrupted,
            files=dict(files or {}),
            results=res,
        )

    @classmethod
    def load(cls, path: str | Path) -> OptimizeResult:
        """Read a results.json written by `edgefit optimize` or :func:`edgefit.optimize`
        (checked against its schema; an unreadable file is an EdgefitError)."""

        return cls.from_dict(load_results(path), {"results": str(path)})


THREADS_SCHEMA = "edgefit-threads/1"


def _pick_dict(result: OptimizeResult) -> dict[str, Any]:
    """One thread count's line in threads.json: its pick (or why none), p50 and accuracy."""
    c = result.chosen
    return {
        "chosen": None
        if c is None
        else {
            "key": c.key,
            "label": c.label,
            "accuracy": c.accuracy,
            "accuracy_kind": c.accuracy_kind,
            "p50_s": c.p50_s,
            "latency_source": c.latency_source,
            "final_median_s": c.final_median_s,
        },
        "reason": result.selection.reason,
        "best_found": result.best_found.label if result.best_found else None,
        "baseline_accuracy": result.baseline_accuracy,
        "interrupted": result.interrupted,
        "exit_code": result.exit_code,
    }


@dataclass(frozen=True)
class ThreadsResult:
    """An optimize run for several deployment thread counts (``--threads 1,2``): one whole
    :class:`OptimizeResult` per count, each written in its own ``threads-N`` folder, and the
    summary, threads.json, beside them.

    ``runs`` holds the counts that finished, in the order given; ``not_started`` those a Ctrl-C
    left for the next run (which reuses every finished candidate). ``threads_from`` is ``"user"``
    (``--threads``) or ``"target"`` (its ``deployment_threads``).

    >>> import edgefit
    >>> config = edgefit.OptimizeConfig(trials=4, threads=(1, 2))
    >>> result = edgefit.optimize(None, "host-cpu", config=config)  # doctest: +SKIP
    >>> {n: r.chosen.label for n, r in result.runs.items()}  # doctest: +SKIP
    {1: 'int8 static (minmax)', 2: 'fp32'}
    """

    threads: tuple[int, ...]
    threads_from: str  # user | target
    target_id: str
    runs: Mapping[int, OptimizeResult]
    not_started: tuple[int, ...] = ()
    notes: tuple[str, ...] = ()
    files: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether every thread count ran and chose a candidate."""
        return not self.not_started and all(r.ok for r in self.runs.values())

    @property
    def interrupted(self) -> bool:
        return bool(self.not_started) or any(r.interrupted for r in self.runs.values())

    @property
    def exit_code(self) -> int:
        """The worst of the counts' exit codes; a count never started is an interruption."""
        codes = {r.exit_code for r in self.runs.values()}
        if self.not_started or EXIT_INTERRUPTED in codes:
            return EXIT_INTERRUPTED
        return EXIT_NONE_QUALIFIED if EXIT_NONE_QUALIFIED in codes else EXIT_CHOSEN

    @property
    def picks_differ(self) -> bool:
        """Whether the thread counts chose different candidates (or some chose none)."""
        return len({r.chosen.key if r.chosen else None for r in self.runs.values()}) > 1

    def differ_note(self) -> str | None:
        """One line naming each count's pick when they differ, else None."""
        if not self.picks_differ:
            return None
        picks = "; ".join(
            f"{n} thread{'s' * (n != 1)}: {r.chosen.label if r.chosen else 'none qualified'}"
            for n, r in self.runs.items()
        )
        return f"the pick depends on the thread count ({picks}): deploy the one you will run at"

    def to_dict(self) -> dict[str, Any]:
        """threads.json's content: per count its folder, pick, p50 and accuracy."""
        return {
            "schema": THREADS_SCHEMA,
            "target": {"id": self.target_id},
            "threads": list(self.threads),
            "threads_from": self.threads_from,
            "threads_note": threads_note(self.threads, self.threads_from, self.target_id),
            "runs": [
                {"threads": n, "folder": f"threads-{n}", **_pick_dict(r)}
                for n, r in self.runs.items()
            ],
            "not_started": list(self.not_started),
            "picks_differ": self.picks_differ,
            "notes": list(self.notes),
        }

    @classmethod
    def load(cls, path: str | Path) -> ThreadsResult:
        """Read a threads.json and each finished count's results.json beside it."""
        path = Path(path)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            if d.get("schema") != THREADS_SCHEMA:
                raise ValueError(f"not a {THREADS_SCHEMA} file")
            finished = [int(r["threads"]) for r in d["runs"]]  # each in threads-N beside it
            threads = tuple(int(n) for n in d["threads"])
            target_id = str(d["target"]["id"])
        except (OSError, ValueError, AttributeError, KeyError, TypeError) as exc:
            raise EdgefitError(
                f"cannot read a thread-count summary: {exc}",
                where=str(path),
                fix="pass the threads.json that `edgefit optimize --threads 1,2` wrote",
            ) from None
        return cls(
            threads=threads,
            threads_from=d.get("threads_from", "user"),
            target_id=target_id,
            runs={
                n: OptimizeResult.load(path.parent / f"threads-{n}" / "results.json")
                for n in finished
            },
            not_started=tuple(d.get("not_started", ())),
            notes=tuple(d.get("notes", ())),
            files={"threads": str(path)},
        )
