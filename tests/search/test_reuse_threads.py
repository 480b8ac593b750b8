"""A finished candidate is reused only when it was timed at the run's thread count: its key names the candidate,
not how it was measured, so a --threads 2 run in a folder of 1-thread results must measure again."""

from __future__ import annotations

import json

from edgefit.search._engine import _finished


def write(path, **latency):
    path.write_text(json.dumps({"key": "k", "status": "done", "latency": latency}))
    return path


def test_a_measured_record_is_reused_at_its_own_thread_count_only(tmp_path):
    path = write(tmp_path / "result.json", source="measured", threads=1, p50_s=1e-3)
    assert _finished(path, "k", 1)["latency"]["threads"] == 1
    assert _finished(path, "k", 2) is None
    assert _finished(path, "k") is not None  # no thread count asked: as before


def test_estimated_and_failed_records_do_not_depend_on_threads(tmp_path):
    assert _finished(write(tmp_path / "e.json", source="estimated", p50_s=1e-3), "k", 4) is not None
    failed = tmp_path / "f.json"
    failed.write_text(json.dumps({"key": "k", "status": "failed", "reason": "x"}))
    assert _finished(failed, "k", 2) is not None
    assert _finished(failed, "other", 2) is None
