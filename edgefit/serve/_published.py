"""serve-plan held against published LLM serving results (TensorRT-LLM and NIM tables).

``profiles/<target>/published-serving.yaml`` lists what was measured: model, tensor parallelism,
weight and KV dtypes, input and output lengths (ISL/OSL), concurrency, and whichever of time to
first token (TTFT), time per output token (TPOT, NIM's inter-token latency) and output tokens/s
was published. Nothing is fitted to them: the planner runs with its default assumptions, so each
comparison is a prediction. How a point becomes planner figures:

* **concurrency "max"** (an offline max-load run): the largest batch whose KV fits at ISL + OSL,
  :meth:`ServeModel.offline_tokens_per_s` (prompts prefilled in chunks, then OSL decode steps).
* **concurrency c** (c users, each sending its next request when the last one finished): the
  running batch r = min(c, the batch that fits); in steady state each of the r requests is
  prefilled once per cycle and decodes OSL tokens, and prefills of new requests interleave with
  the decode steps, so one cycle takes ``C = r × prefill(ISL) + OSL × decode(r, ISL + OSL/2)``.
  Then tokens/s = r × OSL / C and TPOT = (C − prefill) / OSL. TTFT is compared at concurrency 1
  only (one prefill); above it, waiting for other requests' prefills and for KV space is
  queueing, which the planner does not model (the point's TTFT is shown, not scored).

Each decode comparison also gives the bandwidth fraction: the speed of light (the step's bytes at
the datasheet bandwidth) over the step time, planned and as published.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edgefit._resources import data_dir
from edgefit._yaml import line_of, load_yaml
from edgefit.errors import EdgefitError
from edgefit.serve._arch import load_architecture
from edgefit.serve._model import ServeModel

FILE_NAME = "published-serving.yaml"
METRICS = ("ttft_ms", "tpot_ms", "output_tokens_per_s")
_FIX = "see edgefit/serve/_published.py and the shipped profiles/h100/published-serving.yaml"


class ServingPoint(BaseModel):
    """One published serving measurement."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(..., pattern=r"^[a-z0-9][a-z0-9.-]*$")
    model: str = Field(..., min_length=1, description="a serve-plan preset")
    tp: int = Field(..., ge=1, le=64, description="tensor-parallel devices")
    weights: str
    kv: str
    isl: int = Field(..., ge=1, le=10_000_000)
    osl: int = Field(..., ge=1, le=10_000_000)
    concurrency: int | Literal["max"]
    ttft_ms: float | None = Field(None, gt=0)
    tpot_ms: float | None = Field(None, gt=0)
    output_tokens_per_s: float | None = Field(None, gt=0)
    source: str = Field(..., min_length=1)
    confidence: Literal["H", "M", "L"]
    note: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ServingPoint:
        if all(getattr(self, m) is None for m in METRICS):
            raise ValueError(f"a point needs at least one of {', '.join(METRICS)}")
        if isinstance(self.concurrency, int) and self.concurrency < 1:
            raise ValueError("concurrency must be at least 1 (or 'max')")
        return self


class ServingFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    target: str
    points: list[ServingPoint] = Field(..., min_length=1)


@dataclass(frozen=True)
class Comparison:
    """One published metric of one point against the planner."""

    metric: str
    published: float
    estimate: float
    scored: bool  # False: shown, not scored (a figure the planner does not model)

    @property
    def error(self) -> float:
        return self.estimate / self.published - 1


@dataclass
class PointCheck:
    point: ServingPoint
    comparisons: list[Comparison]
    batch: int  # sequences the planner runs
    sol_tpot_ms: float | None  # speed of light of the decode step: bytes at datasheet bandwidth
    planned_fraction: float | None  # speed of light ÷ planned TPOT
    published_fraction: float | None  # speed of light ÷ published TPOT
    reason: str = ""

    def to_dict(self) -> dict:
        p = self.point
        return {
            "id": p.id,
            "model": p.model,
            "tp": p.tp,
            "weights": p.weights,
            "kv": p.kv,
            "isl": p.isl,
            "osl": p.osl,
            "concurrency": p.concurrency,
            "batch": self.batch,
            "comparisons": [
                {**c.__dict__, "error": c.error if c.scored else None} for c in self.comparisons
            ],
            "speed_of_light_tpot_ms": self.sol_tpot_ms,
            "planned_bandwidth_fraction": self.planned_fraction,
            "published_bandwidth_fraction": self.published_fraction,
            "source": p.source,
            "confidence": p.confidence,
            "note": p.note,
        }


@dataclass(frozen=True)
class ErrorStats:
    """Median and largest |error| over the scored figures (None: nothing scored)."""

    compared: int
    median_abs_error: float | None
    max_abs_error: float | None

    @classmethod
    def of(cls, errs: list[float]) -> ErrorStats:
        return cls(
            len(errs), statistics.median(errs) if errs else None, max(errs) if errs else None
        )


@dataclass
class ServingReport:
    target: str
    path: str
    rows: list[PointCheck] = field(default_factory=list)

    def errors(self, metric: str | None = None) -> list[float]:
        return [
            abs(c.error)
            for r in self.rows
            for c in r.comparisons
            if c.scored and (metric is None or c.metric == metric)
        ]

    @property
    def overall(self) -> ErrorStats:
        """Every scored figure's |error|."""
        return ErrorStats.of(self.errors())

    @property
    def per_metric(self) -> dict[str, ErrorStats]:
        """Each metric's scored figures' |error| (every metric of :data:`METRICS`)."""
        return {m: ErrorStats.of(self.errors(m)) for m in METRICS}

    def summary(self) -> dict:
        return {
            "points": len(self.rows),
            "fitted_parameters": 0,
            **asdict(self.overall),
            "per_metric": {m: asdict(s) for m, s in self.per_metric.items()},
        }

    def to_dict(self) -> dict:
        return {
            "target": self.target,
            "file": self.path,
            **self.summary(),
            "rows": [r.to_dict() for r in self.rows],
        }


def serving_path(target_id: str, root: Path | None = None) -> Path:
    return (root or data_dir("profiles")) / target_id / FILE_NAME


def load_serving_points(path: str | Path, target_id: str | None = None) -> ServingFile:
    """Load and validate a published-serving file; bad input is one line naming file and line."""
    data, lines = load_yaml(path)
    source = str(path)
    if not isinstance(data, dict):
        raise EdgefitError(
            "a published-serving file must be a YAML mapping", where=source, fix=_FIX
        )
    try:
        pub = ServingFile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        msg = " ".join(str(err["msg"]).removeprefix("Value error, ").split())[:200]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "missing":
            msg = "required field is missing"
        line = line_of(lines, loc) or line_of(lines, loc[:2])
        field_name = ".".join(str(p) for p in loc) or "(top level)"
        raise EdgefitError(
            f"field '{field_name[:80]}': {msg}",
            where=f"{source}:{line}" if line else source,
            fix=_FIX,
        ) from None
    if target_id is not None and pub.target != target_id:
        raise EdgefitError(
            f"field 'target': {pub.target!r} but the file sits under {target_id!r}",
            where=source,
            fix=_FIX,
        )
    return pub


def check_point(point: ServingPoint, target) -> PointCheck:
    """The planner's figures for ``point`` on ``target`` against what was published."""

    m = ServeModel(load_architecture(point.model), target, point.weights, point.kv, point.tp)
    isl, osl = point.isl, point.osl
    fits = m.max_batch(isl + osl)
    if fits < 1:
        raise EdgefitError(
            f"point {point.id}: {point.model} at {isl}+{osl} tokens does not fit {point.tp} x "
            f"{target.id}",
            where=point.id,
            fix="check the point's model, tp and dtypes",
        )
    prefill = m.prefill(isl)
    out: list[Comparison] = []
    if point.concurrency == "max":
        running = fits
        decode = m.decode(running, isl + osl // 2)
        tokens_per_s = m.offline_tokens_per_s(running, isl, osl)
        tpot = decode.time_s
        ttft = None  # everything queued at once: first tokens wait for the whole queue's prefill
    else:
        running = min(point.concurrency, fits)
        decode = m.decode(running, isl + osl // 2)
        cycle = running * prefill.time_s + osl * decode.time_s
        tokens_per_s = running * osl / cycle
        tpot = (cycle - prefill.time_s) / osl
        ttft = prefill.time_s
    planned = {"ttft_ms": None if ttft is None else ttft * 1e3, "tpot_ms": tpot * 1e3}
    planned["output_tokens_per_s"] = tokens_per_s
    for metric in METRICS:
        value = getattr(point, metric)
        estimate = planned[metric]
        if value is None or estimate is None:
            continue
        scored = not (metric == "ttft_ms" and point.concurrency != 1)
        if metric == "tpot_ms" and osl == 1:
            continue
        out.append(Comparison(metric, value, estimate, scored))
    sol = decode.floor_s * 1e3
    published_tpot = point.tpot_ms
    return PointCheck(
        point=point,
        comparisons=out,
        batch=running,
        sol_tpot_ms=sol if osl > 1 else None,
        planned_fraction=sol / (tpot * 1e3) if osl > 1 else None,
        published_fraction=sol / published_tpot if published_tpot else None,
        reason=""
        if point.concurrency in (1, "max")
        else "TTFT above concurrency 1: queueing, not modelled (shown, not scored)",
    )


def published_serving(target, path: str | Path | None = None) -> ServingReport:
    """Every published serving point of ``target`` against the planner (nothing fitted)."""
    file = Path(path) if path is not None else serving_path(target.id)
    if not file.is_file():
        raise EdgefitError(
            f"target '{target.id}' has no published serving measurements",
            where="--target",
            fix="use --target h100, or add profiles/<target>/published-serving.yaml",
        )
    pub = load_serving_points(file, target.id if path is None else None)
    return ServingReport(target.id, str(file), [check_point(p, target) for p in pub.points])


def as_dict(report: ServingReport) -> dict[str, Any]:
    return report.to_dict()
