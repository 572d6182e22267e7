"""Read a uv.lock and llm-sync's plan; say where the lock disagrees with the plan.

The checks are those of issue 11 ("Lock, verify, then install"):
- torch on Linux comes from the planned variant, within the planned torch range;
  the macOS side locks a torch release within that range too;
- no tracked package (torch, vllm, verl, openrlhf) is older than the oldest release
  the catalog knows, in any fork of the lock;
- checkouts are in the lock as editable path sources.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import tomllib
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

if TYPE_CHECKING:
    from pathlib import Path

TRACKED = ("torch", "torchvision", "vllm", "flash-attn", "transformers", "tensordict", "verl", "openrlhf")
FRAMEWORKS = ("verl", "openrlhf")


def catalog_floors(catalog: dict[str, Any]) -> dict[str, Version]:
    """The oldest release the catalog knows of each package it tracks by version."""
    floors: dict[str, Version] = {}
    torch = [Version(v) for row in catalog.get("torch", []) for v in row.get("versions", [])]
    if torch:
        floors["torch"] = min(torch)

    def lower_bounds(specifiers: list[str]) -> list[Version]:
        found = []
        for text in specifiers:
            try:
                found += [Version(s.version) for s in SpecifierSet(text) if s.operator in {">=", "=="}]
            except (InvalidSpecifier, InvalidVersion):
                continue
        return found

    vllm = lower_bounds([row["vllm"] for row in catalog.get("vllm", [])])
    if vllm:
        floors["vllm"] = min(vllm)
    for framework in FRAMEWORKS:
        rows = [row["versions"] for row in catalog.get("stacks", []) if row.get("framework") == framework]
        bounds = lower_bounds(rows)
        if bounds:
            floors[framework] = min(bounds)
    return floors


@dataclass
class PlannedTorch:
    backend: str
    specifier: SpecifierSet | None
    text: str  # as the plan says it


_RANGE = re.compile(r"\btorch (\d+\.\d+)(?:\s*[–-]\s*(\d+\.\d+))?")


def planned_torch(plan: dict[str, Any]) -> PlannedTorch:
    """The backend and torch range the plan promises.

    A plan that states its bounds (`bounds.torch`, a PEP 440 specifier) is taken at its
    word; otherwise the range is read from the backend decision's reason
    ("torch 2.9-2.14", with an en dash: every 2.9.x to 2.14.x release).
    """
    backend = str(plan.get("backend") or "")
    bounds = plan.get("bounds")
    if isinstance(bounds, dict) and isinstance(bounds.get("torch"), str):
        try:
            return PlannedTorch(backend, SpecifierSet(bounds["torch"]), bounds["torch"])
        except InvalidSpecifier:
            pass
    for decision in plan.get("decisions", []):
        if decision.get("topic") == "backend":
            match = _RANGE.search(str(decision.get("reason", "")))
            if match:
                low = Version(match.group(1))
                high = Version(match.group(2) or match.group(1))
                spec = SpecifierSet(f">={low.major}.{low.minor}.0,<{high.major}.{high.minor + 1}.0")
                return PlannedTorch(backend, spec, match.group(0))
    return PlannedTorch(backend, None, "")


@dataclass
class Locked:
    name: str
    version: str
    source: dict[str, Any]

    @property
    def index(self) -> str:
        return str(self.source.get("registry", ""))

    @property
    def editable(self) -> str | None:
        value = self.source.get("editable")
        return str(value) if value is not None else None


def read_lock(path: Path) -> list[Locked]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return [
        Locked(canonicalize_name(p["name"]), str(p.get("version", "")), dict(p.get("source", {})))
        for p in data.get("package", [])
    ]


_TREE_ENTRY = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])? v(\S+)")


def tree_versions(tree: str) -> dict[str, str]:
    """Package -> version from `uv tree` output (one platform and Python: one version each)."""
    versions: dict[str, str] = {}
    for line in tree.splitlines():
        match = _TREE_ENTRY.search(line)
        if match:
            versions.setdefault(canonicalize_name(match.group(1)), match.group(2))
    return versions


def release(version: str) -> str:
    v = Version(version)
    return f"{v.major}.{v.minor}"


@dataclass
class Verdict:
    disagreements: list[str] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        return not self.disagreements


def compare(
    planned: PlannedTorch,
    lock: list[Locked],
    *,
    linux: dict[str, str],
    macos: dict[str, str],
    floors: dict[str, Version],
    checkouts: list[str],
) -> Verdict:
    found = [
        *_platform_torch(planned, linux, macos),
        *_lock_entries(planned, lock, floors),
        *(
            f"checkout {folder}/ is not in the lock as an editable source"
            for folder in checkouts
            if not any(e.editable is not None and e.editable.rstrip("/") == folder for e in lock)
        ),
    ]
    # One message per problem: a lock may hold the same old release in several forks.
    return Verdict(list(dict.fromkeys(found)))


def _platform_torch(planned: PlannedTorch, linux: dict[str, str], macos: dict[str, str]) -> list[str]:
    found = []
    torch = linux.get("torch")
    if torch is None:
        if planned.backend:  # a project without torch (and so without a backend) has nothing to check
            found.append("no torch on Linux (Python 3.12)")
    else:
        local = Version(torch).local or ""
        if planned.backend and local != planned.backend:
            found.append(f"Linux torch {torch} is not from the planned {planned.backend} index")
        if planned.specifier is not None and Version(torch).public not in planned.specifier:
            found.append(f"Linux torch {torch} is outside the planned {planned.text}")
    mac_torch = macos.get("torch")
    if mac_torch and planned.specifier is not None and Version(mac_torch).public not in planned.specifier:
        found.append(f"macOS torch {mac_torch} is outside the planned {planned.text}")
    return found


def _lock_entries(planned: PlannedTorch, lock: list[Locked], floors: dict[str, Version]) -> list[str]:
    found = []
    for entry in lock:
        if entry.name == "torch" and entry.index:
            if "/whl/" not in entry.index:
                found.append(f"torch {entry.version} comes from {entry.index}, not a PyTorch index")
            variant = entry.index.rstrip("/").rsplit("/", 1)[-1]
            if planned.backend and "/whl/" in entry.index and variant not in {planned.backend, "cpu"}:
                found.append(
                    f"torch {entry.version} comes from the {variant} index, not the planned {planned.backend}"
                )
        floor = floors.get(entry.name)
        if floor is not None and entry.version and entry.editable is None and Version(entry.version) < floor:
            found.append(f"{entry.name} {entry.version} is older than the catalog's oldest ({floor})")
    return found
