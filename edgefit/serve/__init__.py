"""LLM serving planner: what fits a target's memory, how fast it decodes, at what cost per
iteration.

A decoder is described without weights (a Hugging Face ``config.json`` or a shipped preset); the
planner sizes weights and KV cache per dtype, finds the batch × context that fits after a stated
runtime overhead, and estimates prefill (compute-bound), time per output token (bandwidth-bound,
batch-dependent), tokens/s, energy per token and tensor parallelism — all from the target profile,
every number labelled a datasheet (or calibrated) estimate with its assumptions.

>>> from edgefit.serve import ServeRequest, plan_serving
>>> request = ServeRequest("llama-3-70b", "h100", context=8192, weights=("fp8",), kv=("fp8",))
>>> plan = plan_serving(request)
>>> row = plan.rows[0]
>>> row.verdict, row.max_batch, round(row.kv_budget_bytes / 1e9, 2)
('fits', 4, 5.44)

Importing this package is light (no torch); :func:`measure_decoder` imports torch when called.
"""

from edgefit.serve._api import serve_plan
from edgefit.serve._arch import Architecture, from_hf_config, list_presets, load_architecture
from edgefit.serve._dtypes import (
    KV_BYTES,
    WEIGHT_DTYPES,
    Storage,
    compute_dtype,
    kv_bytes,
    weight_storage,
)
from edgefit.serve._hardware import Assumptions, Figure, Hardware, build_hardware
from edgefit.serve._measure import Measurement, compare_with_plan, measure_decoder
from edgefit.serve._model import ServeModel, Step, check_parallel
from edgefit.serve._plan import SCHEMA, Row, ServePlan, default_dtypes, iteration_tax, plan_serving
from edgefit.serve._request import ServeRequest, parse_duration, parse_overhead

__all__ = [
    "KV_BYTES",
    "SCHEMA",
    "WEIGHT_DTYPES",
    "Architecture",
    "Assumptions",
    "Figure",
    "Hardware",
    "Measurement",
    "Row",
    "ServeModel",
    "ServePlan",
    "ServeRequest",
    "Step",
    "Storage",
    "build_hardware",
    "check_parallel",
    "compare_with_plan",
    "compute_dtype",
    "default_dtypes",
    "from_hf_config",
    "iteration_tax",
    "kv_bytes",
    "list_presets",
    "load_architecture",
    "measure_decoder",
    "parse_duration",
    "parse_overhead",
    "plan_serving",
    "serve_plan",
    "weight_storage",
]
