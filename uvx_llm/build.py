"""Decisions for CUDA-extension source builds (flash-attn and kin), pure like plan.py.

Two kinds of output:
- settings for pyproject.toml, the same on every machine: build against the
  runtime torch (`extra-build-dependencies`, `match-runtime = true`) plus the
  package's real build needs, and the team's GPU architectures
  (`extra-build-variables`, recorded in `[tool.llm-sync] cuda-archs`), so that
  plain uv builds, caches and keeps exactly what llm-sync built;
- environment for the uv process, tuned to this machine and never written to the
  file: MAX_JOBS from usable CPUs and memory, NVCC_THREADS, one heavy build at
  a time.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from uvx_llm.actions import (
    AddBuildDependencies,
    EnvSetting,
    ReplaceBuildDependency,
    SetBuildVariables,
    SetRequirement,
)
from uvx_llm.catalog import BuildPackage, Catalog, Pair, parse_capability, show_pair, show_sm
from uvx_llm.prebuilt import ours

if TYPE_CHECKING:
    from collections.abc import Mapping

    from uvx_llm.machine import Machine
    from uvx_llm.project import Project
    from uvx_llm.resources import Resources
    from uvx_llm.toolkit import Toolkit

SKIP_CUDA_BUILD = "FLASH_ATTENTION_SKIP_CUDA_BUILD"
STREAM_TARGET = "uv_build_frontend=debug"
TORCH_AT_RUNTIME = {"requirement": "torch", "match-runtime": True}


def platform_markers(project: Project, packages: list[BuildPackage]) -> list[SetRequirement]:
    """Requirements of Linux-only extensions that lack a platform marker, with one added."""
    markers = {p.name: p.platform_marker for p in packages if p.platform_marker}
    actions = []
    for dep_list in project.dependency_lists():
        raw = _raw_requirements(project.owner(dep_list.member), dep_list.kind, dep_list.name)
        for text in raw:
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                continue
            marker = markers.get(canonicalize_name(requirement.name))
            if marker is None or (requirement.marker and "sys_platform" in str(requirement.marker)):
                continue
            combined = f"({requirement.marker}) and {marker}" if requirement.marker else marker
            base = text.split(";", 1)[0].rstrip()
            actions.append(
                SetRequirement(dep_list.kind, dep_list.name, text, f"{base} ; {combined}", dep_list.member)
            )
    return actions


def _raw_requirements(project: Project, kind: str, name: str | None) -> list[str]:
    if kind == "dependencies":
        values = project.table("project").get("dependencies", [])
    elif kind == "extra":
        values = project.table("project", "optional-dependencies").get(name or "", [])
    else:
        values = project.table("dependency-groups").get(name or "", [])
    return [v for v in values if isinstance(v, str)]


def _entry_name(entry: Any) -> str | None:
    text = entry.get("requirement") if isinstance(entry, dict) else entry
    if not isinstance(text, str):
        return None
    try:
        return canonicalize_name(Requirement(text).name)
    except InvalidRequirement:
        return None


def _own_sources(project: Project) -> set[str]:
    """Packages the project takes prebuilt from a source of its own (llm-sync's release-wheel
    entries are re-decided each run; a git or path source is still built from source)."""
    return {
        canonicalize_name(k)
        for k, v in project.uv_sources.items()
        if not ours(v) and not (isinstance(v, dict) and ("git" in v or "path" in v))
    }


def _variables_of(project: Project, name: str) -> dict[str, Any]:
    table = project.table("tool", "uv", "extra-build-variables")
    current: Any = next((v for k, v in table.items() if canonicalize_name(k) == name), {})
    return current if isinstance(current, dict) else {}


def turned_on(project: Project, package: BuildPackage) -> bool:
    """A compiled build: always, except a jit package whose `build_on` variables the project leaves off."""
    if package.mode != "jit":
        return True
    variables = _variables_of(project, package.name)
    return any(
        str(value) == "1"
        and any(k == on or (on.endswith("*") and k.startswith(on[:-1])) for on in package.build_on)
        for k, value in variables.items()
    )


def _wanted(project: Project, package: BuildPackage) -> bool:
    """Declared, or brought in by a declared package the project does not take from a source of its own."""
    declared = project.declared()
    sources = _own_sources(project)
    return package.name in declared or any(
        via in declared and via not in sources for via in package.declared_via
    )


def unknown_builds(project: Project, catalog: Catalog) -> list[BuildPackage]:
    """Declared packages the catalog has no row for whose [tool.uv.extra-build-dependencies] entry
    names torch: built with torch's cpp_extension, so MAX_JOBS and TORCH_CUDA_ARCH_LIST apply."""
    known = {b.name for b in catalog.builds}
    table = project.table("tool", "uv", "extra-build-dependencies")
    found = []
    for key, entries in table.items():
        name = canonicalize_name(key)
        if name in known or name not in project.declared() or not isinstance(entries, list):
            continue
        if any(_entry_name(e) == "torch" for e in entries):
            found.append(
                BuildPackage(
                    name=name,
                    requires=(),
                    gib_per_nvcc_thread=4,
                    default_nvcc_threads=1,
                    arch_variable=None,
                    min_capability=None,
                    uv_min_version=Version("0.10.0"),
                    source="unknown: defaults kept",
                    known=False,
                )
            )
    return found


def built_packages(
    project: Project, catalog: Catalog, *, skip: frozenset[str] = frozenset()
) -> list[BuildPackage]:
    """Declared packages the catalog can build, except those the project takes from a source of
    its own, jit packages left to compile at first use, and ``skip`` (routed to release wheels);
    then the cpp_extension builds the catalog does not know."""
    sources = _own_sources(project)
    known = [
        b
        for b in catalog.builds
        if _wanted(project, b) and b.name not in sources and b.name not in skip and turned_on(project, b)
    ]
    return [*known, *(u for u in unknown_builds(project, catalog) if u.name not in sources)]


def jit_packages(project: Project, catalog: Catalog) -> list[BuildPackage]:
    """Declared jit packages whose ahead-of-time build is off: nothing compiles at install."""
    return [b for b in catalog.builds if _wanted(project, b) and not turned_on(project, b)]


def prebuilt(project: Project, catalog: Catalog) -> list[str]:
    declared = project.declared()
    sources = _own_sources(project)
    return [b.name for b in catalog.builds if b.name in declared and b.name in sources]


def torch_entry(*, index_format: str, locked_torch: str | None) -> Any:
    """How the build gets torch: the runtime one (match-runtime), or on a flat mirror the
    locked one by version. uv looks a match-runtime requirement up as if every index were
    PEP 503, which a flat mirror answers with 404 (uv 0.13.8); a plain requirement goes
    through [tool.uv.sources] and so through the flat listing. Before a lock exists the
    flat case names torch alone: the first `uv lock` then pins it."""
    if index_format != "flat":
        return TORCH_AT_RUNTIME
    return f"torch=={locked_torch}" if locked_torch else "torch"


def file_settings(
    project: Project, packages: list[BuildPackage], *, torch: Any = TORCH_AT_RUNTIME
) -> list[AddBuildDependencies | ReplaceBuildDependency]:
    """What [tool.uv.extra-build-dependencies] lacks; existing entries are kept as written, except
    a torch entry llm-sync must pin for a flat mirror."""
    table = project.table("tool", "uv", "extra-build-dependencies")
    actions: list[AddBuildDependencies | ReplaceBuildDependency] = []
    for package in packages:
        current: Any = next((v for k, v in table.items() if canonicalize_name(k) == package.name), [])
        entries = current if isinstance(current, list) else []
        present = {_entry_name(e) for e in entries}
        wanted: list[Any] = [torch, *package.requires]
        missing = tuple(e for e in wanted if _entry_name(e) not in present)
        if missing:
            actions.append(AddBuildDependencies(package.name, missing))
        old_torch = next((e for e in entries if _entry_name(e) == "torch"), None)
        if torch != TORCH_AT_RUNTIME and old_torch is not None and old_torch != torch:
            actions.append(ReplaceBuildDependency(package.name, old_torch, torch))
    return actions


def skip_build_warnings(project: Project) -> list[str]:
    variables = project.table("tool", "uv", "extra-build-variables")
    return [
        f"[tool.uv.extra-build-variables] sets {SKIP_CUDA_BUILD} for {name}: whenever no prebuilt "
        "wheel matches (torch >= 2.11, any uncommon CUDA/Python), it builds a wheel WITHOUT kernels "
        "that imports but fails at run time. Remove it; llm-sync makes the real build fast instead"
        for name, values in variables.items()
        if isinstance(values, dict) and SKIP_CUDA_BUILD in values
    ]


def _setting(name: str, value: str, reason: str, env: Mapping[str, str]) -> EnvSetting:
    if env.get(name):
        return EnvSetting(name, env[name], "set in your environment: kept", from_user=True)
    return EnvSetting(name, value, reason)


def tuning(
    *,
    host: Resources,
    packages: list[BuildPackage],
    env: Mapping[str, str],
    archs: tuple[Pair, ...],
) -> tuple[EnvSetting, ...]:
    """The uv process's environment for building ``packages`` on ``host`` for ``archs`` (() = defaults)."""
    if not packages:
        return ()
    settings: list[EnvSetting] = []
    if archs:
        arch_text = " ".join(show_sm(a) for a in archs)
        settings.append(
            _setting(
                "TORCH_CUDA_ARCH_LIST",
                show_arch_list(archs),
                f"only the team's GPUs ({arch_text}, [tool.llm-sync] {ARCHS_KEY}); --all-archs keeps the packages' defaults",
                env,
            )
        )
        for package in packages:
            if package.arch_variable:
                value = ";".join(f"{a[0]}{a[1]}" for a in archs)
                settings.append(
                    _setting(
                        package.arch_variable,
                        value,
                        f"{package.name} compiles every kernel once per architecture: only {arch_text}",
                        env,
                    )
                )
    default_threads = max(p.default_nvcc_threads for p in packages)
    threads = min(default_threads, len(archs)) if archs else default_threads
    threads_setting = _setting(
        "NVCC_THREADS",
        str(threads),
        f"nvcc compiles up to one architecture per thread: {threads} for {len(archs) or 'the default'} architecture(s)",
        env,
    )
    settings.append(threads_setting)
    settings.extend(
        job_settings(
            host=host,
            gib_per_thread=gib_per_thread(packages),
            threads=_int(threads_setting.value, threads),
            env=env,
        )
    )
    settings.append(
        _setting(
            "UV_CONCURRENT_BUILDS",
            "1",
            "one heavy CUDA build at a time: each already uses MAX_JOBS compilers",
            env,
        )
    )
    # Not _setting: a RUST_LOG of the user's own is extended, not kept as is, or progress goes dark.
    user_rust_log = env.get("RUST_LOG", "")
    settings.append(
        EnvSetting(
            "RUST_LOG",
            f"{user_rust_log},{STREAM_TARGET}" if user_rust_log else STREAM_TARGET,
            "uv then prints the build's output live, which llm-sync turns into progress and a log file",
        )
    )
    return tuple(settings)


ARCHS_KEY = "cuda-archs"  # [tool.llm-sync]: the team's GPU architectures, "8.0;9.0"
ARCH_LIST_VARIABLE = "TORCH_CUDA_ARCH_LIST"


def recorded_archs(project: Project) -> tuple[Pair, ...]:
    """The architectures recorded in [tool.llm-sync] cuda-archs (validated with the rest of the table)."""
    text = project.config.get(ARCHS_KEY)
    return parse_arch_text(text) if isinstance(text, str) else ()


def parse_arch_text(text: str) -> tuple[Pair, ...]:
    """ "8.0;9.0" (or "sm_80 sm_90") -> ((8, 0), (9, 0)); () when any entry is not an architecture."""
    try:
        return tuple(sorted({parse_capability(part) for part in re.split(r"[,;\s]+", text) if part}))
    except ValueError:
        return ()


def show_arch_list(archs: tuple[Pair, ...]) -> str:
    return ";".join(show_pair(a) for a in archs)


def team_archs(*, project: Project, machine: Machine | None, all_archs: bool) -> tuple[Pair, ...]:
    """The architectures every build of the team covers: the recorded set widened by this machine's GPUs.

    Never narrowed: a laptop, a CPU-only CI runner or a machine with fewer GPU
    kinds keeps what a teammate's machine recorded, so one built wheel (and one
    cache entry) serves everyone. ``--all-archs`` adds nothing, for this run.
    """
    local = machine.capabilities if machine is not None and machine.archs_known and not all_archs else ()
    return tuple(sorted({*recorded_archs(project), *local}))


def arch_variables(package: BuildPackage, archs: tuple[Pair, ...]) -> tuple[tuple[str, str], ...]:
    """The build variables that shape ``package``'s wheel for ``archs`` (() = the package's defaults)."""
    variables: list[tuple[str, str]] = []
    if archs:
        variables.append((ARCH_LIST_VARIABLE, show_arch_list(archs)))
        if package.arch_variable:
            variables.append((package.arch_variable, ";".join(f"{a[0]}{a[1]}" for a in archs)))
        majors = {a[0] for a in archs}
        variables.extend((name, "TRUE") for name, major in package.disable_without if major not in majors)
    variables.extend(package.variables)
    return tuple(variables)


def variable_settings(
    project: Project, packages: list[BuildPackage], archs: tuple[Pair, ...]
) -> list[SetBuildVariables]:
    """What [tool.uv.extra-build-variables] lacks for building ``packages`` for ``archs``.

    uv passes these variables to the package's build and makes them part of the
    cached wheel's key, for every uv command (`uv run`, `uv sync --check`), not
    only llm-sync's: so plain uv neither rebuilds nor reuses a wheel built for
    other GPUs.
    """
    actions = []
    for package in packages:
        current = _variables_of(project, package.name)
        wanted = arch_variables(package, archs)
        changed = tuple((k, v) for k, v in wanted if current.get(k) != v)
        if changed:
            actions.append(SetBuildVariables(package.name, changed))
    return actions


def _int(text: str, default: int) -> int:
    try:
        return max(1, int(text))
    except ValueError:
        return default


def gib_per_thread(packages: list[BuildPackage]) -> float:
    """Memory one nvcc thread of the heaviest of ``packages`` takes (the catalog's figure)."""
    return max(p.gib_per_nvcc_thread for p in packages)


def job_settings(
    *, host: Resources, gib_per_thread: float, threads: int, env: Mapping[str, str]
) -> list[EnvSetting]:
    """MAX_JOBS (and CMAKE_BUILD_PARALLEL_LEVEL) for ``host``: as many compilers as its usable CPUs
    and its free memory allow (`sync --ray` asks each node for its own)."""
    per_job_gib = gib_per_thread * threads
    by_cpu = max(1, host.cpus // threads)
    reason = f"{host.cpus} usable CPUs ({host.cpu_reason}) / {threads} nvcc thread(s) = {by_cpu}"
    jobs = by_cpu
    if host.memory_gib is not None:
        by_memory = max(1, math.floor(host.memory_gib / per_job_gib))
        reason += f"; {host.memory_reason} / {per_job_gib:g} GiB per job = {by_memory}"
        jobs = min(by_cpu, by_memory)
    max_jobs = _setting("MAX_JOBS", str(jobs), f"the smaller of: {reason}", env)
    cmake = _setting("CMAKE_BUILD_PARALLEL_LEVEL", max_jobs.value, "as MAX_JOBS, for CMake-based builds", env)
    return [max_jobs, cmake]


def below_minimum(machine: Machine, packages: list[BuildPackage]) -> list[str]:
    """Packages whose kernels cannot run on a local GPU: building them is pointless."""
    problems: list[str] = []
    for package in packages:
        if package.min_capability is None or not machine.archs_known:
            continue
        old = [g for g in machine.gpus if g.capability is not None and g.capability < package.min_capability]
        problems.extend(
            f"{package.name} needs compute capability ≥ {show_pair(package.min_capability)}; "
            f"GPU {g.index} ({g.name}) is {show_pair(g.capability)}"
            for g in old
            if g.capability is not None
        )
    return problems


def toolkit_blockers(
    *, toolkit: Toolkit, backend: str | None, catalog: Catalog, packages: list[BuildPackage]
) -> list[str]:
    """Why a source build of ``packages`` would fail before it starts: no nvcc, the wrong CUDA
    major, or a host compiler newer than nvcc accepts."""
    if not packages or backend is None or backend == "cpu" or backend not in catalog.variants:
        return []
    names = ", ".join(p.name for p in packages)
    torch_cuda = catalog.cuda_of(backend)
    if toolkit.nvcc is None:
        return [
            (
                f"building {names} needs nvcc, and there is none ({toolkit.how_found}): install the CUDA toolkit "
                f"{torch_cuda[0]}.x (matching torch +{backend}) and set CUDA_HOME"
            )
        ]
    if toolkit.version is not None and toolkit.version[0] != torch_cuda[0]:
        return [
            (
                f"nvcc {show_pair(toolkit.version)} ({toolkit.nvcc}) cannot build {names} for torch +{backend} "
                f"(CUDA {show_pair(torch_cuda)}): torch refuses extensions built with another CUDA major. Install "
                f"CUDA toolkit {torch_cuda[0]}.x and point CUDA_HOME at it, or use a cu{toolkit.version[0]}x backend"
            )
        ]
    headers = [
        f"building {p.name} needs {p.needs_header} (cuDNN's headers) in {toolkit.cuda_home}/include, and it is not "
        f"there: install cuDNN for CUDA {torch_cuda[0]} into the toolkit (or set NVTE_BUILD_USE_NVIDIA_WHEELS=1 "
        "with the nvidia-cudnn wheel in the build), or take the package prebuilt"
        for p in packages
        if p.needs_header and toolkit.cuda_home is not None and p.needs_header not in toolkit.headers
    ]
    host_problem = toolkit.host_problem()
    if host_problem is None:
        return headers
    what, fix = host_problem
    return [*headers, f"building {names}: {what}. {fix[0].upper()}{fix[1:]}"]
