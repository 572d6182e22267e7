"""A nightly torch's Triton: pinned exactly by torch, published only on the nightly index. The real
uv on the loopback index shows the problem (a source for torch does not reach its dependency)
and that llm-sync's plan (declare pytorch-triton beside torch, route it with torch) locks."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import pytest
from helpers import (
    H200,
    environment,
    installed_version,
    llm_sync,
    make,
    proj,
    simple,
    uv_binary,
    write_project,
)

from uvx_llm.actions import AddRequirement, SetSource

if TYPE_CHECKING:
    from pathlib import Path

    from pkgindex import PackageIndex

    from uvx_llm.catalog import Catalog

TRITON = "3.6.0+git1b0418a9"
PIN = f"pytorch-triton=={TRITON}; sys_platform == 'linux'"


def nightly(package_index: PackageIndex) -> None:
    """The nightly indexes as PyTorch lays them out, and PyPI's empty pytorch-triton placeholder."""
    package_index.add("/whl/nightly/cu128", "torch", "2.16.0.dev20261120+cu128", requires=[PIN])
    package_index.add("/whl/nightly/cu128", "pytorch-triton", TRITON)
    package_index.add("/whl/nightly/cpu", "torch", "2.16.0.dev20261120+cpu")
    package_index.add("/simple", "pytorch-triton", "0.0.1")


def _nightly(cat: Catalog, text: str, backend: str = "auto") -> list[object]:
    from uvx_llm import config  # noqa: PLC0415 - only these tests build a request by hand
    from uvx_llm import plan as plan_module  # noqa: PLC0415
    from uvx_llm.actions import Request  # noqa: PLC0415

    request = Request(
        channel=config.Setting("nightly", "--channel"), backend=config.Setting(backend, "--backend")
    )
    made = plan_module.make(machine=H200, project=proj(text), catalog=cat, request=request)
    return list(made.actions)


def test_a_nightly_cuda_plan_declares_and_routes_pytorch_triton(cat: Catalog) -> None:
    actions = _nightly(cat, _TORCH)
    assert AddRequirement("dependencies", None, "pytorch-triton; sys_platform == 'linux'") in actions
    sources = {a.package: a.value for a in actions if isinstance(a, SetSource)}
    assert sources["pytorch-triton"] == sources["torch"]


def test_a_nightly_rocm_plan_routes_pytorch_triton_rocm(cat: Catalog) -> None:
    actions = _nightly(cat, _TORCH, backend="rocm6.3")
    assert AddRequirement("dependencies", None, "pytorch-triton-rocm; sys_platform == 'linux'") in actions


def test_cpu_and_stable_need_no_triton_from_pytorch(cat: Catalog) -> None:
    assert not [a for a in _nightly(cat, _TORCH, backend="cpu") if isinstance(a, AddRequirement)]
    stable = make(simple("torch"), cat, H200)
    assert "pytorch-triton" not in {a.package for a in stable.actions if isinstance(a, SetSource)}


def test_leaving_the_nightly_channel_warns_with_the_fix(cat: Catalog) -> None:
    text = (
        _TORCH.replace('["torch"]', '["torch", "pytorch-triton; sys_platform == \'linux\'"]')
        + '\n[[tool.uv.index]]\nname = "pytorch-nightly-cu128"\nurl = "https://download.pytorch.org/whl/nightly/cu128"\n'
        + 'explicit = true\n\n[tool.uv.sources]\npytorch-triton = [{ index = "pytorch-nightly-cu128", marker = "sys_platform == \'linux\'" }]\n'
    )
    made = make(proj(text), cat, H200)
    [warning] = [w for w in made.warnings if "pytorch-triton" in w]
    assert (
        "still comes from pytorch-nightly-cu128: remove it from the dependencies and from [tool.uv.sources]"
        in (warning)
    )


_TORCH = '[project]\nname = "app"\nversion = "0.1.0"\nrequires-python = ">=3.10"\ndependencies = ["torch"]\n'


@pytest.mark.uv
def test_routing_torch_alone_does_not_reach_pytorch_triton(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    """The premise, with uv alone: torch's source does not apply to its dependency."""
    nightly(package_index)
    project = write_project(tmp_path / "app", "torch")
    with (project / "pyproject.toml").open("a", encoding="utf-8") as handle:
        handle.write(
            '\n[[tool.uv.index]]\nname = "pytorch-nightly-cu128"\n'
            f'url = "{package_index.url("/whl/nightly/cu128")}"\nexplicit = true\n\n'
            '[tool.uv.sources]\ntorch = { index = "pytorch-nightly-cu128" }\n'
        )
    result = subprocess.run(
        [uv_binary(), "lock", "--prerelease", "allow"],
        cwd=project,
        env=environment(package_index),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode != 0
    assert "pytorch-triton" in result.stderr


@pytest.mark.uv
def test_a_nightly_cuda_project_locks_pytorch_triton_from_the_nightly_index(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    nightly(package_index)
    project = write_project(tmp_path / "app", "torch")
    env = environment(package_index)
    result = llm_sync(["--channel", "nightly", "--cuda", "12.8", "--arch", "9.0"], env=env, cwd=project)
    assert result.returncode == 0, result.stderr
    assert installed_version(project, "torch") == "2.16.0.dev20261120+cu128"
    lock = (project / "uv.lock").read_text(encoding="utf-8")
    assert f'name = "pytorch-triton"\nversion = "{TRITON}"' in lock
    assert "/whl/nightly/cu128" in lock.split('name = "pytorch-triton"')[1].split("[[package]]")[0]
    text = (project / "pyproject.toml").read_text(encoding="utf-8")
    assert "\"pytorch-triton; sys_platform == 'linux'\"" in text
    again = llm_sync(["--channel", "nightly", "--cuda", "12.8", "--arch", "9.0"], env=env, cwd=project)
    assert again.returncode == 0, again.stderr
    assert (project / "pyproject.toml").read_text(encoding="utf-8") == text  # nothing more to add
