"""Version guards: what the torch build the backend leads to implies beyond package
metadata, and combinations known to break. Pure, like plan.py.

uv's resolver already carries what metadata says: once torch can only come from the
cu124 index (torch <= 2.6), vllm backtracks to a release pinning such a torch. What
metadata does not say (flash-attn 2.8.x's prebuilt torch 2.6 wheels need the C++11-ABI
build of torch 2.6) comes from the catalog and is written to [tool.uv]
constraint-dependencies, each entry with its reason. What a framework checkout wants
(verl's vllm extra, OpenRLHF's pins) is read from the checkout itself, not kept here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from uvx_llm.actions import AddConstraint, Builder
from uvx_llm.catalog import Catalog, Pair, TorchRelease, show_pair
from uvx_llm.frameworks import parse_lenient

if TYPE_CHECKING:
    from collections.abc import Iterable

    from packaging.specifiers import SpecifierSet

    from uvx_llm.checkouts import Checkout
    from uvx_llm.project import Project


def torch_ceiling(backend: str | None, releases: tuple[TorchRelease, ...]) -> Pair | None:
    """The newest torch release the backend's index has (among those the project allows)."""
    if backend is None or backend == "cpu":
        return None
    with_backend = [r.series() for r in releases if r.archs(backend) is not None]
    return max(with_backend) if with_backend else None


def _names_in(values: list[object]) -> set[str]:
    return {canonicalize_name(r.name) for r in parse_lenient(v for v in values if isinstance(v, str))}


def _abi(release: TorchRelease, backend: str) -> str:
    return "old" if backend in release.old_abi else "cxx11"


def constraints(
    *,
    project: Project,
    backend: str | None,
    releases: tuple[TorchRelease, ...],
    catalog: Catalog,
    out: Builder,
) -> None:
    """A constraint, with its decision, for each guard the torch build in play triggers: the
    newest release the backend's index has (what uv picks), built with the guard's ABI."""
    ceiling = torch_ceiling(backend, releases)
    if ceiling is None or backend is None:
        return
    newest = next(r for r in releases if r.series() == ceiling)
    existing = _names_in(project.table("tool", "uv").get("constraint-dependencies", []))
    requirements = [r for dep_list in project.dependency_lists() for r in dep_list.requirements]
    for guard in catalog.guards:
        constraint = Requirement(guard.constraint)
        name = canonicalize_name(constraint.name)
        ours = [r for r in requirements if canonicalize_name(r.name) == name]
        needed = ours and not all(
            _only_within(r, constraint.specifier) for r in ours
        )  # not already pinned within
        if ceiling == guard.torch and _abi(newest, backend) == guard.abi and needed and name not in existing:
            out.actions.append(AddConstraint(guard.constraint, f"llm-sync: {guard.reason}"))
            out.decide(
                "version guard",
                guard.constraint,
                f"torch {show_pair(ceiling)} here is the {backend} build ({guard.abi} C++ ABI): {guard.reason}",
            )


def _version(text: str) -> Version | None:
    try:
        return Version(text.rstrip(".*"))
    except InvalidVersion:
        return None


def _probes(*specifiers: SpecifierSet) -> list[Version]:
    """The versions the specifiers name: where their allowed regions begin and end."""
    found = (_version(item.version) for specifier in specifiers for item in specifier)
    return [v for v in found if v is not None]


def _only_within(requirement: Requirement, region: SpecifierSet) -> bool:
    """Whether the requirement allows some version, and none outside ``region``
    (decided on the versions the two name: a pin or an upper bound below it)."""
    named = _probes(requirement.specifier, region)
    # Just past each named version too: an open-ended requirement allows those; and the
    # oldest version, which an upper bound alone ("<0.6") allows.
    beyond = [
        Version("0"),
        *(Version(f"{v.major}.{v.minor}.{v.micro + 1}") for v in named),
        *(Version(f"{v.major}.{v.minor + 1}") for v in named),
    ]
    allowed = [v for v in (*named, *beyond) if requirement.specifier.contains(v, prereleases=True)]
    return bool(allowed) and all(region.contains(v, prereleases=True) for v in allowed)


def _disjoint(ours: SpecifierSet, theirs: SpecifierSet) -> bool:
    probes = _probes(ours, theirs)
    return bool(probes) and not any(
        ours.contains(v, prereleases=True) and theirs.contains(v, prereleases=True) for v in probes
    )


def known_bad(
    *, requirements: list[Requirement], releases: tuple[TorchRelease, ...], catalog: Catalog
) -> list[str]:
    """Warnings for combinations that break at run time, with the fix."""
    torch_versions = [v for r in releases for v in r.versions]
    return [
        f"{requirement} with torch {bad.with_torch}: {bad.problem}. Fix: {bad.fix}"
        for bad in catalog.known_bad
        if any(bad.with_torch.contains(v) for v in torch_versions)
        for requirement in requirements
        if canonicalize_name(requirement.name) == bad.package and _only_within(requirement, bad.versions)
    ]


def _contradicted(ours: Requirement, checkout: Checkout) -> list[tuple[Requirement, str]]:
    """The checkout's requirements on ``ours``'s package that no version allowed by ``ours`` meets:
    each base requirement must hold; of the extras', one is enough (extras can be alternatives,
    such as OpenRLHF's `vllm` and `vllm-latest`)."""
    name = canonicalize_name(ours.name)

    def on_ours(lines: Iterable[str]) -> list[Requirement]:
        return [r for r in parse_lenient(lines) if canonicalize_name(r.name) == name]

    base = [
        (r, "its requirements") for r in on_ours(checkout.requires) if _disjoint(ours.specifier, r.specifier)
    ]
    extras = [(r, f"its {extra!r} extra") for extra, lines in checkout.extras.items() for r in on_ours(lines)]
    if extras and all(_disjoint(ours.specifier, r.specifier) for r, _ in extras):
        base += extras
    unique: dict[str, tuple[Requirement, str]] = {}
    for requirement, where in base:
        unique.setdefault(str(requirement.specifier), (requirement, where))
    return list(unique.values())


def stack_warnings(*, requirements: list[Requirement], found: list[Checkout]) -> list[str]:
    """The project's pins that contradict what a checkout's own metadata asks for, the extras
    not asked for included: they say which stack the release was made for. (uv decides on
    the base requirements and the extras asked for, and frameworks.py relieves exact-pin
    conflicts; this is the warning before uv fails or a stack the release never ran with.)"""
    warnings = []
    for checkout in found:
        if checkout.own_uv_config:
            continue
        name = canonicalize_name(checkout.name) if checkout.name else checkout.folder
        label = f"{name} {checkout.version}" if checkout.version else name
        warnings += [
            f"{label} is known to work with {theirs.name}{theirs.specifier}; the project asks for {ours} "
            f"({where}, read from {checkout.read_from})"
            for ours in requirements
            for theirs, where in _contradicted(ours, checkout)
        ]
    return warnings
