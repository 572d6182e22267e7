"""Every decision llm-sync takes, as a value: pure, no I/O.

``make`` turns machine facts, the project and the catalog into a ``Plan``: the
backend, the decisions with their one-line reasons, warnings, and the edits to
pyproject.toml as actions that ``patch`` applies. It reads as the table of
contents: checkouts (frameworks), builds (build), the torch variant
(torch_fit) and its routing in the file (routing), guards, then bounds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from uvx_llm import bounds, build, config, frameworks, guards, prebuilt_plan, rocm_build, vllm_plan
from uvx_llm import checkouts as checkouts_module
from uvx_llm.actions import (
    Builder,
    EnvSetting,
    Plan,
    ReplaceBuildDependency,
    Request,
    SetConfig,
    SetPathSource,
)
from uvx_llm.catalog import BuildPackage, Catalog, Pair, TorchRelease, show_sm
from uvx_llm.errors import LlmSyncError
from uvx_llm.routing import torch_plan
from uvx_llm.torch_fit import CPU, TorchScope

if TYPE_CHECKING:
    from packaging.requirements import Requirement
    from packaging.version import Version

    from uvx_llm.checkouts import Checkout
    from uvx_llm.lockfile import Expectation
    from uvx_llm.machine import Machine
    from uvx_llm.project import Project
    from uvx_llm.resources import Resources
    from uvx_llm.toolkit import Toolkit


# --- the plan --------------------------------------------------------------------------------------


def _build_plan(
    *,
    machine: Machine | None,
    host: Resources | None,
    project: Project,
    catalog: Catalog,
    request: Request,
    out: Builder,
    skip: frozenset[str] = frozenset(),
    also: tuple[BuildPackage, ...] = (),
) -> tuple[tuple[EnvSetting, ...], Version | None]:
    """Build settings for the file, and tuning for this machine; (environment, minimum uv).

    ``skip``: packages this plan routes to release wheels (nothing to build); ``also``: source
    builds besides the catalog's (a vLLM checkout's full build), tuned and given the team's
    architectures like them."""
    out.warnings.extend(build.skip_build_warnings(project))
    for name in build.prebuilt(project, catalog):
        out.decide(
            "build settings",
            f"none for {name}",
            f"{name} comes from the project's own [tool.uv.sources] entry: prebuilt wheels",
        )
    packages = build.built_packages(project, catalog, skip=skip)
    _build_notes(project=project, catalog=catalog, packages=packages, out=out)
    if not packages and not also:
        return (), None
    if packages:
        _catalog_build_plan(machine=machine, project=project, packages=packages, request=request, out=out)
    archs = build.team_archs(project=project, machine=machine, all_archs=request.all_archs)
    _arch_plan(
        project=project,
        packages=[*packages, *also],
        archs=archs,
        request=request,
        out=out,
        who=machine.who if machine is not None else "this machine",
    )
    env: tuple[EnvSetting, ...] = ()
    if machine is not None and host is not None:
        env = build.tuning(host=host, packages=[*packages, *also], env=request.environment, archs=archs)
    return env, max(p.uv_min_version for p in [*packages, *also])


def _catalog_build_plan(
    *, machine: Machine | None, project: Project, packages: list[BuildPackage], request: Request, out: Builder
) -> None:
    """The file settings of the catalog's packages: build needs, platform markers, GPU minimum."""
    if request.environment.get("UV_NO_CONFIG"):
        out.warnings.append(
            "UV_NO_CONFIG is set: uv then ignores [tool.uv] extra-build-dependencies (checked with uv 0.13.8), "
            f"so {', '.join(p.name for p in packages)} would build without the runtime torch. Unset it"
        )
    torch = build.torch_entry(index_format=request.index_format, locked_torch=request.locked_torch)
    for action in build.file_settings(project, packages, torch=torch):
        out.actions.append(action)
        if isinstance(action, ReplaceBuildDependency):
            out.decide(
                "build settings",
                f"[tool.uv.extra-build-dependencies] {action.package}: {action.new}",
                "the torch uv.lock holds: on a flat mirror the build's torch is named by version "
                "(uv looks match-runtime up as a PEP 503 index, which a flat listing is not)",
            )
            continue
        needs = ", ".join(e if isinstance(e, str) else "torch (the runtime version)" for e in action.entries)
        out.decide(
            "build settings",
            f"[tool.uv.extra-build-dependencies] {action.package}",
            f"add {needs}: an extension built against another torch fails to import (ABI), and without ninja it compiles serially",
        )
    for marked in build.platform_markers(project, packages):
        out.actions.append(marked)
        out.decide(
            "platform marker",
            marked.new + (f" in {marked.member}/pyproject.toml" if marked.member else ""),
            "it builds only where CUDA is; without the marker `uv sync` fails on a teammate's Mac "
            "(one universal uv.lock)",
        )
    if machine is not None:
        problems = build.below_minimum(machine, packages)
        if problems:
            raise LlmSyncError(
                f"a CUDA extension the project declares cannot run on {machine.who}'s GPU",
                why="; ".join(problems),
                fix="remove it from the dependencies (or make it optional), or run on a newer GPU",
            )


def _build_notes(*, project: Project, catalog: Catalog, packages: list[BuildPackage], out: Builder) -> None:
    """What `plan` says of builds llm-sync tunes only partly, or leaves alone."""
    for package in build.jit_packages(project, catalog):
        out.decide(
            "build settings",
            f"none for {package.name}: JIT",
            f"its ops compile on first use on the GPU, nothing at install ({package.source}); to build them "
            f'ahead, set {" or ".join(package.build_on)} = "1" in [tool.uv.extra-build-variables] {package.name}',
        )
    for package in packages:
        if not package.known:
            out.decide(
                "build settings",
                f"{package.name}: unknown: defaults kept",
                "no catalog row: built with torch's cpp_extension ([tool.uv.extra-build-dependencies] names torch), "
                "so it gets MAX_JOBS and TORCH_CUDA_ARCH_LIST only; its own switches keep their defaults",
            )
        elif package.arch_note:
            out.decide("build settings", f"{package.name}: its own architecture list", package.arch_note)


def _arch_plan(
    *,
    project: Project,
    packages: list[BuildPackage],
    archs: tuple[Pair, ...],
    request: Request,
    out: Builder,
    who: str,
) -> None:
    """Record the team's GPU architectures and hand them to uv's per-package build variables."""
    recorded = build.recorded_archs(project)
    if request.all_archs and recorded:
        out.warnings.append(
            f"--all-archs: the project records [tool.llm-sync] {build.ARCHS_KEY} = "
            f"{build.show_arch_list(recorded)!r}, which [tool.uv.extra-build-variables] passes to every build; "
            "remove both to build for the packages' default architectures"
        )
    shown = build.show_arch_list(archs) if archs else "the packages' default architectures"
    if archs and archs != recorded:
        out.actions.append(SetConfig(build.ARCHS_KEY, shown))
        added = " ".join(show_sm(a) for a in archs if a not in recorded)
        out.decide(
            "gpu architectures",
            shown,
            f"recorded for the team in [tool.llm-sync] {build.ARCHS_KEY}: widened by {who}'s {added}, "
            "never narrowed, so one built wheel runs on every teammate's GPU",
        )
    for action in build.variable_settings(project, packages, archs):
        out.actions.append(action)
        out.decide(
            "build settings",
            f"[tool.uv.extra-build-variables] {action.package}",
            f"{', '.join(k for k, _ in action.variables)} for {shown}: every uv command (uv run, "
            "uv sync --check) builds, and keys its cache, for the same GPUs, so plain uv keeps what llm-sync built",
        )


def _bound_plan(
    *,
    project: Project,
    backend: str | None,
    releases: tuple[TorchRelease, ...],
    team: tuple[Pair, ...],
    catalog: Catalog,
    out: Builder,
) -> Expectation:
    """Bounds uv must respect (written as llm-sync's constraints), and what the lock must then show."""
    planned = bounds.plan_bounds(
        project=project, backend=backend, releases=releases, team=team, catalog=catalog
    )
    bounds.write(project, planned, out)
    if backend is not None:
        warning = bounds.python_warning(project, bounds.torch_releases(backend, releases, team))
        if warning is not None:
            out.warnings.append(warning)
    editable = [a.package for a in out.actions if isinstance(a, SetPathSource)]
    editable += [
        canonicalize_name(name)
        for name, value in project.uv_sources.items()
        if isinstance(value, dict) and value.get("editable") is True and "path" in value
    ]
    return bounds.expectation(
        backend=backend, bounds=planned, catalog=catalog, editable=tuple(dict.fromkeys(editable))
    )


def _guard_plan(
    *,
    project: Project,
    backend: str | None,
    catalog: Catalog,
    checkouts: tuple[Checkout, ...],
    theirs: list[tuple[Requirement, str]],
    releases: tuple[TorchRelease, ...],
    out: Builder,
) -> None:
    """Constraints the torch ceiling implies; warnings for known-bad combinations and stacks."""
    guards.constraints(project=project, backend=backend, releases=releases, catalog=catalog, out=out)
    ours = [r for dep_list in project.dependency_lists() for r in dep_list.requirements]
    in_play = (
        releases
        if backend is None
        else tuple(r for r in releases if r.archs(backend) is not None) or releases
    )
    out.warnings.extend(
        guards.known_bad(requirements=[*ours, *(r for r, _ in theirs)], releases=in_play, catalog=catalog)
    )
    out.warnings.extend(guards.stack_warnings(requirements=ours, found=list(checkouts)))


def _checkout_plan(
    *,
    project: Project,
    found: tuple[Checkout, ...],
    wanted: dict[str, tuple[str, ...]],
    request: Request,
    out: Builder,
) -> Project:
    """Framework checkouts; returns the project as planned so far (with added dependencies)."""
    added = frameworks.plan(
        project=project,
        found=list(found),
        extras_wanted=wanted,
        relief=request.relief,
        force=request.force,
        out=out,
    )
    return project.with_dependencies(added)


def _rocm_build_plan(
    *,
    machine: Machine | None,
    host: Resources | None,
    toolkit: Toolkit | None,
    packages: list[BuildPackage],
    backend: str,
    request: Request,
    out: Builder,
) -> tuple[tuple[EnvSetting, ...], list[str]]:
    """Builds against a ROCm torch: hipcc present, PYTORCH_ROCM_ARCH / GPU_ARCHS and MAX_JOBS."""
    blockers = rocm_build.blockers(toolkit.hip, packages, backend) if toolkit and toolkit.hip else []
    if machine is None or host is None:
        return (), blockers
    env, warnings = rocm_build.tuning(
        host=host, packages=packages, env=request.environment, gfx=machine.gfx_targets
    )
    out.warnings.extend(warnings)
    return env, blockers


def make(
    *,
    machine: Machine | None,
    project: Project,
    catalog: Catalog,
    request: Request,
    host: Resources | None = None,
    toolkit: Toolkit | None = None,
    checkouts: tuple[Checkout, ...] = (),
) -> Plan:
    """The plan for ``project`` on ``machine`` (None: machine-independent `check`).

    ``host`` is where builds run (usable CPUs and memory); without it no tuning.
    """
    config.validate_table(project.config, catalog)
    out = Builder()
    wanted = {d.folder: d.extras for d in checkouts_module.declared(project.config.get("checkouts"))}
    project = _checkout_plan(project=project, found=checkouts, wanted=wanted, request=request, out=out)
    theirs = frameworks.checkout_requirements(checkouts, wanted)
    markers = {b.name: b.platform_marker for b in catalog.builds if b.platform_marker}
    frameworks.platform_overrides(project, theirs, markers, out)
    backend, routing_uv_min, scope = torch_plan(
        machine=machine, project=project, catalog=catalog, request=request, out=out, theirs=theirs
    )
    routed, narrowed = prebuilt_plan.plan(
        machine=machine,
        project=project,
        catalog=catalog,
        request=request,
        backend=backend,
        releases=scope.releases if scope else (),
        newest=prebuilt_plan.newest_fit(machine, scope, catalog),
        host=host,
        out=out,
    )
    if narrowed is not None:
        scope = TorchScope(*narrowed)
    also = tuple(
        vllm_plan.plan(project=project, checkouts=checkouts, machine=machine, request=request, out=out)
    )
    env, build_uv_min = _build_plan(
        machine=machine,
        host=host,
        project=project,
        catalog=catalog,
        request=request,
        out=out,
        skip=routed,
        also=also,
    )
    _guard_plan(
        project=project,
        backend=backend,
        catalog=catalog,
        checkouts=checkouts,
        theirs=theirs,
        releases=scope.releases if scope else catalog.torch,
        out=out,
    )
    bounded = scope.releases if scope else catalog.torch
    if request.channel.value != "stable" and backend is not None:
        bounded = ()
        out.decide(
            "bound",
            "none",
            f"the {request.channel.value} channel's torch is a build the catalog's releases do not describe",
        )
    expected = _bound_plan(
        project=project,
        backend=backend,
        releases=bounded,
        team=build.team_archs(project=project, machine=machine, all_archs=request.all_archs),
        catalog=catalog,
        out=out,
    )
    packages = [*build.built_packages(project, catalog, skip=routed), *also]
    if backend == CPU and packages:
        out.warnings.append(
            "CUDA extensions are declared but the backend is cpu: their builds need a CUDA torch and nvcc"
        )
    blockers = (
        build.toolkit_blockers(toolkit=toolkit, backend=backend, catalog=catalog, packages=packages)
        if toolkit is not None
        else []
    )
    if backend is not None and catalog.is_rocm(backend) and packages:
        rocm_env, rocm_blockers = _rocm_build_plan(
            machine=machine,
            host=host,
            toolkit=toolkit,
            packages=packages,
            backend=backend,
            request=request,
            out=out,
        )
        env, blockers = (*env, *rocm_env), [*blockers, *rocm_blockers]
    out.warnings.extend(blockers)
    minimums = [v for v in (build_uv_min, routing_uv_min) if v is not None]
    return Plan(
        backend,
        tuple(out.decisions),
        tuple(out.warnings),
        tuple(out.actions),
        max(minimums) if minimums else None,
        (*env, *out.env, *request.extra_env),
        tuple(blockers),
        tuple(p.name for p in packages),
        expected,
        build.gib_per_thread(packages) if packages else None,
    )
