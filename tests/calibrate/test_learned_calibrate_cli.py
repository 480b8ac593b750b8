"""`edgefit calibrate` (learned) end to end on a few random networks: the profile's shape and stamp.

Its figures are not asserted (a 4-network quick profile is a smoke test, not a calibration), so it
runs in the parallel lane; the fidelity gate on measured figures is in test_host_fidelity.py."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_calibrate_learned_end_to_end_then_estimate_with_it(
    run_cli, tmp_path, monkeypatch, one_try_per_timing
):
    """`edgefit calibrate` (learned) on a few random networks writes a profile stamped with this
    machine; `edgefit fidelity --profile` on one zoo model estimates and measures with it."""
    import json

    from edgefit.estimate._fingerprint import this_machine
    from edgefit.estimate._learned import load_learned

    monkeypatch.setenv("EDGEFIT_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "p.profile.json"
    code, stdout, err = run_cli("calibrate", "--target", "host-cpu", "--networks", "4", "--quick",
                                "--no-fidelity", "--out", str(out), "--json")
    assert code == 0, err
    payload = json.loads(stdout)
    profile = load_learned(out)
    assert profile.fingerprint == this_machine() and payload["fingerprint"]["int8_path"] == this_machine().int8_path
    assert 2 <= profile.training["networks"] <= 4 and profile.training["kernels"] > 20  # draws over MAX_MACS drop
    assert set(profile.threads) == {1, this_machine().cores}
    assert set(payload["intervals"]) >= {"fp32"}
    code, stdout, err = run_cli("calibrate", "--target", "orin", "--method", "learned")
    assert code == 2 and "learned calibration needs host-cpu" in err
    code, stdout, err = run_cli("fidelity", "--target", "host-cpu", "--profile", str(out), "--subset", "ci",
                                "--threads", "0", "--json")
    assert code == 2 and "--threads" in err
