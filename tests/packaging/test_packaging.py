"""Packaging: the wheel carries the data folders; `import edgefit` stays light."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "numba", "onnxruntime", "onnx", "pydantic", "coremltools", "tensorrt", "ray", "optuna")


def test_import_edgefit_is_light():
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import edgefit, edgefit.iteration"],
                         capture_output=True, text=True, check=True)
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if "|" in line}
    assert not [m for m in HEAVY if m in imported]


def _imported(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                         check=True)
    return {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines() if "|" in line}


def test_the_front_door_names_are_lazy():
    """``import edgefit`` (and listing its names) loads none of the subpackages behind them; using
    ``edgefit.optimize``/``edgefit.check`` loads their modules but still no torch, numba, onnxruntime,
    optuna or ray (those load when a run needs them)."""
    listed = _imported("import edgefit; assert {'optimize', 'check', 'OptimizeConfig'} <= set(dir(edgefit))")
    assert not [m for m in HEAVY if m in listed]
    assert not [m for m in listed if m.startswith(("edgefit.search", "edgefit.report", "edgefit.targets"))]
    used = _imported("import edgefit; [getattr(edgefit, n) for n in edgefit.__all__]; "
                     "edgefit.OptimizeConfig(trials=2)")
    assert "edgefit.search._flow" in used and "edgefit.report._gate" in used
    assert not [m for m in ("torch", "numba", "onnxruntime", "optuna", "ray") if m in used]


@pytest.mark.slow
def test_wheel_ships_targets_profiles_kernels(tmp_path):
    pytest.importorskip("build", reason="the 'build' package is part of the dev extra")
    out = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path), str(ROOT)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    wheel = next(tmp_path.glob("edgefit-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    shipped_targets = {p.name for p in (ROOT / "targets").glob("*.yaml")}
    in_wheel = {Path(n).name for n in names if n.startswith("edgefit/_data/targets/")}
    assert shipped_targets and shipped_targets <= in_wheel
    assert any(n.startswith("edgefit/_data/kernels/") and n.endswith("catalog.yaml") for n in names)
    assert any(n.startswith("edgefit/_data/profiles/") for n in names)
    assert not any(n.startswith(("tests/", "bench/")) for n in names)


@pytest.mark.slow
def test_installed_wheel_finds_its_data(tmp_path):
    """Install the wheel into a throwaway target dir and load a target from inside it."""
    out = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path / "dist"), str(ROOT)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("edgefit-*.whl"))
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("import edgefit._resources as r, edgefit.targets as t; "
            "print(r.data_dir('targets')); print(t.load_target('orin').id)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert res.returncode == 0, res.stderr[-2000:]
    data_dir, target = res.stdout.split()
    assert data_dir.startswith(str(site)) and target == "jetson-agx-orin-64gb"
