"""A doctor finding: what was checked, how bad it is, and the fix. Shared by doctor's check modules."""

from __future__ import annotations

from dataclasses import dataclass

OK, WARNING, ERROR = "ok", "warning", "error"
SEVERITY_ORDER = {ERROR: 0, WARNING: 1, OK: 2}


@dataclass(frozen=True)
class Finding:
    area: str  # "machine", "toolchain", "environment", "project"
    severity: str
    title: str
    detail: str = ""
    fix: str = ""


def ordered(findings: list[Finding]) -> list[Finding]:
    """Problems first; within a severity, the areas in their natural order."""
    areas = {"machine": 0, "toolchain": 1, "environment": 2, "project": 3}
    return sorted(findings, key=lambda f: (SEVERITY_ORDER[f.severity], areas.get(f.area, 9)))
