"""vLLM from a checkout (``vllm/`` at the root or listed in checkouts), pure like plan.py.

The checkout is an editable path source (frameworks.plan). How uv builds it is decided
here, in two modes (the ``vllm-build`` setting):

- ``precompiled`` (default): vLLM's setup.py, with ``VLLM_USE_PRECOMPILED=1``, compiles
  nothing and takes the compiled ops from the wheel vLLM publishes for one commit of its
  main branch (``wheels.vllm.ai/<commit>/``), chosen by ``VLLM_PRECOMPILED_WHEEL_COMMIT``
  (a full 40-character hash; anything else makes it ask GitHub for the merge base, or take
  the nightly wheel). llm-sync gives it the checkout's own commit on upstream main
  (gitread), so the binaries match the Python code and a Python-only change works at
  once. Both go to ``[tool.uv.extra-build-variables]``: plain ``uv sync`` builds the same
  way, and a checkout moved to another commit changes uv's build cache key.
- ``full``: vLLM's CMake build compiles its kernels, with build isolation and the runtime
  torch (``extra-build-dependencies``, ``match-runtime``; instead of its
  ``use_existing_torch.py`` and ``--no-build-isolation``), MAX_JOBS/NVCC_THREADS from
  the build planner (build.tuning), the team's architectures (TORCH_CUDA_ARCH_LIST),
  sccache or ccache as the compiler launcher, and the toolkit checks before it starts.

Sources: vllm-project/vllm setup.py@e0e14a824238524d8336232de49190be22796a54
(``precompiled_wheel_utils.determine_wheel_url``, ``get_base_commit_in_main_branch``,
``is_sccache_available``/``is_ccache_available``, ``compute_num_jobs``), vllm/envs.py
(``VLLM_USE_PRECOMPILED`` is true for "1"/"true" in current releases, for any non-empty
value in older ones: the full mode writes the empty string, false in both).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from packaging.utils import canonicalize_name
from packaging.version import Version

from uvx_llm import build
from uvx_llm.actions import EnvSetting, SetBuildVariables, SetPathSource
from uvx_llm.catalog import BuildPackage

if TYPE_CHECKING:
    from collections.abc import Mapping

    from uvx_llm.actions import Builder, Request
    from uvx_llm.checkouts import Checkout
    from uvx_llm.machine import Machine
    from uvx_llm.project import Project

NAME = "vllm"
PRECOMPILED, FULL = "precompiled", "full"
USE_PRECOMPILED = "VLLM_USE_PRECOMPILED"
WHEEL_COMMIT = "VLLM_PRECOMPILED_WHEEL_COMMIT"
TARGET_DEVICE = "VLLM_TARGET_DEVICE"
# CMake (>= 3.17) initialises CMAKE_<LANG>_COMPILER_LAUNCHER from these environment variables.
LAUNCHER_VARIABLES = (
    "CMAKE_C_COMPILER_LAUNCHER",
    "CMAKE_CXX_COMPILER_LAUNCHER",
    "CMAKE_CUDA_COMPILER_LAUNCHER",
)
SOURCE = "vllm-project/vllm setup.py@e0e14a82"

# A full build, as the build planner sees it. NVCC_THREADS: vLLM's default is 1 (envs.py,
# compute_num_jobs divides MAX_JOBS by it). Memory per nvcc thread: not measured for vLLM;
# flash-attn's measured 5 GiB (catalog) is used, its kernels being of the same kind
# (CUTLASS templates), vLLM bundling flash-attn's own. TORCH_CUDA_ARCH_LIST is its arch list.
FULL_BUILD = BuildPackage(
    name=NAME,
    requires=(),  # cmake, ninja, setuptools-scm, ...: its own [build-system] requires
    gib_per_nvcc_thread=5,
    default_nvcc_threads=1,
    arch_variable=None,
    min_capability=None,  # version-dependent (7.0, then 7.5): left to vLLM
    uv_min_version=Version("0.10.0"),  # extra-build-dependencies with match-runtime
    source=SOURCE,
)


def find(checkouts: tuple[Checkout, ...]) -> Checkout | None:
    return next((c for c in checkouts if c.is_vllm), None)


def _variables(checkout: Checkout, mode: str, out: Builder) -> tuple[tuple[str, str], ...]:
    if mode == FULL:
        out.decide(
            "vllm build",
            f"full: {checkout.folder}/ compiles its kernels",
            "vllm-build = full: C++/CUDA changes need it; "
            f"{USE_PRECOMPILED} is written empty (false for every vLLM release)",
        )
        return ((USE_PRECOMPILED, ""),)  # TORCH_CUDA_ARCH_LIST: the build planner's team architectures
    commit = checkout.commit
    wanted = [(USE_PRECOMPILED, "1")]
    if commit is not None and commit.base is not None:
        wanted.append((WHEEL_COMMIT, commit.base))
        out.decide(
            "vllm build",
            f"precompiled: the binaries vLLM publishes for {commit.base[:12]}",
            f"{commit.how}; nothing compiles and a Python-only change works at once "
            "(vllm-build = full compiles instead)",
        )
    else:
        how = commit.how if commit is not None else f"{checkout.folder}/: no commit read"
        out.decide(
            "vllm build",
            "precompiled: vLLM chooses the commit",
            f"{how}; binaries from another commit can fail to import (undefined symbol): "
            f"fetch upstream main into {checkout.folder}/ (`git fetch origin main`)",
        )
    return tuple(wanted)


def _file_settings(
    project: Project,
    checkout: Checkout,
    variables: tuple[tuple[str, str], ...],
    request: Request,
    out: Builder,
) -> None:
    torch = build.torch_entry(index_format=request.index_format, locked_torch=request.locked_torch)
    for action in build.file_settings(project, [FULL_BUILD], torch=torch):
        out.actions.append(action)
        out.decide(
            "build settings",
            f"[tool.uv.extra-build-dependencies] {NAME}",
            "its setup.py imports torch in every mode: uv's isolated build gets the runtime torch "
            "(already in the cache, the right CUDA), not the one its [build-system] names from PyPI; "
            "no use_existing_torch.py, no --no-build-isolation",
        )
    table = project.table("tool", "uv", "extra-build-variables")
    current: Any = next((v for k, v in table.items() if canonicalize_name(k) == NAME), {})
    current = current if isinstance(current, dict) else {}
    changed = tuple((k, v) for k, v in variables if current.get(k) != v)
    if changed:
        out.actions.append(SetBuildVariables(NAME, changed))
        out.decide(
            "build settings",
            f"[tool.uv.extra-build-variables] {NAME}",
            f"{', '.join(k for k, _ in changed)} for {checkout.folder}/: plain `uv sync` and `uv run` build it "
            "the same way, and a moved checkout changes uv's build cache key",
        )


def _environment(
    *, machine: Machine | None, mode: str, request: Request, env: Mapping[str, str], out: Builder
) -> list[EnvSetting]:
    settings: list[EnvSetting] = []
    if machine is not None and machine.system == "macos":
        settings.append(
            _setting(
                TARGET_DEVICE,
                "empty",
                "macOS: vLLM has no GPU build here; its Python code installs without compiled ops",
                env,
            )
        )
        if mode == PRECOMPILED:
            out.warnings.append(
                f"macOS: vLLM publishes precompiled binaries for Linux only; with {USE_PRECOMPILED}=1 in "
                "[tool.uv.extra-build-variables] a vLLM that still honours it here tries to download them. "
                "If the build fails on this Mac, develop vLLM on the Linux machine"
            )
    if mode == FULL and machine is not None:
        if request.compiler_launcher:
            reason = (
                f"{request.compiler_launcher} is on PATH: a rebuild recompiles only what changed "
                "(CMake reads CMAKE_<LANG>_COMPILER_LAUNCHER from the environment)"
            )
            settings += [
                _setting(name, request.compiler_launcher, reason, env) for name in LAUNCHER_VARIABLES
            ]
        else:
            out.decide(
                "vllm build",
                "no compiler launcher",
                "neither sccache nor ccache is on PATH: every full build compiles everything; install ccache",
            )
    return settings


def _setting(name: str, value: str, reason: str, env: Mapping[str, str]) -> EnvSetting:
    if env.get(name):
        return EnvSetting(name, env[name], "set in your environment: kept", from_user=True)
    return EnvSetting(name, value, reason)


def plan(
    *,
    project: Project,
    checkouts: tuple[Checkout, ...],
    machine: Machine | None,
    request: Request,
    out: Builder,
) -> list[BuildPackage]:
    """File settings and environment for building a vLLM checkout; the packages a full build adds
    to the build planner (tuning, toolkit checks)."""
    checkout = find(checkouts)
    if checkout is None or canonicalize_name(NAME) not in _sourced(project, out, checkout):
        return []
    mode = request.vllm_build
    variables = _variables(checkout, mode, out)
    _file_settings(project, checkout, variables, request, out)
    out.env.extend(
        _environment(machine=machine, mode=mode, request=request, env=request.environment, out=out)
    )
    return [FULL_BUILD] if mode == FULL else []


def _sourced(project: Project, out: Builder, checkout: Checkout) -> set[str]:
    """vllm when it comes from the checkout: planned as a path source now, or already one."""
    planned = {a.package for a in out.actions if isinstance(a, SetPathSource)}
    existing = {
        canonicalize_name(k)
        for k, v in project.uv_sources.items()
        if isinstance(v, dict) and v.get("path") is not None and str(v["path"]).rstrip("/") == checkout.folder
    }
    return planned | existing
