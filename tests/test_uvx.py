"""`uvx --from <path> llm-sync` on a fresh machine: a fresh uv cache and tool directory,
llm-sync's real dependencies served from the loopback index (repacked from this
environment), llm-sync built from the source tree by uv's built-in build backend."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import tomlkit
from pkgindex import PackageIndex, serve

from uvx_llm import __version__

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ("click", "tomlkit", "packaging", "nvidia-ml-py", "platformdirs", "structlog")

pytestmark = pytest.mark.uv


@pytest.fixture(scope="module")
def dependency_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    index = PackageIndex(tmp_path_factory.mktemp("deps"))
    for name in RUNTIME:
        index.add_installed("/simple", name)
    with contextlib.contextmanager(serve)(index) as served:
        yield served


def uvx(args: list[str], *, index: PackageIndex, home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    from uv import find_uv_bin  # noqa: PLC0415 - the uv wheel of the dev group

    uv = find_uv_bin()
    env = {
        **os.environ,
        "UV_DEFAULT_INDEX": index.url("/simple"),
        "UV_CACHE_DIR": str(home / "cache"),
        "UV_TOOL_DIR": str(home / "tools"),
        "UV_PYTHON": str(
            Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
        ),
    }
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run(
        [uv, "tool", "run", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def test_uvx_from_the_source_tree_on_a_fresh_machine(dependency_index: PackageIndex, tmp_path: Path) -> None:
    result = uvx(
        ["--from", str(ROOT), "llm-sync", "--version"], index=dependency_index, home=tmp_path, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert f"llm-sync, version {__version__}" in result.stdout
    plan = uvx(
        [
            "--from",
            str(ROOT),
            "llm-sync",
            "plan",
            "--project",
            str(ROOT / "examples" / "llm-project"),
            "--cuda",
            "12.8",
            "--arch",
            "9.0",
        ],
        index=dependency_index,
        home=tmp_path,
        cwd=tmp_path,
    )
    assert plan.returncode == 0, plan.stderr
    assert "backend: cu128" in plan.stdout


def test_version_matches_the_distribution() -> None:
    pyproject = tomlkit.parse((ROOT / "pyproject.toml").read_text(encoding="utf-8")).unwrap()
    assert pyproject["project"]["version"] == __version__
