"""Source builds on ROCm: the GPU list and job sizing for hipcc, and why a build would fail
before it starts. Pure; ``find_hip`` is the one I/O edge (it looks for hipcc and the HIP headers).

torch.utils.cpp_extension compiles HIP code for PYTORCH_ROCM_ARCH ("gfx90a;gfx942"); flash-attn's
ROCm (composable-kernel) path reads GPU_ARCHS instead, and accepts only the targets its CK kernels
exist for (catalog [rocm-build.*]). Job sizing is the same resource model as for nvcc: usable CPUs
and memory per compile job (hipcc runs one target per job, so one "thread").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from uvx_llm.actions import EnvSetting
    from uvx_llm.catalog import BuildPackage
    from uvx_llm.resources import Resources

ROCM_ARCH_VARIABLE = "PYTORCH_ROCM_ARCH"
# flash-attn setup.py @ v2.8.3 (060c9188, 2025-08-14): GPU_ARCHS, default "native", allowed
# gfx90a, gfx942, gfx950 (its main branch adds RDNA3/4 targets).
FLASH_ATTN = "flash-attn"
FLASH_ATTN_ARCH_VARIABLE = "GPU_ARCHS"
FLASH_ATTN_TARGETS = ("gfx90a", "gfx942", "gfx950")


@dataclass(frozen=True)
class HipToolkit:
    hipcc: Path | None
    headers: bool  # include/hip/hip_runtime.h
    how_found: str


def find_hip(env: Mapping[str, str], *, root: Path = Path("/")) -> HipToolkit:
    """hipcc and the HIP headers under ROCM_PATH, ROCM_HOME or /opt/rocm."""
    for variable in ("ROCM_PATH", "ROCM_HOME"):
        if env.get(variable, "").strip():
            return _at(root / env[variable].strip().lstrip("/"), f"from {variable}")
    return _at(root / "opt" / "rocm", "/opt/rocm")


def _at(home: Path, how: str) -> HipToolkit:
    hipcc = home / "bin" / "hipcc"
    headers = (home / "include" / "hip" / "hip_runtime.h").is_file()
    return HipToolkit(hipcc if hipcc.is_file() else None, headers, how)


def blockers(hip: HipToolkit, packages: list[BuildPackage], backend: str) -> list[str]:
    """Why building ``packages`` for torch +``backend`` would fail at once."""
    if not packages:
        return []
    names = ", ".join(p.name for p in packages)
    if hip.hipcc is None or not hip.headers:
        missing = "hipcc" if hip.hipcc is None else "the HIP headers (include/hip/hip_runtime.h)"
        message = (
            f"building {names} for torch +{backend} needs {missing}, and there is none ({hip.how_found}): "
            "install ROCm's development packages (hip-dev / rocm-hip-sdk) and set ROCM_PATH"
        )
        return [message]
    return []


def tuning(
    *,
    host: Resources,
    packages: list[BuildPackage],
    env: Mapping[str, str],
    gfx: tuple[str, ...],
) -> tuple[tuple[EnvSetting, ...], tuple[str, ...]]:
    """(environment for the build, warnings): the GPU lists and MAX_JOBS for hipcc."""
    from uvx_llm.build import _setting  # noqa: PLC0415 - build imports the catalog; keep this module light

    settings: list[EnvSetting] = []
    warnings: list[str] = []
    if gfx:
        shown = ";".join(gfx)
        settings.append(
            _setting(ROCM_ARCH_VARIABLE, shown, f"only this machine's GPUs ({' '.join(gfx)})", env)
        )
        if any(p.name == FLASH_ATTN for p in packages):
            supported = tuple(g for g in gfx if g in FLASH_ATTN_TARGETS)
            if supported:
                settings.append(
                    _setting(
                        FLASH_ATTN_ARCH_VARIABLE,
                        ";".join(supported),
                        "flash-attn's ROCm (composable-kernel) build compiles every kernel once per target",
                        env,
                    )
                )
            unsupported = sorted(set(gfx) - set(FLASH_ATTN_TARGETS))
            if unsupported:
                warnings.append(
                    f"flash-attn's composable-kernel build has no kernels for {', '.join(unsupported)} "
                    f"(it builds {', '.join(FLASH_ATTN_TARGETS)}): set FLASH_ATTENTION_TRITON_AMD_ENABLE=TRUE "
                    "for its Triton backend there"
                )
    per_job = max(p.gib_per_nvcc_thread for p in packages)
    jobs = host.cpus
    reason = f"{host.cpus} usable CPUs ({host.cpu_reason}), one hipcc target per job"
    if host.memory_gib is not None:
        by_memory = max(1, math.floor(host.memory_gib / per_job))
        reason += f"; {host.memory_reason} / {per_job:g} GiB per job = {by_memory}"
        jobs = min(jobs, by_memory)
    settings.append(_setting("MAX_JOBS", str(max(1, jobs)), f"the smaller of: {reason}", env))
    return tuple(settings), tuple(warnings)
