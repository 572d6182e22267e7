"""Bounds the plan writes so that uv cannot leave it, and what the lock must then show. Pure.

The planner reasons from the catalog ("torch 2.9-2.14 have cu130 builds the
project allows"); left free, uv may still pick a stack the plan never meant:
vllm 0.1.2, a 2023 release that pins no torch, satisfies every constraint of an
unpinned project. So each decision that limits versions becomes a bound in
``[tool.uv] constraint-dependencies``, marked as llm-sync's with its reason, on
every platform (the macOS side locks the same torch release as the servers):

- torch: the releases of the chosen variant that the project's pins allow and
  that cover the team's recorded GPU architectures;
- vllm: releases whose torch pin is inside that range, so old pin-less
  releases are out of reach.

The same bounds, plus "nothing older than the catalog knows" and "checkouts are
editable", are the :class:`~uvx_llm.lockfile.Expectation` the lock is checked
against before anything is installed.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

from uvx_llm.actions import Builder, SetBound
from uvx_llm.catalog import Catalog, Pair, TorchRelease, runs_on
from uvx_llm.lockfile import Bound, Expectation

if TYPE_CHECKING:
    from uvx_llm.project import Project

MARK = "llm-sync: bound"
MINORS = range(8, 17)  # the CPython 3.x minors a range is probed with; 3.16 stands for "and later"
# Packages whose old releases pin no torch: a bound keeps uv from falling back to them.
FRAMEWORKS_BRINGING_VLLM = ("vllm", "verl", "openrlhf")


def show_range(specifier: SpecifierSet) -> str:
    """ ">=2.9,<2.15": lower bound first, as people write ranges."""
    items = sorted(specifier, key=lambda s: (not s.operator.startswith(">"), s.version))
    return ",".join(str(s) for s in items)


def show(bound: Bound) -> str:
    return bound.package + show_range(bound.specifier)


def _series_after(release: str) -> str:
    major, minor = (int(p) for p in release.split(".")[:2])
    return f"{major}.{minor + 1}"


def _covers(archs: tuple[Pair, ...] | None, team: tuple[Pair, ...]) -> bool:
    return archs is not None and all(any(runs_on(b, gpu) for b in archs) for gpu in team)


def torch_releases(
    backend: str, releases: tuple[TorchRelease, ...], team: tuple[Pair, ...]
) -> tuple[TorchRelease, ...]:
    """The releases of ``backend`` among ``releases`` whose builds run on every team GPU."""
    if backend == "cpu":
        return releases
    return tuple(r for r in releases if _covers(r.archs(backend), team))


def torch_bound(backend: str, releases: tuple[TorchRelease, ...]) -> Bound | None:
    if not releases:
        return None
    first, last = releases[0].release, releases[-1].release
    span = first if first == last else f"{first}–{last}"
    return Bound(
        "torch",
        SpecifierSet(f">={first},<{_series_after(last)}"),
        f"the {backend} builds of torch {span} that the project's pins allow",
    )


def vllm_bound(torch: Bound, catalog: Catalog) -> Bound | None:
    """The vllm releases whose exact torch pin lies inside ``torch``."""
    fitting = [pin for pin in catalog.vllm if torch.specifier.contains(pin.torch)]
    lowest = [_lower(pin.vllm) for pin in fitting]
    known = [v for v in lowest if v is not None]
    if not known:
        return None
    return Bound(
        "vllm",
        SpecifierSet(f">={min(known)}"),
        f"releases that pin a torch inside {show(torch)}; older ones pin none",
    )


def _lower(specifier: SpecifierSet) -> Version | None:
    found = [Version(s.version) for s in specifier if s.operator in {">=", "=="}]
    return min(found) if found else None


def oldest_known(catalog: Catalog) -> dict[str, Version]:
    lowest = [v for v in (_lower(pin.vllm) for pin in catalog.vllm) if v is not None]
    return {"vllm": min(lowest)} if lowest else {}


def plan_bounds(
    *,
    project: Project,
    backend: str | None,
    releases: tuple[TorchRelease, ...],
    team: tuple[Pair, ...],
    catalog: Catalog,
) -> tuple[Bound, ...]:
    """The bounds for ``backend`` (None: torch not routed, no bounds)."""
    if backend is None:
        return ()
    torch = torch_bound(backend, torch_releases(backend, releases, team))
    if torch is None:
        return ()
    bounds = [torch]
    declared = project.declared()
    if any(name in declared for name in FRAMEWORKS_BRINGING_VLLM):
        vllm = vllm_bound(torch, catalog)
        if vllm is not None:
            bounds.append(vllm)
    return tuple(bounds)


def owned(project: Project, mark: str = MARK) -> dict[str, str]:
    """llm-sync's own entries of a [tool.uv] requirement list, by package: those whose comment
    carries ``mark`` (its bounds by default)."""
    entries = re.compile(r'^\s*"(?P<requirement>[^"]+)",?\s*#\s*' + re.escape(mark), re.MULTILINE)
    found = {(_name(m["requirement"]), m["requirement"]) for m in entries.finditer(project.text)}
    return {name: text for name, text in found if name is not None}


def _name(text: str) -> str | None:
    try:
        return canonicalize_name(Requirement(text).name)
    except InvalidRequirement:
        return None


def write(project: Project, bounds: tuple[Bound, ...], out: Builder) -> None:
    """What the file lacks, into ``out``: a bound written anew, or llm-sync's own bound replaced.

    A constraint the user wrote for the same package is theirs: it is kept, and
    the lock is still checked against the plan's bound.
    """
    ours = owned(project)
    existing = project.table("tool", "uv").get("constraint-dependencies", [])
    entries = existing if isinstance(existing, list) else []
    theirs = {_name(str(e)) for e in entries if str(e) not in ours.values()}
    for bound in bounds:
        requirement = show(bound)
        current = ours.get(bound.package)
        if current == requirement or (bound.package in theirs and current is None):
            continue
        out.actions.append(SetBound(requirement, f"{MARK}: {bound.reason}", current))
        out.decide("bound", requirement, bound.reason)


def expectation(
    *, backend: str | None, bounds: tuple[Bound, ...], catalog: Catalog, editable: tuple[str, ...]
) -> Expectation:
    variant = backend if backend not in {None, "cpu"} else None
    return Expectation(variant=variant, bounds=bounds, oldest=oldest_known(catalog), editable=editable)


def _minors(specifier: SpecifierSet) -> set[int]:
    return {m for m in MINORS if specifier.contains(f"3.{m}.0", prereleases=True)}


def python_warning(project: Project, releases: tuple[TorchRelease, ...]) -> str | None:
    """A warning when the project's own [tool.uv] environments make uv demand torch wheels for
    Pythons the bounded torch releases have none for.

    Without `environments`, uv ignores upper Requires-Python bounds and locks (checked with
    uv 0.13.8 on real metadata: an open `>=3.12` with torch 2.7-2.11 and vllm locks); a
    teammate on a newer Python gets uv's plain message at install. With `environments`, uv
    wants a wheel for every Python they cover, and fails for all when there is none (a
    `torch==2.8.0` template with `sys_platform == 'linux'` fails for Python 3.14)."""
    existing = project.table("tool", "uv").get("environments")
    supported = set().union(*(_minors(r.python) for r in releases)) if releases else set()
    if not existing or not supported:
        return None
    try:
        allowed = _minors(SpecifierSet(str(project.table("project").get("requires-python", ""))))
    except InvalidSpecifier:
        return None
    if allowed <= supported:
        return None
    parts = []
    if any(m < min(supported) for m in allowed):
        parts.append(f"python_full_version >= '3.{min(supported)}'")
    if any(m > max(supported) for m in allowed):
        parts.append(f"python_full_version < '3.{max(supported) + 1}'")
    span = f"3.{min(supported)}–3.{max(supported)}"
    first, last = releases[0].release, releases[-1].release
    return (
        f"torch {first if first == last else f'{first}–{last}'} has wheels for Python {span} only, and the "
        "project's [tool.uv] environments make uv demand one for every Python requires-python allows: "
        f"add `{' and '.join(parts)}` to each environments entry, or cap requires-python"
    )
