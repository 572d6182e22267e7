"""Small builders shared by the tests."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from uvx_llm import machine, patch, plan, project

if TYPE_CHECKING:
    from uvx_llm.catalog import Catalog, Pair


def gpu_machine(cuda: Pair | None, *caps: Pair, driver: str | None = None) -> machine.Machine:
    gpus = tuple(machine.Gpu(index=i, name=f"GPU sm_{c[0]}{c[1]}", capability=c) for i, c in enumerate(caps))
    return machine.Machine(
        system="linux", source="test", driver_version=driver, cuda_max=cuda, cuda_source="test", gpus=gpus
    )


H200 = gpu_machine((13, 0), (9, 0), driver="580.159.04")
NO_GPU = machine.Machine(system="linux", source="none")


def proj(text: str, path: Path = Path("pyproject.toml")) -> project.Project:
    return project.parse(text.encode(), path)


def simple(*deps: str, extra: str = "") -> project.Project:
    lines = ",\n".join(f'    "{d}"' for d in deps)
    return proj(f'[project]\nname = "demo"\nversion = "0"\ndependencies = [\n{lines},\n]\n{extra}')


def make(
    project_: project.Project,
    cat: Catalog,
    target: machine.Machine | None = H200,
    *,
    backend: str = "auto",
    force: bool = False,
) -> plan.Plan:
    from uvx_llm import config  # noqa: PLC0415 - keeps the import list of helpers short

    request = plan.Request(
        backend=config.Setting(backend, "--backend" if backend != "auto" else "default"), force=force
    )
    return plan.make(machine=target, project=project_, catalog=cat, request=request)


def applied(project_: project.Project, made: plan.Plan) -> project.Project:
    """The project as it reads after writing ``made``."""
    text = patch.render(project_, made.actions)
    return project.parse(patch.encode(project_, text), project_.path)
