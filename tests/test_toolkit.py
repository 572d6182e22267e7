from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import make_compiler, make_toolkit

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


@pytest.mark.parametrize(
    ("header_line", "layout", "limit"),
    [
        ("unsupported GNU version! gcc versions later than 15 are not supported!", "include/crt", (15, None)),
        (
            "unsupported GNU version! gcc versions later than 12.2 are not supported!",
            "targets/x86_64-linux/include/crt",
            (12, 2),
        ),
        (None, "include/crt", None),
    ],
)
def test_the_gcc_limit_comes_from_the_toolkits_header(
    tmp_path: Path, header_line: str | None, layout: str, limit: toolkit.GccLimit | None
) -> None:
    home = make_toolkit(tmp_path / "cuda", release="12.4", header_line=header_line, layout=layout)
    found = toolkit.find({"CUDA_HOME": str(home), "PATH": ""})
    assert found.version == (12, 4)
    assert found.gcc_limit == limit


@pytest.mark.parametrize(
    ("gcc", "limit", "supported"),
    [
        ((13, 3), (15, None), True),
        ((15, 2), (15, None), True),
        ((16, 1), (15, None), False),
        ((12, 2), (12, 2), True),
        ((12, 3), (12, 2), False),
        ((11, 5), (12, 2), True),
    ],
)
def test_gcc_supported(gcc: tuple[int, int], limit: toolkit.GccLimit, supported: bool) -> None:
    assert toolkit.gcc_supported(gcc, limit) is supported


@pytest.mark.skipif(
    not HAS_NVCC or shutil.which("gcc") is None, reason="needs a real nvcc and gcc (the development machines)"
)
def test_real_toolkit_and_real_gcc() -> None:
    """The real toolkit (on the development machines nvcc on PATH is a wrapper script, so
    the header is found through nvcc's dry run) and the real gcc nvcc would use."""
    import os  # noqa: PLC0415

    found = toolkit.find({"PATH": os.environ["PATH"]})
    assert found.gcc_limit is not None
    assert found.host is not None
    assert found.host.chosen_by == "nvcc's default, gcc on PATH"
    assert found.host.gcc is not None
    full = subprocess.run(["gcc", "-dumpfullversion"], capture_output=True, text=True, check=True).stdout
    assert ".".join(map(str, found.host.gcc)) == ".".join(full.strip().split(".")[:2])
    assert (found.host_problem() is None) is toolkit.gcc_supported(found.host.gcc, found.gcc_limit)


def test_the_host_compiler_nvcc_would_run(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    make_compiler(bin_dir, "gcc", "gcc (Ubuntu 13.3.0-6ubuntu2~24.04.1) 13.3.0")
    gcc16 = make_compiler(tmp_path / "gcc16", "gcc", "gcc (GCC) 16.1.1 20260501 (Red Hat 16.1.1-1)")
    clang = make_compiler(bin_dir, "clang", "Ubuntu clang version 18.1.3 (1ubuntu1)")
    path = {"PATH": str(bin_dir)}
    default = toolkit.host_compiler(path)
    assert (default.gcc, default.chosen_by) == ((13, 3), "nvcc's default, gcc on PATH")
    from_cc = toolkit.host_compiler({**path, "CC": str(gcc16)})
    assert (from_cc.gcc, from_cc.chosen_by) == ((16, 1), "$CC, which torch passes to nvcc as -ccbin")
    ccbin = toolkit.host_compiler({**path, "CC": str(clang), "NVCC_PREPEND_FLAGS": f"-ccbin {gcc16.parent}"})
    assert (ccbin.command, ccbin.gcc) == (str(gcc16), (16, 1))
    assert toolkit.host_compiler({**path, "CC": "clang"}).gcc is None  # clang is not checked
    missing = toolkit.host_compiler({"PATH": str(tmp_path / "nowhere")})
    assert missing.first_line is None
    assert "cannot be run" in missing.describe()


def test_a_gcc_newer_than_nvcc_accepts_blocks_the_build(tmp_path: Path) -> None:
    home = make_toolkit(
        tmp_path / "cuda",
        release="12.4",
        header_line="unsupported GNU version! gcc versions later than 13 are not supported!",
    )
    gcc14 = make_compiler(tmp_path / "bin", "gcc", "gcc (Debian 14.2.0-19) 14.2.0")
    found = toolkit.find({"CUDA_HOME": str(home), "PATH": str(gcc14.parent)})
    cat = catalog.load()
    flash = cat.build("flash-attn")
    assert flash is not None
    [blocker] = build.toolkit_blockers(toolkit=found, backend="cu126", catalog=cat, packages=[flash])
    assert "gcc 14.2" in blocker
    assert "nvcc 12.4 accepts (gcc ≤ 13" in blocker
    assert "CC=gcc-13 CXX=g++-13" in blocker
    make_compiler(tmp_path / "bin", "gcc", "gcc (Debian 12.2.0-14+deb12u1) 12.2.0")
    assert (
        build.toolkit_blockers(
            toolkit=toolkit.find({"CUDA_HOME": str(home), "PATH": str(tmp_path / "bin")}),
            backend="cu126",
            catalog=cat,
            packages=[flash],
        )
        == []
    )
