"""Store a fidelity run next to its profile: summary in the profile YAML, every row in a JSON
file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from edgefit._io import to_json, write_atomic
from edgefit._lazy import lazy_import
from edgefit._units import parse_duration  # noqa: F401  (kept importable here: cli/_optimize)
from edgefit.calibrate._calibrate import _yaml
from edgefit.calibrate._fidelity import FidelityRow, measure_zoo, rows_to_dicts, summarize
from edgefit.estimate import Profile

if TYPE_CHECKING:
    from edgefit import targets
    from edgefit.calibrate import _vela
else:  # the target model needs pydantic (loaded when a check runs); the Vela fidelity imports
    # this module (an import cycle, resolved at call time)
    targets, _vela = lazy_import("edgefit.targets", "edgefit.calibrate._vela")


def fidelity_path(profile_path: str | Path) -> Path:
    path = Path(profile_path)
    return path.with_name(path.stem + ".fidelity.json")


def store_fidelity(profile: Profile, rows: list[FidelityRow], environment: dict) -> dict:
    """Write the rows beside the profile and the summary into it; returns the summary."""

    summary = {**summarize(rows), "environment": environment}
    write_atomic(
        fidelity_path(profile.path),
        to_json({"summary": summary, "rows": rows_to_dicts(rows)}) + "\n",
    )
    updated = Profile(**{**profile.__dict__, "fidelity": summary})
    write_atomic(profile.path, _yaml(updated))
    return summary


def check_fidelity(profile: Profile, update=None) -> dict:
    """Estimate vs measured latency over the model zoo for ``profile`` (Vela's figures for a Vela
    profile), stored beside it; the summary with every row (what `edgefit calibrate/fidelity`
    print)."""
    if profile.runtime == "vela":
        summary = _vela.run_vela_fidelity(profile, progress=update)
        stored = json.loads(fidelity_path(profile.path).read_text()) if profile.path else {}
        return {**summary, "rows": summary.get("rows") or stored.get("rows", [])}
    rows = measure_zoo(
        targets.load_target(profile.target),
        profile,
        threads=profile.environment.get("threads", 1),
        progress=update,
    )
    summary = store_fidelity(profile, rows, profile.environment)
    return {**summary, "rows": [row.__dict__ | {"error": row.error} for row in rows]}
