"""The whole of results.json: the run's setting (machine, target, model, data, configuration),
every candidate, the frontier and the pick. :data:`RESULTS_SCHEMA_ID` names the format; its
JSON Schema is generated from these records (:func:`results_json_schema`)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import Field

from edgefit.records._base import Count, Key, NonNegative, Record
from edgefit.records._candidate import CandidateRecord, Rejected
from edgefit.records._selection import Rule, SelectionRecord

RESULTS_SCHEMA_ID = "edgefit-results/1"
SCHEMA_URL = "https://github.com/edgefit/edgefit/schemas/edgefit-results-1.json"
DESCRIPTION = (
    "results.json written by `edgefit optimize` (schema id edgefit-results/1). Every candidate "
    "that was materialized, where each of its numbers came from, the Pareto frontier, the pick "
    "and the choices rejected at estimate time. Units are SI and in the key name (_s seconds, _j "
    "joules, _w watts, _bytes bytes). Within version 1 fields may be added, never removed or "
    "renamed; a breaking change bumps the id to edgefit-results/2. Generated from the records in "
    "edgefit.records."
)


class Environment(Record):
    """The machine and software the run measured on."""

    python: str
    machine: str
    platform: str
    cpu: str | None = Field(default=None, description="CPU model name")
    cpu_count: int | None = None
    isa: list[str] | None = Field(
        default=None, description="SIMD extensions (int8 speed depends on them)"
    )
    versions: dict[str, str | None] | None = Field(
        default=None, description="package -> version (null: not installed)"
    )


class TargetRef(Record):
    id: str = Field(description="shipped target id or the path of a user's YAML")
    power_mode: str | None = None


class ModelSource(Record):
    """The model the run started from."""

    kind: Literal["example", "factory", "onnx"]
    name: str
    input_shape: list[Annotated[int, Field(ge=0)]]


class DataSource(Record):
    """What accuracy was measured on, and whether there was training data."""

    evaluation: str = Field(description="what accuracy was measured on")
    labels: bool
    training: str | None = None


class RunConfig(Record):
    """The options the run was given (``edgefit.OptimizeConfig``)."""

    max_drop: NonNegative
    relative_drop: bool
    select: Rule
    budget_s: float | None = None
    trials: int | None = None
    seed: int
    threads: int | None = None
    recover_epochs: int | None = None
    deadline_days: Annotated[float, Field(gt=0)] | None = None
    executor: str | None = None
    ray_address: str | None = None
    metric: Literal["auto", "top1", "agreement", "sqnr"] | None = None
    threads_from: Literal["user", "target"] | None = Field(
        default=None,
        description="who chose the thread count: --threads (user) or the target's "
        "deployment_threads (target)",
    )


class Baseline(Record):
    """The unchanged model (exported as it is); every candidate is compared with it."""

    key: Key
    accuracy: float


class Counts(Record):
    """How many choices each stage saw."""

    __pydantic_extra__: dict[str, Count] = Field(init=False)  # other counts: integers too

    screened: Count
    could_fit: Count
    materialized: Count
    reused: Count
    failed: Count
    not_started: Count | None = None


class Results(Record):
    """results.json."""

    schema_: Literal["edgefit-results/1"] = Field(alias="schema")
    edgefit_version: Annotated[str, Field(min_length=1)]
    created: str = Field(
        description="UTC time the run finished, ISO 8601",
        pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$",
    )
    command: str | None = Field(
        default=None, description="the command line, when the run came from the CLI"
    )
    environment: Environment
    target: TargetRef
    model: ModelSource
    data: DataSource
    config: RunConfig
    baseline: Baseline
    selection: SelectionRecord
    frontier: list[Key] = Field(
        description="keys of the Pareto set on (accuracy up, p50 latency down), fastest first"
    )
    counts: Counts
    interrupted: bool
    notes: list[str]
    candidates: list[CandidateRecord]
    rejected_at_estimate: list[Rejected]
    recipe_search: dict[str, Any] | None = Field(
        default=None,
        description="the measured int8 recipe search run for an ONNX file on a measured target: "
        "the recipe chosen, the protocol, the final's rounds and spreads, fp32's and "
        "onnxruntime's defaults' latency (each candidate built from it also carries it under "
        "materialize.recipe_search)",
    )
    exports: list[dict[str, Any]] | None = Field(
        default=None, description="the winner in each of the target's formats, or why not"
    )
    files: dict[str, str] | None = Field(
        default=None, description="only in --json output: the files the run wrote"
    )

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="python", exclude_unset=True, by_alias=True)


# the schema's definition names: the ones the hand-written schema of version 1 had (other tools
# may point at "#/$defs/candidate"), the rest in the same style
DEF_NAMES = {
    "Environment": "environment",
    "ChoiceRecord": "choice",
    "Screen": "screen",
    "MeasuredLatency": "latency_measured",
    "EstimatedLatency": "latency_estimated",
    "FinalLatency": "final_latency",
    "ProtocolRecord": "protocol",
    "TimingRecord": "protocol_timing",
    "Tie": "tie",
    "Estimate": "estimate",
    "Check": "check",
    "Accuracy": "accuracy",
    "Iteration": "iteration",
    "Artifact": "artifact",
    "DoneCandidate": "candidate_done",
    "FailedCandidate": "candidate_failed",
    "Rejected": "rejected",
    "RejectedEstimate": "rejected_estimate",
    "SelectionRecord": "selection",
    "TargetRef": "target",
    "ModelSource": "model",
    "DataSource": "data",
    "RunConfig": "config",
    "Baseline": "baseline",
    "Counts": "counts",
}
# a tagged union is a definition of its own, named after what it is
UNION_NAMES = {
    frozenset({"candidate_done", "candidate_failed"}): "candidate",
    frozenset({"latency_measured", "latency_estimated"}): "latency",
}
# definitions of version 1 that the records inline; kept so references to them still resolve
KEPT_DEFS = {
    "key": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
    "number_or_null": {"type": ["number", "null"]},
}


def _ref(name: str) -> str:
    return f"#/$defs/{name}"


def _rewrite(node: Any, unions: dict[str, Any]) -> Any:
    """``node`` with definitions renamed (:data:`DEF_NAMES`) and each tagged union (pydantic's
    ``oneOf`` + ``discriminator``) written as ``if``/``then`` on the tag and moved to a
    definition of its own (:data:`UNION_NAMES`): a validator then names the field that is wrong in
    the branch the tag picks (``candidates[0]: 'latency' is a required property``), where
    ``oneOf`` only says that no branch matched."""
    if isinstance(node, list):
        return [_rewrite(n, unions) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: _rewrite(v, unions) for k, v in node.items()}
    if isinstance(node.get("$ref"), str):
        old = node["$ref"].rsplit("/", 1)[-1]
        node["$ref"] = _ref(DEF_NAMES.get(old, old))
    if "discriminator" in node and "oneOf" in node:
        tag = node["discriminator"]["propertyName"]
        mapping = {
            v: _ref(DEF_NAMES[r.rsplit("/", 1)[-1]])
            for v, r in node["discriminator"]["mapping"].items()
        }
        name = UNION_NAMES[frozenset(r.rsplit("/", 1)[-1] for r in mapping.values())]
        unions[name] = {
            "type": "object",
            "required": [tag],
            "properties": {tag: {"enum": list(mapping)}},
            "allOf": [
                {"if": {"properties": {tag: {"const": v}}}, "then": {"$ref": ref}}
                for v, ref in mapping.items()
            ],
        }
        return {"$ref": _ref(name)}
    return node


def results_json_schema() -> dict[str, Any]:
    """The JSON Schema of results.json (draft 2020-12), generated from :class:`Results`; the
    shipped ``edgefit/report/results.schema.json`` is this, written by ``make schema``."""
    unions: dict[str, Any] = {}
    schema = _rewrite(Results.model_json_schema(by_alias=True, mode="validation"), unions)
    defs = {DEF_NAMES.get(k, k): v for k, v in schema.pop("$defs").items()}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_URL,
        "title": "edgefit results",
        **{k: v for k, v in schema.items() if k not in ("title", "description")},
        "description": DESCRIPTION,
        "$defs": dict(sorted({**defs, **unions, **KEPT_DEFS}.items())),
    }


def results_schema_text() -> str:
    """The schema as the shipped file holds it."""
    return json.dumps(results_json_schema(), indent=2, ensure_ascii=False) + "\n"
