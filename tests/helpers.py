"""Small builders shared by the tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from uvx_llm import actions, cli, machine, patch, plan, project

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pkgindex import PackageIndex

    from uvx_llm.catalog import Catalog, Pair

REAL_WORLD = Path(__file__).parent / "fixtures" / "real-world"
STANDINS = Path(__file__).parent / "standins"


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
    prefer: str = "newest",  # the compile path; tests of the prebuilt route ask for "prebuilt"
) -> actions.Plan:
    from uvx_llm import config  # noqa: PLC0415 - keeps the import list of helpers short

    request = actions.Request(
        backend=config.Setting(backend, "--backend" if backend != "auto" else "default"),
        force=force,
        prefer=prefer,
    )
    return plan.make(machine=target, project=project_, catalog=cat, request=request)


def applied(project_: project.Project, made: actions.Plan) -> project.Project:
    """The project as it reads after writing ``made``."""
    text = patch.render(project_, made.actions)
    return project.parse(patch.encode(project_, text), project_.path)


# --- the command line, in-process and as a process -------------------------------------------

GOOD = '[project]\nname = "app"\nversion = "0.1.0"\ndependencies = [\n    "vllm==0.10.2",  # serving\n]\n'


def run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as done:
        cli.run(argv)
    code = done.value.code
    assert isinstance(code, int)
    return code


def uv_binary() -> str:
    from uv import find_uv_bin  # noqa: PLC0415 - the uv wheel the dev group installs

    return find_uv_bin()


def write_project(folder: Path, *deps: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    listed = ", ".join(f'"{d}"' for d in deps)
    (folder / "pyproject.toml").write_text(
        f'[project]\nname = "app"\nversion = "0.1.0"\nrequires-python = ">=3.10"\ndependencies = [{listed}]\n\n[tool.uv]\npackage = false\n',
        encoding="utf-8",
    )
    return folder


def environment(index: PackageIndex, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "UV": uv_binary(),
            "UV_DEFAULT_INDEX": index.url("/simple"),
            "LLM_SYNC_TORCH_INDEX_URL": index.url("/whl"),
            # The stand-in flash-attn is an sdist: tests of the compile path take the newest
            # torch; the prebuilt route's tests set "prebuilt" and a loopback release host.
            "LLM_SYNC_PREFER": "newest",
            # The base interpreter: a build environment made from a virtual
            # environment's interpreter does not see its build dependencies.
            "UV_PYTHON": str(
                Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
            ),
        }
    )
    env.update(extra)
    return env


def llm_sync(args: Sequence[str], *, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "uvx_llm", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def installed_version(project: Path, package: str) -> str | None:
    found = list(project.glob(f".venv/lib/python*/site-packages/{package}/__init__.py"))
    if not found:
        return None
    namespace: dict[str, str] = {}
    exec(found[0].read_text(encoding="utf-8"), namespace)  # noqa: S102 - our own stand-in wheel's one line
    return namespace["__version__"]


# --- stand-in toolkits and compilers ----------------------------------------------------------


def make_toolkit(root: Path, *, release: str, header_line: str | None, layout: str = "include/crt") -> Path:
    """A CUDA toolkit folder for a release this machine does not have: an nvcc that
    answers --version as that release does, and its host_config.h's GCC check."""
    make_compiler(root / "bin", "nvcc", f"Cuda compilation tools, release {release}, V{release}.0")
    if header_line is not None:
        (root / layout).mkdir(parents=True)
        (root / layout / "host_config.h").write_text(
            f"#if defined(__GNUC__)\n#if __GNUC__ > 11\n#error -- {header_line} The nvcc flag ...\n#endif\n#endif\n",
            encoding="utf-8",
        )
    return root


def make_compiler(folder: Path, name: str, first_line: str) -> Path:
    """A program that answers `--version` (any arguments) with one line."""
    folder.mkdir(parents=True, exist_ok=True)
    compiler = folder / name
    compiler.write_text(f"#!/bin/sh\necho '{first_line}'\n", encoding="utf-8")
    compiler.chmod(0o755)
    return compiler
