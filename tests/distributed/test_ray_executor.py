"""`--executor ray` against a real local Ray (2 CPUs, this machine advertised as ``device:host-cpu``):
the same candidates as a local run, measurements on the device node, workers killed mid-run."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the ray extra is part of `make test`; install edgefit[ray]")

# The module runs in the serial lane (Makefile): its kills are aimed by a thread that reads a Ray
# worker's title and then kills it, and on a loaded machine the worker has often moved on by then
# (three different failures in two runs beside the parallel lane's other tests, 2026-12-07)
pytestmark = pytest.mark.slow

TRIALS = "3"


@pytest.fixture(scope="module")
def _ray_for_module():
    yield
    if ray.is_initialized():
        ray.shutdown()


@pytest.fixture
def local_ray(_ray_for_module):
    """One local Ray for the module's tests (started again if a test shut it down)."""
    if not ray.is_initialized():
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        ray.init(num_cpus=2, resources={"device:host-cpu": 1}, include_dashboard=False, log_to_driver=False)


def _optimize(run_cli, out: Path, *extra: str) -> tuple[int, dict]:
    # the winner's LiteRT conversion is tested elsewhere (tests/search/test_optimize.py)
    code, stdout, err = run_cli("optimize", "--target", "host-cpu", "--trials", TRIALS, "--out", str(out), "--json",
                                "-q", "--no-export", *extra)
    assert code in (0, 3), err[-3000:]
    return code, json.loads(stdout)


def _by_key(res: dict) -> dict:
    return {c["key"]: c for c in res["candidates"]}


class _Killer(threading.Thread):
    """SIGKILL the first Ray worker seen running ``ray::<task>`` (Ray titles a worker after its task)."""

    def __init__(self, task: str = "edgefit_candidate", delay_s: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.delay_s = delay_s
        self.title, self.killed, self.stop = f"ray::{task}".encode(), [], threading.Event()

    def run(self) -> None:
        while not self.stop.is_set() and not self.killed:
            for proc in Path("/proc").iterdir():
                if not proc.name.isdigit():
                    continue
                try:
                    cmdline = (proc / "cmdline").read_bytes()
                except OSError:
                    continue
                if cmdline.startswith(self.title):
                    time.sleep(self.delay_s)  # mid-task, and still the same task (Ray reuses a worker for the next)
                    try:
                        if (proc / "cmdline").read_bytes().startswith(self.title):
                            os.kill(int(proc.name), signal.SIGKILL)
                            self.killed.append(int(proc.name))
                            return
                    except (OSError, ProcessLookupError):
                        continue
            time.sleep(0.05)


def _optimize_killing(run_cli, out: Path, killer: _Killer, *extra: str) -> dict:
    """A Ray run of the optimizer while ``killer`` SIGKILLs one worker; asserts it did kill one."""
    killer.start()
    try:
        _, res = _optimize(run_cli, out, "--executor", "ray", *extra)
    finally:
        killer.stop.set()
    assert killer.killed, "no worker was seen running the task"
    return res


def test_ray_run_gives_the_same_candidates_and_accuracies_as_a_local_run(local_ray, run_cli, tmp_path):
    _, local = _optimize(run_cli, tmp_path / "local")
    _, dist = _optimize(run_cli, tmp_path / "ray", "--executor", "ray")
    a, b = _by_key(local), _by_key(dist)
    assert set(a) == set(b) and len(a) == int(TRIALS)
    for key in a:
        assert b[key]["status"] == a[key]["status"] == "done"
        assert b[key]["accuracy"]["value"] == a[key]["accuracy"]["value"]
        assert b[key]["latency"]["source"] == "measured" and b[key]["latency"]["runtime"] == "onnxruntime"
        # latencies agree within the noise of a shared 2-core machine (materialization runs beside them)
        ratio = b[key]["latency"]["p50_s"] / a[key]["latency"]["p50_s"]
        assert 0.5 < ratio < 2.0, (a[key]["label"], ratio)
    assert dist["config"]["executor"] == "ray"
    assert any("device:host-cpu served by" in n for n in dist["notes"])
    assert dist["selection"]["winner"] is not None


def test_a_worker_killed_mid_run_is_retried_and_every_candidate_is_accounted_for(local_ray, run_cli, tmp_path):
    killer = _Killer()
    res = _optimize_killing(run_cli, tmp_path, killer)
    cands = res["candidates"]
    assert len(cands) == int(TRIALS) and res["counts"]["not_started"] == 0
    assert all(c["status"] == "done" for c in cands)  # the killed one ran again on a new worker
    assert not {c["worker"]["pid"] for c in cands} & set(killer.killed)


def test_without_retries_the_killed_candidate_is_recorded_failed_not_lost(local_ray, run_cli, tmp_path):
    for attempt in range(2):
        out = tmp_path / f"attempt{attempt}"
        res = _optimize_killing(run_cli, out, _Killer(), "--ray-retries", "0")
        cands = res["candidates"]
        # the converse race of the killed-measurement test: the worker moved on to a measurement
        # before the kill landed, so a measurement, not a candidate, was lost; run this one again
        lost_measurement = any("lost" in (c.get("latency", {}).get("measurement_error") or "") for c in cands)
        if not (res["counts"]["failed"] == 0 and lost_measurement):
            break
    why = [(c["label"], c["status"], c.get("stage"), c.get("error"), c.get("latency", {}).get("measurement_error"))
           for c in cands]
    assert len(cands) == int(TRIALS) and res["counts"]["failed"] == 1, why
    failed = next(c for c in cands if c["status"] == "failed")
    assert "lost" in failed["error"] and failed["stage"] == "materialize"
    assert (out / "candidates" / failed["key"] / "result.json").is_file()


def test_a_killed_measurement_keeps_the_estimate_and_says_why(local_ray, run_cli, tmp_path):
    for attempt in range(2):
        killer = _Killer("edgefit_measure", delay_s=0.1)  # a measurement lasts ~1 s here
        res = _optimize_killing(run_cli, tmp_path / f"attempt{attempt}", killer, "--ray-retries", "0")
        cands = res["candidates"]
        failed = [c for c in cands if c["status"] == "failed"]
        # Ray reuses a worker for the next task: on a loaded machine the one whose title said
        # "measure" can have started a materialization by the time the kill lands (seen once in the
        # parallel lane), which then fails for want of retries. That is another test's case
        # (test_without_retries_…); run this one again.
        if not (failed and all(c.get("stage") == "materialize" for c in failed)):
            break
    why = [(c["label"], c["status"], c.get("stage"), c.get("error")) for c in cands]
    assert len(cands) == int(TRIALS) and all(c["status"] == "done" for c in cands), why
    unmeasured = [c for c in cands if c["latency"]["source"] == "estimated"]
    assert len(unmeasured) == 1 and "lost" in unmeasured[0]["latency"]["measurement_error"]


def test_bench_measures_on_the_device_node(local_ray, run_cli):
    code, out, err = run_cli("bench", "--example", "ds-cnn-kws", "--executor", "ray", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["executor"] == "ray" and res["measured_on"] and res["timing"]["p50"] > 0
    address = ray.get_runtime_context().gcs_address
    code, _, err = run_cli("bench", "--example", "ds-cnn-kws", "--executor", "ray", "--device", "orin",
                           "--ray-address", address)
    assert code == 2 and "no live Ray node serves device:jetson-agx-orin-64gb or device:orin" in err
    code, _, err = run_cli("bench", "--example", "ds-cnn-kws", "--executor", "ray", "--device", "orin")
    assert code == 2 and "serves only device:host-cpu" in err and "converting" not in err


def test_devices_lists_the_node_its_device_and_what_runs_there(local_ray, run_cli):
    code, out, err = run_cli("devices", "--json")
    assert code == 0, err
    farm = json.loads(out)
    (node,) = farm["nodes"]
    assert node["probe"] == "ok" and node["cpus"] == 2
    (dev,) = node["devices"]
    assert dev["resource"] == "device:host-cpu" and dev["target"] == "host-cpu"
    assert "onnxruntime" in dev["runs_here"]


def test_a_two_node_farm_measures_on_the_device_node_and_survives_losing_it(run_cli, tmp_path):
    """A head with CPUs only and a separate node serving device:host-cpu (ray.cluster_utils.Cluster,
    two raylets on this machine): measurements go to the device node; when that node is removed
    mid-run, the candidates it did not measure keep their estimate, with the reason."""
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    device = cluster.add_node(num_cpus=1, resources={"device:host-cpu": 1})
    ray.init(address=cluster.address, log_to_driver=False)
    device_id = device.node_id

    def remove_device_after_first_measurement() -> None:
        deadline = time.time() + 600
        while time.time() < deadline and not list(tmp_path.glob("candidates/*/result.json")):
            time.sleep(0.2)
        cluster.remove_node(device)

    remover = threading.Thread(target=remove_device_after_first_measurement, daemon=True)
    remover.start()
    try:
        _, res = _optimize(run_cli, tmp_path, "--executor", "ray", "--ray-retries", "0")
    finally:
        ray.shutdown()
        cluster.shutdown()
    cands = res["candidates"]
    assert len(cands) == int(TRIALS) and all(c["status"] == "done" for c in cands)
    measured = [c for c in cands if c["latency"]["source"] == "measured"]
    assert measured and all(c["latency"]["ray_node"] == device_id for c in measured)
    lost = [c for c in cands if c["latency"]["source"] == "estimated"]
    assert lost and all(c["latency"]["measurement_error"] for c in lost)
    assert all(c["latency"]["estimate_source"] in ("calibrated", "datasheet") for c in lost)


def test_a_budget_on_ray_accounts_for_the_candidates_it_never_started(local_ray, run_cli, tmp_path):
    code, res = _optimize(run_cli, tmp_path, "--executor", "ray", "--budget", "1s", "--trials", "5")
    started = res["counts"]["materialized"]
    assert 1 <= started < 5 and started + res["counts"]["not_started"] == 5
    assert any("budget of 1 s reached" in n for n in res["notes"])


def test_calibrate_runs_the_sweep_on_the_device_node_and_writes_the_profile_here(local_ray, run_cli, tmp_path):
    out = tmp_path / "profile" / "onnxruntime.yaml"
    code, stdout, err = run_cli("calibrate", "--executor", "ray", "--budget", "5s", "--no-fidelity", "--out", str(out),
                                "--json")
    assert code == 0, err
    res = json.loads(stdout)
    assert res["measured_on"] and res["residual"]["kernels_measured"] > 5
    assert out.is_file() and out.with_name("onnxruntime.measurements.json").is_file()
    from edgefit.estimate import load_profile

    assert load_profile(out).target == "host-cpu"


def test_ctrl_c_on_a_ray_run_writes_the_best_so_far_and_stops_the_workers(tmp_path):
    """SIGINT to the whole process group (what a terminal's Ctrl-C does) once a candidate is done."""
    import subprocess
    import sys

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "edgefit.cli", "optimize", "--trials", "5", "--out", str(out), "--executor", "ray",
           "--json", "-q"]
    # as a terminal starts it: SIGINT handled. A test run started in the background by a
    # non-interactive shell (`cmd &`) inherits SIGINT ignored, and so would the command.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 600
    while time.time() < deadline and not list(out.glob("candidates/*/result.json")):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode in (0, 3), stderr[-2000:]
    res = json.loads(stdout)
    why = (res["counts"], res["notes"], [(c["label"], c["status"]) for c in res["candidates"]], stderr[-1500:])
    assert res["interrupted"] and res["counts"]["materialized"] >= 1, why
    assert res["counts"]["materialized"] + res["counts"]["not_started"] == 5, why
    assert (out / "results.json").is_file()
