"""The final stage of a run: the leaders re-measured interleaved, the tie rule of the pick, and results.json
recording both (while results.json files written before still load and render)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from edgefit.records import Artifact, EstimatedLatency, candidate_record
from edgefit.search import OptimizeConfig, Run, pick, results_dict
from edgefit.search._final import remeasure_leaders
from edgefit.search._select import TIE_MIN, FinalTiming, Protocol, within_noise

REPORT_TESTS = Path(__file__).parents[1] / "report"


# --- the tie rule, on hand-built records ------------------------------------------------------------------

PLANS = {"fp32": {}, "int8": {"quantize": {}}, "prune int8": {"prune": {}, "recover": {}, "quantize": {}}}
KINDS = {"fp32": ["runtime"], "int8": ["quantization"], "prune int8": ["pruning", "weights", "quantization"]}


def _record(key: str, kind: str, first_p50: float, acc: float = 0.99, fits: bool = True) -> dict:
    """A whole candidate record (results.json's typed candidate), of which the pick reads the key, fit,
    accuracy, first p50, plan and change kinds."""
    plan = {f: None for f in ("swap", "prune", "recover", "quantize", "torchao")} | PLANS[kind]
    choice = {"width": 1.0, "depth": 1.0, "resolution": None, "activation": None, "prune": "none",
              "prune_amount": 0.0, "precision": "fp32" if kind == "fp32" else "int8"}
    estimate = {"latency_s": first_p50, "energy_j": 0.0, "average_power_w": 0.0, "weight_bytes": 0.0,
                "peak_activation_bytes": 0.0, "source": "datasheet", "error": 0.5}
    return {"key": key, "label": kind, "status": "done", "fits": fits, "choice": choice, "onnx": "",
            "accuracy": {"kind": "top1", "value": acc, "label": "top-1", "source": "measured (onnxruntime)"},
            "latency": {"source": "measured", "runtime": "onnxruntime", "p50_s": first_p50, "p90_s": first_p50,
                        "p99_s": first_p50, "jitter_s": 0.0, "n_runs": 100},
            "estimate": estimate, "checks": [], "plan": plan, "change_kinds": KINDS[kind],
            "iteration": {"change_kinds": KINDS[kind], "accuracy_at_deadline": acc, "days": 10, "usd": 0,
                          "accuracy_now": acc, "iterations_by_deadline": 18}}


def _timing(c: dict, median: float, spread: float = 0.04, triggers: tuple[str, ...] = ()) -> FinalTiming:
    rounds = (median * (1 - spread / 2), median, median, median, median * (1 + spread / 2))
    from edgefit.search._select import passes

    return FinalTiming(c["key"], median, rounds, median * 1.1, 50, c["latency"]["p50_s"], triggers,
                       passes(candidate_record(c)))


def _protocol(*timings: FinalTiming) -> Protocol:
    return Protocol(rounds=5, max_rounds=11, max_spread=0.1, round_s=0.01, threads=1, settle_s=0.0,
                    timings=tuple(timings))


def _pick(cands, protocol, select="latency"):
    return pick(cands, 0.99, max_drop=0.01, relative=False, select=select, protocol=protocol)


def test_a_2_percent_faster_candidate_with_more_triggers_loses_to_the_smaller_change():
    small, big = _record("a" * 16, "int8", 1.0e-3), _record("b" * 16, "prune int8", 0.7e-3)
    protocol = _protocol(_timing(small, 1.0e-3, triggers=("quantization",)),
                         _timing(big, 0.98e-3, triggers=("pruning", "weights", "quantization")))
    p = _pick([small, big], protocol)
    assert p.winner.key == small["key"]  # its first measurement was 30% slower; finally within the noise
    (tie,) = p.ties
    assert tie.key == small["key"] and tie.with_ == big["key"] and tie.winner == small["key"]
    assert tie.difference == pytest.approx(0.02 / 0.98) and tie.noise == pytest.approx(0.04)


def test_a_20_percent_faster_candidate_wins_over_the_smaller_change():
    small, big = _record("a" * 16, "int8", 1.0e-3), _record("b" * 16, "prune int8", 1.0e-3)
    protocol = _protocol(_timing(small, 1.0e-3, triggers=("quantization",)),
                         _timing(big, 0.8e-3, triggers=("pruning", "weights", "quantization")))
    p = _pick([small, big], protocol)
    assert p.winner.key == big["key"] and p.ties == ()


def test_without_triggers_a_tie_goes_to_fewer_passes_then_the_faster_median():
    base, int8, pruned = _record("0" * 16, "fp32", 1e-3), _record("1" * 16, "int8", 1e-3), \
        _record("2" * 16, "prune int8", 1e-3)
    # host-cpu certifies nothing: the unchanged model (no pass) takes a tie from int8 (one pass)
    assert _pick([base, int8, pruned], _protocol(_timing(base, 1.02e-3), _timing(int8, 1.0e-3),
                                                 _timing(pruned, 1.5e-3))).winner.key == base["key"]
    # two equal changes within the noise: the faster median
    twin = {**_record("3" * 16, "int8", 1e-3)}
    assert _pick([int8, twin], _protocol(_timing(int8, 1.01e-3), _timing(twin, 1.0e-3))).winner.key == twin["key"]


def test_noise_is_the_larger_spread_and_at_least_3_percent():
    c = _record("a" * 16, "int8", 1e-3)
    quiet = lambda m: _timing(c, m, spread=0.01)  # noqa: E731
    assert within_noise(quiet(1.0), quiet(1.0 + TIE_MIN * 0.9))[0]
    assert not within_noise(quiet(1.0), quiet(1.0 + TIE_MIN * 1.1))[0]
    assert within_noise(_timing(c, 1.0, spread=0.10), quiet(1.08))[0]  # the noisy one's 10% covers 8%
    assert not within_noise(_timing(c, 1.0, spread=0.10), quiet(1.12))[0]


def test_only_re_measured_eligible_candidates_compete_and_other_rules_keep_theirs():
    fast, slow = _record("a" * 16, "int8", 1.0e-3, acc=0.985), _record("b" * 16, "fp32", 2.0e-3, acc=0.99)
    over = _record("c" * 16, "int8", 0.1e-3, fits=False)  # over the envelope: never timed, never picked
    protocol = _protocol(_timing(fast, 1.0e-3), _timing(slow, 0.5e-3))  # finally the fp32 one is faster
    assert _pick([fast, slow, over], protocol).winner.key == slow["key"]
    assert _pick([fast, slow, over], protocol, select="accuracy").winner.key == slow["key"]
    assert _pick([fast, slow, over], None).winner.key == fast["key"]  # no protocol: first measurements
    lone = _record("d" * 16, "int8", 0.5e-3)  # eligible, faster at first, but not re-measured: not in the final pick
    assert _pick([fast, slow, lone], protocol).winner.key == slow["key"]


# --- the re-measurement, on real tiny ONNX models ---------------------------------------------------------

def _matmul_model(path: Path, n: int) -> str:
    from onnx import TensorProto, helper, numpy_helper, save

    w = numpy_helper.from_array(np.random.default_rng(n).standard_normal((n, n)).astype(np.float32), "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "tiny",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])], initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    save(model, str(path))
    return str(path)


@pytest.fixture
def tiny_run(tmp_path) -> Run:
    """A finished host-cpu run of six candidates on microsecond MatMul models: the baseline (slowest at
    first), five eligible ones and one below the accuracy floor."""
    config = OptimizeConfig(target="host-cpu", out_dir=tmp_path)
    base = SimpleNamespace(kind="onnx", name="tiny", input_shape=(1, 64), eval_source="test data", eval_y=None,
                           train=None)
    run = Run(config, base, base_accuracy=0.99, base_key="0" * 16)
    sizes = {"0": 64, "1": 8, "2": 16, "3": 24, "4": 32, "5": 48, "6": 4}
    for digit, n in sizes.items():
        key = digit * 16
        kind = "fp32" if digit == "0" else "int8"
        rec = _record(key, kind, first_p50=n * 1e-6, acc=0.5 if digit == "6" else 0.99)
        path = _matmul_model(tmp_path / f"m{n}.onnx", n)
        rec.update(onnx=path, artifact={"path": path, "format": "onnx", "runtime": "onnxruntime"})
        run.candidates[key] = candidate_record(rec)
    return run


def test_remeasure_leaders_times_the_four_fastest_eligible_and_the_baseline_interleaved(tiny_run):
    first = {k: c.latency.p50_s for k, c in tiny_run.candidates.items()}
    protocol = remeasure_leaders(tiny_run, round_s=0.002, settle_s=0.0)
    timed = [t.key for t in protocol.timings]
    assert timed == ["1" * 16, "2" * 16, "3" * 16, "4" * 16, "0" * 16]  # "5" is 5th, "6" below the floor
    assert protocol.rounds >= 5 and protocol.threads == 1
    for t in protocol.timings:
        assert len(t.round_medians_s) >= 5 and t.median_s == pytest.approx(np.median(t.round_medians_s))
        assert t.spread == pytest.approx((max(t.round_medians_s) - min(t.round_medians_s)) / t.median_s)
        lat = tiny_run.candidates[t.key].latency
        assert lat.p50_s == first[t.key] == t.first_p50_s  # the first measurement is kept
        assert lat.final.median_s == t.median_s and lat.final.rounds == len(t.round_medians_s)
        assert t.certification_triggers == ()  # host-cpu certifies nothing
    assert [t.baseline for t in protocol.timings] == [False] * 4 + [True]
    assert tiny_run.candidates["5" * 16].latency.final is None
    assert any(n.startswith("final pick: the 4 fastest eligible candidate(s) and the baseline") for n in tiny_run.notes)


def _schema_errors(instance, definition: str) -> list[str]:
    import jsonschema

    from edgefit.report import results_schema

    defs = results_schema()["$defs"]
    validator = jsonschema.Draft202012Validator({"$ref": f"#/$defs/{definition}", "$defs": defs})
    return [e.message for e in validator.iter_errors(instance)]


def test_results_json_records_the_protocol_and_the_final_figures(tiny_run):
    protocol = remeasure_leaders(tiny_run, round_s=0.002, settle_s=0.0)
    chosen = pick(list(tiny_run.candidates.values()), 0.99, max_drop=0.01, relative=False, select="latency",
                  protocol=protocol)
    res = json.loads(json.dumps(results_dict(tiny_run, chosen, tiny_run.base_key, 0.99, protocol)))
    p = res["selection"]["protocol"]
    assert _schema_errors(p, "protocol") == []
    assert p["method"] == "interleaved" and p["rounds"] >= 5 and len(p["candidates"]) == 5
    assert all(len(c["round_medians_s"]) >= 5 and c["spread"] >= 0 for c in p["candidates"])
    assert "tie" in p["rule"] and isinstance(p["ties"], list)
    finals = [c["latency"]["final"] for c in res["candidates"] if "final" in c["latency"]]
    assert len(finals) == 5 and all(_schema_errors(f, "final_latency") == [] for f in finals)
    fastest = min(p["candidates"], key=lambda t: t["median_s"])
    winner = next(t for t in p["candidates"] if t["key"] == res["selection"]["winner"])
    assert winner["key"] == fastest["key"] or any(t["key"] == winner["key"] or t["with"] == winner["key"]
                                                  for t in p["ties"])


def _with_protocol(res: dict) -> None:
    """A results.json of today: the fixture's run with a final re-measurement in which the fp16 variant came
    out 2% faster than the winner, within the noise, with one pass more: the winner stays."""
    cands = {c["key"]: c for c in res["candidates"]}
    win, base = res["selection"]["winner"], res["baseline"]["key"]
    fp16 = next(k for k, c in cands.items() if c["label"] == "res 24 · fp16")
    timings = []
    for key, median, n_passes in ((fp16, 0.98e-4, 3), (win, 1.00e-4, 2), (base, 1.5e-4, 0)):
        rounds = [median * 0.98, median, median, median, median * 1.03]
        timings.append({"key": key, "median_s": median, "round_medians_s": rounds, "rounds": 5, "spread": 0.05,
                        "p99_s": median * 1.2, "runs": 400, "first_p50_s": cands[key]["latency"]["p50_s"],
                        "certification_triggers": [], "passes": n_passes, "baseline": key == base})
        cands[key]["latency"]["final"] = {"method": "interleaved", "median_s": median, "round_medians_s": rounds,
                                          "rounds": 5, "spread": 0.05, "p99_s": median * 1.2, "runs": 400,
                                          "threads": 1}
    res["selection"]["protocol"] = {
        "method": "interleaved", "rounds": 5, "max_rounds": 11, "max_spread": 0.1, "round_s": 0.01, "threads": 1,
        "settle_s": 0.2, "cpu_wait_fraction": 0.001, "candidates": timings,
        "ties": [{"key": win, "with": fp16, "difference": 0.02, "noise": 0.05, "winner": win}],
        "rule": "the pick is among the re-measured candidates, by their final figures: …"}


def test_the_report_shows_the_final_figures_and_the_tie_rule_beside_the_chosen_model(tmp_path):
    from edgefit.report import build_report, load_results, render_html, render_md

    _make_run()(tmp_path, "host-cpu", edit=_with_protocol)
    rep = build_report(load_results(tmp_path / "results.json"), results_dir=tmp_path)  # valid against the schema
    rows = {r[0]: r for r in rep.summary}
    final = rows["latency, final (interleaved)"]
    assert final[1] == "150 µs" and final[2] == "100 µs" and "median of 5 round medians, spread 5.0%" in final[4]
    assert "1.50× the baseline's speed" in rep.headline and "final interleaved re-measurement" in rep.headline
    md, html = render_md(rep), render_html(rep)
    for text in (md, html):
        assert "Final re-measurement" in text and "Rule: the pick is among the re-measured" in text
        assert "Tie: res 24 · fp32 within 2.0% of res 24 · fp16 (noise 5.0%); chosen: res 24 · fp32." in text


def test_the_stage_skips_where_it_cannot_run_and_says_so(tiny_run):
    ray = Run(OptimizeConfig(target="host-cpu", out_dir=tiny_run.config.out_dir, executor="ray"), tiny_run.base,
              candidates=dict(tiny_run.candidates), base_accuracy=0.99, base_key=tiny_run.base_key)
    assert remeasure_leaders(ray, settle_s=0.0) is None and "--executor ray" in ray.notes[-1]
    torch_key = "1" * 16
    torch_artifact = Artifact(path="m.pt2", format="torch-export", runtime="torch")
    tiny_run.candidates[torch_key] = tiny_run.candidates[torch_key].model_copy(update={"artifact": torch_artifact})
    assert remeasure_leaders(tiny_run, settle_s=0.0) is None and "runs on torch" in tiny_run.notes[-1]
    estimated = EstimatedLatency(source="estimated", p50_s=1e-3, p90_s=1e-3, p99_s=1e-3, estimate_source="datasheet",
                                 error=0.3)
    for key, c in tiny_run.candidates.items():
        tiny_run.candidates[key] = c.model_copy(update={"latency": estimated})
    before = list(tiny_run.notes)
    assert remeasure_leaders(tiny_run, settle_s=0.0) is None and tiny_run.notes == before  # an estimated target


# --- results.json written before the change --------------------------------------------------------------

def _make_run():
    spec = importlib.util.spec_from_file_location("report_fixtures", REPORT_TESTS / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_run


@pytest.mark.parametrize("fixture", ["host-cpu", "orin"])
def test_results_written_before_still_load_and_render(tmp_path, fixture):
    from edgefit.report import build_report, load_results, render_html, render_md

    _make_run()(tmp_path, fixture)
    res = load_results(tmp_path / "results.json")  # validated against the schema with the new fields
    assert "protocol" not in res["selection"]
    rep = build_report(res, results_dir=tmp_path)
    assert rep.protocol == [] and not any(r[0].startswith("latency, final") for r in rep.summary)
    md, html = render_md(rep), render_html(rep)
    assert "Final re-measurement" not in md and "Final re-measurement" not in html
    assert rep.headline.startswith("Chosen:") and "## Summary" in md


def test_the_final_pick_leaves_the_slow_mode_out_and_says_so(tiny_run, monkeypatch):
    """The leaders are timed on their quiet rounds (``quiet_only``, as many quiet rounds as the
    protocol has); the rounds left out are in results.json and a note."""
    from edgefit.calibrate._measure import Interleaved
    from edgefit.search import _final

    asked: dict = {}

    def fake(paths, threads, **kw):
        asked.update(kw)
        return [Interleaved(1e-4 * (1 + i / 10), (1e-4 * (1 + i / 10),) * 5, 2e-4, 100, 0.0, 2 if i == 0 else 0)
                for i in range(len(paths))]

    monkeypatch.setattr(_final, "interleaved", fake)
    protocol = remeasure_leaders(tiny_run, round_s=0.002, settle_s=0.0)
    assert asked["quiet_only"] is True and asked["min_quiet"] == protocol.rounds
    left = [t.rounds_left_out for t in protocol.timings]
    assert sorted(left) == [0] * (len(left) - 1) + [2]
    assert any("2 round(s) over 20% slower" in n for n in tiny_run.notes)
    p = json.loads(json.dumps(protocol.to_dict()))
    assert all(_schema_errors(c, "protocol_timing") == [] for c in p["candidates"])
    assert sum(c["rounds_left_out"] for c in p["candidates"]) == 2


def test_the_final_timings_are_kept_with_their_kernels_for_a_refit(tiny_run, tmp_path, monkeypatch):
    """The closed loop (#13): each re-measured model is profiled once more, after the timing, and kept
    with the final median for `calibrate --refit`; --no-record keeps nothing."""
    from edgefit.calibrate import _observed
    from edgefit.estimate._fingerprint import this_machine

    monkeypatch.setenv("EDGEFIT_MEASURED_DIR", str(tmp_path / "measured"))
    protocol = remeasure_leaders(tiny_run, round_s=0.002, settle_s=0.0)
    kept = _observed.load(this_machine(), tmp_path / "measured").runs
    assert [r.measured_s for r in kept] == [t.median_s for t in protocol.timings]
    assert all(r.family == "measured optimize" and r.lowered.nodes[0].op in ("MatMul", "Gemm", "FusedMatMul")
               for r in kept), [r.lowered.nodes[0].op for r in kept]
    assert any("5 timing(s) kept with their kernels for `edgefit calibrate --refit`" in n for n in tiny_run.notes)

    from dataclasses import replace

    tiny_run.config = replace(tiny_run.config, record=False)
    remeasure_leaders(tiny_run, round_s=0.002, settle_s=0.0)
    assert len(_observed.load(this_machine(), tmp_path / "measured").runs) == len(kept)
