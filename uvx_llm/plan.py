"""Every decision llm-sync takes, as a value: pure, no I/O.

``make`` turns machine facts, the project and the catalog into a ``Plan``: the
backend, the decisions with their one-line reasons, warnings, and the edits to
pyproject.toml as actions that ``patch`` applies.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from uvx_llm import bounds, build, config, frameworks, guards
from uvx_llm.catalog import BuildPackage, Catalog, Pair, TorchRelease, runs_on, show_pair, show_sm
from uvx_llm.errors import ExitCode, LlmSyncError
from uvx_llm.lockfile import Expectation
from uvx_llm.redact import redact, split_credentials, uv_index_variable

if TYPE_CHECKING:
    from collections.abc import Mapping

    from packaging.requirements import Requirement
    from packaging.version import Version

    from uvx_llm.checkouts import Checkout
    from uvx_llm.machine import Machine
    from uvx_llm.project import DepList, Project
    from uvx_llm.resources import Resources
    from uvx_llm.toolkit import Toolkit

LINUX = "sys_platform == 'linux'"
NOT_LINUX = "sys_platform != 'linux'"
CPU = "cpu"
_VARIANT_IN_URL = re.compile(r"/(cu\d{3}|cpu)/?$")
_VARIANT_IN_NAME = re.compile(r"^pytorch-(cu\d{3}|cpu)$")


# --- the plan's values ------------------------------------------------------------------


@dataclass(frozen=True)
class SetIndex:
    name: str
    url: str
    format: str | None = None  # "flat" for a mirror that serves a plain file listing


@dataclass(frozen=True)
class RemoveIndex:
    name: str


@dataclass(frozen=True)
class SetSource:
    package: str
    value: Any


@dataclass(frozen=True)
class AddRequirement:
    kind: str
    list_name: str | None
    requirement: str


@dataclass(frozen=True)
class SetConfig:
    key: str
    value: str


Action = (
    SetIndex
    | RemoveIndex
    | SetSource
    | AddRequirement
    | SetConfig
    | build.AddBuildDependencies
    | build.SetRequirement
    | build.SetBuildVariables
    | frameworks.SetPathSource
    | frameworks.AddOverride
    | frameworks.SetDependencyMetadata
    | guards.AddConstraint
    | bounds.SetBound
)


@dataclass(frozen=True)
class Decision:
    topic: str
    choice: str
    reason: str


@dataclass(frozen=True)
class Request:
    """What the user asked for: backend and index base, each with its origin."""

    backend: config.Setting = field(default_factory=lambda: config.Setting("auto", "default"))
    index_base: config.Setting | None = None
    index_format: str = "simple"
    extra_env: tuple[build.EnvSetting, ...] = ()  # mirrors for uv (default index, Python downloads)
    relief: str = "override"  # for a framework pin the project contradicts: override or metadata
    force: bool = False
    all_archs: bool = False  # build for the packages' default architectures, not only the local GPUs
    environment: Mapping[str, str] = field(default_factory=dict)  # the user's: values set there win


@dataclass(frozen=True)
class Plan:
    backend: str | None
    decisions: tuple[Decision, ...]
    warnings: tuple[str, ...]
    actions: tuple[Action, ...]
    uv_min_version: Version | None
    env: tuple[build.EnvSetting, ...] = ()
    build_blockers: tuple[str, ...] = ()  # why a source build would fail before it starts
    built_packages: tuple[str, ...] = ()  # CUDA-extension packages built from source
    expectation: Expectation = field(default_factory=Expectation)  # what uv.lock must show

    def uv_environment(self) -> dict[str, str]:
        """What llm-sync adds to uv's environment (values the user set are inherited as they are)."""
        return {s.name: s.value for s in self.env if not s.from_user}


# --- which torch releases the project allows ----------------------------------------------


@dataclass(frozen=True)
class TorchScope:
    releases: tuple[TorchRelease, ...]
    description: str


def _span(releases: tuple[TorchRelease, ...]) -> str:
    if not releases:
        return "no torch release"
    first, last = releases[0].release, releases[-1].release
    return f"torch {first}" if first == last else f"torch {first}–{last}"


def _vllm_torch_pins(requirement: Requirement, catalog: Catalog) -> list[Version]:
    """torch versions that the vllm releases allowed by ``requirement`` pin."""
    spec = requirement.specifier
    named = [spec_item.version for spec_item in spec]
    pins = []
    for row in catalog.vllm:
        points = [item.version for item in row.vllm] + named
        if any(row.vllm.contains(p, prereleases=True) and spec.contains(p, prereleases=True) for p in points):
            pins.append(row.torch)
    return pins


def torch_scope(project: Project, catalog: Catalog) -> tuple[TorchScope, list[str]]:
    """Torch releases allowed by the project's torch requirements and its declared vllm."""
    warnings: list[str] = []
    requirements = [r for dep_list in project.dependency_lists() for r in dep_list.requirements]
    torch_specs = [r for r in requirements if canonicalize_name(r.name) == "torch" and r.specifier]
    combined = SpecifierSet()
    for requirement in torch_specs:
        combined &= requirement.specifier
    releases = tuple(r for r in catalog.torch if r.allows(combined))
    if torch_specs and not releases:  # extras that pin different torches: any of them
        releases = tuple(r for r in catalog.torch if any(r.allows(t.specifier) for t in torch_specs))
    descriptions = [f"torch{combined}"] if torch_specs else []
    for requirement in (r for r in requirements if canonicalize_name(r.name) == "vllm"):
        pins = _vllm_torch_pins(requirement, catalog)
        if not pins:
            warnings.append(
                f"{requirement} is outside the catalog's vllm releases: its torch pin is not taken into account"
            )
            continue
        releases = tuple(r for r in releases if any((pin.major, pin.minor) == r.series() for pin in pins))
        shown = ", ".join(sorted({str(p) for p in pins}))
        descriptions.append(
            f"torch=={shown} (pinned by {requirement})"
            if len(pins) == 1
            else f"torch in {{{shown}}} (pinned by {requirement})"
        )
    if not releases:
        raise LlmSyncError(
            "no torch release in llm-sync's catalog satisfies the project's requirements",
            why=f"the project asks for {' and '.join(descriptions)}; the catalog knows torch {catalog.torch[0].release}–{catalog.torch[-1].release}",
            fix="relax the torch/vllm requirements, or pass --backend to route without checking",
        )
    description = " and ".join(descriptions) if descriptions else "any torch release"
    return TorchScope(releases, description), warnings


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


def _driver_problem(variant: str, machine: Machine, catalog: Catalog) -> tuple[str | None, bool]:
    """(problem, needs minor-version compatibility) for the driver side."""
    if machine.cuda_max is None:
        return None, False
    cuda = catalog.cuda_of(variant)
    if cuda <= machine.cuda_max:
        return None, False
    driver = machine.driver()
    family_min = catalog.family_minimum(cuda[0])
    if (
        cuda[0] == machine.cuda_max[0]
        and driver is not None
        and family_min is not None
        and driver >= family_min
    ):
        return None, True
    return f"needs CUDA {show_pair(cuda)}, the driver runs ≤ {show_pair(machine.cuda_max)}", False


def _covers(archs: tuple[Pair, ...] | None, capabilities: tuple[Pair, ...]) -> bool:
    return archs is not None and all(any(runs_on(b, gpu) for b in archs) for gpu in capabilities)


def evaluate(
    variant: str, machine: Machine | None, releases: tuple[TorchRelease, ...], catalog: Catalog, scope: str
) -> Fit:
    if variant == CPU:
        return Fit(CPU, releases, ())
    with_variant = tuple(r for r in releases if r.archs(variant) is not None)
    if not with_variant:
        return Fit(variant, (), (f"not built for {scope}",))
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
        driver = f"driver {machine.driver_version} runs CUDA {show_pair(machine.cuda_max)} and this build through minor-version compatibility (nothing newer-free fits)"
    else:
        source = f"driver {machine.driver_version}" if machine.driver_version else machine.cuda_source
        driver = f"{source} runs CUDA ≤ {show_pair(machine.cuda_max)}"
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
        evaluate(v, unlimited, scope.releases, catalog, scope.description) for v in reversed(catalog.variants)
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


def choose_variant(machine: Machine, scope: TorchScope, catalog: Catalog) -> tuple[str, str]:
    """The newest variant the driver runs that covers every GPU and the torch scope."""
    fits = [evaluate(v, machine, scope.releases, catalog, scope.description) for v in catalog.variants]
    for wanted_compat in (False, True):
        for position, fit in enumerate(fits):
            if fit.ok and fit.compat == wanted_compat:
                newer = fits[position - 1] if position else None
                return fit.variant, _fit_reason(fit, machine, newer)
    raise _no_fit_error(machine, scope, fits, catalog)


# --- what the project already routes ----------------------------------------------------------


def index_name(backend: str) -> str:
    return f"pytorch-{backend}"


def desired_source(backend: str) -> Any:
    if backend == CPU:
        return {"index": index_name(CPU)}
    return [
        {"index": index_name(backend), "marker": LINUX},
        {"index": index_name(CPU), "marker": NOT_LINUX},
    ]


def _entries(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return []


@dataclass(frozen=True)
class Routing:
    """torch-family sources already in the project."""

    sources: dict[str, Any]
    per_extra: bool
    variants: tuple[str, ...]  # PyTorch variants those sources point at
    extra_map: tuple[tuple[str, str], ...]  # (extra or group, variant) for per-extra routing


def _variant_of_index(name: str, indexes: list[dict[str, Any]]) -> str | None:
    for index in indexes:
        if index.get("name") == name:
            match = _VARIANT_IN_URL.search(str(index.get("url", "")))
            if match:
                return match.group(1)
    match = _VARIANT_IN_NAME.match(name)
    return match.group(1) if match else None


def existing_routing(project: Project, catalog: Catalog) -> Routing:
    sources = {p: v for p, v in project.uv_sources.items() if canonicalize_name(p) in catalog.family}
    entries = [e for v in sources.values() for e in _entries(v)]
    variants, extra_map = [], []
    for entry in entries:
        variant = _variant_of_index(str(entry.get("index", "")), project.uv_indexes)
        if variant and variant not in variants:
            variants.append(variant)
        selector = entry.get("extra") or entry.get("group")
        if selector and variant and (selector, variant) not in extra_map:
            extra_map.append((str(selector), variant))
    per_extra = any("extra" in e or "group" in e for e in entries)
    return Routing(sources, per_extra, tuple(variants), tuple(extra_map))


# --- the plan --------------------------------------------------------------------------------------


@dataclass
class _Builder:
    decisions: list[Decision] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    env: list[build.EnvSetting] = field(default_factory=list)

    def decide(self, topic: str, choice: str, reason: str) -> None:
        self.decisions.append(Decision(topic, choice, reason))


def _per_extra_plan(
    routing: Routing, machine: Machine | None, scope: TorchScope, catalog: Catalog, out: _Builder
) -> None:
    shown = ", ".join(f"{extra} → {variant}" for extra, variant in routing.extra_map)
    out.decide(
        "pytorch routing",
        "kept (per extra)",
        f"the project routes torch per extra ({shown}); llm-sync keeps it and writes no routing of its own "
        "(remove those sources to let llm-sync route torch instead)",
    )
    extras = [extra for extra, variant in routing.extra_map if variant != CPU]
    if extras:
        out.decide(
            "how to sync",
            f"llm-sync -- --extra {extras[0]}",
            "pick one of the project's extras; its [tool.uv] conflicts keep incompatible ones apart",
        )
    if machine is not None and machine.has_nvidia:
        gpu_variants = [v for v in routing.variants if v != CPU and v in catalog.variants]
        fits = [evaluate(v, machine, scope.releases, catalog, scope.description) for v in gpu_variants]
        if fits and not any(f.ok for f in fits):
            out.warnings.append(
                "this machine cannot run the project's torch variants: "
                + "; ".join(f"{f.variant}: {f.problems[0]}" for f in fits)
            )


def _recorded_backend_error(
    *, backend: str, origin: str, problem: str, machine: Machine, scope: TorchScope, catalog: Catalog
) -> LlmSyncError:
    try:
        best, _ = choose_variant(machine, scope, catalog) if machine.has_nvidia else (CPU, "")
        retarget = f"to retarget the project for every machine: llm-sync --backend {best}"
    except LlmSyncError:
        retarget = "use --backend cpu, or update the NVIDIA driver"
    return LlmSyncError(
        f"{origin} says backend {backend}, but this machine cannot run it",
        why=f"{backend}: {problem}",
        fix=f"{retarget} (this changes pyproject.toml for the whole team); or run on a machine that can",
    )


def _inferred_backend(routing: Routing) -> str | None:
    """The one variant hand-written routing points at (a GPU one beside pytorch-cpu counts)."""
    gpu_variants = [v for v in routing.variants if v != CPU]
    if len(gpu_variants) == 1:
        return gpu_variants[0]
    if not gpu_variants and routing.variants:
        return CPU
    return None


def _refuse_a_broken_driver(machine: Machine) -> None:
    """No GPU found because the NVIDIA software here fails: `cpu` would be recorded for the team."""
    if not machine.has_nvidia and machine.trouble:
        raise LlmSyncError(
            "the NVIDIA driver on this machine is not working; llm-sync will not record `cpu` for the team",
            why="; ".join(machine.trouble),
            fix=(
                "repair the driver (after a driver update: reboot, or reload the nvidia kernel modules) and run "
                "llm-sync again; or plan for the GPUs it should have with --cuda X.Y --arch X.Y, or ask for CPU "
                "wheels on purpose with --backend cpu"
            ),
        )


def _pick_backend(
    *,
    request: Request,
    recorded: str | None,
    routing: Routing,
    machine: Machine | None,
    scope: TorchScope,
    catalog: Catalog,
    out: _Builder,
) -> str:
    def check_runs(backend: str) -> str | None:
        if machine is None or backend == CPU:
            return None
        fit = evaluate(backend, machine, scope.releases, catalog, scope.description)
        return fit.problems[0] if fit.problems else None

    requested = request.backend
    if requested.value != "auto":
        problem = check_runs(requested.value)
        if problem:
            out.warnings.append(
                f"{requested.value} will not run on this machine ({problem}); kept because {requested.origin} asks for it"
            )
        out.decide("backend", requested.value, f"requested by {requested.origin}")
        return requested.value
    for backend, origin in (
        (recorded, "[tool.llm-sync] backend"),
        (None if request.force else _inferred_backend(routing), "the project's hand-written torch routing"),
    ):
        if backend is None:
            continue
        problem = check_runs(backend)
        if problem and machine is not None:
            raise _recorded_backend_error(
                backend=backend, origin=origin, problem=problem, machine=machine, scope=scope, catalog=catalog
            )
        out.decide(
            "backend", backend, f"kept from {origin}" + ("" if machine is None else "; this machine runs it")
        )
        return backend
    if machine is None:
        raise LlmSyncError(
            "llm-sync has not chosen a PyTorch backend for this project yet",
            why="no [tool.llm-sync] backend is recorded, and `check` does not look at the machine",
            fix="run `llm-sync` once on a target machine, or `llm-sync check --fix --backend cu128` (any backend)",
            exit_code=ExitCode.DIFFERENCES,
        )
    _refuse_a_broken_driver(machine)
    if not machine.has_nvidia:
        why = "macOS has no CUDA" if machine.system == "macos" else "no NVIDIA GPU or driver found"
        out.decide("backend", CPU, f"{why}: CPU wheels")
        return CPU
    variant, reason = choose_variant(machine, scope, catalog)
    out.decide("backend", variant, reason)
    return variant


def _torch_additions(lists: tuple[DepList, ...], consumers: frozenset[str], out: _Builder) -> None:
    if "torch" in lists[0].names():
        return
    for dep_list in lists:
        users = sorted(dep_list.names() & consumers)
        if users and "torch" not in dep_list.names():
            out.actions.append(AddRequirement(dep_list.kind, dep_list.name, "torch"))
            out.decide(
                "torch dependency",
                f"add torch to {dep_list.label}",
                f"{', '.join(users)} need torch, and uv applies [tool.uv.sources] only to direct dependencies",
            )


def _route(
    *,
    backend: str,
    recorded: str | None,
    packages: list[str],
    project: Project,
    index_base: config.Setting,
    index_format: str,
    force: bool,
    out: _Builder,
) -> None:
    sources = project.uv_sources
    want = desired_source(backend)
    previous = desired_source(recorded) if recorded and recorded != backend else None
    kept = []
    routed_by_us = False
    for package in packages:
        current = sources.get(package)
        if current == want:
            routed_by_us = True
        elif current is None or current == previous or force:
            out.actions.append(SetSource(package, want))
            routed_by_us = True
            if current is not None and current != previous:
                out.decide(
                    "pytorch routing",
                    f"replace {package}'s source",
                    "--force: the hand-written source is replaced",
                )
        else:
            kept.append(package)
    target = "pytorch-cpu" if backend == CPU else f"{index_name(backend)} on Linux, pytorch-cpu elsewhere"
    if kept:
        out.warnings.append(
            f"kept the hand-written [tool.uv.sources] for {', '.join(kept)}; llm-sync would route "
            f"{'it' if len(kept) == 1 else 'them'} to {target}. Pass --force to let llm-sync rewrite it"
        )
    if routed_by_us:
        out.decide(
            "pytorch routing",
            target,
            "one uv.lock for Linux GPU servers and CPU-only laptops"
            if backend != CPU
            else "CPU wheels everywhere",
        )
        _indexes(
            backend=backend,
            project=project,
            index_base=index_base,
            index_format=index_format,
            force=force,
            out=out,
        )
    if previous is not None:
        _drop_old_index(recorded or "", backend, project, kept, out)


def _indexes(
    *,
    backend: str,
    project: Project,
    index_base: config.Setting,
    index_format: str,
    force: bool,
    out: _Builder,
) -> None:
    existing = {str(i.get("name")): i for i in project.uv_indexes if "name" in i}
    wanted_format = "flat" if index_format == "flat" else None
    for variant in dict.fromkeys((backend, CPU)):
        name = index_name(variant)
        url, username, password = split_credentials(f"{index_base.value}/{variant}")
        for part, secret in (("USERNAME", username), ("PASSWORD", password)):
            if secret:  # uv reads per-index credentials from the environment: never the file
                variable = uv_index_variable(name, part)
                out.env.append(
                    build.EnvSetting(
                        variable, secret, f"credentials of {name}, kept out of pyproject.toml", secret=True
                    )
                )
        current = existing.get(name)
        same = current is not None and current.get("url") == url and current.get("explicit") is True
        if same and current is not None and current.get("format") == wanted_format:
            continue
        if current is None or force or index_base.origin != "default":
            out.actions.append(SetIndex(name, url, wanted_format))
        else:
            out.warnings.append(
                f"kept the hand-written index {name} ({redact(str(current.get('url')))}); "
                f"pass --force to let llm-sync set it to {redact(url)}"
            )


def _drop_old_index(old: str, backend: str, project: Project, kept: list[str], out: _Builder) -> None:
    old_name = index_name(old)
    if old_name in {index_name(backend), index_name(CPU)}:
        return
    still_used = any(
        entry.get("index") == old_name
        for package, value in project.uv_sources.items()
        if package in kept or package not in {a.package for a in out.actions if isinstance(a, SetSource)}
        for entry in _entries(value)
    )
    if not still_used and any(i.get("name") == old_name for i in project.uv_indexes):
        out.actions.append(RemoveIndex(old_name))


def _build_plan(
    *,
    machine: Machine | None,
    host: Resources | None,
    project: Project,
    catalog: Catalog,
    request: Request,
    out: _Builder,
) -> tuple[tuple[build.EnvSetting, ...], Version | None]:
    """Build settings for the file, and tuning for this machine; (environment, minimum uv)."""
    out.warnings.extend(build.skip_build_warnings(project))
    for name in build.prebuilt(project, catalog):
        out.decide(
            "build settings",
            f"none for {name}",
            f"{name} comes from an index in [tool.uv.sources]: prebuilt wheels",
        )
    packages = build.built_packages(project, catalog)
    if not packages:
        return (), None
    if request.environment.get("UV_NO_CONFIG"):
        out.warnings.append(
            "UV_NO_CONFIG is set: uv then ignores [tool.uv] extra-build-dependencies (checked with uv 0.13.8), "
            f"so {', '.join(p.name for p in packages)} would build without the runtime torch. Unset it"
        )
    for action in build.file_settings(project, packages):
        out.actions.append(action)
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
            marked.new,
            "it builds only where CUDA is; without the marker `uv sync` fails on a teammate's Mac "
            "(one universal uv.lock)",
        )
    if machine is not None:
        problems = build.below_minimum(machine, packages)
        if problems:
            raise LlmSyncError(
                "a CUDA extension the project declares cannot run on this machine's GPU",
                why="; ".join(problems),
                fix="remove it from the dependencies (or make it optional), or run on a newer GPU",
            )
    archs = build.team_archs(project=project, machine=machine, all_archs=request.all_archs)
    _arch_plan(project=project, packages=packages, archs=archs, request=request, out=out)
    env: tuple[build.EnvSetting, ...] = ()
    if machine is not None and host is not None:
        env = build.tuning(host=host, packages=packages, env=request.environment, archs=archs)
    return env, max(p.uv_min_version for p in packages)


def _arch_plan(
    *,
    project: Project,
    packages: list[BuildPackage],
    archs: tuple[Pair, ...],
    request: Request,
    out: _Builder,
) -> None:
    """Record the team's GPU architectures and hand them to uv's per-package build variables."""
    recorded = build.recorded_archs(project)
    if request.all_archs and recorded:
        out.warnings.append(
            f"--all-archs: the project records [tool.llm-sync] {build.ARCHS_KEY} = "
            f"{build.show_arch_list(recorded)!r}, which [tool.uv.extra-build-variables] passes to every build; "
            "remove both to build for the packages' default architectures"
        )
    if not archs:
        return
    shown = build.show_arch_list(archs)
    if archs != recorded:
        out.actions.append(SetConfig(build.ARCHS_KEY, shown))
        added = " ".join(show_sm(a) for a in archs if a not in recorded)
        out.decide(
            "gpu architectures",
            shown,
            f"recorded for the team in [tool.llm-sync] {build.ARCHS_KEY}: widened by this machine's {added}, "
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
    out: _Builder,
) -> Expectation:
    """Bounds uv must respect (written as llm-sync's constraints), and what the lock must then show."""
    planned = bounds.plan_bounds(
        project=project, backend=backend, releases=releases, team=team, catalog=catalog
    )
    for action, bound in bounds.actions(project, planned):
        out.actions.append(action)
        out.decide("bound", action.requirement, bound.reason)
    editable = [a.package for a in out.actions if isinstance(a, frameworks.SetPathSource)]
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
    wanted: dict[str, tuple[str, ...]],
    releases: tuple[TorchRelease, ...],
    out: _Builder,
) -> None:
    """Constraints the torch ceiling implies; warnings for known-bad combinations and stacks."""
    for action, reason in guards.constraints(
        project=project, backend=backend, releases=releases, catalog=catalog
    ):
        out.actions.append(action)
        out.decide("version guard", action.requirement, reason)
    ours = [r for dep_list in project.dependency_lists() for r in dep_list.requirements]
    theirs = [
        r
        for checkout in checkouts
        if not checkout.own_uv_config
        for r in frameworks.parse_lenient(
            (
                *checkout.requires,
                *(x for e in wanted.get(checkout.folder, ()) for x in checkout.extras.get(e, ())),
            )
        )
    ]
    in_play = (
        releases
        if backend is None
        else tuple(r for r in releases if r.archs(backend) is not None) or releases
    )
    out.warnings.extend(guards.known_bad(requirements=[*ours, *theirs], releases=in_play, catalog=catalog))
    out.warnings.extend(guards.stack_warnings(requirements=ours, found=list(checkouts)))


def _checkout_plan(
    *,
    project: Project,
    found: tuple[Checkout, ...],
    wanted: dict[str, tuple[str, ...]],
    request: Request,
    out: _Builder,
) -> Project:
    """Framework checkouts; returns the project as planned so far (with added dependencies)."""
    outcome = frameworks.plan(
        project=project,
        found=list(found),
        extras_wanted=wanted,
        relief=request.relief,
        force=request.force,
    )
    for action in outcome.actions:
        out.actions.append(
            AddRequirement("dependencies", None, action) if isinstance(action, str) else action
        )
    for topic, choice, reason in outcome.decisions:
        out.decide(topic, choice, reason)
    out.warnings.extend(outcome.warnings)
    return project.with_dependencies(outcome.added)


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
    out = _Builder()
    wanted = dict(frameworks.parse_entry(e) for e in project.config.get("checkouts", []))
    project = _checkout_plan(project=project, found=checkouts, wanted=wanted, request=request, out=out)
    env, build_uv_min = _build_plan(
        machine=machine, host=host, project=project, catalog=catalog, request=request, out=out
    )
    backend, routing_uv_min, scope = _torch_plan(
        machine=machine, project=project, catalog=catalog, request=request, out=out
    )
    _guard_plan(
        project=project,
        backend=backend,
        catalog=catalog,
        checkouts=checkouts,
        wanted=wanted,
        releases=scope.releases if scope else catalog.torch,
        out=out,
    )
    expected = _bound_plan(
        project=project,
        backend=backend,
        releases=scope.releases if scope else catalog.torch,
        team=build.team_archs(project=project, machine=machine, all_archs=request.all_archs),
        catalog=catalog,
        out=out,
    )
    packages = build.built_packages(project, catalog)
    if backend == CPU and packages:
        out.warnings.append(
            "CUDA extensions are declared but the backend is cpu: their builds need a CUDA torch and nvcc"
        )
    blockers = (
        build.toolkit_blockers(toolkit=toolkit, backend=backend, catalog=catalog, packages=packages)
        if toolkit is not None
        else []
    )
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
    )


def _torch_plan(
    *, machine: Machine | None, project: Project, catalog: Catalog, request: Request, out: _Builder
) -> tuple[str | None, Version | None, TorchScope | None]:
    """PyTorch routing: (backend, minimum uv, the torch releases in play; None when nothing is routed)."""
    index_base = request.index_base or config.Setting(
        str(project.config.get("torch-index-url", catalog.index_base)).rstrip("/"), "[tool.llm-sync]"
    )
    lists = project.dependency_lists()
    declared = project.declared()
    family = [p for p in catalog.family if p in declared]
    consumers = declared & catalog.consumers
    if not family and not consumers:
        out.decide(
            "pytorch routing",
            "none",
            "the project declares no PyTorch package and no package that needs torch",
        )
        return None, None, None
    if machine is None:  # `check`: no machine to fit, so the torch scope is not needed
        scope = TorchScope(catalog.torch, "any torch release")
    else:
        scope, scope_warnings = torch_scope(project, catalog)
        out.warnings.extend(scope_warnings)
    routing = existing_routing(project, catalog)
    if routing.per_extra:  # a design of the project's own, not a disagreement: even --force keeps it
        _per_extra_plan(routing, machine, scope, catalog, out)
        return None, catalog.uv_min_routing, scope
    recorded = project.config.get("backend")
    backend = _pick_backend(
        request=request,
        recorded=recorded,
        routing=routing,
        machine=machine,
        scope=scope,
        catalog=catalog,
        out=out,
    )
    _torch_additions(lists, consumers, out)
    # Also every family package the file already routes, so torch, torchvision
    # and torchaudio never end up on different variants.
    routed = [p for p in catalog.family if p in routing.sources]
    packages = list(dict.fromkeys(["torch", *family, *routed]))
    _route(
        backend=backend,
        recorded=recorded,
        packages=packages,
        project=project,
        index_base=index_base,
        index_format=request.index_format,
        force=request.force,
        out=out,
    )
    if recorded != backend:
        out.actions.append(SetConfig("backend", backend))
    return backend, catalog.uv_min_routing, scope
