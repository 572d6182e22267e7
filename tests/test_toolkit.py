from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from uvx_llm import build, catalog, toolkit

HAS_NVCC = shutil.which("nvcc") is not None


@pytest.mark.skipif(not HAS_NVCC, reason="needs a real nvcc (the development machines have CUDA 13.0)")
def test_real_nvcc_on_path() -> None:
    found = toolkit.find({"PATH": str(Path(str(shutil.which("nvcc"))).parent)})
    assert found.nvcc is not None
    assert found.version is not None
    assert found.version[0] >= 11
    assert "nvcc" in found.describe()


def test_cuda_home_without_nvcc(tmp_path: Path) -> None:
    found = toolkit.find({"CUDA_HOME": str(tmp_path), "PATH": ""})
    assert found.nvcc is None
    assert "has no bin/nvcc" in found.how_found


def test_nothing_anywhere(tmp_path: Path) -> None:
    found = toolkit.find({"PATH": str(tmp_path)}, default_home=tmp_path / "cuda")
    assert found.nvcc is None
    assert found.describe().startswith("no nvcc")


@pytest.mark.skipif(not HAS_NVCC, reason="needs a real nvcc")
def test_cuda_home_with_nvcc(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "nvcc").symlink_to(str(shutil.which("nvcc")))
    found = toolkit.find({"CUDA_PATH": str(tmp_path), "PATH": ""})
    assert found.cuda_home == tmp_path
    assert found.version is not None


def blockers(version: tuple[int, int] | None, backend: str, *, nvcc: bool = True) -> list[str]:
    cat = catalog.load()
    flash = cat.build("flash-attn")
    assert flash is not None
    kit = toolkit.Toolkit(Path("/cuda/bin/nvcc") if nvcc else None, Path("/cuda"), version, "test")
    return build.toolkit_blockers(toolkit=kit, backend=backend, catalog=cat, packages=[flash])


def test_matching_major_is_fine() -> None:
    assert blockers((13, 0), "cu130") == []
    assert blockers((12, 4), "cu128") == []  # same major: torch accepts it


def test_major_mismatch_and_missing_nvcc() -> None:
    assert "torch refuses extensions built with another CUDA major" in blockers((13, 0), "cu128")[0]
    assert "needs nvcc" in blockers(None, "cu128", nvcc=False)[0]
    assert blockers(None, "cpu", nvcc=False) == []
