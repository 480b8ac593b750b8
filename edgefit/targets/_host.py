"""Describe the machine edgefit runs on (the ``host-cpu`` target).

The shipped ``targets/host-cpu.yaml`` holds the figures of the machine class it was written on;
with ``probe: true`` the loader replaces cores, clock, ISA-derived peak ops and cache/memory
capacities with what this machine reports (Linux ``/proc`` and ``/sys``; other systems keep the
file's figures). Peak ops are a roof, not a promise: ``edgefit calibrate`` fits what the runtime
actually reaches.
"""

from __future__ import annotations

import copy
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class HostInfo:
    model: str
    vendor: str
    cores: int
    clock_hz: float | None
    flags: frozenset[str] = field(default_factory=frozenset)
    caches: dict[str, int] = field(
        default_factory=dict
    )  # "l1d"/"l2"/"l3" → total bytes usable by our cores
    memory_bytes: int | None = None
    # the core design behind the brand string: "AuthenticAMD family 26 model 2" (x86 CPUID) or
    # "arm implementer 0x41 part 0xd4f"; a VM reports one brand ("AMD EPYC") for Zen 3, 4 and 5
    cpu_id: str = ""

    @property
    def isa(self) -> list[str]:
        wanted = [
            "avx2",
            "fma",
            "avx512f",
            "avx512_vnni",
            "avx512_bf16",
            "avx512_fp16",
            "amx_int8",
            "amx_bf16",
            "asimd",
            "asimddp",
            "sve",
        ]
        return [f for f in wanted if f in self.flags]


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def _size(text: str) -> int:
    text = text.strip().upper()
    mult = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(text[-1:], 1)
    return int(text.rstrip("KMG")) * mult


def probe_host() -> HostInfo:
    """Read this machine's CPU model, usable cores, clock, ISA flags, caches and memory."""
    cores = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )
    info: dict[str, str] = {}
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
    clock = None
    max_khz = _read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    if max_khz and max_khz.strip().isdigit():
        clock = int(max_khz) * 1e3
    elif info.get("cpu MHz"):
        clock = float(info["cpu MHz"]) * 1e6
    caches: dict[str, int] = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        level, kind, size = (_read(str(index / n)) for n in ("level", "type", "size"))
        shared = _read(str(index / "shared_cpu_list")) or "0"
        if not (level and kind and size) or kind.strip() == "Instruction":
            continue
        name = f"l{level.strip()}" + ("d" if kind.strip() == "Data" else "")
        n_sharing = sum(
            len(range(int(a), int(b) + 1)) if "-" in part else 1
            for part in shared.strip().split(",")
            for a, _, b in [part.partition("-")]
        )
        # private caches add up over our cores; a shared cache counts once
        copies = max(1, cores // max(1, n_sharing))
        caches[name] = _size(size) * copies
    mem = None
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            mem = int(line.split()[1]) * 1024
    return HostInfo(
        model=info.get("model name", platform.processor() or platform.machine()),
        vendor=info.get("vendor_id", ""),
        cores=cores,
        clock_hz=clock,
        flags=frozenset(info.get("flags", "").split()),
        caches=caches,
        memory_bytes=mem,
        cpu_id=cpu_id(info),
    )


def cpu_id(info: dict[str, str]) -> str:
    """The CPU's design from /proc/cpuinfo fields: vendor, family and model on x86, implementer
    and part on Arm; empty where neither is reported."""
    if info.get("cpu family") and info.get("model"):
        return f"{info.get('vendor_id', 'x86')} family {info['cpu family']} model {info['model']}"
    if info.get("CPU implementer") and info.get("CPU part"):
        return f"arm implementer {info['CPU implementer']} part {info['CPU part']}"
    return ""


def ops_per_cycle(host: HostInfo) -> dict[str, float]:
    """Dense peak ops per cycle per core for each dtype, from the ISA (1 FMA = 2 ops).

    AMD Zen 4 runs AVX-512 on 256-bit datapaths, so AVX-512 only doubles the rate on Intel.
    """
    f = host.flags
    if "avx512f" in f and host.vendor != "AuthenticAMD":
        fp32 = 64.0  # 2 × 512-bit FMA
    elif "avx2" in f and "fma" in f:
        fp32 = 32.0  # 2 × 256-bit FMA
    elif "asimd" in f:
        fp32 = 16.0  # 2 × 128-bit NEON FMA
    else:
        fp32 = 8.0
    int8 = fp32 * (4 if ("avx512_vnni" in f or "avx_vnni" in f or "asimddp" in f) else 2)
    if "amx_int8" in f:
        int8 = 2048.0  # one AMX tile unit: 1024 int8 MACs per cycle
    bf16 = 1024.0 if "amx_bf16" in f else fp32 * (2 if "avx512_bf16" in f else 1)
    fp16 = fp32 * (2 if "avx512_fp16" in f else 1)
    return {"fp32": fp32, "fp16": fp16, "bf16": bf16, "int8": int8}


def apply_probe(data: dict) -> dict:
    """Return a copy of a host-cpu target document with this machine's figures filled in."""
    host = probe_host()
    data = copy.deepcopy(data)
    how = f"probed on this machine ({host.model}, {host.cores} cores"
    if host.clock_hz:
        how += f", {host.clock_hz / 1e9:.2f} GHz"
    how += f", ISA {' '.join(host.isa) or 'baseline'})"
    data["description"] = f"This machine: {host.model}, {host.cores} usable cores. " + data.get(
        "description", ""
    )
    for unit in data.get("compute_units", []):
        if unit.get("kind") != "cpu" or not host.clock_hz:
            continue
        unit["clock_hz"] = {"value": host.clock_hz, "estimated": True, "reason": how}
        per_cycle = ops_per_cycle(host)
        unit["peak_ops_per_s"] = {
            dtype: {
                "value": host.cores * host.clock_hz * rate,
                "estimated": True,
                "reason": f"cores × clock × {rate:g} ops/cycle/core from the ISA; {how}",
            }
            for dtype, rate in per_cycle.items()
        }
    sizes = {"l2": host.caches.get("l2"), "l3": host.caches.get("l3"), "dram": host.memory_bytes}
    for level in data.get("memory_levels", []):
        size = sizes.get(level.get("name"))
        if size:
            level["capacity_bytes"] = {"value": float(size), "estimated": True, "reason": how}
    data.setdefault("notes", []).append(f"host: {host.model}; flags: {' '.join(host.isa)}")
    return data
