"""results.json as typed records (pydantic models): the run's setting, every candidate with where
each of its numbers came from, and the selection.

These records *are* the format. The search builds them, results.json is their serialization
(:meth:`Record.to_dict`), ``Results.model_validate`` reads any ``edgefit-results/1`` file back,
older ones included, and the file's JSON Schema (``edgefit report schema``) is generated from
them. A new field is added here, optional, so older files still read.
"""

from __future__ import annotations

from edgefit.records._base import Record
from edgefit.records._candidate import (
    Accuracy,
    Artifact,
    CandidateRecord,
    Check,
    ChoiceRecord,
    DoneCandidate,
    Estimate,
    EstimatedLatency,
    FailedCandidate,
    FinalLatency,
    Iteration,
    Latency,
    MeasuredLatency,
    Rejected,
    RejectedEstimate,
    Screen,
    candidate_record,
)
from edgefit.records._results import (
    RESULTS_SCHEMA_ID,
    Baseline,
    Counts,
    DataSource,
    Environment,
    ModelSource,
    Results,
    RunConfig,
    TargetRef,
    results_json_schema,
    results_schema_text,
)
from edgefit.records._selection import ProtocolRecord, SelectionRecord, Tie, TimingRecord

__all__ = [
    "RESULTS_SCHEMA_ID",
    "Accuracy",
    "Artifact",
    "Baseline",
    "CandidateRecord",
    "Check",
    "ChoiceRecord",
    "Counts",
    "DataSource",
    "DoneCandidate",
    "Environment",
    "Estimate",
    "EstimatedLatency",
    "FailedCandidate",
    "FinalLatency",
    "Iteration",
    "Latency",
    "MeasuredLatency",
    "ModelSource",
    "ProtocolRecord",
    "Record",
    "Rejected",
    "RejectedEstimate",
    "Results",
    "RunConfig",
    "Screen",
    "SelectionRecord",
    "TargetRef",
    "Tie",
    "TimingRecord",
    "candidate_record",
    "results_json_schema",
    "results_schema_text",
]
