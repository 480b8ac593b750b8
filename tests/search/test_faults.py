"""Faults during `edgefit optimize`: kill -9 at random moments, a full disk, a read-only output folder.

The kill trials restart the same command in the same output folder and SIGKILL it at a seeded random
moment, again and again: every restart resumes where the last one died, so the kills land at moments
spread over the whole run (study creation, candidates, export, report writing) for little more than the
cost of one run. While the search runs, a moment is "after the k-th step of progress seen in the output
folder, plus a jitter" (k and the jitter random): unlike a fixed delay it lands inside the work however
fast or loaded the machine is. Once a run has finished, reruns (which reuse everything) are killed
alternately after a step (in the writing of the outputs) or at a random point of their known duration.
After each kill every file present must parse; at the end one run completes and must reuse every
candidate whose record existed before.
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from edgefit._io import WriteError, ensure_dir, write_atomic

KILLS = 20
SEED = 14
CANDIDATES = 6


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory) -> Path:
    """The runtime conformance model (a 2-conv classifier): six cheap candidates, each measured."""
    import onnx

    from edgefit.runtimes.testing import tiny_model

    path = tmp_path_factory.mktemp("model") / "tiny.onnx"
    onnx.save(tiny_model(), str(path))
    return path


def _command(model: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "edgefit.cli", "optimize", str(model), "--target", "host-cpu",
            "--trials", str(CANDIDATES), "--out", str(out), "--json", "-q"]


def _records(out: Path) -> dict[str, dict]:
    """Every per-candidate record present; each must be whole, valid JSON about its own candidate."""
    records = {}
    for path in out.glob("candidates/*/result.json"):
        record = json.loads(path.read_text())
        assert record["key"] == path.parent.name and record["status"] in ("done", "failed"), path
        records[record["key"]] = record
    return records


def _check_outputs(out: Path) -> dict[str, dict]:
    """What a reader may find in ``out`` after a kill: absent or complete, never half-written."""
    from edgefit.report import schema_errors

    results = out / "results.json"
    if results.exists():
        res = json.loads(results.read_text())
        assert schema_errors(res) == [], schema_errors(res)
    for name, end in (("report.html", "</html>"), ("report.md", "")):
        if (out / name).exists():
            text = (out / name).read_text()
            assert text.strip() and text.rstrip().endswith(end), name
    if (out / "model.onnx").exists():  # a whole copy of one candidate's model
        data = (out / "model.onnx").read_bytes()
        assert any(data == p.read_bytes() for p in out.glob("candidates/*/model*.onnx"))
    for tflite in out.glob("export/*/*.tflite"):
        from ai_edge_litert.interpreter import Interpreter

        Interpreter(model_path=str(tflite)).allocate_tensors()
    if (out / "study.db").exists():
        db = sqlite3.connect(f"file:{out / 'study.db'}?mode=ro", uri=True)
        try:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            states = {s for (s,) in db.execute("SELECT state FROM trials")}
            assert states <= {"COMPLETE", "FAIL"}, states  # no trial left running or waiting
            assert db.execute("SELECT count(*) FROM studies WHERE study_name = 'edgefit'").fetchone()[0] == 1
        finally:
            db.close()
    return _records(out)


def _snapshot(out: Path) -> frozenset:
    """The run's visible progress: which folders and files exist, and when each file last changed
    (hidden temporary files and SQLite's journal come and go too fast to count)."""
    found = set()
    for root, dirs, files in os.walk(out):
        found.update((root, d) for d in dirs if not d.startswith("."))
        for name in files:
            if name.startswith(".") or name.endswith(("-journal", "-wal", "-shm")):
                continue
            try:
                found.add((root, name, os.stat(os.path.join(root, name)).st_mtime_ns))
            except OSError:  # replaced meanwhile
                continue
    return frozenset(found)


def _run_and_kill(cmd: list[str], out: Path, changes: int | None, delay_s: float) -> float | None:
    """Start ``cmd`` and SIGKILL it (and its children) ``delay_s`` after the ``changes``-th step of progress
    seen in ``out`` (``changes=None``: after its start); returns None when it was killed, else how long the
    run took to finish on its own."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    seen, last = 0, _snapshot(out)
    while proc.poll() is None and seen < (changes or 0):
        time.sleep(0.02)
        now = _snapshot(out)
        seen, last = seen + (now != last), now
    try:
        proc.wait(timeout=delay_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the command and its measuring or converting child
        proc.wait()
        return None
    assert proc.returncode == 0, f"the run exited {proc.returncode} on its own"
    return time.monotonic() - start


@pytest.mark.slow
def test_kill_9_at_20_random_moments_never_corrupts_and_loses_nothing(tiny_onnx, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    cmd = _command(tiny_onnx, out)
    rng = random.Random(SEED)
    finished: dict[str, dict] = {}
    kills, starts, moments, whole_run_s = 0, 0, [], None
    while kills < KILLS and starts < 2 * KILLS:
        starts += 1
        if whole_run_s is None or starts % 2:  # during the search, and every other rerun: after a step of progress
            changes, delay = rng.randint(1, 8 if whole_run_s is None else 2), rng.uniform(0.0, 0.3)
        else:  # a rerun that resumes a finished search: anywhere in its (known) duration
            changes, delay = None, rng.uniform(0.1, 0.95) * whole_run_s
        took = _run_and_kill(cmd, out, changes, delay)
        kills += took is None
        whole_run_s = took or whole_run_s
        records = _check_outputs(out)
        assert set(finished) <= set(records), "a finished candidate's record disappeared"
        finished = records
        moments.append((changes or f"{delay:.1f}s", "killed" if took is None else "finished", len(records),
                        (out / "results.json").exists()))
    print(f"{kills} kills in {starts} starts; (k-th step or delay, outcome, records, results.json) each: {moments}")
    assert kills == KILLS, "the command kept finishing before its kill"
    killed_with = [n for _, outcome, n, _ in moments if outcome == "killed"]
    assert any(0 < n < CANDIDATES for n in killed_with), "no kill landed between candidates"
    assert any(n == CANDIDATES for n in killed_with), "no kill landed after the last candidate"

    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    res = json.loads(done.stdout)
    reused = {c["key"] for c in res["candidates"] if c["reused"]}
    assert set(finished) <= reused and res["counts"]["reused"] == len(reused)
    assert res["counts"]["materialized"] == CANDIDATES
    assert {k: v for k, v in res.items() if k != "files"} == json.loads((out / "results.json").read_text())
    assert set(_check_outputs(out)) == {c["key"] for c in res["candidates"]}
    assert not list(out.rglob("*.tmp")), "temporary files of killed runs were left behind"
    # one more rerun reuses everything and keeps the frontier; its final interleaved re-measurement
    # picks the same winner, or one the protocol found within the noise of it
    again = json.loads(subprocess.run(cmd, capture_output=True, text=True, timeout=600).stdout)
    assert again["counts"]["reused"] == again["counts"]["materialized"] == CANDIDATES
    assert again["frontier"] == res["frontier"]
    ties = {k for r in (res, again) for t in r["selection"].get("protocol", {}).get("ties", [])
            for k in (t["key"], t["with"])}
    assert again["selection"]["winner"] == res["selection"]["winner"] or again["selection"]["winner"] in ties


# -- full disk and read-only folder ---------------------------------------------------------------------


def _fail_under(monkeypatch, name: str, root: Path, err: int, when=lambda: True) -> None:
    """Make ``os.<name>`` fail with ``err`` for files under ``root`` (by path or, for ``write``, by fd)."""
    real = getattr(os, name)

    def under(target) -> bool:
        if isinstance(target, int):
            try:
                target = os.readlink(f"/proc/self/fd/{target}")
            except OSError:
                return False
        return str(os.fspath(target)).startswith(str(root)) and when()

    def fake(target, *args, **kwargs):
        if under(target):
            raise OSError(err, os.strerror(err), str(target))
        return real(target, *args, **kwargs)

    monkeypatch.setattr(os, name, fake)


def test_full_disk_write_is_one_line_and_keeps_the_old_file(tmp_path, monkeypatch):
    target = write_atomic(tmp_path / "results.json", '{"old": true}\n')
    _fail_under(monkeypatch, "write", tmp_path, errno.ENOSPC)
    with pytest.raises(WriteError, match="disk is full") as info:
        write_atomic(target, '{"new": true}\n')
    assert info.value.exit_code == 2 and str(target) in info.value.line() and "--out" in info.value.line()
    assert json.loads(target.read_text()) == {"old": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]  # no temporary file left


def test_read_only_folder_is_one_line_before_any_work(tmp_path, monkeypatch):
    _fail_under(monkeypatch, "open", tmp_path, errno.EROFS)
    with pytest.raises(WriteError, match="read-only"):
        ensure_dir(tmp_path / "out")
    with pytest.raises(WriteError, match="read-only"):
        write_atomic(tmp_path / "report.md", "# report\n")


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


def test_real_full_disk_and_read_only_mount(tmp_path):
    full, ro = tmp_path / "full", tmp_path / "ro"
    full.mkdir(), ro.mkdir()
    if not (hasattr(os, "geteuid") and os.geteuid() == 0 and _mount("-t", "tmpfs", "-o", "size=64k", "tmpfs",
                                                                      str(full))):
        pytest.skip("mounting a small tmpfs needs root with CAP_SYS_ADMIN (the monkeypatched tests cover the logic)")
    try:
        write_atomic(full / "model.onnx", b"old")
        with pytest.raises(WriteError, match="disk is full"):
            write_atomic(full / "model.onnx", os.urandom(256 * 1024))
        assert (full / "model.onnx").read_bytes() == b"old" and len(list(full.iterdir())) == 1
        assert _mount("--bind", str(ro), str(ro)) and _mount("-o", "remount,ro,bind", str(ro))
        try:
            with pytest.raises(WriteError, match="read-only"):
                ensure_dir(ro)
        finally:
            subprocess.run(["umount", str(ro)], check=True)
    finally:
        subprocess.run(["umount", str(full)], check=True)


def test_optimize_into_a_read_only_folder_is_exit_2(run_cli, tiny_onnx, tmp_path, monkeypatch):
    out = tmp_path / "out"
    _fail_under(monkeypatch, "open", out, errno.EROFS)
    _fail_under(monkeypatch, "mkdir", out, errno.EROFS)
    start = time.monotonic()
    code, _, err = run_cli("optimize", str(tiny_onnx), "--target", "host-cpu", "--out", str(out), "-q")
    assert code == 2 and "read-only" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert time.monotonic() - start < 60  # refused before screening or materializing anything


@pytest.mark.slow
def test_disk_full_during_the_search_is_exit_2_and_keeps_finished_records(run_cli, tiny_onnx, tmp_path,
                                                                         monkeypatch):
    out = tmp_path / "out"
    _fail_under(monkeypatch, "write", out, errno.ENOSPC, when=lambda: any(out.glob("candidates/*/result.json")))
    code, _, err = run_cli("optimize", str(tiny_onnx), "--target", "host-cpu", "--trials", "4", "--out", str(out),
                           "-q")
    assert code == 2 and "disk is full" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert 1 <= len(_records(out)) < 4 and not (out / "results.json").exists()
