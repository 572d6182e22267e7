"""Compile once per team: two machines (two uv caches) sharing a wheelhouse folder, with the real uv."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import TYPE_CHECKING

import pytest
from helpers import environment, llm_sync, uv_binary, write_project

from uvx_llm import wheelhouse

if TYPE_CHECKING:
    from pathlib import Path

    from pkgindex import PackageIndex

pytestmark = pytest.mark.uv


def builds(record: Path) -> list[dict[str, object]]:
    if not record.exists():
        return []
    return [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]


def machine(tmp_path: Path, name: str, index: PackageIndex, record: Path, **extra: str) -> dict[str, str]:
    """One machine: its own uv cache; the team's wheelhouse and the build record are shared."""
    return environment(
        index, UV_CACHE_DIR=str(tmp_path / f"{name}-cache"), LLM_SYNC_TEST_RECORD=str(record), **extra
    )


def test_a_second_machine_installs_the_first_machines_build_without_compiling(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    record, house = tmp_path / "builds.jsonl", tmp_path / "shared" / "wheels"
    first = write_project(tmp_path / "first", "flash-attn")
    result = llm_sync(
        ["-v", "--cuda", "12.8", "--arch", "9.0", "--no-build-check", "--wheelhouse", str(house)],
        env=machine(tmp_path, "first", package_index, record),
        cwd=first,
    )
    assert result.returncode == 0, result.stderr
    assert len(builds(record)) == 1
    shared = sorted(p.relative_to(house).as_posix() for p in house.glob("*/*/*/*/*"))
    assert shared == ["flash-attn/9.9.9/torch-2.9.0+cu128/sm_90/py3.11"], shared
    assert "wheelhouse: shared flash-attn/9.9.9/torch-2.9.0+cu128/sm_90/py3.11" in result.stderr

    # The teammate's clone: the same pyproject.toml and uv.lock, an empty uv cache, the setting
    # from the environment. Nothing is compiled, and uv.lock is the same file: no wheelhouse path in it.
    second = tmp_path / "second"
    second.mkdir()
    for name in ("pyproject.toml", "uv.lock"):
        shutil.copy(first / name, second / name)
    lock_before = (second / "uv.lock").read_bytes()
    env = machine(tmp_path, "second", package_index, record, LLM_SYNC_WHEELHOUSE=str(house))
    again = llm_sync(["-v", "--cuda", "12.8", "--arch", "9.0", "--no-build-check"], env=env, cwd=second)
    assert again.returncode == 0, again.stderr
    assert len(builds(record)) == 1, "the second machine compiled"
    assert "uv installs it, no compile" in again.stderr
    assert (second / "uv.lock").read_bytes() == lock_before
    assert str(house) not in lock_before.decode()

    # Plain uv on the second machine keeps the shared build: a registry install, not a direct URL.
    plain = subprocess.run(
        [uv_binary(), "sync", "--check"], env=env, cwd=second, capture_output=True, text=True, check=False
    )
    assert plain.returncode == 0, plain.stderr
    ran = subprocess.run(
        [uv_binary(), "run", "python", "-c", "import flash_attn"],
        env=env,
        cwd=second,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert len(builds(record)) == 1


def test_other_gpus_compile_and_a_teammate_without_the_wheelhouse_still_syncs(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    record, house = tmp_path / "builds.jsonl", tmp_path / "wheels"
    first = write_project(tmp_path / "first", "flash-attn")
    env = machine(tmp_path, "first", package_index, record, LLM_SYNC_WHEELHOUSE=str(house))
    assert (
        llm_sync(["--cuda", "12.8", "--arch", "9.0", "--no-build-check"], env=env, cwd=first).returncode == 0
    )

    # An A100 joins: the team's set widens to 8.0;9.0, a new key; it compiles once and shares that.
    a100 = tmp_path / "a100"
    a100.mkdir()
    for name in ("pyproject.toml", "uv.lock"):
        shutil.copy(first / name, a100 / name)
    env = machine(tmp_path, "a100", package_index, record, LLM_SYNC_WHEELHOUSE=str(house))
    assert (
        llm_sync(["--cuda", "12.8", "--arch", "8.0", "--no-build-check"], env=env, cwd=a100).returncode == 0
    )
    assert [b["FLASH_ATTN_CUDA_ARCHS"] for b in builds(record)] == ["90", "80;90"]
    assert (house / "flash-attn/9.9.9/torch-2.9.0+cu128/sm_80-sm_90/py3.11").is_dir()

    # A teammate with neither the wheelhouse nor a cache: plain `uv sync --locked` builds, as before.
    laptop = tmp_path / "laptop"
    laptop.mkdir()
    for name in ("pyproject.toml", "uv.lock"):
        shutil.copy(a100 / name, laptop / name)
    plain = subprocess.run(
        [uv_binary(), "sync", "--locked"],
        env=machine(tmp_path, "laptop", package_index, record),
        cwd=laptop,
        capture_output=True,
        text=True,
        check=False,
    )
    assert plain.returncode == 0, plain.stderr
    assert len(builds(record)) == 3


def test_keys_and_python_of_a_venv(tmp_path: Path) -> None:
    key = wheelhouse.Key("Flash_Attn", "2.8.3", "2.9.0+cu128", ((8, 0), (9, 0)), "3.12")
    assert str(key) == "flash-attn/2.8.3/torch-2.9.0+cu128/sm_80-sm_90/py3.12"
    venv = tmp_path / ".venv"
    venv.mkdir()
    assert wheelhouse.python_of_venv(venv) is None
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\nversion_info = 3.12.4\n", encoding="utf-8")
    assert wheelhouse.python_of_venv(venv) == "3.12"
    assert wheelhouse.export(cache=tmp_path / "cache", house=tmp_path / "house", key=key) is None
