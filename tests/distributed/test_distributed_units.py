"""The Ray executor's parts that need no cluster: file shipping, device names, the missing-Ray error."""

from __future__ import annotations

import sys
from types import SimpleNamespace as NS

import pytest

from edgefit.distributed import device_resource_names, pack, unpack
from edgefit.errors import EdgefitError, MissingDependencyError


def test_pack_unpack_round_trips_a_file_and_a_bundle_directory(tmp_path):
    f = tmp_path / "model.onnx"
    f.write_bytes(bytes(range(256)) * 10)
    bundle = tmp_path / "model.mlpackage"
    (bundle / "Data").mkdir(parents=True)
    (bundle / "Data" / "weights.bin").write_bytes(b"w" * 1000)
    (bundle / "Manifest.json").write_text("{}")
    out = tmp_path / "elsewhere"
    assert unpack(pack(f), out).read_bytes() == f.read_bytes()
    back = unpack(pack(bundle), out)
    assert back == out / "model.mlpackage"
    assert (back / "Data" / "weights.bin").read_bytes() == b"w" * 1000 and (back / "Manifest.json").read_text() == "{}"


def test_unpack_never_writes_outside_its_folder(tmp_path):
    packed = {"name": "../../escape.onnx", "kind": "file", "data": b"x"}
    assert unpack(packed, tmp_path / "in") == tmp_path / "in" / "escape.onnx"
    assert not (tmp_path / "escape.onnx").exists()


def test_device_resources_cover_the_target_id_and_its_aliases():
    from edgefit.targets import load_target

    names = device_resource_names(load_target("orin"))
    assert names[0] == "device:jetson-agx-orin-64gb" and "device:orin" in names


@pytest.fixture
def no_ray(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray → ImportError, as on a machine without it


def test_without_ray_the_executor_asks_for_the_install_line(no_ray):
    from edgefit.distributed import require_ray

    with pytest.raises(MissingDependencyError) as err:
        require_ray()
    assert 'pip install "edgefit[ray]"' in err.value.line()


@pytest.mark.parametrize("args", [
    ("optimize", "--executor", "ray", "--trials", "1"),
    ("bench", "--example", "ds-cnn-kws", "--executor", "ray"),
    ("calibrate", "--executor", "ray", "--budget", "10s"),
    ("devices",),
])
def test_every_ray_command_without_ray_is_one_line_exit_2(no_ray, run_cli, tmp_path, args):
    code, out, err = run_cli(*args, "--out" if args[0] == "optimize" else "--json", *(
        [str(tmp_path)] if args[0] == "optimize" else []))
    assert code == 2
    assert err.strip().count("\n") == 0 and 'pip install "edgefit[ray]"' in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())  # nothing started, nothing half-written


def test_unknown_executor_is_a_usage_error(run_cli, tmp_path):
    code, _, err = run_cli("optimize", "--executor", "dask", "--out", str(tmp_path))
    assert code == 2 and "unknown executor 'dask'" in err


def test_a_device_node_without_any_runtime_of_its_target_says_which_and_why(tmp_path):
    from edgefit.distributed._tasks import measure_for_target

    target = NS(id="gap9", runtimes=["gapflow", "tensorrt"])
    record = {"artifact": {"runtime": "onnxruntime", "path": "x.onnx"}, "choice": {"precision": "fp32"}}
    with pytest.raises(EdgefitError) as err:
        measure_for_target({"onnx": tmp_path / "x.onnx"}, record, NS(target=target), None, tmp_path)
    line = err.value.line()
    assert "gapflow: no edgefit backend" in line and "tensorrt:" in line and "serves gap9" in line


def test_the_ray_executor_is_found_by_name_and_importing_it_stays_light():
    """search looks the Ray executor up by name (it never imports edgefit.distributed), and
    importing edgefit.distributed loads neither search nor ray (the CLI imports it at start)."""
    import subprocess

    code = (
        "import sys, edgefit.distributed; "
        "print(sorted(m for m in ('edgefit.search', 'ray', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    from edgefit.distributed import RayExecutor
    from edgefit.search._executor import EXECUTORS

    assert EXECUTORS["ray"] == f"{RayExecutor.__module__}:{RayExecutor.__qualname__}"
