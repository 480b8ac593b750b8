"""How the winner was chosen: the selection rule, the accuracy floor, and (on a measured target)
the protocol of the final interleaved re-measurement with the ties it found."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from edgefit.records._base import Count, Key, NonNegative, Record

Rule = Literal["latency", "accuracy", "deadline"]


class TimingRecord(Record):
    """One leader's figures in the final re-measurement (``edgefit.search.FinalTiming``)."""

    key: Key
    median_s: NonNegative
    round_medians_s: Annotated[list[NonNegative], Field(min_length=1)]
    rounds: Annotated[int, Field(ge=1)] | None = None
    spread: NonNegative
    p99_s: float
    runs: Count | None = None
    first_p50_s: NonNegative | None = None
    certification_triggers: list[str] | None = None
    passes: Count | None = None
    baseline: bool | None = None
    rounds_left_out: Count | None = Field(
        default=None, description="rounds left out as over 20% slower than this one's fastest"
    )


class Tie(Record):
    """Two leaders whose final medians are within each other's noise, and which one won."""

    key: Key
    with_: Key = Field(alias="with")
    difference: NonNegative
    noise: NonNegative
    winner: Key

    def to_dict(self) -> dict:
        return self.model_dump(mode="python", exclude_unset=True, by_alias=True)


class ProtocolRecord(Record):
    """How the leaders were re-measured before the pick (measured targets, local executor);
    absent in older files and where it did not run (run notes say why)."""

    method: Literal["interleaved"]
    rounds: Annotated[int, Field(ge=1)]
    max_rounds: Annotated[int, Field(ge=1)] | None = None
    max_spread: NonNegative | None = None
    round_s: Annotated[float, Field(gt=0)] | None = None
    threads: Annotated[int, Field(ge=1)]
    settle_s: NonNegative | None = None
    cpu_wait_fraction: float | None = None
    candidates: list[TimingRecord]
    ties: list[Tie]
    rule: str = Field(description="how the pick used these figures, in words")

    def to_dict(self) -> dict:
        return self.model_dump(mode="python", exclude_unset=True, by_alias=True)


class SelectionRecord(Record):
    """results.json's ``selection`` block."""

    rule: Rule
    accuracy_floor: float
    eligible: Count
    winner: Key | None
    reason: str = Field(description="why nothing qualified (empty when a winner was chosen)")
    best_found: Key | None
    protocol: ProtocolRecord | None = None

    def to_dict(self) -> dict:
        return self.model_dump(mode="python", exclude_unset=True, by_alias=True)
