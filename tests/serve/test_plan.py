"""The plan: the sweep of configurations, the best under the objective, reasons, the iteration tax."""

from __future__ import annotations

import pytest

from edgefit.errors import EdgefitError
from edgefit.serve import ServeRequest, default_dtypes, iteration_tax, plan_serving
from edgefit.targets import list_targets, load_target


@pytest.fixture(scope="module")
def plan70():
    return plan_serving(ServeRequest("llama-3-70b", "h100", context=8192, slo_tpot_s=0.05))


def test_default_sweep_on_h100(plan70):
    assert [(r.weights, r.kv) for r in plan70.rows] == [(w, k) for w in ("fp16", "fp8", "int8", "int4")
                                                        for k in ("fp16", "fp8")]
    assert plan70.context == 8192 and plan70.prompt_tokens == 4096


def test_fp16_does_not_fit_and_says_why(plan70):
    r = plan70.row("fp16", "fp16")
    assert r.verdict == "does not fit" and r.batch == 0 and r.tokens_per_s == 0
    assert r.reason.startswith("weights 141 GB + 4 GB overhead > 80 GB hbm")


def test_fp8_fits_with_kv_left_and_meets_the_objective(plan70):
    r = plan70.row("fp8", "fp8")
    assert r.fits and r.kv_budget_bytes == pytest.approx(5.44e9, rel=0.01)
    assert r.max_batch == r.batch == 4  # KV-limited: 4 × 1.34 GB at 8k context
    assert r.at_batch.time_s <= 0.05 and r.tokens_per_s == pytest.approx(4 / r.at_batch.time_s)
    assert [b for b, *_ in r.curve] == [1, 2, 4] and all(ok for *_, ok in r.curve)
    assert r.energy_per_token_j == pytest.approx(r.at_batch.energy_j / 4)


def test_best_is_the_most_tokens_per_s(plan70):
    fitting = [r for r in plan70.rows if r.fits]
    assert plan70.best is max(fitting, key=lambda r: r.tokens_per_s)


def test_a_tight_objective_is_missed_with_the_reason():
    p = plan_serving(ServeRequest("llama-3-70b", "h100", weights=("fp8",), kv=("fp8",), slo_tpot_s=0.010))
    r = p.rows[0]
    assert r.verdict == "misses objective" and "TPOT at batch 1 is" in r.reason and "> 10 ms" in r.reason
    assert p.best is None


def test_ttft_objective():
    p = plan_serving(ServeRequest("llama-3-70b", "h100", weights=("fp8",), kv=("fp8",), slo_ttft_s=0.1))
    assert p.rows[0].verdict == "misses objective" and p.rows[0].reason.startswith("TTFT")


def test_objective_batch_search_is_the_largest_meeting_it():
    p = plan_serving(ServeRequest("llama-3-8b", "h100", context=2048, weights=("fp8",), kv=("fp8",),
                                  slo_tpot_s=0.02))
    r = p.rows[0]
    from edgefit.serve import ServeModel, load_architecture

    m = ServeModel(load_architecture("llama-3-8b"), load_target("h100"), "fp8", "fp8")
    assert 0 < r.batch < r.max_batch
    assert m.decode(r.batch, 2048).time_s <= 0.02 < m.decode(r.batch + 1, 2048).time_s


def test_default_objective_is_the_target_budget(plan70):
    p = plan_serving(ServeRequest("llama-3-8b", "h100"))
    assert p.slo_tpot_s == load_target("h100").envelope.latency_budget_s.value
    assert p.slo_tpot_provenance.startswith("target envelope")


def test_tensor_parallel_plan():
    p = plan_serving(ServeRequest("llama-3-70b", "h100", gpus=2, weights=("fp16",), kv=("fp16",)))
    r = p.rows[0]
    assert r.fits and r.weight_bytes_per_device == pytest.approx(70.56e9, rel=1e-3)


@pytest.mark.parametrize("kwargs, where", [
    ({"context": 200_000}, "--context"),
    ({"context": 4096, "prompt_tokens": 5000}, "--prompt"),
    ({"weights": ("fp7",)}, "--weights"),
    ({"gpus": 3}, "--gpus"),
])
def test_bad_requests(kwargs, where):
    with pytest.raises(EdgefitError) as exc:
        plan_serving(ServeRequest("llama-3-70b", "h100", **kwargs))
    assert exc.value.where == where


def test_request_round_trip():
    r = ServeRequest("llama-3-70b", "h100", context=4096, weights="fp8,int4", kv=["fp8"], slo_tpot_s=0.05)
    assert r.weights == ("fp8", "int4") and ServeRequest.from_dict(r.to_dict()) == r


def test_egress_dollars_per_iteration():
    tax = iteration_tax("h100")
    t = load_target("h100")
    assert tax["egress"]["usd_per_iteration"] == t.data_egress.dataset_pb.value * t.data_egress.usd_per_pb.value
    assert iteration_tax("h100", dataset_pb=2.5, usd_per_pb=20_000)["egress"]["usd_per_iteration"] == 50_000
    assert iteration_tax("h100", dataset_pb=2.5)["egress"]["dataset_pb_provenance"] == "override (--dataset-pb)"
    assert tax["egress"]["usd_by_deadline"] == 90_000 * tax["iterations_by_deadline"]
    assert iteration_tax("host-cpu")["egress"] is None


def test_plan_dict_carries_provenance(plan70):
    d = plan70.to_dict()
    assert d["schema"] == "edgefit.serve-plan/1" and d["source"] == "datasheet estimate"
    assert d["hardware"]["bandwidth_bytes_per_s"]["provenance"].startswith("datasheet")
    assert {"overhead", "bandwidth_efficiency", "compute_efficiency", "launches"} <= set(d["assumptions"])


@pytest.mark.parametrize("target", [t.id for t in list_targets()])
def test_every_target_plans_a_small_decoder(target):
    """Every shipped target gives a plan (a small model, its default dtypes) without an error."""
    weights, kv = default_dtypes(load_target(target))
    assert weights and kv
    p = plan_serving(ServeRequest("gpt2", target, context=256))
    assert len(p.rows) == len(weights) * len(kv)
