"""Decisions about local framework checkouts (verl, OpenRLHF): pure, like plan.py.

- an editable *path* source, not a workspace member, so uv resolves only the extras
  the project asks for (verl's sglang extra pins another torch);
- the framework added as a dependency, with the extras asked for, when missing;
- a checkout with its own uv configuration is left to it, with how to use it;
- when the project's own pin contradicts a framework's hard pin, relief the user
  chooses: `override-dependencies` (default) or `dependency-metadata` with the one
  requirement changed, each entry with a comment saying why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from uvx_llm.actions import AddOverride, AddRequirement, Builder, SetDependencyMetadata, SetPathSource
from uvx_llm.bounds import show_range
from uvx_llm.checkouts import DECLARE_HINT, Checkout

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from uvx_llm.project import Project


@dataclass(frozen=True)
class Conflict:
    framework: str
    ours: Requirement
    theirs: Requirement

    def explain(self) -> str:
        return f"the project asks for {self.ours}, {self.framework} pins {self.theirs}"


def _requirement(line: str) -> Requirement | None:
    try:
        return Requirement(line)
    except InvalidRequirement:
        return None


def parse_lenient(lines: Iterable[str]) -> list[Requirement]:
    """The parseable ones: a checkout's files may hold lines that are not requirements."""
    return [r for r in map(_requirement, lines) if r is not None]


def checkout_requirements(
    checkouts: tuple[Checkout, ...], wanted: Mapping[str, tuple[str, ...]]
) -> list[tuple[Requirement, str]]:
    """What editable checkouts require, with the extras asked for (their own `name[extra]`
    references followed), each with where it comes from."""
    found: list[tuple[Requirement, str]] = []
    for checkout in checkouts:
        if checkout.own_uv_config or checkout.missing:
            continue
        name = canonicalize_name(checkout.name) if checkout.name else None
        label = (
            f"{checkout.name} {checkout.version}" if checkout.name and checkout.version else checkout.folder
        )
        pending = [(line, "its requirements") for line in checkout.requires]
        pending += [
            (line, f"its {e!r} extra")
            for e in wanted.get(checkout.folder, ())
            for line in checkout.extras.get(e, ())
        ]
        seen = set(wanted.get(checkout.folder, ()))
        while pending:
            line, where = pending.pop(0)
            for requirement in parse_lenient((line,)):
                if name is not None and canonicalize_name(requirement.name) == name:  # verl[verl-core]
                    for extra in sorted(requirement.extras - seen):
                        seen.add(extra)
                        pending += [(x, f"its {extra!r} extra") for x in checkout.extras.get(extra, ())]
                    continue
                found.append((requirement, f"{label}, {where}, read from {checkout.folder}/"))
    return found


def _pinned(requirement: Requirement) -> str | None:
    pins = [s.version for s in requirement.specifier if s.operator in {"==", "==="} and "*" not in s.version]
    return pins[0] if len(pins) == 1 else None


def _contradicts(ours: Requirement, theirs: Requirement) -> bool:
    """Whether no version satisfies both: decided where one side pins an exact version."""
    for pin_side, other in ((theirs, ours), (ours, theirs)):
        pin = _pinned(pin_side)
        if pin is not None and other.specifier and not other.specifier.contains(pin, prereleases=True):
            return True
    return False


def conflicts(project: Project, checkout: Checkout, extras: tuple[str, ...], name: str) -> list[Conflict]:
    theirs = parse_lenient(checkout.requires) + [
        r for e in extras for r in parse_lenient(checkout.extras.get(e, ()))
    ]
    ours = [r for dep_list in project.dependency_lists() for r in dep_list.requirements]
    return [
        Conflict(name, our, their)
        for their in theirs
        for our in ours
        if canonicalize_name(our.name) == canonicalize_name(their.name) and _contradicts(our, their)
    ]


def _existing_overrides(project: Project) -> set[str]:
    values = project.table("tool", "uv").get("override-dependencies", [])
    return {canonicalize_name(r.name) for r in parse_lenient(tuple(v for v in values if isinstance(v, str)))}


def _relieve(project: Project, checkout: Checkout, found: list[Conflict], relief: str, out: Builder) -> None:
    if not found:
        return
    if relief == "metadata" and checkout.version and checkout.name:
        replaced = {canonicalize_name(c.theirs.name): str(c.ours) for c in found}
        requires_dist = [
            replaced.get(canonicalize_name(r.name), str(r)) for r in parse_lenient(checkout.requires)
        ]
        for extra, lines in checkout.extras.items():
            requires_dist += [
                f"{replaced.get(canonicalize_name(r.name), str(r))} ; extra == '{extra}'"
                for r in parse_lenient(lines)
            ]
        reasons = "; ".join(c.explain() for c in found)
        out.actions.append(
            SetDependencyMetadata(
                checkout.name, checkout.version, tuple(requires_dist), f"llm-sync: {reasons}"
            )
        )
        out.decide(
            "conflict relief",
            f"dependency-metadata for {checkout.name}",
            reasons + ": its metadata is declared with the project's pin instead",
        )
        return
    if relief == "metadata":
        out.warnings.append(
            f"{checkout.folder}: its version is not readable without running it, so dependency-metadata cannot be written; using override-dependencies"
        )
    already = _existing_overrides(project)
    for conflict in found:
        if canonicalize_name(conflict.ours.name) in already:
            continue
        requirement = str(Requirement(str(conflict.ours).split(";", 1)[0]))
        comment = f"llm-sync: {conflict.framework} pins {conflict.theirs}; the project asks for {conflict.ours.specifier}"
        out.actions.append(AddOverride(requirement, comment))
        already.add(canonicalize_name(conflict.ours.name))
        out.decide(
            "conflict relief",
            f"override {requirement}",
            conflict.explain() + "; overrides replace every other requirement on it",
        )


def _own_uv_config(checkout: Checkout, extras: tuple[str, ...], out: Builder) -> None:
    """A checkout that carries its own uv integration (verl >= 0.9: extras per backend,
    conflicts, a wheel index, git sources, overrides): uv reads none of its [tool.uv] when it
    is a dependency, so adding it as a path source would lose all of that. Said as a warning,
    not in silence, with the way to use it."""
    routed = f" (routes {', '.join(checkout.own_sources)})" if checkout.own_sources else ""
    extra = f" --extra {extras[0]}" if extras else " --extra vllm"
    label = f"{checkout.name} {checkout.version}" if checkout.name and checkout.version else checkout.folder
    out.warnings.append(
        f"{checkout.folder}/ ({label}) not added: its pyproject.toml has its own [tool.uv] "
        f"(extras per backend, conflicts, indexes, sources{routed}), which uv ignores when it is a "
        f"dependency, so the project would lock without them. Use it where it is: "
        f"`cd {checkout.folder} && uv sync{extra}`; or remove it from [tool.llm-sync] checkouts"
    )
    out.decide(
        "checkout",
        f"{checkout.folder}: left to its own uv configuration",
        f"{checkout.folder}/pyproject.toml has its own [tool.uv], which uv ignores for a dependency",
    )


def plan(
    *,
    project: Project,
    found: list[Checkout],
    extras_wanted: dict[str, tuple[str, ...]],
    relief: str,
    force: bool,
    out: Builder,
) -> list[str]:
    """Editable path sources for the checkouts, their requirements added, conflict relief: all
    written into ``out``; returns the requirements added to [project] dependencies."""
    added: list[str] = []
    sources = {canonicalize_name(k): v for k, v in project.uv_sources.items()}
    declared = project.declared()
    for checkout in found:
        if checkout.missing:
            out.warnings.append(
                f"[tool.llm-sync] checkouts lists {checkout.folder}/, but there is no such folder next to "
                "pyproject.toml: clone it there or correct the path; nothing added for it"
            )
            continue
        if checkout.own_uv_config:
            _own_uv_config(checkout, extras_wanted.get(checkout.folder, ()), out)
            continue
        hint = DECLARE_HINT.format(folder=checkout.folder)
        if not checkout.name:
            out.warnings.append(
                f"{checkout.folder}/ not added: llm-sync could not read {' or '.join(checkout.unread)} "
                f"without running its code; {hint}"
            )
            continue
        if checkout.unread:
            out.warnings.append(
                f"{checkout.folder}/: could not read {' or '.join(checkout.unread)} without running its code, "
                "so the plan does not see what it requires (uv still reads it when it locks); "
                "list its torch/vllm needs in the project's dependencies if they matter"
            )
        name = canonicalize_name(checkout.name)
        wanted = {"path": checkout.folder, "editable": True}
        current = sources.get(name)
        if current is None or force:
            if current != wanted:
                out.actions.append(SetPathSource(name, checkout.folder))
            out.decide(
                "checkout",
                f'{name} = {{ path = "{checkout.folder}", editable = true }}',
                f"an editable path source (read from {checkout.read_from}), not a workspace member: uv resolves only the extras asked for",
            )
        elif current != wanted:
            out.warnings.append(
                f"kept the hand-written source for {name} ({current}); --force points it at {checkout.folder}/"
            )
        extras = extras_wanted.get(checkout.folder, ())
        if name not in declared:
            requirement = f"{name}[{','.join(extras)}]" if extras else name
            out.actions.append(AddRequirement("dependencies", None, requirement))
            added.append(requirement)
            out.decide(
                "checkout",
                f"add {requirement} to [project] dependencies",
                f"{checkout.folder}/ is there but the project does not depend on it",
            )
        _relieve(project, checkout, conflicts(project, checkout, extras, name), relief, out)
    return added


# --- frameworks installed from an index ------------------------------------------------------

# uv's "No solution found" explanation, e.g. "Because all versions of openrlhf depend on
# transformers==4.55.2" or "openrlhf==0.11.2 depends on transformers==4.55.2" (uv 0.13).
_DEPENDS_ON = re.compile(
    r"(?:all versions of |only )?(?P<framework>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?"
    r"(?:==(?P<version>[^\s,]+))? depends? on (?P<pin>[A-Za-z0-9][A-Za-z0-9._-]*(?:\[[^\]]*\])?==[^\s,]+)"
)


def index_conflicts(project: Project, uv_output: Iterable[str]) -> list[Conflict]:
    """The project's own pins that a framework from an index contradicts, as uv's explanation
    states them: the framework's metadata is read by uv while it locks, never fetched at plan
    time. Only frameworks the project declares directly, only pins the project contradicts."""
    text = " ".join(line.strip() for line in uv_output)  # uv wraps long explanations
    declared = project.declared()
    ours = [r for dep_list in project.dependency_lists() for r in dep_list.requirements]
    found: list[Conflict] = []
    for match in _DEPENDS_ON.finditer(text):
        framework = canonicalize_name(match["framework"])
        theirs = _requirement(match["pin"])
        if framework not in declared or theirs is None:
            continue
        label = f"{framework} {match['version']}" if match["version"] else framework
        for our in ours:
            same = canonicalize_name(our.name) == canonicalize_name(theirs.name)
            if same and _contradicts(our, theirs) and all(c.ours != our for c in found):
                found.append(Conflict(label, our, theirs))
    return found


def index_relief(project: Project, found: list[Conflict]) -> Builder:
    """Relief for frameworks from an index: `override-dependencies` for the project's pin (their
    metadata is not readable at plan time, so dependency-metadata is not an option here)."""
    out = Builder()
    _relieve(project, _FROM_INDEX, found, "override", out)
    return out


_FROM_INDEX = Checkout("", None, (), read_from="the index")


# --- CUDA-only packages a framework brings ---------------------------------------------------


def platform_overrides(
    project: Project, theirs: list[tuple[Requirement, str]], markers: Mapping[str, str], out: Builder
) -> None:
    """A CUDA-only package (``markers``: name -> "sys_platform == 'linux'") that an editable
    checkout requires reaches the macOS/Windows side of the universal lock as a source-only
    package, and a teammate's `uv sync` there would try to compile it. A requirement's own
    marker cannot be added from outside, but an override replaces every requirement on the
    package: it is written with the marker and the versions every known requirement allows
    (the checkout's and the project's), so Linux keeps them and other platforms skip it.
    Written into ``out`` with the decision."""
    existing = _existing_overrides(project)
    ours = [r for dep_list in project.dependency_lists() for r in dep_list.requirements]
    for name, marker in markers.items():
        wanted = [(r, origin) for r, origin in theirs if canonicalize_name(r.name) == name]
        if not wanted or name in existing:
            continue
        specifier = SpecifierSet()
        for requirement in [r for r, _ in wanted] + [r for r in ours if canonicalize_name(r.name) == name]:
            specifier &= requirement.specifier
        entry = f"{name}{show_range(specifier)} ; {marker}"
        origins = "; ".join(f"{r} ({origin})" for r, origin in wanted)
        comment = f"llm-sync: CUDA-only, required by a checkout ({origins}): other platforms skip it instead of compiling it"
        reason = (
            f"{origins}: without the marker a macOS/Windows `uv sync` of the one universal uv.lock compiles it; "
            "an override keeps these versions on Linux and replaces every other requirement on it"
        )
        out.actions.append(AddOverride(entry, comment))
        out.decide("platform marker", entry, reason)
