"""The chosen model in the target's own formats, where that toolchain is installed here.

ONNX is always written (model.onnx). For each runtime the target lists whose converter runs on this
machine — LiteRT (.tflite), Core ML (.mlpackage), Vela (an Ethos-U .tflite with its cycle report),
TensorRT (an engine, on NVIDIA machines) — the winner's fp32 graph is converted at the winner's
precision with the run's calibration inputs. A runtime that cannot convert here is recorded with
the reason, never silently skipped.

Each conversion runs in a child process with a time limit (converters are native code that can
crash or hang on an odd model: that export is recorded as failed, with the reason, and the others
go on), into a hidden temporary folder that is renamed to ``export/<runtime>`` only when complete.
A rerun whose winner, precision and calibration are unchanged reuses the folder (its
``export.json`` says so).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from edgefit._io import ensure_dir, remove_stale_temps, to_json, write_atomic
from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError
from edgefit.records import DoneCandidate
from edgefit.runtimes import MeasurementError, get_runtime, runtime_names
from edgefit.runtimes._measure import convert_in_child

if TYPE_CHECKING:
    import onnx
else:
    onnx = lazy_import("onnx")

EXPORT_RUNTIMES = ("litert", "coreml", "vela", "tensorrt")
EXPORT_TIMEOUT_S = 900.0
STAMP = "export.json"  # in export/<runtime>/: what the folder was made from, and its record


def _precision(choice: dict, runtime: str) -> str:
    if runtime == "vela":
        return "int8"
    p = choice.get("precision", "fp32")
    if p.startswith("int8"):
        return "int8"
    return "fp16" if p == "fp16" and runtime in ("coreml", "tensorrt") else "fp32"


def export_target_formats(
    target,
    winner: DoneCandidate,
    out_dir: Path,
    calibration=None,
    *,
    timeout_s: float = EXPORT_TIMEOUT_S,
) -> list[dict]:
    """Convert the winner for each native runtime of ``target``; one record per runtime. Each
    conversion gets ``timeout_s`` seconds in its own process."""

    fp32 = Path(winner.onnx).parent / "model.fp32.onnx"
    records = []
    torchao = winner.runtime == "torch"
    for name in target.runtimes:
        if name not in EXPORT_RUNTIMES:
            continue
        # torchao's int8 lives in the torch program; re-quantizing for another runtime is another
        # model
        if torchao:
            records.append(
                {
                    "runtime": name,
                    "status": "skipped",
                    "reason": "the winner is a torchao torch.export program (model.pt2), not "
                    "convertible",
                }
            )
            continue
        if name not in runtime_names():
            records.append(
                {"runtime": name, "status": "skipped", "reason": "no edgefit backend for it yet"}
            )
            continue
        rt = get_runtime(name)
        status = rt.available()
        if not status.ok:
            records.append({"runtime": name, "status": "skipped", "reason": status.reason})
            continue
        precision = _precision(winner.choice.to_dict(), name)
        feeds = (
            None
            if calibration is None
            else [{rt_input: x[None]} for rt_input, x in _named(fp32, calibration[:16])]
        )
        records.append(
            _export_one(name, fp32, precision, feeds, ensure_dir(out_dir / "export"), timeout_s)
        )
    return records


def _export_one(
    name: str, fp32: Path, precision: str, feeds, exports: Path, timeout_s: float
) -> dict:
    """One runtime's export: reused when ``export/<name>`` holds this very conversion, else
    converted in a child into a hidden folder that replaces ``export/<name>`` when complete."""

    stamp = {
        "runtime": name,
        "precision": precision,
        "source_sha256": _sha256(fp32.read_bytes()),
        "calibration_sha256": _sha256(
            b"".join(x.tobytes() for f in feeds or [] for x in f.values())
        ),
    }
    if (reused := _previous(exports / name, stamp)) is not None:
        return reused
    remove_stale_temps(exports)  # folders of a killed run
    building = Path(tempfile.mkdtemp(prefix=f".{name}.{os.getpid()}.", suffix=".tmp", dir=exports))
    try:
        art = convert_in_child(
            name, fp32, precision, building, calibration=feeds, timeout_s=timeout_s
        )
        record = {
            "runtime": name,
            "status": "written",
            "precision": precision,
            "path": str(exports / name / art.path.relative_to(building)),
            "format": art.format,
            "parity": art.metadata.get("parity"),
            "report": art.metadata.get("vela"),
            "reused": False,
        }
        write_atomic(
            building / STAMP, to_json({"stamp": stamp, "record": record}) + "\n"
        )  # the folder is complete
        _install(building, exports / name)
        return record
    except (
        MeasurementError
    ) as exc:  # the converter crashed or hung: killed, recorded, the run goes on
        return {
            "runtime": name,
            "status": "failed",
            "precision": precision,
            "reason": f"{type(exc).__name__}: {str(exc)[:240]}",
        }
    except (EdgefitError, RuntimeError, ValueError, NotImplementedError) as exc:
        return {
            "runtime": name,
            "status": "skipped",
            "precision": precision,
            "reason": f"{type(exc).__name__}: {str(exc)[:240]}",
        }
    finally:
        shutil.rmtree(building, ignore_errors=True)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _previous(folder: Path, stamp: dict) -> dict | None:
    """The record of an earlier export in ``folder`` made from the same model, precision and
    calibration."""
    try:
        saved = json.loads((folder / STAMP).read_text())
    except (OSError, ValueError):
        return None
    record = saved.get("record") if isinstance(saved, dict) else None
    if (
        saved.get("stamp") != stamp
        or not isinstance(record, dict)
        or not Path(record.get("path", "")).exists()
    ):
        return None
    return {**record, "reused": True}


def _install(built: Path, final: Path) -> Path:
    """Put the complete folder ``built`` at ``final`` by renames only: a kill leaves the old
    folder, the new one, or (between the two renames) none — never a half-written one."""
    old = final.with_name(f".{final.name}.{os.getpid()}.old.tmp")
    if final.exists():
        os.replace(final, old)
    os.replace(built, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def _named(fp32: Path, samples):
    """(input name, sample) pairs for the model's single input."""
    model = onnx.load(str(fp32), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    name = next(i.name for i in model.graph.input if i.name not in inits)
    return [(name, s) for s in samples]
