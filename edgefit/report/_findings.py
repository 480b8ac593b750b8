"""What `edgefit check` reports: findings (one line each, as a GitHub Actions annotation or plain
text) and the outcome with its exit code, for CI.

An ``error`` finding fails the check (exit 1); ``warning`` and ``notice`` inform; ``ok`` lines
record what passed, so a green run still shows its numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LEVELS = ("error", "warning", "notice", "ok")


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_prop(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


@dataclass(frozen=True)
class Finding:
    """One line of `edgefit check` output: an ``error`` fails the check; ``ok`` lines record what
    passed.

    >>> Finding("error", "latency", "45 ms > 10 ms").annotation()
    '::error title=latency::45 ms > 10 ms'
    >>> Finding("ok", "memory", "1 MB ≤ 4 GB").annotation()
    'ok: memory: 1 MB ≤ 4 GB'
    """

    level: str
    title: str
    message: str
    file: str | None = None

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {self.level!r}")

    def annotation(self, style: str = "github") -> str:
        """GitHub's workflow-command line (``style="github"``) or ``level: title: message``
        (``"plain"``)."""
        if style == "plain" or self.level == "ok":
            return f"{self.level}: {self.title}: {self.message}"
        props = f"title={_escape_prop(self.title)}" + (
            f",file={_escape_prop(self.file)}" if self.file else ""
        )
        return f"::{self.level} {props}::{_escape_data(self.message)}"

    def to_dict(self) -> dict:
        return {
            "level": self.level,
            "title": self.title,
            "message": self.message,
            "file": self.file,
        }


@dataclass
class CheckOutcome:
    model: str
    target: str
    power_mode: str | None
    estimate: dict
    measured: dict | None
    checks: list[dict]
    baseline: dict | None
    findings: list[Finding] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if any(f.level == "error" for f in self.findings) else 0

    def summary(self) -> str:
        n = {lvl: sum(f.level == lvl for f in self.findings) for lvl in LEVELS}
        state = "FAIL" if self.exit_code else "pass"
        return (
            f"edgefit check: {self.model} on {self.target}: {state} — {n['error']} error(s), "
            f"{n['warning']} "
            f"warning(s), {n['ok']} check(s) passed (exit {self.exit_code})"
        )

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "target": self.target,
            "power_mode": self.power_mode,
            "exit_code": self.exit_code,
            "findings": [f.to_dict() for f in self.findings],
            "checks": self.checks,
            "measured": self.measured,
            "estimate": self.estimate,
            "baseline": self.baseline,
        }
