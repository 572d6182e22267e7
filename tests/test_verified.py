"""Plans the resolver agrees with: bounds uv must respect, the lock checked before installing.

An index of its own, with the shape of the real metadata that broke unbounded
plans: a torch release no vllm pins yet, and a 2023 vllm that pins no torch at all.
"""

from __future__ import annotations

import contextlib
import subprocess
from typing import TYPE_CHECKING

import pytest
from helpers import STANDINS, environment, installed_version, llm_sync, uv_binary, write_project
from pkgindex import PackageIndex, serve

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.uv


@pytest.fixture(scope="module")
def real_shape_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    index = PackageIndex(tmp_path_factory.mktemp("real-shape"))
    for version in ("2.9.0", "2.11.0", "2.15.0"):
        index.add("/whl/cu130", "torch", f"{version}+cu130")
        index.add("/whl/cpu", "torch", f"{version}+cpu")
    index.add("/simple", "vllm", "0.1.2")  # pins no torch: satisfies any unbounded plan
    # Built against PyPI's torch 2.9.0 (CUDA 12.8): it must not pair with a cu130 torch.
    index.add("/simple", "vllm", "0.11.2", requires=["torch==2.9.0"])
    index.add("/simple", "vllm", "0.24.0", requires=["torch==2.11.0"])  # CUDA 13.0, like torch 2.11
    index.add("/simple", "evalkit", "1.0", requires=["vllm"])  # brings vllm without naming a torch
    index.add("/simple", "rlkit", "1.0", requires=["flash-attn==9.9.9"])  # a framework pinning flash-attn
    index.add("/simple", "rlkit", "0.9", requires=["flash-attn==9.9.8"])  # its older release, another pin
    index.add_sdist("/simple", "flash-attn", "9.9.8", backend=STANDINS / "recording_backend.py")
    for need in ("ninja", "packaging", "psutil"):
        index.add("/simple", need, "1.0")
    index.add_sdist("/simple", "flash-attn", "9.9.9", backend=STANDINS / "recording_backend.py")
    with contextlib.contextmanager(serve)(index) as served:
        yield served


def test_unbounded_uv_falls_back_to_a_vllm_that_pins_no_torch(
    real_shape_index: PackageIndex, tmp_path: Path
) -> None:
    """The failure the bounds exist for, with the real uv and no llm-sync bounds."""
    project = write_project(tmp_path / "app", "vllm", "torch")
    text = (project / "pyproject.toml").read_text(encoding="utf-8")
    url = real_shape_index.url("/whl/cu130")
    (project / "pyproject.toml").write_text(
        text
        + f'\n[[tool.uv.index]]\nname = "cu130"\nurl = "{url}"\nexplicit = true\n\n'
        + '[tool.uv.sources]\ntorch = { index = "cu130" }\n',
        encoding="utf-8",
    )
    env = environment(real_shape_index)
    locked = subprocess.run(
        [uv_binary(), "lock"], env=env, cwd=project, capture_output=True, text=True, check=False
    )
    assert locked.returncode == 0, locked.stderr
    lock = (project / "uv.lock").read_text(encoding="utf-8")
    assert 'name = "vllm"\nversion = "0.1.2"' in lock


def test_llm_sync_bounds_vllm_to_releases_that_pin_a_torch_of_the_plan(
    real_shape_index: PackageIndex, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "app", "vllm")
    env = environment(real_shape_index)
    result = llm_sync(["--cuda", "13.0", "--arch", "10.0"], env=env, cwd=project)
    assert result.returncode == 0, result.stderr
    assert installed_version(project, "vllm") == "0.24.0"
    assert installed_version(project, "torch") == "2.11.0+cu130"
    text = (project / "pyproject.toml").read_text(encoding="utf-8")
    assert "# llm-sync: bound:" in text


def vllm_kept_out_of_the_plan(tmp_path: Path) -> Path:
    """A project whose own constraint keeps uv from every vllm the plan allows."""
    project = write_project(tmp_path / "app", "vllm")
    text = (project / "pyproject.toml").read_text(encoding="utf-8")
    (project / "pyproject.toml").write_text(
        text.replace("package = false", 'package = false\nconstraint-dependencies = ["vllm<0.5"]'),
        encoding="utf-8",
    )
    return project


def test_a_lock_outside_the_plan_stops_before_installing(
    real_shape_index: PackageIndex, tmp_path: Path
) -> None:
    project = vllm_kept_out_of_the_plan(tmp_path)
    env = environment(real_shape_index)
    result = llm_sync(["--cuda", "13.0", "--arch", "10.0"], env=env, cwd=project)
    assert result.returncode == 1, result.stderr
    assert "uv locked a stack the plan does not allow" in result.stderr
    assert "vllm 0.1.2 is older than any vllm release llm-sync knows" in result.stderr
    assert "fix:" in result.stderr
    assert not (project / "uv.lock").exists()  # put back as it was: there was none
    assert not (project / ".venv").exists()  # nothing installed


def test_a_frozen_sync_skips_the_lock_and_uses_the_one_there(
    real_shape_index: PackageIndex, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "app", "vllm")
    env = environment(real_shape_index)
    assert llm_sync(["--cuda", "13.0", "--arch", "10.0", "--no-sync"], env=env, cwd=project).returncode == 0
    result = llm_sync(["--cuda", "13.0", "--arch", "10.0", "--", "--frozen"], env=env, cwd=project)
    # No lock yet and --frozen: uv itself refuses, llm-sync passes its code on.
    assert result.returncode != 0
    assert "uv.lock" in result.stderr


def test_plan_resolve_shows_the_locked_stack_and_writes_nothing(
    real_shape_index: PackageIndex, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "app", "vllm")
    env = environment(real_shape_index)
    assert llm_sync(["--cuda", "13.0", "--arch", "10.0", "--no-sync"], env=env, cwd=project).returncode == 0
    subprocess.run([uv_binary(), "lock"], env=env, cwd=project, check=True, capture_output=True)
    before = {p.name: p.read_bytes() for p in project.iterdir() if p.is_file()}
    result = llm_sync(["plan", "--resolve", "--cuda", "13.0", "--arch", "10.0"], env=env, cwd=project)
    assert result.returncode == 0, result.stderr
    assert "linux (Python 3.10): torch 2.11.0+cu130, vllm 0.24.0" in result.stdout
    assert "macos (Python 3.10): torch 2.11.0+cpu, vllm 0.24.0" in result.stdout
    assert "the lock agrees with the plan" in result.stdout
    assert {p.name: p.read_bytes() for p in project.iterdir() if p.is_file()} == before
    assert not (project / ".venv").exists()


def test_plan_resolve_exits_1_when_the_lock_leaves_the_plan(
    real_shape_index: PackageIndex, tmp_path: Path
) -> None:
    import json  # noqa: PLC0415 - only this test reads the document

    project = vllm_kept_out_of_the_plan(tmp_path)
    env = environment(real_shape_index)
    result = llm_sync(
        ["plan", "--json", "--resolve", "--cuda", "13.0", "--arch", "10.0"], env=env, cwd=project
    )
    assert result.returncode == 1, result.stderr
    resolved = json.loads(result.stdout)["resolved"]
    assert resolved["ok"] is False
    assert resolved["stacks"]["linux"]["vllm"] == "0.1.2"
    assert any("vllm 0.1.2 is older" in p for p in resolved["problems"])
    assert not (project / "uv.lock").exists()


def test_a_pinless_release_reached_through_another_package_is_fenced_off_and_locked_again(
    real_shape_index: PackageIndex, tmp_path: Path
) -> None:
    """vllm arrives through a package the plan does not bound: uv falls back to vllm 0.1.2 next
    to torch 2.15; llm-sync writes a floor at the oldest vllm it knows and locks again."""
    project = write_project(tmp_path / "app", "evalkit", "torch")
    env = environment(real_shape_index)
    result = llm_sync(["--cuda", "13.0", "--arch", "10.0"], env=env, cwd=project)
    assert result.returncode == 0, result.stderr
    assert "wrote vllm>=0.6.0, locking again" in result.stderr
    assert installed_version(project, "vllm") == "0.24.0"
    assert installed_version(project, "torch") == "2.11.0+cu130"
    text = (project / "pyproject.toml").read_text(encoding="utf-8")
    assert '"vllm>=0.6.0", # llm-sync: bound: releases before 0.6.0 pin no torch' in text
    again = llm_sync(["check"], env=env, cwd=project)
    assert again.returncode == 0, again.stderr  # the floor is kept, not churned


def test_a_cuda_build_a_framework_brings_to_macos_is_fenced_at_the_frameworks_own_pin(
    real_shape_index: PackageIndex, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "app", "rlkit", "torch")
    env = environment(real_shape_index)
    args = ["--cuda", "13.0", "--arch", "10.0", "--", "--no-install-package", "flash-attn"]
    result = llm_sync(args, env=env, cwd=project)
    assert result.returncode == 0, result.stderr
    text = (project / "pyproject.toml").read_text(encoding="utf-8")
    assert "\"flash-attn==9.9.9 ; sys_platform == 'linux'\", # llm-sync: CUDA-only" in text
    lock = (project / "uv.lock").read_text(encoding="utf-8")
    from uvx_llm import lockfile  # noqa: PLC0415 - only this test reads the lock

    packages = lockfile.parse(lock)
    assert lockfile.stack(packages, platform="macos", python="3.10").get("flash-attn") is None
    assert lockfile.stack(packages, platform="linux", python="3.10").get("flash-attn") is not None
    again = llm_sync(args, env=env, cwd=project)
    assert again.returncode == 0, again.stderr
    assert (project / "pyproject.toml").read_text(encoding="utf-8") == text  # re-read, unchanged
    assert llm_sync(["check"], env=env, cwd=project).returncode == 0


def test_the_fence_follows_the_frameworks_pin_when_the_framework_moves(
    real_shape_index: PackageIndex, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "app", "rlkit==0.9", "torch")
    env = environment(real_shape_index)
    args = ["--cuda", "13.0", "--arch", "10.0", "--", "--no-install-package", "flash-attn"]
    assert llm_sync(args, env=env, cwd=project).returncode == 0
    assert "flash-attn==9.9.8 ; sys_platform == 'linux'" in (project / "pyproject.toml").read_text(
        encoding="utf-8"
    )
    text = (project / "pyproject.toml").read_text(encoding="utf-8").replace("rlkit==0.9", "rlkit==1.0")
    (project / "pyproject.toml").write_text(text, encoding="utf-8")
    moved = llm_sync(args, env=env, cwd=project)
    assert moved.returncode == 0, moved.stderr
    after = (project / "pyproject.toml").read_text(encoding="utf-8")
    assert "flash-attn==9.9.9 ; sys_platform == 'linux'" in after
    assert "flash-attn==9.9.8" not in after
