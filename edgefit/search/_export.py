"""The chosen model in the target's own formats, where that toolchain is installed here.

ONNX is always written (model.onnx). For each runtime the target lists whose converter runs on this
machine — LiteRT (.tflite), Core ML (.mlpackage), Vela (an Ethos-U .tflite with its cycle report),
TensorRT (an engine, on NVIDIA machines) — the winner's fp32 graph is converted at the winner's
precision with the run's calibration inputs. A runtime that cannot convert here is recorded with the
reason, never silently skipped.
"""

from __future__ import annotations

import shutil
from pathlib import Path

EXPORT_RUNTIMES = ("litert", "coreml", "vela", "tensorrt")


def _precision(choice: dict, runtime: str) -> str:
    if runtime == "vela":
        return "int8"
    p = choice.get("precision", "fp32")
    if p.startswith("int8"):
        return "int8"
    return "fp16" if p == "fp16" and runtime in ("coreml", "tensorrt") else "fp32"


def export_target_formats(target, winner: dict, out_dir: Path, calibration=None) -> list[dict]:
    """Convert the winner for each native runtime of ``target``; one record per runtime."""
    import onnx

    from edgefit.errors import EdgefitError
    from edgefit.runtimes import get_runtime, runtime_names

    fp32 = Path(winner["onnx"]).parent / "model.fp32.onnx"
    records = []
    torchao = (winner.get("artifact") or {}).get("runtime") == "torch"
    for name in target.runtimes:
        if name not in EXPORT_RUNTIMES:
            continue
        if torchao:  # torchao's int8 lives in the torch program; re-quantizing for another runtime is another model
            records.append({"runtime": name, "status": "skipped",
                            "reason": "the winner is a torchao torch.export program (model.pt2), not convertible"})
            continue
        if name not in runtime_names():
            records.append({"runtime": name, "status": "skipped", "reason": "no edgefit backend for it yet"})
            continue
        rt = get_runtime(name)
        status = rt.available()
        if not status.ok:
            records.append({"runtime": name, "status": "skipped", "reason": status.reason})
            continue
        precision = _precision(winner.get("choice", {}), name)
        folder = out_dir / "export" / name
        try:
            feeds = None if calibration is None else [{rt_input: x[None]} for rt_input, x in
                                                      _named(fp32, calibration[:16])]
            art = rt.convert(onnx.load(str(fp32)), precision, folder, calibration=feeds)
        except (EdgefitError, RuntimeError, ValueError, NotImplementedError) as exc:
            shutil.rmtree(folder, ignore_errors=True)
            records.append({"runtime": name, "status": "skipped", "precision": precision,
                            "reason": f"{type(exc).__name__}: {str(exc)[:240]}"})
            continue
        records.append({"runtime": name, "status": "written", "precision": precision, "path": str(art.path),
                        "format": art.format, "parity": art.metadata.get("parity"),
                        "report": art.metadata.get("vela")})
    return records


def _named(fp32: Path, samples):
    """(input name, sample) pairs for the model's single input."""
    import onnx

    model = onnx.load(str(fp32), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    name = next(i.name for i in model.graph.input if i.name not in inits)
    return [(name, s) for s in samples]
