"""Deployment threads (#16): `threads` is what a run measures and optimizes for; a list runs the
whole optimization once per count, each in its own threads-N folder, with threads.json beside them;
a target may declare the count; bad counts are one EdgefitError line before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import edgefit
from edgefit.errors import EdgefitError
from edgefit.search import OptimizeConfig, OptimizeResult
from edgefit.search import _flow
from edgefit.search._config import FROM_TARGET, oversubscribed, parse_threads, threads_from
from edgefit.search._outcome import EXIT_INTERRUPTED, EXIT_NONE_QUALIFIED, ThreadsResult
from edgefit.targets import load_target, target_from_dict, targets_dir

# cheap: the 2-conv conformance model on an estimate-only target (nothing is timed)
FAST = {"trials": 2, "metric": "sqnr", "max_drop": 20}


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory) -> Path:
    import onnx

    from edgefit.runtimes.testing import tiny_model

    path = tmp_path_factory.mktemp("model") / "tiny.onnx"
    onnx.save(tiny_model(), str(path))
    return path


def _orin_yaml(tmp_path: Path, **extra) -> Path:
    """A user's target file: the shipped Orin profile under its own id, plus ``extra`` fields."""
    data = yaml.safe_load((targets_dir() / "jetson-agx-orin-64gb.yaml").read_text())
    data.update(id="my-orin", aliases=[], **extra)
    path = tmp_path / "my-orin.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


DECLARED = {"value": 2, "estimated": True, "reason": "our app runs the model on 2 CPU threads"}


# --- the configuration ------------------------------------------------------------------------

@pytest.mark.parametrize(("given", "threads", "listed"), [
    ({}, FROM_TARGET, ()),
    ({"threads": 3}, 3, ()),
    ({"threads": (1, 2)}, FROM_TARGET, (1, 2)),  # the list said the short way
    ({"threads": "2,1,2"}, FROM_TARGET, (2, 1)),  # given order, duplicates dropped
    ({"thread_list": [4, 4]}, 4, ()),  # a list of one count is that count: today's layout
    ({"threads": 2, "thread_list": (2,)}, 2, ()),
])
def test_thread_counts_are_normalized(given, threads, listed):
    config = OptimizeConfig(**given)
    assert config.threads == threads and type(config.threads) is type(threads)
    assert config.thread_list == listed
    assert config.thread_counts == (listed or (threads,))
    assert config.threads_given == bool(given)


@pytest.mark.parametrize(("threads", "message"), [
    ("0", "0 threads cannot run a model"),
    ("-1", "-1 threads cannot run a model"),
    ("a", "cannot read 'a' as a thread count"),
    ("1,,2", "'1,,2' has an empty item"),
    ("1,", "has an empty item"),
    ("2.5", "cannot read '2.5'"),
    (0, "0 threads"),
    (True, "True is not a thread count"),
    (2.0, "2.0 is not a thread count"),
    ((), "no thread count given"),
])
def test_bad_thread_counts_are_one_line(threads, message):
    with pytest.raises(EdgefitError) as err:
        OptimizeConfig(threads=threads)
    line = str(err.value)
    assert line.startswith("--threads: ") and message in line and "\n" not in line
    assert "fix: give whole numbers of at least 1" in line


def test_threads_given_twice_is_an_error():
    with pytest.raises(EdgefitError, match="given twice"):
        OptimizeConfig(threads=2, thread_list=(1, 2))


def test_the_default_reads_as_one_until_the_target_decides():
    config = OptimizeConfig()
    # the engine and the final re-measurement read the config as it is: a whole 1
    assert config.threads == 1 and f"{config.threads} thread" == "1 thread"
    assert json.dumps({"threads": config.threads}) == '{"threads": 1}'
    assert repr(config).count("threads=FROM_TARGET") == 1
    import pickle  # a config sent to a Ray worker stays the default

    assert not pickle.loads(pickle.dumps(config)).threads_given


def test_parse_and_oversubscription_lines():
    assert parse_threads(" 4 ") == (4,) and parse_threads("1,2,1") == (1, 2)
    assert oversubscribed((1, 2), 2) is None
    line = oversubscribed((1, 3, 8), 2)
    assert line is not None and line.startswith("--threads 3,8 is more than the 2 cores")


# --- default from the target --------------------------------------------------------------------

def test_target_may_declare_its_deployment_threads(tmp_path):
    mine = load_target(str(_orin_yaml(tmp_path, deployment_threads=DECLARED)))
    assert mine.deployment_threads is not None and mine.deployment_threads.value == 2

    config, source = threads_from(OptimizeConfig(), mine)
    assert (config.threads, source) == (2, "target") and type(config.threads) is int
    config, source = threads_from(OptimizeConfig(threads=1), mine)  # the user's 1 wins
    assert (config.threads, source) == (1, "user")
    config, source = threads_from(OptimizeConfig(threads="1,4"), mine)
    assert (config.thread_counts, source) == ((1, 4), "user")
    for shipped in ("host-cpu", "orin"):  # no shipped profile declares one: the user's choice
        target = load_target(shipped)
        assert target.deployment_threads is None
        config, source = threads_from(OptimizeConfig(), target)
        assert (config.threads, source) == (1, "user") and type(config.threads) is int


@pytest.mark.parametrize("value", [0, 2.5, 10_000])
def test_a_declared_thread_count_is_a_whole_positive_number(tmp_path, value):
    data = yaml.safe_load(_orin_yaml(tmp_path).read_text())
    data["deployment_threads"] = {**DECLARED, "value": value}
    with pytest.raises(EdgefitError, match="deployment_threads"):
        target_from_dict(data)


def test_target_threads_reach_results_json(tiny_onnx, tmp_path):
    target = str(_orin_yaml(tmp_path, deployment_threads=DECLARED))
    result = edgefit.optimize(str(tiny_onnx), target,
                              config=OptimizeConfig(out_dir=tmp_path / "run", **FAST))
    assert isinstance(result, OptimizeResult)
    config = json.loads((tmp_path / "run" / "results.json").read_text())["config"]
    assert config["threads"] == 2 and config["threads_from"] == "target"
    assert not (tmp_path / "run" / "threads-2").exists()  # one count: today's layout


# --- a list of counts -----------------------------------------------------------------------------

def test_a_list_runs_once_per_count_and_resumes(tiny_onnx, tmp_path):
    out = tmp_path / "run"
    config = OptimizeConfig(out_dir=out, threads=(2, 1, 2), **FAST)
    result = edgefit.optimize(str(tiny_onnx), "orin", config=config)

    assert isinstance(result, ThreadsResult) and result.ok and result.exit_code == 0
    assert result.threads == (2, 1) and list(result.runs) == [2, 1]
    assert sorted(p.name for p in out.iterdir()) == ["threads-1", "threads-2", "threads.json"]
    summary = json.loads((out / "threads.json").read_text())
    assert summary == result.to_dict()
    assert summary["threads_note"] == "threads: 2, 1 (your choice; --threads)"
    for n, row in zip((2, 1), summary["runs"]):
        res = json.loads((out / f"threads-{n}" / "results.json").read_text())
        assert res["config"]["threads"] == n and res["config"]["threads_from"] == "user"
        chosen = next(c for c in res["candidates"] if c.get("key") == res["selection"]["winner"])
        assert row["threads"] == n and row["chosen"]["key"] == chosen["key"]
        assert row["chosen"]["p50_s"] == chosen["latency"]["p50_s"]
        assert row["chosen"]["accuracy"] == chosen["accuracy"]["value"]
        assert (out / f"threads-{n}" / "model.onnx").is_file()
        assert result.files[f"threads-{n}/results"] == str(out / f"threads-{n}" / "results.json")
    assert summary["picks_differ"] is False  # the same pick: no note says they differ
    assert not any("depends on the thread count" in note for note in result.notes)

    again = edgefit.optimize(str(tiny_onnx), "orin", config=config)
    for r in again.runs.values():  # stable folders: every finished candidate is reused
        counts = r.results["counts"]
        assert counts["reused"] == counts["materialized"] > 0
    loaded = ThreadsResult.load(out / "threads.json")
    assert loaded.to_dict() == again.to_dict()
    assert {n: r.chosen.key for n, r in loaded.runs.items()} == \
        {n: r.chosen.key for n, r in again.runs.items()}


def test_ctrl_c_in_a_list_names_what_is_left_and_a_rerun_resumes(tiny_onnx, tmp_path, monkeypatch):
    out = tmp_path / "run"
    config = OptimizeConfig(out_dir=out, threads="1,2", **FAST)
    search = _flow.search

    def interrupted_at_two(cfg, base, *, progress=None):
        if cfg.threads == 2:
            raise KeyboardInterrupt
        return search(cfg, base, progress=progress)

    monkeypatch.setattr(_flow, "search", interrupted_at_two)
    first = edgefit.optimize(str(tiny_onnx), "orin", config=config)
    assert isinstance(first, ThreadsResult) and list(first.runs) == [1]
    assert first.not_started == (2,) and first.interrupted and not first.ok
    assert first.exit_code == EXIT_INTERRUPTED
    summary = json.loads((out / "threads.json").read_text())
    assert summary["not_started"] == [2] and "rerun the same command" in summary["notes"][0]

    monkeypatch.setattr(_flow, "search", search)
    second = edgefit.optimize(str(tiny_onnx), "orin", config=config)
    assert second.ok and list(second.runs) == [1, 2] and second.not_started == ()
    one = second.runs[1].results["counts"]
    assert one["reused"] == one["materialized"] > 0  # the finished count was not redone
    assert second.runs[2].results["counts"]["reused"] == 0


def test_a_list_with_one_storage_is_refused_before_any_work(tiny_onnx, tmp_path):
    out = tmp_path / "never"
    with pytest.raises(EdgefitError, match="--storage") as err:
        edgefit.optimize(str(tiny_onnx), "orin", config=OptimizeConfig(
            out_dir=out, threads=(1, 2), storage=f"sqlite:///{tmp_path}/s.db"))
    assert "each threads-N folder keeps its own study.db" in str(err.value)
    assert not out.exists()


# --- the combined result --------------------------------------------------------------------------

def _result(winner: str | None, label: str = "", *, interrupted: bool = False) -> OptimizeResult:
    """A results.json (the report fixture's, a whole edgefit-results/1 file) with two candidates, A and B,
    and ``winner`` ("a", "b" or None) picked."""
    res = json.loads((Path(__file__).parents[1] / "report" / "data" / "results-host-cpu.json").read_text())
    template = next(c for c in res["candidates"] if c["status"] == "done")
    final = {"method": "interleaved", "median_s": 9e-4, "round_medians_s": [9e-4] * 5, "spread": 0.0}
    cands = [{**template, "key": k * 16, "label": k.upper(),
              "accuracy": {**template["accuracy"], "value": 0.9, "kind": "top1"},
              "latency": {**template["latency"], "p50_s": 1e-3, "source": "measured", "final": final}}
             for k in ("a", "b")]
    key = {None: None, "a": "a" * 16, "b": "b" * 16}
    res.update({
        "selection": {"rule": "latency", "accuracy_floor": 0.89, "eligible": 2 if winner else 0,
                      "winner": key[winner], "reason": "" if winner else "nothing fits",
                      "best_found": None if winner else key["a"]},
        "baseline": {"key": key["a"], "accuracy": 0.9}, "frontier": [],
        "candidates": cands, "interrupted": interrupted,
    })
    return OptimizeResult.from_dict(res)


def test_differing_picks_get_one_note_naming_each():
    same = ThreadsResult((1, 2), "user", "host-cpu", {1: _result("a"), 2: _result("a")})
    assert not same.picks_differ and same.differ_note() is None and same.exit_code == 0

    differ = ThreadsResult((1, 2), "user", "host-cpu", {1: _result("a"), 2: _result("b")})
    note = differ.differ_note()
    assert differ.picks_differ and note is not None and "\n" not in note
    assert "1 thread: A; 2 threads: B" in note
    row = differ.to_dict()["runs"][1]
    assert row["chosen"]["label"] == "B" and row["chosen"]["final_median_s"] == 9e-4


def test_exit_code_is_the_worst_count():
    none = ThreadsResult((1, 2), "user", "h", {1: _result("a"), 2: _result(None)})
    assert none.exit_code == EXIT_NONE_QUALIFIED and not none.ok
    assert "none qualified" in (none.differ_note() or "")
    assert none.to_dict()["runs"][1]["best_found"] == "A"
    left = ThreadsResult((1, 2), "target", "h", {1: _result("a")}, not_started=(2,))
    assert left.exit_code == EXIT_INTERRUPTED and left.interrupted
    assert left.to_dict()["threads_note"] == "threads: 1, 2 (from target h)"


def test_loading_a_bad_summary_is_one_line(tmp_path):
    bad = tmp_path / "threads.json"
    for text in ("{", '{"schema": "edgefit-results/1"}', '{"schema": "edgefit-threads/1"}'):
        bad.write_text(text)
        with pytest.raises(EdgefitError) as err:
            ThreadsResult.load(bad)
        assert str(err.value).startswith(str(bad)) and "\n" not in str(err.value)
