"""Reading uv.lock back per platform, and comparing it with the plan's bounds."""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

import pytest
from helpers import environment, llm_sync, uv_binary, write_project
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from uvx_llm import lockfile
from uvx_llm.errors import LlmSyncError

if TYPE_CHECKING:
    from pathlib import Path

    from pkgindex import PackageIndex

FORKED = """
version = 1
requires-python = ">=3.10"

[[package]]
name = "app"
version = "0.1.0"
source = { virtual = "." }
dependencies = [
    { name = "flash-attn", marker = "sys_platform == 'linux'" },
    { name = "torch", version = "2.9.0", source = { registry = "https://download.pytorch.org/whl/cpu" }, marker = "sys_platform != 'linux'" },
    { name = "torch", version = "2.9.0+cu128", source = { registry = "https://download.pytorch.org/whl/cu128" }, marker = "sys_platform == 'linux'" },
    { name = "verl" },
    { name = "vllm" },
]

[[package]]
name = "flash-attn"
version = "2.8.3"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "torch"
version = "2.9.0+cu128"
source = { registry = "https://download.pytorch.org/whl/cu128" }
resolution-markers = ["sys_platform == 'linux'"]

[[package]]
name = "torch"
version = "2.9.0"
source = { registry = "https://download.pytorch.org/whl/cpu" }
resolution-markers = ["sys_platform != 'linux'"]

[[package]]
name = "vllm"
version = "0.1.2"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "verl"
version = "0.5.0"
source = { directory = "verl" }
"""


def test_a_universal_lock_is_read_per_platform() -> None:
    packages = lockfile.parse(FORKED)
    linux = lockfile.stack(packages, platform="linux", python="3.11")
    mac = lockfile.stack(packages, platform="macos", python="3.11")
    torch_linux, torch_mac = linux.get("torch"), mac.get("torch")
    assert torch_linux is not None
    assert torch_mac is not None
    assert (str(torch_linux.version), torch_linux.local) == ("2.9.0+cu128", "cu128")
    assert str(torch_mac.version) == "2.9.0"
    assert linux.get("flash-attn") is not None
    assert mac.get("flash-attn") is None  # its dependency edge holds on Linux only


def test_disagreements_name_the_package_the_version_and_the_bound() -> None:
    packages = lockfile.parse(FORKED)
    expected = lockfile.Expectation(
        variant="cu130",
        bounds=(lockfile.Bound("torch", SpecifierSet(">=2.9,<2.15"), "cu130 builds the project allows"),),
        oldest={"vllm": Version("0.6.0")},
        editable=("verl",),
    )
    problems = lockfile.disagreements(lockfile.stack(packages, platform="linux", python="3.11"), expected)
    assert problems == [
        "torch 2.9.0+cu128 on Linux is not the planned cu130 build (registry https://download.pytorch.org/whl/cu128)",
        (
            "vllm 0.1.2 is older than any vllm release llm-sync knows (0.6.0): such old releases pin no torch, "
            "so the resolver fell back to them"
        ),
        "the checkout verl is not installed editable (from directory verl)",
    ]
    within = lockfile.Expectation(bounds=(lockfile.Bound("torch", SpecifierSet(">=2.10"), "pinned"),))
    [outside] = lockfile.disagreements(lockfile.stack(packages, platform="macos", python="3.11"), within)
    assert outside == "torch 2.9.0 is outside the planned torch>=2.10 (pinned)"


def test_a_broken_lock_is_a_clear_error() -> None:
    with pytest.raises(LlmSyncError, match="not valid TOML") as caught:
        lockfile.parse("[[package]\nname =")
    assert caught.value.fix


@pytest.mark.uv
def test_the_real_uv_lock_of_a_routed_project(package_index: PackageIndex, tmp_path: Path) -> None:
    project = write_project(tmp_path / "app", "vllm")
    env = environment(package_index)
    result = llm_sync(["--cuda", "12.8", "--arch", "9.0", "--no-sync"], env=env, cwd=project)
    assert result.returncode == 0, result.stderr
    locked = subprocess.run(
        [uv_binary(), "lock"], env=env, cwd=project, capture_output=True, text=True, check=False
    )
    assert locked.returncode == 0, locked.stderr
    packages = lockfile.read(project / "uv.lock")
    linux = lockfile.stack(packages, platform="linux", python="3.11")
    mac = lockfile.stack(packages, platform="macos", python="3.11")
    assert [str(linux.get(n)) for n in ("torch", "vllm")] == ["torch 2.9.0+cu128", "vllm 0.11.2"]
    assert [str(mac.get(n)) for n in ("torch", "vllm")] == ["torch 2.9.0+cpu", "vllm 0.11.2"]
    plan_says = lockfile.Expectation(
        variant="cu128", bounds=(lockfile.Bound("torch", SpecifierSet(">=2.9,<2.10"), "vllm 0.11.2's pin"),)
    )
    assert lockfile.disagreements(linux, plan_says) == []
