"""The serving performance model: memory, decode step, prefill — per device of a tensor-parallel
group.

Decisions (every figure ``edgefit serve-plan`` prints follows from them):

* **Memory** per device = weights ÷ N (norms and biases replicated) + KV cache + runtime overhead.
  The KV budget is what is left; the batch that fits at context C is ⌊KV budget ÷ (C × KV bytes per
  token)⌋.
* **Decode step** (one output token for each of B sequences, each holding C tokens of KV — the
  last, slowest step of a C-token sequence): ``max(bytes ÷ (bandwidth × efficiency), FLOPs ÷ (peak
  × efficiency)) + launches + all-reduce``. Bytes = the streamed weights (every matrix and the LM
  head; not the embedding table, which is gathered by row) + B × C × KV bytes per token. FLOPs = 2
  × B × matmul weights + 4 × B × C × layers × heads × head_dim (QKᵀ and AV).
* **Prefill** of a P-token prompt at batch 1 (time to first token, no queueing): the same roofline
  with 2 × P × block weights + 2 × LM head (last token only) + 2 × layers × heads × head_dim × P²
  (causal).
* **Tensor parallelism** over N devices splits matrices and KV heads (KV heads are replicated when
  N exceeds them) and adds two ring all-reduces of the activations per layer:
  ``2 × layers × (latency + 2 (N−1)/N × tokens × hidden × 2 B ÷ link bandwidth)``.
* **Energy** per step = N × (static power × step time + FLOPs × pJ/op + bytes × pJ/B), from the
  target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edgefit.errors import EdgefitError
from edgefit.serve._arch import Architecture
from edgefit.serve._dtypes import SMALL_BYTES, compute_dtype, kv_bytes, weight_storage
from edgefit.serve._hardware import Assumptions, Hardware, best_units, build_hardware


@dataclass(frozen=True)
class Step:
    """One decode step or one prefill: time, its roofline parts and energy."""

    time_s: float
    memory_s: float  # bytes ÷ achievable bandwidth
    compute_s: float  # FLOPs ÷ achievable ops/s
    launch_s: float
    allreduce_s: float
    floor_s: float  # bytes ÷ datasheet (or calibrated) bandwidth: the physical bound, no overheads
    bytes_per_device: float
    flops_per_device: float
    energy_j: float  # all devices

    @property
    def bound(self) -> str:
        return "memory" if self.memory_s >= self.compute_s else "compute"

    def to_dict(self) -> dict:
        return {
            "time_s": self.time_s,
            "memory_s": self.memory_s,
            "compute_s": self.compute_s,
            "launch_s": self.launch_s,
            "allreduce_s": self.allreduce_s,
            "floor_s": self.floor_s,
            "bound": self.bound,
            "bytes_per_device": self.bytes_per_device,
            "flops_per_device": self.flops_per_device,
            "energy_j": self.energy_j,
        }


def check_parallel(arch: Architecture, gpus: int, target) -> None:
    """Tensor parallelism over ``gpus`` must split the heads evenly, and needs a GPU target."""
    if isinstance(gpus, bool) or not isinstance(gpus, int) or not 1 <= gpus <= 64:
        raise EdgefitError(
            f"--gpus must be an integer from 1 to 64, got {gpus!r}",
            where="--gpus",
            fix="give 1, 2, 4 or 8",
        )
    if gpus > 1 and target.kind != "datacenter_gpu":
        raise EdgefitError(
            f"tensor parallelism needs a datacenter GPU target, not {target.kind} '{target.id}'",
            where="--gpus",
            fix="drop --gpus or use --target h100",
        )
    kv = arch.num_kv_heads
    if arch.num_heads % gpus or (kv % gpus and gpus % kv):
        ok = [n for n in range(1, 9) if not arch.num_heads % n and not (kv % n and n % kv)]
        raise EdgefitError(
            f"{gpus} GPUs do not split {arch.num_heads} attention / {kv} KV heads evenly",
            where="--gpus",
            fix=f"use one of {', '.join(map(str, ok))}",
        )


class ServeModel:
    """One serving configuration (model, target, weight and KV dtypes, N devices) and its figures.

    >>> from edgefit.serve import load_architecture
    >>> from edgefit.targets import load_target
    >>> m = ServeModel(load_architecture("llama-3-70b"), load_target("h100"), "fp8", "fp8")
    >>> round(m.kv_bytes_per_token), round(m.weight_bytes / 1e9, 1)
    (163840, 70.6)
    """

    def __init__(
        self,
        arch: Architecture,
        target,
        weights: str,
        kv: str,
        gpus: int = 1,
        assumptions: Assumptions | None = None,
        runtime: str | None = None,
        use_calibration: bool = True,
    ) -> None:
        self.arch, self.target, self.weights, self.kv, self.gpus = arch, target, weights, kv, gpus
        self.assumptions = assumptions or Assumptions()
        self.storage = weight_storage(weights)
        self.compute_dtype = compute_dtype(weights, set(best_units(target)))
        self.kv_element_bytes = kv_bytes(kv)
        if kv not in target.dtypes:
            raise EdgefitError(
                f"target '{target.id}' has no {kv} (it runs {', '.join(target.dtypes)})",
                where="--kv",
                fix=f"pick a KV cache dtype the target runs: {', '.join(target.dtypes)}",
            )
        check_parallel(arch, gpus, target)
        self.hw: Hardware = build_hardware(
            target,
            self.assumptions,
            step_bytes=self.streamed_weight_bytes,
            runtime=runtime,
            use_calibration=use_calibration,
            row_lengths=arch.matmul_row_lengths,
        )

    # --- memory ----------------------------------------------------------------------------------
    @property
    def _bpw(self) -> float:
        return self.storage.bytes_per_weight(self.arch.hidden_size)

    @property
    def _small_bytes(self) -> float:
        return self.arch.small_params * (4.0 if self.weights == "fp32" else SMALL_BYTES)

    @property
    def weight_bytes(self) -> float:
        """All weights, on all devices together."""
        a = self.arch
        matrices = a.num_layers * a.layer_matmul_params + a.embedding_params + a.lm_head_params
        return matrices * self._bpw + self._small_bytes

    @property
    def weight_bytes_per_device(self) -> float:
        return (self.weight_bytes - self._small_bytes) / self.gpus + self._small_bytes

    @property
    def streamed_weight_bytes(self) -> float:
        """Weight bytes one decode step reads on one device: every matrix and the LM head, not the
        embedding table (a gather of B rows)."""
        return self.arch.matmul_params * self._bpw / self.gpus + self._small_bytes

    @property
    def kv_heads_per_device(self) -> int:
        return math.ceil(self.arch.num_kv_heads / self.gpus)

    @property
    def kv_bytes_per_token(self) -> float:
        """KV bytes per token on one device: 2 × layers × KV heads × head_dim × bytes."""
        a = self.arch
        return 2 * a.num_layers * self.kv_heads_per_device * a.head_dim * self.kv_element_bytes

    @property
    def kv_budget(self) -> float:
        """Bytes left for the KV cache on one device (negative: the weights do not fit)."""
        return self.hw.memory_budget.value - self.hw.overhead.value - self.weight_bytes_per_device

    def max_batch(self, context: int) -> int:
        """Sequences of ``context`` tokens whose KV fits the budget (0 when not even one does)."""
        if self.kv_budget <= 0:
            return 0
        return int(self.kv_budget // (context * self.kv_bytes_per_token))

    # --- time ------------------------------------------------------------------------------------
    def _allreduce_s(self, tokens: int) -> float:
        n, a = self.gpus, self.assumptions
        if n == 1:
            return 0.0
        payload = tokens * self.arch.hidden_size * a.activation_bytes
        per = a.allreduce_latency_s + 2 * (n - 1) / n * payload / a.interconnect_bytes_per_s
        return 2 * self.arch.num_layers * per

    def _step(self, bytes_: float, flops: float, tokens: int) -> Step:
        hw = self.hw
        memory_s = bytes_ / hw.achievable_bandwidth()
        compute_s = flops / hw.achievable_ops(self.compute_dtype)
        launch_s = (
            self.arch.num_layers * self.assumptions.launches_per_layer * hw.launch_overhead.value
        )
        allreduce_s = self._allreduce_s(tokens)
        time_s = max(memory_s, compute_s) + launch_s + allreduce_s
        pj = flops * hw.energy_pj_per_op(self.compute_dtype) + bytes_ * hw.pj_per_byte
        energy = self.gpus * (hw.static_power_w.value * time_s + pj * 1e-12)
        return Step(
            time_s,
            memory_s,
            compute_s,
            launch_s,
            allreduce_s,
            bytes_ / hw.bandwidth.value,
            bytes_,
            flops,
            energy,
        )

    def _attention_width(self) -> int:
        return self.arch.num_heads // self.gpus * self.arch.head_dim

    def decode(self, batch: int, context: int) -> Step:
        """One decode step of ``batch`` sequences that each hold ``context`` tokens of KV."""
        a = self.arch
        bytes_ = self.streamed_weight_bytes + batch * context * self.kv_bytes_per_token
        flops = (
            2 * batch * a.matmul_params / self.gpus
            + 4 * batch * context * a.num_layers * self._attention_width()
        )
        return self._step(bytes_, flops, batch)

    def prefill(self, prompt: int, batch: int = 1) -> Step:
        """Prefill of ``batch`` prompts of ``prompt`` tokens in one step (batch 1: the time to
        first token, without queueing)."""
        a = self.arch
        bytes_ = self.streamed_weight_bytes + batch * prompt * self.kv_bytes_per_token
        block = a.num_layers * a.layer_matmul_params
        flops = batch * (
            (2 * prompt * block + 2 * a.vocab_size * a.hidden_size) / self.gpus
            + 2 * a.num_layers * self._attention_width() * prompt * prompt
        )
        return self._step(bytes_, flops, batch * prompt)

    def offline_tokens_per_s(
        self, batch: int, isl: int, osl: int, max_num_tokens: int = 8192
    ) -> float:
        """Output tokens/s of an offline run (as throughput benchmarks report it): ``batch``
        requests of ``isl`` prompt and ``osl`` output tokens; prompts are prefilled together up to
        ``max_num_tokens`` per step (TensorRT-LLM's default), then ``osl`` decode steps run at the
        mean context ``isl + osl/2``.
        """
        per_step = max(1, min(batch, max_num_tokens // isl))
        prefill = math.ceil(batch / per_step) * self.prefill(isl, per_step).time_s
        decode = osl * self.decode(batch, isl + osl // 2).time_s
        return batch * osl / (prefill + decode)

    def best_batch(self, context: int, slo_tpot_s: float | None) -> int:
        """The largest batch that fits and meets the time-per-output-token objective (0: none).

        Step time grows with the batch and throughput B ÷ step does too, so the largest batch wins.
        """
        hi = self.max_batch(context)
        if slo_tpot_s is None or hi == 0:
            return hi
        if self.decode(1, context).time_s > slo_tpot_s:
            return 0
        lo = 1
        while lo < hi:  # largest b in [1, hi] with decode(b).time_s <= slo
            mid = (lo + hi + 1) // 2
            if self.decode(mid, context).time_s <= slo_tpot_s:
                lo = mid
            else:
                hi = mid - 1
        return lo
