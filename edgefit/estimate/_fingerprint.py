"""Which machine a calibration profile describes, and whether that is this machine.

A profile measured on one CPU says little about another: on a Zen 3 without AVX-512 onnxruntime's
int8 kernels run 16-bit-intermediate AVX2 code and are far slower relative to fp32 than on a Zen 4
with AVX-512 VNNI, or on a Sapphire Rapids with AMX. So every learned profile carries a
:class:`Fingerprint`, the estimator uses the profile whose fingerprint matches this machine, and a
profile from another machine is labelled as such, with the error bar measured for that use.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import TYPE_CHECKING

from edgefit._lazy import lazy_import

if TYPE_CHECKING:
    from edgefit.targets import _host
else:
    _host = lazy_import("edgefit.targets._host")  # the targets package loads pydantic

# onnxruntime's (MLAS) int8 GEMM path, best first, from the CPU flags.
_INT8_PATHS = (
    ("amx", {"amx_int8", "amx_tile"}),
    ("avx512-vnni", {"avx512_vnni"}),
    ("avx-vnni", {"avx_vnni"}),
    ("avx512", {"avx512bw"}),
    ("avx2", {"avx2"}),
    ("neon-dotprod", {"asimddp"}),
    ("neon", {"asimd"}),
)


def int8_path(flags: frozenset[str] | set[str]) -> str:
    """The int8 kernel family a CPU with ``flags`` gets (AMX > AVX-512 VNNI > AVX-VNNI > AVX-512 >
    AVX2)."""
    for name, needs in _INT8_PATHS:
        if needs <= set(flags):
            return name
    return "scalar"


@dataclass(frozen=True)
class Fingerprint:
    cpu: str
    int8_path: str
    isa: tuple[str, ...]
    cores: int
    memory_gib: float
    runtime: str
    runtime_version: str
    # the CPU design (x86 family and model, Arm implementer and part): a VM's brand string is one
    # name for several generations ("AMD EPYC": Zen 3, 4 and 5). Empty in profiles written before
    # edgefit recorded it.
    cpu_id: str = ""

    @property
    def id(self) -> str:
        """A file-name-safe id: cpu slug, its design (f26m2: family 26 model 2), int8 path,
        cores, runtime version."""
        slug = _slug(self.cpu.replace("(R)", "").replace("(TM)", ""))[:40]
        found = re.fullmatch(r"\S+ family (\d+) model (\d+)", self.cpu_id)
        design = f"f{found[1]}m{found[2]}" if found else _slug(self.cpu_id)
        return (
            "-".join(p for p in (slug, design, self.int8_path, f"{self.cores}c") if p)
            + f"-{self.runtime}{self.runtime_version}"
        )

    def describe(self) -> str:
        design = f" [{self.cpu_id}]" if self.cpu_id else ""
        return (
            f"{self.cpu}{design} ({self.cores} cores, int8 path {self.int8_path}, {self.runtime} "
            f"{self.runtime_version})"
        )

    def mismatches(self, other: Fingerprint) -> list[str]:
        """What differs in a way that changes kernel times (empty: the same kind of machine)."""
        cpu = cpu_mismatch(other.cpu, other.cpu_id, self.cpu, self.cpu_id)
        out = [cpu] if cpu else []
        if self.int8_path != other.int8_path:
            out.append(f"int8 path {other.int8_path} vs {self.int8_path}")
        if self.cores != other.cores:
            out.append(f"{other.cores} vs {self.cores} cores")
        if self.runtime != other.runtime or _minor(self.runtime_version) != _minor(
            other.runtime_version
        ):
            out.append(f"{other.runtime} {other.runtime_version} vs {self.runtime_version}")
        return out

    def to_dict(self) -> dict:
        d = asdict(self)
        d["isa"] = list(self.isa)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Fingerprint:
        return cls(
            cpu=str(d["cpu"]),
            int8_path=str(d["int8_path"]),
            isa=tuple(d.get("isa") or ()),
            cores=int(d["cores"]),
            memory_gib=float(d.get("memory_gib", 0.0)),
            runtime=str(d["runtime"]),
            runtime_version=str(d["runtime_version"]),
            cpu_id=str(d.get("cpu_id") or ""),
        )


def environment_mismatches(env: dict) -> list[str]:
    """What differs between this machine and the ``environment`` of a first-format (YAML)
    calibration profile: CPU name, design and cores (empty: the same kind of machine, or a profile
    that names no CPU)."""
    if not env.get("cpu"):
        return []
    host = _host.probe_host()
    cpu = cpu_mismatch(env["cpu"], env.get("cpu_id", ""), host.model, host.cpu_id)
    out = [cpu] if cpu else []
    if env.get("cores") != host.cores:
        out.append(f"{env.get('cores')} vs {host.cores} cores")
    return out


def cpu_mismatch(there: str, there_id: str, here: str, here_id: str) -> str | None:
    """How a profile's CPU (name ``there``, design ``there_id``) differs from this machine's, or
    None: another name, another design, or a profile that does not record its design."""
    if there != here:
        return f"CPU {there!r} vs {here!r}"
    if there_id == here_id:
        return None
    if not there_id:
        return f"the profile does not record which {there} design it was measured on"
    return f"CPU design {there_id!r} vs {here_id!r}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def this_machine(runtime: str = "onnxruntime") -> Fingerprint:
    """The fingerprint of the machine edgefit runs on, for ``runtime``."""
    host = _host.probe_host()
    try:
        rt_version = metadata.version(runtime)
    except metadata.PackageNotFoundError:
        rt_version = "absent"
    return Fingerprint(
        cpu=host.model,
        int8_path=int8_path(host.flags),
        isa=tuple(host.isa),
        cores=host.cores,
        memory_gib=round((host.memory_bytes or 0) / 2**30, 1),
        runtime=runtime,
        runtime_version=rt_version,
        cpu_id=host.cpu_id,
    )
