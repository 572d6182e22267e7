"""Which PyTorch variant fits: the torch releases a project allows, and how well each CUDA
variant runs on a machine (driver, GPU architectures). Pure, no I/O.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from uvx_llm.bounds import FRAMEWORKS_BRINGING_VLLM
from uvx_llm.catalog import Catalog, Pair, TorchRelease, VllmPin, newest_vllm, runs_on, show_pair, show_sm
from uvx_llm.errors import LlmSyncError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from packaging.requirements import Requirement

    from uvx_llm.machine import Machine
    from uvx_llm.project import Project

CPU = "cpu"
VLLM_CUDA = "vllm's PyPI wheels"


@dataclass(frozen=True)
class TorchScope:
    releases: tuple[TorchRelease, ...]
    description: str
    vllm: bool = False  # vllm is in play: its PyPI wheels are built for one CUDA major
    # Pins read from the index's METADATA (releases newer than the catalog): (choice, where from).
    learned: tuple[tuple[str, str], ...] = ()


def _span(releases: tuple[TorchRelease, ...]) -> str:
    if not releases:
        return "no torch release"
    first, last = releases[0].release, releases[-1].release
    return f"torch {first}" if first == last else f"torch {first}–{last}"


def _vllm_torch_pins(requirement: Requirement, catalog: Catalog) -> list[VllmPin]:
    """The catalog's rows (and releases read from the index) for the vllm releases ``requirement`` allows."""
    spec = requirement.specifier
    named = [spec_item.version for spec_item in spec]
    pins = []
    for row in catalog.vllm:
        points = [item.version for item in row.vllm] + named
        if any(row.vllm.contains(p, prereleases=True) and spec.contains(p, prereleases=True) for p in points):
            pins.append(row)
    return pins


def newer_than_catalog(specifier: SpecifierSet, newest: Version) -> bool:
    """Whether ``specifier`` only allows releases after ``newest`` (a lower bound or pin above it)."""
    for item in specifier:
        try:
            bound = Version(item.version.removesuffix(".*"))
        except InvalidVersion:
            continue
        if (item.operator in {"==", "===", ">=", "~="} and bound > newest) or (
            item.operator == ">" and bound >= newest
        ):
            return True
    return False


def _assumed(
    requirement: Requirement, source: str, catalog: Catalog, unread: Mapping[str, str]
) -> tuple[Version, str] | None:
    """For a vllm newer than the catalog whose METADATA was not read: (the torch floor assumed,
    the plain warning). vllm has never lowered its torch pin from one release to the next, so a
    newer vllm pins at least the torch of the newest one the catalog knows."""
    newest = newest_vllm(catalog.vllm)
    if newest is None or not newer_than_catalog(requirement.specifier, newest):
        return None
    floor = max(pin.torch for pin in catalog.vllm if not pin.source and pin.vllm.contains(newest))
    why = unread.get(str(requirement), "not read from the index")
    return floor, (
        f"{source}: that vllm is newer than the catalog (which ends at vllm {newest}); its torch pin could "
        f"not be read ({why}): assumed it pins torch ≥ {floor}, as vllm {newest} does (vllm has never "
        "lowered its torch pin). Plan again with the index reachable, or upgrade llm-sync"
    )


def torch_scope(
    project: Project,
    catalog: Catalog,
    theirs: list[tuple[Requirement, str]] | None = None,
    unread: Mapping[str, str] | None = None,
) -> tuple[TorchScope, list[str]]:
    """Torch releases allowed by the project's torch requirements and its declared vllm, and by
    what editable checkouts require with the extras asked for (``theirs``: requirement, origin).
    ``unread``: vllm requirements newer than the catalog whose METADATA could not be read, and why."""
    warnings: list[str] = []
    requirements = [(r, "") for dep_list in project.dependency_lists() for r in dep_list.requirements]
    requirements += theirs or []
    torch_specs = [r for r, _ in requirements if canonicalize_name(r.name) == "torch" and r.specifier]
    combined = SpecifierSet()
    for requirement in torch_specs:
        combined &= requirement.specifier
    releases = tuple(r for r in catalog.torch if r.allows(combined))
    if torch_specs and not releases:  # extras that pin different torches: any of them
        releases = tuple(r for r in catalog.torch if any(r.allows(t.specifier) for t in torch_specs))
    descriptions = [f"torch{combined}"] if torch_specs else []
    vllm = [(r, origin) for r, origin in requirements if canonicalize_name(r.name) == "vllm"]
    notes = []
    for requirement, origin in vllm:
        rows = _vllm_torch_pins(requirement, catalog)
        source = f"{requirement} ({origin})" if origin else str(requirement)
        if not rows:
            assumed = _assumed(requirement, source, catalog, unread or {})
            if assumed is None:
                warnings.append(
                    f"{source} is outside the catalog's vllm releases: its torch pin is not taken into account"
                )
                continue
            floor, warning = assumed
            warnings.append(warning)
            releases = tuple(r for r in releases if r.series() >= (floor.major, floor.minor))
            descriptions.append(f"torch>={floor} (assumed for {source}, newer than the catalog)")
            continue
        pins = [row.torch for row in rows]
        notes += [(f"vllm {row.vllm} pins torch=={row.torch}", row.source) for row in rows if row.source]
        releases = tuple(r for r in releases if any((pin.major, pin.minor) == r.series() for pin in pins))
        shown = ", ".join(sorted({str(p) for p in pins}))
        learned = (
            "; read from the index's metadata, not in the catalog" if any(r.source for r in rows) else ""
        )
        descriptions.append(
            f"torch=={shown} (pinned by {source}{learned})"
            if len(pins) == 1
            else f"torch in {{{shown}}} (pinned by {source}{learned})"
        )
    in_play = bool(vllm) or any(name in project.declared() for name in FRAMEWORKS_BRINGING_VLLM)
    if not releases:
        raise LlmSyncError(
            "no torch release in llm-sync's catalog satisfies the project's requirements",
            why=f"the project asks for {' and '.join(descriptions)}; the catalog knows torch {catalog.torch[0].release}–{catalog.torch[-1].release}",
            fix="relax the torch/vllm requirements, or pass --backend to route without checking",
        )
    description = " and ".join(descriptions) if descriptions else "any torch release"
    return TorchScope(releases, description, in_play, tuple(notes)), warnings


def vllm_cuda_fit(
    variant: str, releases: tuple[TorchRelease, ...], catalog: Catalog
) -> tuple[tuple[TorchRelease, ...], str | None]:
    """The releases whose vllm can load next to ``variant``'s torch: vllm pins torch exactly and
    its PyPI wheels are built against that torch's PyPI build (CUDA 12.x up to vllm 0.19, 13.0
    from 0.20), so the variant's CUDA major must be that build's. (releases, problem if none)."""
    if variant == CPU:
        return releases, None
    major = catalog.cuda_of(variant)[0]
    fitting = tuple(r for r in releases if r.pypi_cuda is None or r.pypi_cuda[0] == major)
    if fitting or not releases:
        return fitting, None
    built = "/".join(sorted({str(r.pypi_cuda[0]) for r in releases if r.pypi_cuda}))
    return (), (
        f"{VLLM_CUDA} for {_span(releases)} are built for CUDA {built} and do not load next to "
        f"a CUDA {major} torch"
    )


# --- how well a variant fits ------------------------------------------------------------------


@dataclass(frozen=True)
class Fit:
    variant: str
    releases: tuple[TorchRelease, ...]
    problems: tuple[str, ...]
    compat: bool = False  # only through CUDA minor-version compatibility
    cuda: Pair = (0, 0)

    @property
    def ok(self) -> bool:
        return not self.problems


NATIVE, COMPAT, TOO_OLD = "native", "compat", "too old"


def driver_runs(cuda: Pair, machine: Machine, catalog: Catalog) -> str | None:
    """Whether ``machine``'s driver runs code built for CUDA ``cuda``: NATIVE (CUDA ≤ the
    driver's), COMPAT (same major, driver at least the family's minimum: NVIDIA's
    minor-version compatibility), TOO_OLD; None when the driver's CUDA is unknown.
    The one place this rule lives: the planner and doctor both ask here."""
    if machine.cuda_max is None:
        return None
    if cuda <= machine.cuda_max:
        return NATIVE
    driver = machine.driver()
    family_min = catalog.family_minimum(cuda[0])
    same_major = cuda[0] == machine.cuda_max[0]
    if same_major and driver is not None and family_min is not None and driver >= family_min:
        return COMPAT
    return TOO_OLD


def _driver_problem(variant: str, machine: Machine, catalog: Catalog) -> tuple[str | None, bool]:
    """(problem, needs minor-version compatibility) for the driver side."""
    cuda = catalog.cuda_of(variant)
    runs = driver_runs(cuda, machine, catalog)
    if runs == TOO_OLD and machine.cuda_max is not None:
        return f"needs CUDA {show_pair(cuda)}, the driver runs ≤ {show_pair(machine.cuda_max)}", False
    return None, runs == COMPAT


def _covers(archs: tuple[Pair, ...] | None, capabilities: tuple[Pair, ...]) -> bool:
    return archs is not None and all(any(runs_on(b, gpu) for b in archs) for gpu in capabilities)


def evaluate(
    variant: str,
    machine: Machine | None,
    releases: tuple[TorchRelease, ...],
    catalog: Catalog,
    scope: str,
    *,
    vllm: bool = False,
) -> Fit:
    if variant == CPU:
        return Fit(CPU, releases, ())
    with_variant = tuple(r for r in releases if r.archs(variant) is not None)
    if not with_variant:
        return Fit(variant, (), (f"not built for {scope}",))
    if vllm:
        with_variant, problem = vllm_cuda_fit(variant, with_variant, catalog)
        if problem:
            return Fit(variant, (), (problem,), cuda=catalog.cuda_of(variant))
    if machine is None:
        return Fit(variant, with_variant, ())
    problems = []
    driver_problem, compat = _driver_problem(variant, machine, catalog)
    if driver_problem:
        problems.append(driver_problem)
    capabilities = machine.capabilities if machine.archs_known else ()
    covering = tuple(r for r in with_variant if _covers(r.archs(variant), capabilities))
    if not covering:
        missing = sorted(
            {show_sm(g) for g in capabilities for r in with_variant if not _covers(r.archs(variant), (g,))}
        )
        archs = " ".join(show_pair(a) for a in (with_variant[-1].archs(variant) or ()))
        problems.append(f"{', '.join(missing)} not in its arch list ({archs})")
    return Fit(variant, covering or with_variant, tuple(problems), compat, catalog.cuda_of(variant))


def _fit_reason(fit: Fit, machine: Machine, rejected_newer: Fit | None) -> str:
    if machine.cuda_max is None:
        driver = "CUDA limit not checked"
    elif fit.compat:
        driver = f"{machine.driver_label()} runs CUDA {show_pair(machine.cuda_max)} and this build through minor-version compatibility (nothing newer-free fits)"
    else:
        driver = f"{machine.driver_label()} runs CUDA ≤ {show_pair(machine.cuda_max)}"
    if machine.archs_known and machine.capabilities:
        archs = f"{' '.join(show_sm(c) for c in machine.capabilities)} in its arch list"
    else:
        archs = "GPU architectures not checked"
    reason = f"{driver}; {archs}; {_span(fit.releases)}"
    if rejected_newer is not None and machine.cuda_max is not None:
        problem = (
            rejected_newer.problems[0]
            if rejected_newer.problems
            else (
                f"needs CUDA {show_pair(rejected_newer.cuda)}, the driver runs ≤ {show_pair(machine.cuda_max)}"
            )
        )
        reason += f"; not {rejected_newer.variant}: {problem}"
    return reason


def _no_fit_error(machine: Machine, scope: TorchScope, fits: list[Fit], catalog: Catalog) -> LlmSyncError:
    why = "; ".join(f"{f.variant}: {f.problems[0]}" for f in fits)
    suggestions = []
    for fit in (evaluate(v, machine, catalog.torch, catalog, "any torch") for v in catalog.variants):
        if fit.ok:
            suggestions.append(
                f"{fit.variant} with {_span(fit.releases)} (allow that torch; the project asks for {scope.description})"
            )
            break
    unlimited = dataclasses.replace(machine, cuda_max=None)
    # The smallest driver update that would do: oldest fitting variant first.
    for fit in (
        evaluate(v, unlimited, scope.releases, catalog, scope.description, vllm=scope.vllm)
        for v in reversed(catalog.variants)
    ):
        if fit.ok:
            cuda = catalog.cuda_of(fit.variant)
            minimum = dict(catalog.toolkit_min_driver).get(cuda)
            suggestions.append(f"update the NVIDIA driver to ≥ {minimum} for {fit.variant}")
            break
    suggestions.append("use --backend cpu")
    return LlmSyncError(
        "no PyTorch CUDA build fits this machine and project",
        why=why,
        fix="; or ".join(suggestions),
    )


def _ruled_out(fits: list[Fit], chosen: Fit, newer: Fit | None, machine: Machine) -> str:
    """The builds vllm's CUDA ruled out, and, when minor-version compatibility decided, why
    nothing the driver runs natively would do."""
    limit = machine.cuda_max or (0, 0)
    told = [
        f
        for f in fits
        if f is not newer
        and f.problems
        and (f.problems[0].startswith(VLLM_CUDA) or (chosen.compat and f.cuda != (0, 0) and f.cuda <= limit))
    ]
    return "".join(f"; not {f.variant}: {f.problems[0]}" for f in told)


def choose_variant(machine: Machine, scope: TorchScope, catalog: Catalog) -> tuple[str, str]:
    """The newest variant the driver runs that covers every GPU and the torch scope."""
    fits = [
        evaluate(v, machine, scope.releases, catalog, scope.description, vllm=scope.vllm)
        for v in catalog.variants
    ]
    for wanted_compat in (False, True):
        for position, fit in enumerate(fits):
            if fit.ok and fit.compat == wanted_compat:
                newer = fits[position - 1] if position else None
                return fit.variant, _fit_reason(fit, machine, newer) + _ruled_out(fits, fit, newer, machine)
    raise _no_fit_error(machine, scope, fits, catalog)
