"""The prebuilt route end to end: llm-sync, the real uv, a loopback GitHub release host."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import pytest
from helpers import environment, installed_version, llm_sync, write_project
from pkgindex import PackageIndex, serve

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.uv

RELEASE = "/Dao-AILab/flash-attention/releases/download/v2.8.3.post1"
PYTHONS = ("310", "311", "312", "313")  # torch 2.8 has wheels for 3.9-3.13; the project says >=3.10


def asset(py: str) -> str:
    return f"flash_attn-2.8.3.post1+cu12torch2.8cxx11abiTRUE-cp{py}-cp{py}-linux_x86_64.whl"


@pytest.fixture(scope="module")
def release_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    """Plays github.com: stand-in wheels under flash-attn's real release asset names."""
    host = PackageIndex(tmp_path_factory.mktemp("github"))
    for py in PYTHONS:
        host.add_release_wheel(f"{RELEASE}/{asset(py)}", "flash-attn", "2.8.3.post1")
    with contextlib.contextmanager(serve)(host) as served:
        yield served


def prebuilt_environment(
    package_index: PackageIndex, release_host: PackageIndex, record: Path
) -> dict[str, str]:
    """Release wheels preferred, from the loopback release host; builds recorded in ``record``."""
    return environment(
        package_index,
        LLM_SYNC_PREFER="prebuilt",
        LLM_SYNC_PREBUILT_URL=release_host.base_url,
        LLM_SYNC_TEST_RECORD=str(record),
    )


def records(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def test_a_fitting_release_wheel_is_locked_with_its_hash_and_nothing_is_built(
    package_index: PackageIndex, release_host: PackageIndex, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "app", "torch", "flash-attn")
    record = tmp_path / "builds.jsonl"
    env = prebuilt_environment(package_index, release_host, record)
    # No --no-build-check and no nvcc here: nothing is built, so no toolkit is needed.
    result = llm_sync(["-v", "--cuda", "12.8", "--arch", "9.0"], env=env, cwd=project)
    assert result.returncode == 0, result.stderr
    assert "flash-attn 2.8.3.post1 from" in result.stderr
    assert (
        "torch 2.8 (+cu128) → prebuilt flash-attn, seconds; torch 2.11 (+cu128) → compile, about"
        in result.stderr
    )
    assert installed_version(project, "torch") == "2.8.0+cu128"
    assert installed_version(project, "flash_attn") == "2.8.3.post1"
    assert records(record) == []  # the stand-in sdist was never built
    text = (project / "pyproject.toml").read_text(encoding="utf-8")
    assert "flash-attn ; sys_platform == 'linux'" in text  # the Mac side is untouched
    assert '"torch>=2.8,<2.9", # llm-sync: bound' in text
    assert "match-runtime" not in text  # no build settings: nothing to build
    lock = (project / "uv.lock").read_text(encoding="utf-8")
    for py in PYTHONS:
        url = f"{release_host.base_url}{RELEASE}/{asset(py)}".replace("+", "%2B")
        assert url in lock or url.replace("%2B", "+") in lock, py
    assert lock.count('hash = "sha256:') >= len(PYTHONS)
    assert 'version = "2.8.0+cpu"' in lock  # macOS laptops get CPU torch from the same lock
    assert any(path.endswith(asset("311")) for path in release_host.requests)

    # A second run keeps the file as it is.
    before = (project / "pyproject.toml").read_bytes()
    again = llm_sync(["--cuda", "12.8", "--arch", "9.0"], env=env, cwd=project)
    assert again.returncode == 0, again.stderr
    assert (project / "pyproject.toml").read_bytes() == before


def test_without_a_fitting_wheel_it_compiles_and_says_why(
    package_index: PackageIndex, release_host: PackageIndex, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "app", "torch>=2.9", "flash-attn")
    record = tmp_path / "builds.jsonl"
    env = prebuilt_environment(package_index, release_host, record)
    result = llm_sync(["-v", "--cuda", "12.8", "--arch", "9.0", "--no-build-check"], env=env, cwd=project)
    assert result.returncode == 0, result.stderr
    assert "none for flash-attn: compiles" in result.stderr
    assert "flash-attn 2.8.3.post1: no wheels for torch 2.11 (only 2.4, 2.5, 2.6, 2.7, 2.8)" in result.stderr
    assert len(records(record)) == 1  # built through the stand-in sdist
    assert installed_version(project, "flash_attn") == "9.9.9"
    assert "/releases/download/" not in (project / "pyproject.toml").read_text(encoding="utf-8")
