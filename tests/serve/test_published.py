"""The planner's H100 figures held against published serving results (no GPU here: these are the check).

Throughput: TensorRT-LLM performance overview, H100 SXM 80GB, FP8 (ModelOpt checkpoints of Llama-3.3-70B
and Llama-3.1-8B, whose shapes are Llama-3-70B's and -8B's), "Total Output Throughput (tokens/sec)" at
maximum load, github.com/NVIDIA/TensorRT-LLM/blob/00f37686aa854010d68bcbd0f4ab000221541ca6/docs/source/
performance/perf-overview.md. A roofline with stated efficiencies ignores scheduling, sampling and
prefill/decode interference, so it should come out optimistic, but not by more than half.
"""

from __future__ import annotations

import pytest

from edgefit.serve import ServeModel, load_architecture
from edgefit.targets import load_target

PUBLISHED = [  # model, tensor parallel, input tokens, output tokens, total output tokens/s
    ("llama-3-70b", 2, 128, 128, 6378), ("llama-3-70b", 2, 1000, 1000, 4205),
    ("llama-3-70b", 2, 2048, 2048, 3082), ("llama-3-70b", 2, 5000, 500, 898),
    ("llama-3-8b", 1, 128, 128, 28312), ("llama-3-8b", 1, 1000, 1000, 15220),
    ("llama-3-8b", 1, 2048, 2048, 9305), ("llama-3-8b", 1, 5000, 500, 3459),
]


@pytest.mark.parametrize("model, tp, isl, osl, published", PUBLISHED)
def test_offline_throughput_against_tensorrt_llm(model, tp, isl, osl, published):
    m = ServeModel(load_architecture(model), load_target("h100"), "fp8", "fp8", tp)
    estimate = m.offline_tokens_per_s(m.max_batch(isl + osl), isl, osl)
    assert 0.9 <= estimate / published <= 1.5, f"{estimate:,.0f} tokens/s estimated vs {published:,} published"
