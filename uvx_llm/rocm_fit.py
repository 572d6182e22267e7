"""Which PyTorch ROCm or xpu build fits an AMD or Intel machine. Pure, no I/O.

A ROCm variant runs where the installed ROCm release is at least the one its wheels bundle
(llm-sync's rule, docs/decisions.md "ROCm") and every GPU's gfx target is in its
PYTORCH_ROCM_ARCH list: gfx code is not forward compatible, unlike CUDA's sm_XY within a
major. The newest such variant of the torch releases the project allows wins.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from packaging.version import InvalidVersion, Version

from uvx_llm.catalog import XPU, Catalog, TorchRelease
from uvx_llm.errors import LlmSyncError
from uvx_llm.torch_fit import Fit

if TYPE_CHECKING:
    from uvx_llm.machine import Machine
    from uvx_llm.torch_fit import TorchScope

VLLM_ON_ROCM = (
    "vllm's PyPI wheels are CUDA builds: on ROCm, vllm comes from AMD's ROCm builds (docker images, "
    "a source build with VLLM_TARGET_DEVICE=rocm), not from PyPI"
)


def _span(releases: tuple[TorchRelease, ...]) -> str:
    first, last = releases[0].release, releases[-1].release
    return f"torch {first}" if first == last else f"torch {first}–{last}"


def _runtime_problem(variant: str, machine: Machine, catalog: Catalog) -> str | None:
    if machine.rocm is None:
        return None
    needed = catalog.rocm_of(variant)
    have = _version(machine.rocm)
    if have is not None and needed > have:
        return f"needs ROCm {needed}, this machine has ROCm {machine.rocm}"
    return None


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def evaluate_rocm(
    variant: str, machine: Machine | None, releases: tuple[TorchRelease, ...], catalog: Catalog, scope: str
) -> Fit:
    with_variant = tuple(r for r in releases if r.gfx(variant) is not None)
    if not with_variant:
        return Fit(variant, (), (f"not built for {scope}",))
    if machine is None:
        return Fit(variant, with_variant, ())
    if machine.has_nvidia and not machine.has_amd:
        return Fit(variant, with_variant, ("an AMD build; this machine has NVIDIA GPUs",))
    problems = []
    runtime = _runtime_problem(variant, machine, catalog)
    if runtime:
        problems.append(runtime)
    targets = machine.gfx_targets if machine.archs_known else ()
    covering = tuple(r for r in with_variant if set(targets) <= set(r.gfx(variant) or ()))
    if not covering:
        listed = with_variant[-1].gfx(variant) or ()
        missing = sorted(set(targets) - set(listed))
        problems.append(f"{', '.join(missing)} not in its arch list ({' '.join(listed)})")
    return Fit(variant, covering or with_variant, tuple(problems))


def evaluate_xpu(machine: Machine | None, releases: tuple[TorchRelease, ...], scope: str) -> Fit:
    with_xpu = tuple(r for r in releases if r.xpu)
    if not with_xpu:
        return Fit(XPU, (), (f"not built for {scope}",))
    if machine is not None and not machine.intel and (machine.has_nvidia or machine.has_amd):
        vendor = "NVIDIA" if machine.has_nvidia else "AMD"
        return Fit(XPU, with_xpu, (f"an Intel GPU build; this machine has {vendor} GPUs",))
    return Fit(XPU, with_xpu, ())


def evaluate(
    variant: str, machine: Machine | None, releases: tuple[TorchRelease, ...], catalog: Catalog, scope: str
) -> Fit:
    """A ROCm or xpu variant's fit (see torch_fit.evaluate for CUDA)."""
    if variant == XPU:
        return evaluate_xpu(machine, releases, scope)
    return evaluate_rocm(variant, machine, releases, catalog, scope)


def _reason(fit: Fit, machine: Machine, newer: Fit | None) -> str:
    runtime = (
        f"ROCm {machine.rocm} ({machine.rocm_source}) runs ROCm ≤ {machine.rocm} builds"
        if machine.rocm
        else "ROCm release not checked"
    )
    targets = machine.gfx_targets if machine.archs_known else ()
    archs = f"{' '.join(targets)} in its arch list" if targets else "GPU architectures not checked"
    reason = f"{runtime}; {archs}; {_span(fit.releases)}"
    if newer is not None and newer.problems:
        reason += f"; not {newer.variant}: {newer.problems[0]}"
    return reason


def choose_rocm(machine: Machine, scope: TorchScope, catalog: Catalog) -> tuple[str, str, tuple[str, ...]]:
    """The newest ROCm variant this machine runs that covers its GPUs and the torch scope:
    (variant, reason, warnings)."""
    warnings = (VLLM_ON_ROCM,) if scope.vllm else ()
    fits = [
        evaluate_rocm(v, machine, scope.releases, catalog, scope.description) for v in catalog.rocm_variants
    ]
    built = [f for f in fits if f.releases]
    for position, fit in enumerate(built):
        if fit.ok:
            newer = built[position - 1] if position else None
            return fit.variant, _reason(fit, machine, newer), warnings
    raise _no_rocm_fit(machine, scope, built, catalog)


def _no_rocm_fit(machine: Machine, scope: TorchScope, built: list[Fit], catalog: Catalog) -> LlmSyncError:
    why = "; ".join(f"{f.variant}: {f.problems[0]}" for f in built) or f"no ROCm build of {scope.description}"
    suggestions = []
    unlimited = dataclasses.replace(machine, rocm=None)
    # The smallest ROCm update that would do: the oldest variant that fits without the runtime limit.
    for variant in reversed(catalog.rocm_variants):
        fit = evaluate_rocm(variant, unlimited, scope.releases, catalog, scope.description)
        if fit.ok:
            suggestions.append(
                f"install ROCm ≥ {catalog.rocm_of(variant)} for {variant} ({_span(fit.releases)})"
            )
            break
    else:
        newest = [r for r in catalog.torch if r.rocm]
        if newest and machine.gfx_targets:
            suggestions.append(
                f"allow a torch release whose ROCm builds include {' '.join(machine.gfx_targets)} "
                "(the project asks for " + scope.description + ")"
            )
    suggestions.append("use --backend cpu")
    return LlmSyncError(
        "no PyTorch ROCm build fits this machine and project",
        why=why,
        fix="; or ".join(suggestions),
    )


def choose_xpu(machine: Machine, scope: TorchScope) -> tuple[str, str]:
    fit = evaluate_xpu(machine, scope.releases, scope.description)
    if not fit.ok:
        raise LlmSyncError(
            "no PyTorch xpu build fits this project",
            why=f"xpu: {fit.problems[0]}",
            fix="allow torch 2.5 or newer (the first release with xpu wheels), or use --backend cpu",
        )
    gpus = ", ".join(g.name for g in machine.intel if not g.integrated) or "an Intel GPU"
    return XPU, f"{gpus} on the i915/xe driver; {_span(fit.releases)} has xpu wheels"
