"""search's Executor interface (#15): executors found by name, and the local one keeping the
contract every executor keeps (one record per started job, failures as records, should_stop
honoured, a full disk ends the run)."""

from __future__ import annotations

from types import SimpleNamespace as NS

import pytest

from edgefit._io import WriteError
from edgefit.errors import EdgefitError
from edgefit.runtimes._base import MeasurementError
from edgefit.search import _executor
from edgefit.search._config import EXECUTORS as CONFIG_EXECUTORS
from edgefit.search._config import OptimizeConfig
from edgefit.search._executor import EXECUTORS, Executor, LocalExecutor, get_executor


@pytest.mark.parametrize("name", list(EXECUTORS))
def test_every_registered_executor_implements_the_interface(name):
    executor = get_executor(name, OptimizeConfig(executor=name, ray_address="auto", ray_retries=5))
    assert isinstance(executor, Executor) and executor.name == name


def test_the_registry_is_what_the_config_accepts():
    assert set(EXECUTORS) == set(CONFIG_EXECUTORS)
    with pytest.raises(EdgefitError, match="--executor: unknown executor 'slurm'.*local, ray"):
        get_executor("slurm")


def test_ray_options_come_from_the_config():
    executor = get_executor("ray", OptimizeConfig(executor="ray", ray_address="auto", ray_retries=5))
    assert (executor.options.address, executor.options.max_retries) == ("auto", 5)


def _job(key):
    choice = NS(label=f"choice {key}", to_dict=lambda: {"k": key})
    return NS(key=key, choice=choice)


CTX = NS(base="base", settings="settings", work_dir="work", reference=None, base_accuracy=0.9)


def _run(monkeypatch, outcomes, stop_after=None):
    def fake(base, choice, settings, work_dir, reference, base_accuracy):
        outcome = outcomes[choice.label]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    monkeypatch.setattr(_executor, "run_candidate", fake)
    started = []
    seen = []

    def should_stop():
        started.append(True)
        return stop_after is not None and len(started) > stop_after

    jobs = [_job(label.split()[-1]) for label in outcomes]
    for job, record in LocalExecutor().run(
        jobs, CTX, should_stop=should_stop, progress=lambda *a: seen.append(a), notes=[]
    ):
        yield job.key, record
    assert [a[1:] for a in seen] == [(i, len(jobs)) for i in range(len(seen))]


def test_failures_are_records_and_every_started_job_is_yielded_once(monkeypatch):
    outcomes = {
        "choice a": {"status": "done"},
        "choice b": ValueError("bad shape"),
        "choice c": MeasurementError("child killed"),
        "choice d": {"status": "done"},
    }
    got = dict(_run(monkeypatch, outcomes))
    assert list(got) == ["a", "b", "c", "d"]
    assert got["a"] == {"status": "done"}
    assert got["b"]["status"] == "failed" and got["b"]["stage"] == "materialize"
    assert got["b"]["error"] == "ValueError: bad shape" and got["b"]["choice"] == {"k": "b"}
    assert got["c"]["stage"] == "measure" and "child killed" in got["c"]["error"]


def test_should_stop_starts_nothing_more(monkeypatch):
    outcomes = {f"choice {k}": {"status": "done"} for k in "abcd"}
    assert [k for k, _ in _run(monkeypatch, outcomes, stop_after=2)] == ["a", "b"]


def test_a_full_disk_ends_the_run(monkeypatch):
    outcomes = {"choice a": WriteError("disk full", where="work"), "choice b": {"status": "done"}}
    with pytest.raises(WriteError):
        list(_run(monkeypatch, outcomes))
