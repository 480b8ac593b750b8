"""Target profiles: every shipped file validates (model and JSON Schema), names resolve, bad files fail clearly."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from edgefit._yaml import load_yaml
from edgefit.errors import EdgefitError
from edgefit.targets import list_targets, load_target, load_target_file, target_json_schema, targets_dir

SHIPPED = sorted(targets_dir().glob("*.yaml"))
EXPECTED_IDS = {"h100", "jetson-agx-orin-64gb", "glasses-npu", "gap9", "ethos-u55", "host-cpu"}


# --- every shipped file ---------------------------------------------------------------------------------------------
def test_all_expected_targets_ship():
    assert EXPECTED_IDS <= {p.stem for p in SHIPPED}
    assert EXPECTED_IDS <= {t.id for t in list_targets()}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_target_loads_and_id_is_file_stem(path: Path):
    target = load_target_file(path)
    assert target.id == path.stem
    for unit in target.compute_units:
        assert unit.peak_ops_per_s, unit.name
    budgets = set(target.envelope.memory_bytes)
    assert budgets <= {m.name for m in target.memory_levels}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_raw_yaml_matches_json_schema(path: Path):
    data, _ = load_yaml(path)
    validator = Draft202012Validator(target_json_schema())
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    assert not errors, [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


def test_json_schema_rejects_unknown_field():
    data, _ = load_yaml(targets_dir() / "h100.yaml")
    data["turbo_mode"] = True
    assert not Draft202012Validator(target_json_schema()).is_valid(data)


# --- names: id, alias, pattern, user file ---------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "target_id"), [
    ("orin", "jetson-agx-orin-64gb"),
    ("hearable", "gap9"),
    ("glasses", "glasses-npu"),
    ("h100", "h100"),
])
def test_alias_and_id_resolve(name: str, target_id: str):
    assert load_target(name).id == target_id


def test_list_targets_pattern():
    assert [t.id for t in list_targets("jetson*")] == ["jetson-agx-orin-64gb"]
    assert [t.id for t in list_targets("hearable")] == ["gap9"]  # aliases match too
    assert list_targets("no-such-*") == []


def test_user_yaml_file_works_where_an_id_does(tmp_path: Path):
    src = targets_dir() / "h100.yaml"
    text = src.read_text()
    assert "\nid: h100\n" in text
    path = tmp_path / "my-gpu.yaml"
    path.write_text(text.replace("\nid: h100\n", "\nid: my-gpu\n"))
    assert load_target(str(path)).id == "my-gpu"
    assert load_target(path).id == "my-gpu"


# --- bad input: one line naming file, line and field ----------------------------------------------------------------
MINIMAL = """\
schema_version: 1
id: tiny
name: Tiny test target
kind: mcu_npu
compute_units:
  - name: npu
    kind: npu
    peak_ops_per_s:
      int8: {value: 1.0e+11, source: "test datasheet"}
    efficiency: {value: 0.5, estimated: true, reason: "test"}
    layer_overhead_s: {value: 1.0e-6, estimated: true, reason: "test"}
memory_levels:
  - name: sram
    kind: sram
    capacity_bytes: {value: 1.0e+6, source: "test datasheet"}
    bandwidth_bytes_per_s: {value: 4.0e+9, source: "test datasheet"}
    energy_pj_per_byte: {value: 5.0, estimated: true, reason: "test"}
    holds: [weights, activations]
energy:
  pj_per_op:
    int8: {value: 0.1, estimated: true, reason: "test"}
  static_power_w: {value: 0.001, estimated: true, reason: "test"}
dtypes: [int8]
envelope:
  latency_budget_s: {value: 0.010, estimated: true, reason: "test"}
certification:
  name: none
  days_per_change: {value: 0, estimated: true, reason: "test"}
  cost_usd_per_change: {value: 0, estimated: true, reason: "test"}
  triggers: []
lifecycle_days:
  data_prep: {value: 1, estimated: true, reason: "test"}
  labeling: {value: 1, estimated: true, reason: "test"}
  training: {value: 1, estimated: true, reason: "test"}
  eval: {value: 1, estimated: true, reason: "test"}
  deploy: {value: 1, estimated: true, reason: "test"}
  monitoring: {value: 1, estimated: true, reason: "test"}
"""
LATENCY = '  latency_budget_s: {value: 0.010, estimated: true, reason: "test"}\n'


def _line(text: str, needle: str) -> int:
    """1-based line of the first line containing ``needle``."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def _write(tmp_path: Path, text: str, old: str | None = None, new: str = "") -> tuple[Path, str]:
    if old is not None:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    return path, text


def _error(path: Path) -> str:
    with pytest.raises(EdgefitError) as info:
        load_target(str(path))
    return str(info.value)


def test_minimal_document_is_valid(tmp_path: Path):
    path, _ = _write(tmp_path, MINIMAL)
    assert load_target(str(path)).id == "tiny"


@pytest.mark.parametrize(("new", "field", "words"), [
    ('  latency_budget_s: {value: "fast", estimated: true, reason: "test"}\n',
     "envelope.latency_budget_s.value", "number"),
    ('  latency_budget_s: {value: -1, estimated: true, reason: "test"}\n', "envelope.latency_budget_s", "> 0"),
    ('  latency_budget_s: {value: 1.0e+6, estimated: true, reason: "test"}\n', "envelope.latency_budget_s", "unit"),
    ("  latency_budget_s: {value: 0.010}\n", "envelope.latency_budget_s", "source"),
    ('  latency_budget_s: {value: 0.010, estimated: true}\n', "envelope.latency_budget_s", "reason"),
], ids=["string-for-number", "negative", "absurd", "no-provenance", "estimated-without-reason"])
def test_bad_number_names_file_line_field(tmp_path: Path, new: str, field: str, words: str):
    path, text = _write(tmp_path, MINIMAL, LATENCY, new)
    msg = _error(path)
    assert f"{path}:{_line(text, 'latency_budget_s')}:" in msg
    assert f"field '{field}'" in msg
    assert words in msg


def test_missing_required_field_names_file_line_field(tmp_path: Path):
    path, text = _write(tmp_path, MINIMAL, '    efficiency: {value: 0.5, estimated: true, reason: "test"}\n', "")
    msg = _error(path)
    assert "field 'compute_units.0.efficiency'" in msg and "required field is missing" in msg
    assert f"{path}:{_line(text, '- name: npu')}:" in msg  # the compute unit that lacks it


def test_unknown_field_names_file_line_field(tmp_path: Path):
    path, text = _write(tmp_path, MINIMAL, "    kind: npu\n", "    kind: npu\n    turbo: true\n")
    msg = _error(path)
    assert f"{path}:{_line(text, 'turbo')}:" in msg
    assert "field 'compute_units.0.turbo'" in msg and "unknown field" in msg


def test_malformed_yaml_names_file_and_line(tmp_path: Path):
    path, text = _write(tmp_path, MINIMAL, LATENCY, '  latency_budget_s: {value: 0.010, estimated: true\n')
    msg = _error(path)
    assert "malformed YAML" in msg
    # PyYAML reports where it noticed the problem: the unclosed mapping's line or the next one
    bad = _line(text, "latency_budget_s")
    assert any(f"{path}:{n}:" in msg for n in (bad, bad + 1)), msg


def test_empty_file_names_file(tmp_path: Path):
    path, _ = _write(tmp_path, "# nothing here\n")
    msg = _error(path)
    assert str(path) in msg and "empty" in msg


def test_unknown_target_id_suggests_ids():
    with pytest.raises(EdgefitError) as info:
        load_target("jetson-nano")
    msg = str(info.value)
    assert msg.startswith("--target:") and "unknown target 'jetson-nano'" in msg
    assert "jetson-agx-orin-64gb" in msg


def test_missing_user_file_names_it(tmp_path: Path):
    with pytest.raises(EdgefitError, match="target file not found"):
        load_target(str(tmp_path / "nope.yaml"))


# --- host-cpu probe -------------------------------------------------------------------------------------------------
def _meminfo_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


@pytest.mark.skipif(platform.system() != "Linux" or _meminfo_bytes() is None, reason="the probe reads Linux /proc")
def test_host_cpu_is_probed():
    host = load_target("host-cpu")
    cpu = next(u for u in host.compute_units if u.name == "cpu")
    assert cpu.kind == "cpu"
    assert set(cpu.peak_ops_per_s) >= {"fp32", "int8"}
    for dtype, peak in cpu.peak_ops_per_s.items():
        assert peak.estimated and "probed" in (peak.reason or ""), dtype
        assert peak.value > 0
    assert host.level("dram").capacity_bytes.value == _meminfo_bytes()
    assert "probed" in (host.level("dram").capacity_bytes.reason or "")


def test_host_cpu_file_without_probe_keeps_its_figures(tmp_path: Path):
    text = (targets_dir() / "host-cpu.yaml").read_text()
    assert "\nprobe: true\n" in text
    path = tmp_path / "host-cpu-fixed.yaml"
    path.write_text(text.replace("\nprobe: true\n", "\nprobe: false\n"))
    cpu = next(u for u in load_target_file(path).compute_units if u.name == "cpu")
    assert all("probed" not in (p.reason or "") for p in cpu.peak_ops_per_s.values())


# --- power modes ----------------------------------------------------------------------------------------------------
def test_orin_power_mode_scales_gpu_peak():
    orin = load_target("orin")
    gpu = next(u for u in orin.compute_units if u.name == "gpu")
    maxn = orin.peak_ops(gpu, "int8", "MAXN")
    low = orin.peak_ops(gpu, "int8", "15W")
    scale = orin.power_mode("15W").compute_scale["gpu"].value
    assert low < maxn
    assert low == pytest.approx(maxn * scale)
    assert orin.peak_ops(gpu, "int8") == maxn  # default mode is MAXN
    assert orin.peak_ops(gpu, "fp64") is None
    with pytest.raises(KeyError):
        orin.power_mode("5W")


# --- ethos-u55 matches the Vela configuration it names ---------------------------------------------------------------
def _vela_notes(target) -> dict[str, str]:
    out = {}
    for note in target.notes:
        key, sep, value = note.partition(":")
        if sep and key.startswith("vela-"):
            out[key] = value.strip()
    return out


def test_ethos_u55_names_a_vela_configuration():
    notes = _vela_notes(load_target("ethos-u55"))
    assert notes == {
        "vela-accelerator-config": "ethos-u55-128",
        "vela-system-config": "Ethos_U55_High_End_Embedded",
        "vela-memory-mode": "Shared_Sram",
    }


def test_ethos_u55_figures_match_vela():
    pytest.importorskip("ethosu.vela")
    from ethosu.vela import architecture_features as af
    from ethosu.vela.tensor import MemArea

    target = load_target("ethos-u55")
    notes = _vela_notes(target)
    ini = Path(af.__file__).resolve().parents[1] / "config_files" / "Arm" / "vela.ini"
    assert ini.is_file(), ini
    arch = af.ArchitectureFeatures(
        vela_config_files=[str(ini)], accelerator_config=notes["vela-accelerator-config"],
        system_config=notes["vela-system-config"], memory_mode=notes["vela-memory-mode"],
        max_blockdep=3, verbose_config=False, arena_cache_size=None,
    )
    npu = next(u for u in target.compute_units if u.name == "npu")
    assert npu.clock_hz.value == pytest.approx(arch.core_clock)
    assert npu.peak_ops_per_s["int8"].value == pytest.approx(2 * arch.num_macs_per_cycle * arch.core_clock)
    bw = arch.memory_bandwidths_per_second
    assert target.level("sram").bandwidth_bytes_per_s.value == pytest.approx(bw[MemArea.Sram])
    assert target.level("flash").bandwidth_bytes_per_s.value == pytest.approx(bw[MemArea.OffChipFlash])
    # Shared_Sram: weights live in flash, the tensor arena in SRAM
    assert arch.permanent_storage_mem_area == MemArea.OffChipFlash
    assert target.level("flash").holds == ["weights"] and "activations" in target.level("sram").holds
