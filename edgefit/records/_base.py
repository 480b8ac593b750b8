"""The base of every results.json record: frozen, open to fields a newer edgefit adds.

results.json (schema ``edgefit-results/1``) only ever gains fields. A record therefore keeps any
field it does not know (``extra="allow"``), so a file written by a newer edgefit reads and writes
back whole, and it serializes only the fields that were set, so a file written by an older one
reads and writes back as it was (no ``null`` for a field that version never wrote).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

# the constrained numbers results.json uses; the schema's "minimum" and "pattern" come from here
NonNegative = Annotated[float, Field(ge=0)]
Count = Annotated[int, Field(ge=0)]
Key = Annotated[str, Field(pattern=r"^[0-9a-f]{16}$", description="a candidate's key")]


class Record(BaseModel):
    """A typed block of results.json. :meth:`to_dict` is its JSON content (numbers as numbers,
    unset fields left out); ``Record.model_validate(d)`` reads one back, checked."""

    model_config = ConfigDict(frozen=True, extra="allow")

    def to_dict(self) -> dict[str, Any]:
        """The block as results.json holds it: the fields that were set, recursively."""
        return self.model_dump(mode="python", exclude_unset=True)
