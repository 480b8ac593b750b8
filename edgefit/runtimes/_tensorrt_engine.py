"""The parts of the TensorRT backend that need ``tensorrt`` and a CUDA device: build, cache, run,
time.

Written against TensorRT 10's documented Python API (``Builder``, ``OnnxParser``,
``IBuilderConfig``, ``execute_async_v3`` with named tensor addresses). Device buffers, the stream
and the timing events are torch's (``torch.cuda``), since torch is a core dependency and avoids a
second CUDA binding.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefit._io import write_atomic
from edgefit._lazy import lazy_import
from edgefit._resources import user_cache_dir
from edgefit.errors import EdgefitError
from edgefit.runtimes import _ort_convert as conv
from edgefit.runtimes._base import Artifact, Inputs, Session
from edgefit.runtimes._inputs import (
    check_inputs,
    load_onnx,
    model_stem,
    onnx_input_specs,
    random_inputs,
)
from edgefit.runtimes._parity import artifact_parity

if TYPE_CHECKING:
    import numpy as np
    import onnx
    import tensorrt as trt
    import torch

    from edgefit.runtimes import _tensorrt
else:
    np, onnx, trt, torch = lazy_import("numpy", "onnx", "tensorrt", "torch")
    # _tensorrt imports this module's build_engine and TrtSession; its cache key is read lazily
    _tensorrt = lazy_import("edgefit.runtimes._tensorrt")


def _cache_dir() -> Path:
    return user_cache_dir() / "tensorrt"


def _has_qdq(model) -> bool:
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)


def _prepare_onnx(model, plan, samples, calibration_source: str, folder: Path) -> tuple[Any, dict]:
    """Apply ``plan.pre_convert`` to the ONNX: fp16 cast, or Q/DQ insertion (symmetric S8) when
    absent."""
    if plan.pre_convert == "fp16":
        meta = conv.to_fp16(model, folder / "fp16.onnx")
        return onnx.load(str(folder / "fp16.onnx")), {"pre_convert": meta["recipe"]}
    if plan.pre_convert == "qdq" and not _has_qdq(model):
        meta = conv.quantize_int8_static(
            model,
            folder / "qdq.onnx",
            samples,
            per_channel=True,
            reduce_range=False,
            calibration_source=calibration_source,
            preprocess=True,
            symmetric=True,
        )
        return onnx.load(str(folder / "qdq.onnx")), {
            "pre_convert": meta["recipe"],
            **{k: v for k, v in meta.items() if k in ("calibration", "warning", "note")},
        }
    return model, {}


def _make_calibrator(samples, cache_path: Path):
    """An entropy calibrator (implicit int8, deprecated in TensorRT 10) with a calibration cache
    file."""
    if not hasattr(trt, "IInt8EntropyCalibrator2"):
        raise EdgefitError(
            "this TensorRT has no implicit int8 calibrator",
            where="options",
            fix="use int8_mode='explicit' (Q/DQ)",
        )

    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            super().__init__()
            self._samples, self._next = list(samples), 0
            self._keep: list[Any] = []

        def get_batch_size(self) -> int:
            return 1

        def get_batch(self, names):
            if self._next >= len(self._samples):
                return None
            sample = self._samples[self._next]
            self._next += 1
            self._keep = [torch.from_numpy(np.ascontiguousarray(sample[n])).cuda() for n in names]
            return [t.data_ptr() for t in self._keep]

        def read_calibration_cache(self):
            return cache_path.read_bytes() if cache_path.exists() else None

        def write_calibration_cache(self, cache) -> None:
            write_atomic(cache_path, bytes(cache))

    return Calibrator()


def _build(onnx_bytes: bytes, plan, opts, samples, key: str) -> bytes:
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    for name in plan.network_flags:
        flags |= 1 << int(getattr(trt.NetworkDefinitionCreationFlag, name))
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EdgefitError(
            f"TensorRT's ONNX parser rejected the model: {errors[:400]}",
            where="MODEL",
            fix="check the opset and ops against TensorRT's ONNX operator support",
        )
    config = builder.create_builder_config()
    for name in plan.set_flags:
        config.set_flag(getattr(trt.BuilderFlag, name))
    for name in plan.clear_flags:
        config.clear_flag(getattr(trt.BuilderFlag, name))
    if opts.workspace_bytes:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, opts.workspace_bytes)
    config.builder_optimization_level = opts.optimization_level
    _fix_dynamic_shapes(builder, network, config)
    if plan.calibrator:
        config.int8_calibrator = _make_calibrator(
            samples, _cache_dir() / f"calibration-{key[:32]}.cache"
        )
    timing_path = _cache_dir() / f"timing-{trt.__version__}.cache"
    timing = config.create_timing_cache(timing_path.read_bytes() if timing_path.exists() else b"")
    config.set_timing_cache(timing, ignore_mismatch=True)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EdgefitError(
            "TensorRT failed to build an engine (see its log on stderr)",
            where="--precision",
            fix="try another precision, or raise workspace_bytes",
        )
    write_atomic(timing_path, bytes(config.get_timing_cache().serialize()))
    return bytes(serialized)


def _fix_dynamic_shapes(builder, network, config) -> None:
    """One optimization profile with every dynamic dimension at 1 (batch 1), as the rest of edgefit
    assumes."""
    dynamic = [
        network.get_input(i)
        for i in range(network.num_inputs)
        if -1 in tuple(network.get_input(i).shape)
    ]
    if not dynamic:
        return
    profile = builder.create_optimization_profile()
    for tensor in dynamic:
        shape = tuple(1 if d == -1 else d for d in tensor.shape)
        profile.set_shape(tensor.name, shape, shape, shape)
    config.add_optimization_profile(profile)


def build_engine(runtime, model, precision: str, out_dir, calibration, opts, plan) -> Artifact:
    source = conv.clamp_ir(copy.deepcopy(load_onnx(model)))
    specs = onnx_input_specs(source)
    calibration = [check_inputs(s, specs) for s in calibration] if calibration else None
    samples = calibration or [
        random_inputs(specs, seed=100 + i) for i in range(opts.calibration_samples)
    ]
    where = "given calibration inputs" if calibration else "random normal inputs (seeds 100…)"
    with tempfile.TemporaryDirectory(prefix="edgefit-trt-") as tmp:
        prepared, meta = _prepare_onnx(source, plan, samples, where, Path(tmp))
    onnx_bytes = prepared.SerializeToString()
    gpu = torch.cuda.get_device_name(0)
    key = _tensorrt.engine_cache_key(onnx_bytes, precision, trt.__version__, gpu, opts)
    cached = _cache_dir() / f"{key}.engine"
    meta.update(
        {
            "cache_key": key,
            "cache_hit": cached.exists(),
            "tensorrt": trt.__version__,
            "gpu": gpu,
            "plan": asdict(plan),
            "options": asdict(opts),
        }
    )
    if not cached.exists():
        write_atomic(cached, _build(onnx_bytes, plan, opts, samples, key))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{model_stem(source)}.{precision}.{key[:12]}.engine"
    shutil.copyfile(cached, path)
    artifact = Artifact(path, "tensorrt-engine", precision, runtime.name, meta)
    meta.update(
        artifact_parity(runtime, artifact, source, specs, calibration, opts.parity_samples)
    )
    return artifact


class TrtSession(Session):
    """A deserialized engine with one execution context, device buffers and a private CUDA
    stream."""

    def __init__(self, artifact: Artifact, threads: int | None) -> None:
        logger = trt.Logger(trt.Logger.WARNING)
        self._engine = trt.Runtime(logger).deserialize_cuda_engine(
            Path(artifact.path).read_bytes()
        )
        if self._engine is None:
            raise EdgefitError(
                f"TensorRT could not load {artifact.path}",
                where="artifact",
                fix="engines only load on the TensorRT version and GPU that built them; convert "
                "again",
            )
        self._context = self._engine.create_execution_context()
        self._stream = torch.cuda.Stream()
        self._inputs: dict[str, Any] = {}
        self._outputs: dict[str, Any] = {}
        self._loaded = False
        for i in range(self._engine.num_io_tensors):
            name = self._engine.get_tensor_name(i)
            shape = tuple(1 if d == -1 else d for d in self._engine.get_tensor_shape(name))
            dtype = torch.from_numpy(
                np.empty(0, dtype=trt.nptype(self._engine.get_tensor_dtype(name)))
            ).dtype
            is_input = self._engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            if is_input:
                self._context.set_input_shape(name, shape)
            buffer = torch.empty(shape, dtype=dtype, device="cuda")
            (self._inputs if is_input else self._outputs)[name] = buffer
            self._context.set_tensor_address(name, buffer.data_ptr())
        self.environment = {
            "runtime": "tensorrt",
            "version": trt.__version__,
            "gpu": torch.cuda.get_device_name(0),
            "providers": ["TensorRT"],
            "timer": "CUDA events around execute_async_v3 (device time, inputs already on device)",
        }

    def input_specs(self) -> dict[str, tuple[tuple[int, ...], str]]:
        return {
            n: (tuple(b.shape), str(b.dtype).removeprefix("torch."))
            for n, b in self._inputs.items()
        }

    def _load(self, inputs: Inputs) -> None:
        for name, buffer in self._inputs.items():
            buffer.copy_(torch.as_tensor(inputs[name]).reshape(buffer.shape))

    def run(self, inputs: Inputs) -> dict[str, Any]:
        self._load(inputs)
        self._loaded = True
        self._context.execute_async_v3(self._stream.cuda_stream)
        self._stream.synchronize()
        return {n: b.float().cpu().numpy() for n, b in self._outputs.items()}

    def timed_run(self, inputs: Inputs) -> float:
        """Device time of one inference (the inputs were copied by the warm-up ``run``, outside the
        timing)."""
        if not self._loaded:
            self._load(inputs)
            self._loaded = True
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record(self._stream)
        self._context.execute_async_v3(self._stream.cuda_stream)
        end.record(self._stream)
        end.synchronize()
        return start.elapsed_time(end) / 1e3  # ms → s
