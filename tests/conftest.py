from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

import pytest
from helpers import STANDINS
from pkgindex import PackageIndex, serve

from uvx_llm import catalog, paths, refresh
from uvx_llm.errors import LlmSyncError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture(autouse=True)
def hermetic(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No real home, no real uv cache, no llm-sync settings leaking in from the developer's shell."""
    home = tmp_path_factory.mktemp("home")
    for name in list(os.environ):
        if name.startswith(("LLM_SYNC_", "UV_")) or name in {
            "UV",
            "CONDA_OVERRIDE_CUDA",
            "VIRTUAL_ENV",
            "NO_COLOR",
        }:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("UV_CACHE_DIR", str(home / "uv-cache"))
    monkeypatch.setenv("UV_PYTHON_DOWNLOADS", "never")
    # Not UV_NO_CONFIG: it also makes uv ignore [tool.uv] settings such as
    # extra-build-dependencies. uv's user config is isolated by XDG_CONFIG_HOME.
    paths.override_root(home / "llm-sync")
    monkeypatch.setattr(refresh, "http_get", _loopback_only(refresh.http_get))
    yield home
    paths.override_root(None)


def _loopback_only(get: refresh.Fetch) -> refresh.Fetch:
    """No test reaches the internet: llm-sync's index reads (newer.py) may reach 127.0.0.1 only."""

    def fetch(url: str, headers: dict[str, str], timeout: float = 5) -> tuple[int, dict[str, str], bytes]:
        if not url.startswith("http://127.0.0.1:"):
            raise LlmSyncError(f"refresh: cannot reach {url}", why="the tests reach no network but loopback")
        return get(url, headers, timeout)  # type: ignore[call-arg]  # http_get's own timeout keyword

    return fetch


@pytest.fixture
def cat() -> catalog.Catalog:
    return catalog.load()


@pytest.fixture(scope="session")
def package_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    """A loopback index: PyPI stand-in under /simple, PyTorch variants under /whl/<variant>."""
    index = PackageIndex(tmp_path_factory.mktemp("index"))
    for variant in ("cpu", "cu124", "cu126", "cu128", "cu130"):
        for version in ("2.6.0", "2.8.0", "2.9.0"):
            if variant == "cu124" and version != "2.6.0":
                continue  # the real cu124 index ends at torch 2.6
            index.add(f"/whl/{variant}", "torch", f"{version}+{variant}")
    for variant in ("rocm6.3", "xpu"):  # AMD and Intel stand-ins
        for version in ("2.8.0", "2.9.0"):
            index.add(f"/whl/{variant}", "torch", f"{version}+{variant}")
    index.add("/simple", "torch", "2.9.0")  # PyPI's own torch: what users get without routing
    index.add("/simple", "vllm", "0.8.5", requires=["torch==2.6.0"])
    index.add("/simple", "vllm", "0.11.2", requires=["torch==2.9.0"])
    index.add("/simple", "flash-attn-standin", "1.0", requires=["torch"])
    # The build needs llm-sync writes for flash-attn, and the recording flash-attn sdist.
    for need in ("ninja", "packaging", "psutil"):
        index.add("/simple", need, "1.0")
    index.add_sdist("/simple", "flash-attn", "9.9.9", backend=STANDINS / "recording_backend.py")
    # The other CUDA extensions of the catalog's [build.*] rows, and one it has no row for.
    for need in ("setuptools", "wheel", "pip", "nvidia-cudnn-frontend", "py-cpuinfo"):
        index.add("/simple", need, "1.29.0")
    for name in ("transformer-engine-torch", "flash-attn-3", "deepspeed", "mamba-ssm", "my-cuda-ext"):
        index.add_sdist("/simple", name, "9.9.9", backend=STANDINS / "recording_backend.py")
    with contextlib.contextmanager(serve)(index) as served:
        yield served
