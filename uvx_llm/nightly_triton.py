"""The Triton a nightly torch needs. Pure: the project and the plan's choices in, actions out.

A nightly torch pins its Triton build exactly (`pytorch-triton==3.6.0+git…; platform_system ==
"Linux"`; `pytorch-triton-rocm` and `pytorch-triton-xpu` for ROCm and xpu), and publishes it on
the nightly index alone: PyPI's `pytorch-triton` is an empty placeholder. uv applies
[tool.uv.sources] to direct dependencies only, so a source for torch's nightly index does not
reach it: llm-sync declares it beside torch (Linux only, unpinned: torch's pin chooses the
version) and routing.py routes it with torch. Leaving the nightly channel, the plan warns with
the fix instead of removing a requirement from the project's lists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from uvx_llm.actions import AddRequirement
from uvx_llm.catalog import XPU

if TYPE_CHECKING:
    from uvx_llm.actions import Builder
    from uvx_llm.catalog import Catalog
    from uvx_llm.project import DepList, Project

NIGHTLY = "nightly"
CPU = "cpu"
LINUX = "sys_platform == 'linux'"
TRITON = {"cuda": "pytorch-triton", "rocm": "pytorch-triton-rocm", XPU: "pytorch-triton-xpu"}


def name_for(backend: str, catalog: Catalog) -> str | None:
    """The nightly Triton of a backend's torch (None: a CPU torch needs none)."""
    if backend == CPU:
        return None
    return TRITON[XPU if backend == XPU else "rocm" if catalog.is_rocm(backend) else "cuda"]


def _indexes(value: Any) -> list[str]:
    entries = value if isinstance(value, list) else [value]
    return [str(e.get("index", "")) for e in entries if isinstance(e, dict)]


def _left_behind(project: Project, out: Builder) -> None:
    declared = project.declared()
    for name in TRITON.values():
        nightly = [i for i in _indexes(project.uv_sources.get(name)) if i.startswith(f"pytorch-{NIGHTLY}-")]
        if name in declared and nightly:
            out.warnings.append(
                f"{name} was declared for PyTorch's nightly channel and still comes from {nightly[0]}: remove it "
                "from the dependencies and from [tool.uv.sources], then `uv lock` (a release torch requires "
                "`triton` from PyPI, and both install the `triton` module)"
            )


def companion(
    *,
    backend: str,
    channel: str,
    lists: tuple[DepList, ...],
    catalog: Catalog,
    project: Project,
    out: Builder,
) -> str | None:
    """The nightly Triton to route beside torch, declared where torch is when it is not yet (None:
    none). Leaving the nightly channel, a warning with the fix for the one declared before."""
    if channel != NIGHTLY:
        _left_behind(project, out)
        return None
    name = name_for(backend, catalog)
    if name is None:
        return name
    if name not in project.declared():
        with_torch = [d for d in lists if "torch" in d.names()] or [
            d for d in lists if d.kind == "dependencies"
        ]
        target = with_torch[0] if with_torch else None
        out.actions.append(
            AddRequirement(
                target.kind if target else "dependencies",
                target.name if target else None,
                f"{name}; {LINUX}",
                target.member if target else None,
            )
        )
        out.decide(
            "torch dependency",
            f"add {name} ({LINUX})",
            f"a nightly torch pins {name} exactly, and only PyTorch's nightly index has it; uv applies "
            "[tool.uv.sources] only to direct dependencies, so it is declared, and routed with torch",
        )
    return name
