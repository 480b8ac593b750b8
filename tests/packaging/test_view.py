"""edgefit._view: the typed views the CLI prints plan, fidelity and serve-plan results from read
the document whole and as it is (what `--json` prints stays the one source)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from edgefit._view import view


@dataclass(frozen=True)
class Share:
    name: str
    share: float


@dataclass(frozen=True)
class Cycle:
    days: float
    bottleneck: Share
    stages: tuple[Share, ...]
    by_kind: dict[str, Share]
    note: str | None = None
    optional: Share | None = None
    tags: tuple[str, ...] = ()


DOC = {
    "days": 12,
    "bottleneck": {"name": "review", "share": 0.5, "extra": "kept out"},
    "stages": [{"name": "build", "share": 0.25}, {"name": "review", "share": 0.5}],
    "by_kind": {"int8": {"name": "quantization", "share": 0.1}},
    "optional": None,
    "unrelated": [1, 2, 3],
}


def test_nested_records_lists_and_maps_are_read_by_their_type_hints():
    c = view(Cycle, DOC)
    assert c.bottleneck == Share("review", 0.5)
    assert c.stages == (Share("build", 0.25), Share("review", 0.5))
    assert c.by_kind == {"int8": Share("quantization", 0.1)}


def test_values_stay_as_the_document_holds_them_and_absent_fields_take_their_defaults():
    c = view(Cycle, DOC)
    assert c.days == 12 and isinstance(c.days, int)  # not coerced: printed text stays the same
    assert c.optional is None and c.note is None and c.tags == ()
    assert view(Cycle, {**DOC, "tags": ["a", "b"]}).tags == ("a", "b")


def test_a_missing_field_without_a_default_is_an_error_naming_it():
    with pytest.raises(KeyError, match="bottleneck"):
        view(Cycle, {k: v for k, v in DOC.items() if k != "bottleneck"})
