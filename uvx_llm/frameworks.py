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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from uvx_llm.actions import AddOverride, SetDependencyMetadata, SetPathSource

if TYPE_CHECKING:
    from collections.abc import Iterable

    from uvx_llm.checkouts import Checkout
    from uvx_llm.project import Project

_ENTRY = re.compile(r"^(?P<folder>[^\[\]]+?)(?:\[(?P<extras>[^\]]*)\])?$")


@dataclass(frozen=True)
class Conflict:
    framework: str
    ours: Requirement
    theirs: Requirement

    def explain(self) -> str:
        return f"the project asks for {self.ours}, {self.framework} pins {self.theirs}"


@dataclass
class Outcome:
    actions: list[SetPathSource | AddOverride | SetDependencyMetadata | str] = field(
        default_factory=list
    )  # str: a requirement to add
    decisions: list[tuple[str, str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)  # requirements added to [project] dependencies


def parse_entry(entry: str) -> tuple[str, tuple[str, ...]]:
    """ "verl[vllm,gpu]" -> ("verl", ("vllm", "gpu"))."""
    match = _ENTRY.match(entry.strip())
    if not match:
        return entry.strip(), ()
    extras = tuple(e.strip() for e in (match.group("extras") or "").split(",") if e.strip())
    return match.group("folder").strip().rstrip("/"), extras


def _requirement(line: str) -> Requirement | None:
    try:
        return Requirement(line)
    except InvalidRequirement:
        return None


def parse_lenient(lines: Iterable[str]) -> list[Requirement]:
    """The parseable ones: a checkout's files may hold lines that are not requirements."""
    return [r for r in map(_requirement, lines) if r is not None]


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


def _relieve(project: Project, checkout: Checkout, found: list[Conflict], relief: str, out: Outcome) -> None:
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
        out.decisions.append(
            (
                "conflict relief",
                f"dependency-metadata for {checkout.name}",
                reasons + ": its metadata is declared with the project's pin instead",
            )
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
        out.decisions.append(
            (
                "conflict relief",
                f"override {requirement}",
                conflict.explain() + "; overrides replace every other requirement on it",
            )
        )


def plan(
    *,
    project: Project,
    found: list[Checkout],
    extras_wanted: dict[str, tuple[str, ...]],
    relief: str,
    force: bool,
) -> Outcome:
    out = Outcome()
    sources = {canonicalize_name(k): v for k, v in project.uv_sources.items()}
    declared = project.declared()
    for checkout in found:
        if checkout.own_uv_config:
            out.decisions.append(
                (
                    "checkout",
                    f"{checkout.folder}: left to its own uv configuration",
                    (
                        f"{checkout.folder}/pyproject.toml has its own [tool.uv] (extras per backend, conflicts, "
                        f"indexes), which uv ignores for a dependency: use it where it is, e.g. "
                        f"`cd {checkout.folder} && uv sync --extra vllm`"
                    ),
                )
            )
            continue
        if not checkout.name:
            out.warnings.append(
                f"{checkout.folder}: no package name found (read from {checkout.read_from}); not added"
            )
            continue
        name = canonicalize_name(checkout.name)
        wanted = {"path": checkout.folder, "editable": True}
        current = sources.get(name)
        if current is None or force:
            if current != wanted:
                out.actions.append(SetPathSource(name, checkout.folder))
            out.decisions.append(
                (
                    "checkout",
                    f'{name} = {{ path = "{checkout.folder}", editable = true }}',
                    f"an editable path source (read from {checkout.read_from}), not a workspace member: uv resolves only the extras asked for",
                )
            )
        elif current != wanted:
            out.warnings.append(
                f"kept the hand-written source for {name} ({current}); --force points it at {checkout.folder}/"
            )
        extras = extras_wanted.get(checkout.folder, ())
        if name not in declared:
            requirement = f"{name}[{','.join(extras)}]" if extras else name
            out.actions.append(requirement)
            out.added.append(requirement)
            out.decisions.append(
                (
                    "checkout",
                    f"add {requirement} to [project] dependencies",
                    f"{checkout.folder}/ is there but the project does not depend on it",
                )
            )
        _relieve(project, checkout, conflicts(project, checkout, extras, name), relief, out)
    return out
