"""The host-cpu fidelity harness: its figures from rows, and a live run on the CI subset of the zoo."""

from __future__ import annotations

import numpy as np
import pytest

from edgefit.calibrate._host_fidelity import HostRow, summarize_host


def row(model, recipe, measured, estimated, threads=1, family="f", interval=0.2):
    return HostRow(model, family, recipe, threads, measured, 0.01, estimated, interval)


def test_summary_counts_int8_direction_coverage_and_families():
    rows = [
        row("a", "fp32", 1.0, 1.0), row("a", "int8-default", 2.0, 1.5),  # slower, estimated slower
        row("b", "fp32", 1.0, 1.0), row("b", "int8-default", 1.5, 0.9),  # slower, estimated faster: a miss
        row("c", "fp32", 1.0, 1.1, family="g"), row("c", "int8-u8s8-pc", 0.5, 0.6, family="g"),  # faster, caught
        row("d", "fp32", 1.0, 1.0), row("d", "int8-u8s8-pc", 1.05, 0.5),  # within ±10%: counted neither way
    ]
    s = summarize_host(rows)["per_threads"]["1"]
    assert (s["int8_slower"], s["int8_slower_caught"]) == (2, 1)
    assert (s["int8_faster"], s["int8_faster_caught"]) == (1, 1)
    assert s["int8_direction_misses"] == ["b int8-default: measured ×1.50, estimated ×0.90"]
    errors = np.abs([r.error for r in rows])
    assert s["median_abs_error"] == pytest.approx(np.median(errors))
    assert s["interval_coverage"] == pytest.approx(np.mean([abs(np.log(r.estimated_s / r.measured_s)) <= np.log(1.2)
                                                            for r in rows]))
    fam = summarize_host(rows)["per_family"]
    assert set(fam) == {"f", "g"} and fam["g"]["points"] == 2


def test_summary_is_per_thread_count():
    rows = [row("a", "fp32", 1.0, 1.05, threads=1), row("a", "fp32", 0.6, 0.9, threads=2)]
    per = summarize_host(rows)["per_threads"]
    assert per["1"]["within_10pct"] == 1.0 and per["2"]["within_10pct"] == 0.0


def test_a_model_slower_with_two_threads_than_one_is_timed_again_and_its_fastest_kept(tmp_path, monkeypatch):
    """The host's slow mode leaves every round of a 2-thread pass slow alike; a model over 1.2x its
    1-thread time is timed again (a pause apart) and the faster timing kept, and the summary says
    how many stay over."""
    from edgefit.calibrate import _host_fidelity as hf
    from edgefit.calibrate._measure import Interleaved
    from edgefit.calibrate._zoo import zoo_specs

    specs = zoo_specs("ci")[:3]
    monkeypatch.setattr(hf, "zoo_onnx", lambda spec, recipe, folder: tmp_path / f"{spec.name}.{recipe}.onnx")
    monkeypatch.setattr(hf, "SLOW_MODE_PAUSE_S", 0.0)
    calls: list[tuple[int, int]] = []
    # 1 thread: 10 us each; 2 threads: model 0 at 19 us then 8 us; model 1 at 13 us throughout; model 2 at 8 us
    two = {0: [19.0, 8.0], 1: [13.0, 13.0, 13.0], 2: [8.0]}

    def fake_interleaved(paths, threads, **kw):
        calls.append((threads, len(paths)))
        out = []
        for p in paths:
            i = [s.name for s in specs].index(p.split("/")[-1].split(".")[0])
            k = sum(1 for t, _ in calls if t == threads) - 1
            us = 10.0 if threads == 1 else two[i][min(k, len(two[i]) - 1)]
            out.append(Interleaved(us * 1e-6, (us * 1e-6,) * 3))
        return out

    monkeypatch.setattr(hf, "interleaved", fake_interleaved)
    measured = hf.measure_zoo(tmp_path, specs=specs, threads_list=(2, 1), recipes=("fp32",))
    two_t = {m.model: m for m in measured if m.threads == 2}
    assert calls == [(1, 3), (2, 3), (2, 2), (2, 1)]  # 1 thread first; then models 0 and 1, then 1
    assert two_t[specs[0].name].measured_s == pytest.approx(8e-6) and two_t[specs[0].name].retimed == 1
    assert two_t[specs[1].name].measured_s == pytest.approx(13e-6) and two_t[specs[1].name].retimed == 2
    assert two_t[specs[2].name].retimed == 0
    rows = [hf.HostRow(m.model, m.family, m.recipe, m.threads, m.measured_s, 0.0, m.measured_s, 0.2,
                       retimed=m.retimed) for m in measured]
    summary = hf.summarize_host(rows)["per_threads"]["2"]
    assert summary["slower_than_1_thread"] == 1 and summary["retimed"] == 2
    assert [r["retimed"] for r in hf.rows_to_dicts(rows) if r["threads"] == 2] == [1, 2, 0]


@pytest.mark.slow
def test_ci_subset_of_the_zoo_is_estimated_within_bounds_on_this_machine(tmp_path, monkeypatch):
    """The fidelity harness on the zoo's CI subset (8 families × fp32 and both int8 recipes, 1 thread), with this machine's profile — or, where the shipped profile is another machine's (a CI
    runner of another CPU), with one calibrated here first (`--quick`). A regression gate, looser than
    the full harness's figures (README): a broken lowering or fit lands far outside it (100%+ errors).

    The subset's models are tiny (9 µs to 0.25 ms), where the fixed per-run cost dominates and differs
    from host to host of one CPU kind: with the shipped profile, the same subset measured 24% median
    |error| (τ 0.77) on one Xeon VM and 32% on the CI runner of the same kind (2026-12-06), hence
    0.40. A quick profile gets 0.50: on an AMD EPYC Zen 5 (no profile of its own shipped then) it
    measured 41% and 53% here before the rare categories' run terms were pooled (the gate failed a
    fresh-clone run at 99.7%), 24% and 28% after (2026-12-07)."""
    from edgefit._resources import user_cache_dir
    from edgefit.calibrate._host_fidelity import run_zoo
    from edgefit.calibrate._learn import QUICK, calibrate_learned
    from edgefit.calibrate._zoo import zoo_specs
    from edgefit.estimate._learned import find_learned

    match = find_learned("host-cpu", "onnxruntime")
    if match is not None and match.matches:
        profile, bound = match.profile, 0.40
    else:
        profile = calibrate_learned(networks=QUICK["networks"], quick=True, out=tmp_path / "here.profile.json",
                                    cache=user_cache_dir() / "corpus")
        bound = 0.50
    rows = run_zoo(profile, user_cache_dir() / "zoo", specs=zoo_specs("ci"), threads_list=(1,))
    summary = summarize_host(rows)
    for threads, s in summary["per_threads"].items():
        assert s["median_abs_error"] <= bound, (threads, s)
        assert s["kendall_tau"] >= 0.6, (threads, s)
        assert s["int8_slower_caught"] >= s["int8_slower"] - 1, (threads, s["int8_direction_misses"])


def test_a_fidelity_run_of_another_machines_profile_never_overwrites_its_own_figures(tmp_path, monkeypatch):
    """Measured here, another machine's profile gets cross-machine figures in a file of their own
    (with the quantile that becomes its bar elsewhere); a subset run gets its own file too."""
    import json
    from dataclasses import replace

    from edgefit.calibrate import _host_fidelity
    from edgefit.estimate._fingerprint import this_machine
    from edgefit.estimate._learned import LearnedProfile

    here = this_machine()
    other = replace(here, cpu="Intel(R) Xeon(R) Processor", cpu_id="GenuineIntel family 6 model 167")
    own = tmp_path / "xeon.fidelity.json"
    own.write_text('{"the": "xeon figures"}')
    profile = LearnedProfile("host-cpu", "onnxruntime", other, (1,), {}, {}, None, {}, {},  # type: ignore[arg-type]
                             path=str(tmp_path / "xeon.profile.json"))
    rows = [row("a", "fp32", 1.0, 1.1), row("b", "fp32", 1.0, 0.5), row("c", "fp32", 1.0, 1.0)]
    monkeypatch.setattr(_host_fidelity, "run_zoo", lambda *a, **k: rows)
    summary, written = _host_fidelity.host_fidelity(profile, None, (1,), None)
    assert written == str(tmp_path / f"xeon.on-{here.id}.fidelity.json")
    assert json.loads(own.read_text()) == {"the": "xeon figures"}
    assert summary["measured_on"] == here.to_dict() and summary["cross_machine"]["mismatches"]
    errors = np.abs(np.log([1.1, 0.5, 1.0]))
    assert summary["cross_machine"]["abs_log_error_quantile"] == pytest.approx(np.quantile(errors, 0.9))
    _, written = _host_fidelity.host_fidelity(replace(profile, fingerprint=here), "ci", (1,), None)
    assert written == str(tmp_path / "xeon.ci.fidelity.json")  # this machine's, a subset: its own file
