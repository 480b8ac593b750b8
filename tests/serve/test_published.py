"""The planner's H100 figures held against published serving results (no GPU here: these are the check).

Throughput: TensorRT-LLM performance overview, H100 SXM 80GB, FP8 (ModelOpt checkpoints of Llama-3.3-70B
and Llama-3.1-8B, whose shapes are Llama-3-70B's and -8B's), "Total Output Throughput (tokens/sec)" at
maximum load, github.com/NVIDIA/TensorRT-LLM/blob/00f37686aa854010d68bcbd0f4ab000221541ca6/docs/source/
performance/perf-overview.md. A roofline with stated efficiencies ignores scheduling, sampling and
prefill/decode interference, so it should come out optimistic, but not by more than half.
"""

from __future__ import annotations

import re

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


# --- every published serving point (profiles/h100/published-serving.yaml), `serve-plan --published` ---
@pytest.fixture(scope="module")
def report():
    from edgefit.serve._published import published_serving

    return published_serving(load_target("h100"))


def test_the_planner_lands_within_20_percent_median_of_published_serving(report):
    summary = report.summary()
    assert summary["points"] >= 6 and summary["fitted_parameters"] == 0  # nothing fitted: no LOO
    assert summary["median_abs_error"] <= 0.20
    per = summary["per_metric"]
    assert all(per[m]["compared"] >= 2 for m in ("ttft_ms", "tpot_ms", "output_tokens_per_s"))


def test_concurrency_one_is_one_prefill_then_batch_one_decode(report):
    from edgefit.serve import ServeModel, load_architecture

    row = next(r for r in report.rows if r.point.id == "nim-70b-tp2-5000-500-c1")
    m = ServeModel(load_architecture("llama-3-70b"), load_target("h100"), "fp8", "fp8", 2)
    got = {c.metric: c.estimate for c in row.comparisons}
    assert got["ttft_ms"] == pytest.approx(m.prefill(5000).time_s * 1e3)
    assert got["tpot_ms"] == pytest.approx(m.decode(1, 5250).time_s * 1e3)
    # the published inter-token latency is 57% of the speed of light per GPU (research file §2b)
    assert row.published_fraction == pytest.approx(0.57, abs=0.02)


def test_ttft_under_queueing_is_shown_but_not_scored(report):
    row = next(r for r in report.rows if r.point.id == "nim-70b-tp2-5000-500-c100")
    ttft = next(c for c in row.comparisons if c.metric == "ttft_ms")
    assert not ttft.scored and row.batch < 100  # 100 users, KV room for fewer: they queue


def test_serve_plan_published_prints_each_point_with_its_source(run_cli):
    import json

    code, out, err = run_cli("serve-plan", "--published", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["median_abs_error"] <= 0.20 and len(data["rows"]) == data["points"]
    assert all(r["source"] and r["comparisons"] for r in data["rows"])
    code, out, err = run_cli("serve-plan", "--published")
    flat = " ".join(out.split())
    assert code == 0 and "perf-overview.md" in flat and "nothing fitted" in flat
    assert "speed of light" in flat and "published 57%" in flat


def test_serve_plan_says_the_bandwidth_fraction_it_expects(run_cli):
    code, out, err = run_cli("serve-plan", "-m", "llama-3-8b", "-w", "fp8", "--kv", "fp8")
    assert code == 0, err
    assert "speed of light" in " ".join(out.split()) and "of it reached" in " ".join(out.split())


@pytest.mark.parametrize("old, new", [
    ("isl: 128, osl: 128, concurrency: max,", "isl: 128, osl: 128, concurrency: max, colour: red,"),
    ("concurrency: max, output_tokens_per_s: 6378,", "concurrency: max,"),
])
def test_a_bad_published_serving_file_is_one_line(tmp_path, old, new):
    from edgefit._resources import data_dir
    from edgefit.errors import EdgefitError
    from edgefit.serve._published import load_serving_points

    text = (data_dir("profiles") / "h100" / "published-serving.yaml").read_text()
    path = tmp_path / "published-serving.yaml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(EdgefitError) as info:
        load_serving_points(path)
    line = info.value.line()
    assert "\n" not in line and "points.0" in line and re.search(r"serving\.yaml:\d+", line)
