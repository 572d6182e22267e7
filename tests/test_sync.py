"""llm-sync end to end: the real CLI process driving the real uv against a loopback index."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from helpers import (
    environment,
    installed_version,
    llm_sync,
    make_compiler,
    make_toolkit,
    uv_binary,
    write_project,
)

if TYPE_CHECKING:
    from pkgindex import PackageIndex

pytestmark = pytest.mark.uv


def test_sync_routes_torch_to_the_cuda_build_and_macos_to_cpu(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "app", "vllm==0.11.2")
    result = llm_sync(["--cuda", "12.8", "--arch", "9.0"], env=environment(package_index), cwd=project)
    assert result.returncode == 0, result.stderr
    assert installed_version(project, "torch") == "2.9.0+cu128"
    lock = (project / "uv.lock").read_text(encoding="utf-8")
    assert 'version = "2.9.0+cpu"' in lock  # the same lock serves macOS laptops
    assert "sys_platform != 'linux'" in lock
    assert "llm-sync: cu128 (CUDA ≤ 12.8, sm_90) — pyproject.toml updated" in result.stderr
    assert "RUST_LOG" not in result.stderr  # uv's environment: -v and `plan`

    # Second run: nothing to change in the file, uv sync runs again; one line of llm-sync's own.
    before = (project / "pyproject.toml").read_bytes()
    again = llm_sync(["-v", "--cuda", "12.8", "--arch", "9.0"], env=environment(package_index), cwd=project)
    assert again.returncode == 0, again.stderr
    assert (project / "pyproject.toml").read_bytes() == before
    assert "updated" not in again.stderr
    assert "backend: cu128 — kept from [tool.llm-sync] backend" in again.stderr  # the decision, with -v
    assert "llm-sync: cu128 (CUDA ≤ 12.8, sm_90) — pyproject.toml unchanged" in again.stderr


def test_driver_limited_to_cuda_124_gets_the_cu124_stack(package_index: PackageIndex, tmp_path: Path) -> None:
    project = write_project(tmp_path / "app", "vllm==0.8.5")
    env = environment(package_index, UV_CUDA_DRIVER_VERSION="550.54.14")
    result = llm_sync(["--project", str(project)], env=env, cwd=tmp_path)
    # No GPU here: the driver override gives the CUDA limit, architectures stay unchecked.
    assert result.returncode == 0, result.stderr
    assert installed_version(project, "torch") == "2.6.0+cu124"
    assert installed_version(project, "vllm") == "0.8.5"


def test_without_llm_sync_uv_cannot_route_a_transitive_torch(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    """Why llm-sync adds torch as a direct dependency: uv ignores sources for transitive torch
    (unless a constraint names it, as llm-sync's bound does: both are taken away here)."""
    project = write_project(tmp_path / "app", "vllm==0.11.2")
    llm_sync(["--cuda", "12.8", "--arch", "9.0", "--no-sync"], env=environment(package_index), cwd=project)
    text = (project / "pyproject.toml").read_text(encoding="utf-8")
    text = "\n".join(line for line in text.splitlines() if "llm-sync: bound" not in line)
    (project / "pyproject.toml").write_text(
        text.replace('"vllm==0.11.2", "torch"', '"vllm==0.11.2"'), encoding="utf-8"
    )
    result = subprocess.run(
        [uv_binary(), "sync"],
        env=environment(package_index),
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert installed_version(project, "torch") == "2.9.0"  # PyPI's torch, not the cu128 build


def test_arguments_after_double_dash_reach_uv(package_index: PackageIndex, tmp_path: Path) -> None:
    project = write_project(tmp_path / "app", "torch")
    result = llm_sync(
        ["--cuda", "12.8", "--arch", "9.0", "--", "--dry-run"], env=environment(package_index), cwd=project
    )
    assert result.returncode == 0, result.stderr
    assert "Would install" in result.stderr
    assert installed_version(project, "torch") is None


def test_uv_failure_exits_with_uvs_code(package_index: PackageIndex, tmp_path: Path) -> None:
    project = write_project(tmp_path / "app", "torch==2.7.0")  # not on the loopback cu128 index
    result = llm_sync(["--cuda", "12.8", "--arch", "9.0"], env=environment(package_index), cwd=project)
    assert result.returncode == 1
    assert "No solution found" in result.stderr
    assert "packages involved: torch" in result.stderr
    assert "hint: `llm-sync plan` shows which torch releases" in result.stderr
    assert "--relief" not in result.stderr  # no framework involved: no framework advice


def test_an_offline_failure_gets_no_framework_advice(package_index: PackageIndex, tmp_path: Path) -> None:
    project = write_project(tmp_path / "app", "vllm==0.11.2")
    result = llm_sync(
        ["--cuda", "12.8", "--arch", "9.0", "--", "--offline"], env=environment(package_index), cwd=project
    )
    assert result.returncode != 0
    assert "hint: with --offline uv uses only its cache" in result.stderr
    assert "verl" not in result.stderr
    assert "OpenRLHF" not in result.stderr


def test_no_sync_stops_after_the_file(package_index: PackageIndex, tmp_path: Path) -> None:
    project = write_project(tmp_path / "app", "torch")
    env = environment(package_index, UV="/nonexistent/uv", PATH="/usr/bin:/bin")
    result = llm_sync(["--cuda", "12.8", "--arch", "9.0", "--no-sync"], env=env, cwd=project)
    assert result.returncode == 0, result.stderr
    assert "pytorch-cu128" in (project / "pyproject.toml").read_text(encoding="utf-8")
    assert not (project / ".venv").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="process groups and SIGINT are POSIX")
def test_ctrl_c_stops_uv_and_exits_130(package_index: PackageIndex, tmp_path: Path) -> None:
    project = write_project(tmp_path / "app", "torch")
    seen = len(package_index.requests)
    package_index.delay_seconds = 3.0
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvx_llm", "--cuda", "12.8", "--arch", "9.0"],
            env=environment(package_index, UV_HTTP_TIMEOUT="120"),
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while len(package_index.requests) == seen and time.monotonic() < deadline:
            time.sleep(0.1)  # until uv is talking to the index
        assert len(package_index.requests) > seen
        os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        _, stderr = process.communicate(timeout=60)
    finally:
        package_index.delay_seconds = 0.0
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr
    assert processes_in_group(process.pid) == []


def processes_in_group(group: int) -> list[int]:
    """Live processes of a process group, read from /proc (no pgrep needed)."""
    members = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text(encoding="utf-8").rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, pgrp = fields[0], int(fields[2])
        if pgrp == group and state != "Z":
            members.append(int(stat_file.parent.name))
    return members


def build_records(path: Path) -> list[dict[str, object]]:
    import json  # noqa: PLC0415 - only these tests read the records

    return (
        [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []
    )


def test_tuned_environment_and_build_needs_reach_the_build_through_uv(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "app", "flash-attn")
    record = tmp_path / "builds.jsonl"
    env = environment(package_index, LLM_SYNC_TEST_RECORD=str(record))
    result = llm_sync(["--cuda", "12.8", "--arch", "9.0", "--no-build-check"], env=env, cwd=project)
    assert result.returncode == 0, result.stderr
    [seen] = build_records(record)
    assert seen["FLASH_ATTN_CUDA_ARCHS"] == "90"
    assert seen["TORCH_CUDA_ARCH_LIST"] == "9.0"
    assert seen["NVCC_THREADS"] == "1"
    assert seen["MAX_JOBS"] == seen["CMAKE_BUILD_PARALLEL_LEVEL"]
    assert int(str(seen["MAX_JOBS"])) >= 1
    assert seen["torch"] == "2.9.0+cu128"  # built against the runtime torch, from the routed index
    assert installed_version(project, "flash_attn") == "9.9.9"
    text = (project / "pyproject.toml").read_text(encoding="utf-8")
    assert 'flash-attn = [\n    { requirement = "torch", match-runtime = true },\n    "ninja",' in text


def test_a_value_the_user_set_reaches_the_build_unchanged(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "app", "flash-attn")
    record = tmp_path / "builds.jsonl"
    env = environment(package_index, LLM_SYNC_TEST_RECORD=str(record), MAX_JOBS="1")
    assert (
        llm_sync(["--cuda", "12.8", "--arch", "9.0", "--no-build-check"], env=env, cwd=project).returncode
        == 0
    )
    assert build_records(record)[0]["MAX_JOBS"] == "1"


def test_a_build_for_one_gpu_is_never_reused_for_another_through_the_cache(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    record = tmp_path / "builds.jsonl"
    env = environment(
        package_index, LLM_SYNC_TEST_RECORD=str(record)
    )  # one uv cache for all (a team's shared cache)

    def sync_for(name: str, arch: str) -> None:
        project = write_project(tmp_path / name, "flash-attn")
        result = llm_sync(["--cuda", "12.8", "--arch", arch, "--no-build-check"], env=env, cwd=project)
        assert result.returncode == 0, result.stderr

    sync_for("h100-box", "9.0")
    sync_for("a100-box", "8.0")
    assert [r["FLASH_ATTN_CUDA_ARCHS"] for r in build_records(record)] == ["90", "80"]
    sync_for("second-h100-box", "9.0")  # the same GPU again: the cached sm_90 wheel is reused
    assert len(build_records(record)) == 2

    # Plain `uv sync` in a copy of the h100 project: the recorded architectures
    # reach uv through [tool.uv.extra-build-variables], so it reuses the sm_90
    # wheel, whatever the shell's FLASH_ATTN_CUDA_ARCHS says.
    folder = tmp_path / "plain-copy"
    folder.mkdir()
    text = (tmp_path / "h100-box" / "pyproject.toml").read_text(encoding="utf-8")
    (folder / "pyproject.toml").write_text(text, encoding="utf-8")
    plain = subprocess.run(
        [uv_binary(), "sync"],
        env={**env, "FLASH_ATTN_CUDA_ARCHS": "75"},
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    assert plain.returncode == 0, plain.stderr
    assert len(build_records(record)) == 2


def test_plain_uv_keeps_what_llm_sync_built(package_index: PackageIndex, tmp_path: Path) -> None:
    project = write_project(tmp_path / "app", "flash-attn")
    record = tmp_path / "builds.jsonl"
    env = environment(package_index, LLM_SYNC_TEST_RECORD=str(record))
    result = llm_sync(["--cuda", "12.8", "--arch", "9.0", "--no-build-check"], env=env, cwd=project)
    assert result.returncode == 0, result.stderr
    text = (project / "pyproject.toml").read_text(encoding="utf-8")
    assert 'cuda-archs = "9.0"' in text
    assert 'flash-attn = { TORCH_CUDA_ARCH_LIST = "9.0", FLASH_ATTN_CUDA_ARCHS = "90" }' in text

    def plain_uv(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [uv_binary(), *args], env=env, cwd=project, capture_output=True, text=True, check=False
        )

    check = plain_uv("sync", "--check")
    assert check.returncode == 0, check.stderr
    assert "Would make no changes" in check.stderr
    ran = plain_uv("run", "python", "-c", "import flash_attn; print(flash_attn.__version__)")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "9.9.9"
    assert "Built flash-attn" not in ran.stderr
    assert len(build_records(record)) == 1  # nothing was rebuilt


def test_a_new_gpu_widens_the_recorded_architectures_and_a_smaller_machine_keeps_them(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "app", "flash-attn")
    record = tmp_path / "builds.jsonl"
    env = environment(package_index, LLM_SYNC_TEST_RECORD=str(record))
    for arch in ("9.0", "8.0", "9.0"):  # an H100, then an A100 joins, then the H100 again
        result = llm_sync(["--cuda", "12.8", "--arch", arch, "--no-build-check"], env=env, cwd=project)
        assert result.returncode == 0, result.stderr
    assert [r["FLASH_ATTN_CUDA_ARCHS"] for r in build_records(record)] == ["90", "80;90"]
    assert 'cuda-archs = "8.0;9.0"' in (project / "pyproject.toml").read_text(encoding="utf-8")
    checked = llm_sync(["check"], env=env, cwd=project)
    assert checked.returncode == 0, checked.stderr


def test_a_build_that_cannot_succeed_is_refused_before_it_starts(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "app", "flash-attn")
    before = (project / "pyproject.toml").read_bytes()
    empty_toolkit = tmp_path / "cuda"
    empty_toolkit.mkdir()
    env = environment(package_index, CUDA_HOME=str(empty_toolkit))
    result = llm_sync(["--cuda", "12.8", "--arch", "9.0"], env=env, cwd=project)
    assert result.returncode == 2
    assert result.stderr.count("needs nvcc") == 1  # one message: not as warning:, error: and why: again
    assert "warning:" not in result.stderr
    assert "  fix: install the CUDA toolkit 12.x (matching torch +cu128) and set CUDA_HOME" in result.stderr
    assert "do what the message says" not in result.stderr
    assert (project / "pyproject.toml").read_bytes() == before
    assert not (project / ".venv").exists()


def test_a_gcc_newer_than_nvcc_accepts_is_refused_before_building(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "app", "flash-attn")
    before = (project / "pyproject.toml").read_bytes()
    home = make_toolkit(
        tmp_path / "cuda",
        release="12.8",
        header_line="unsupported GNU version! gcc versions later than 14 are not supported!",
    )
    gcc15 = make_compiler(tmp_path / "gcc15", "gcc", "gcc (GCC) 15.2.1 20250813")
    env = environment(package_index, CUDA_HOME=str(home), CC=str(gcc15))
    result = llm_sync(["--cuda", "12.8", "--arch", "9.0"], env=env, cwd=project)
    assert result.returncode == 2
    assert "gcc 15.2" in result.stderr
    assert "unsupported GNU version" in result.stderr
    assert "CC=gcc-14 CXX=g++-14" in result.stderr
    assert (project / "pyproject.toml").read_bytes() == before
    assert not (project / ".venv").exists()


@pytest.mark.skipif(
    shutil.which("nvcc") is None, reason="needs a real nvcc (the development machines have CUDA 13.0)"
)
def test_real_nvcc_of_another_cuda_major_is_refused(package_index: PackageIndex, tmp_path: Path) -> None:
    project = write_project(tmp_path / "app", "flash-attn")
    result = subprocess.run(
        [str(shutil.which("nvcc")), "--version"], capture_output=True, text=True, check=True
    )
    major = int(result.stdout.split("release ")[1].split(".")[0])
    other = "12.8" if major >= 13 else "13.0"
    refused = llm_sync(["--cuda", other, "--arch", "9.0"], env=environment(package_index), cwd=project)
    assert refused.returncode == 2
    assert f"nvcc {major}." in refused.stderr
    assert "CUDA major" in refused.stderr


@pytest.mark.skipif(
    shutil.which("nvcc") is None or shutil.which("ninja") is None,
    reason="needs the real nvcc and ninja (the development machines have CUDA 13.0 and ninja)",
)
def test_real_nvcc_and_ninja_build_shows_progress_and_keeps_a_log(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "app", "flash-attn")
    nvcc = subprocess.run(["nvcc", "--version"], capture_output=True, text=True, check=True).stdout
    cuda = nvcc.split("release ")[1].split(",")[0]  # a torch build of the same CUDA major as nvcc
    variant = "cu130" if cuda.startswith("13") else "cu128"
    env = environment(package_index, LLM_SYNC_TEST_MODE="nvcc")
    result = llm_sync(["--cuda", cuda, "--arch", "9.0", "--backend", variant], env=env, cwd=project)
    assert result.returncode == 0, result.stderr
    assert "building flash-attn [4/4] 100%" in result.stderr
    log_line = next(line for line in result.stderr.splitlines() if "full build log in" in line)
    log_file = Path(log_line.rsplit(" in ", 1)[1])
    log_text = log_file.read_text(encoding="utf-8")
    assert "nvcc -c kernel0.cu" in log_text
    assert "arch=compute_90,code=sm_90" in log_text
    assert installed_version(project, "flash_attn") == "9.9.9"


@pytest.mark.skipif(
    len(os.sched_getaffinity(0)) < 2,
    reason="the tuned MAX_JOBS must be above 1 for the stand-in to be killed",
)
def test_an_oom_killed_build_is_diagnosed_and_retried_with_half_the_jobs(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "app", "flash-attn")
    logs = tmp_path / "logs"
    env = environment(
        package_index,
        LLM_SYNC_TEST_MODE="oom",
        LLM_SYNC_TEST_RECORD=str(tmp_path / "r.jsonl"),
        LLM_SYNC_LOG_DIR=str(logs),
    )
    result = llm_sync(["--cuda", "12.8", "--arch", "9.0", "--no-build-check"], env=env, cwd=project)
    assert "OOM killer" in result.stderr
    assert "cc1plus: fatal error: Killed signal terminated program" in result.stderr
    assert "retrying once with MAX_JOBS=" in result.stderr
    assert result.returncode == 0, result.stderr
    assert installed_version(project, "flash_attn") == "9.9.9"
    # one log per attempt, each named when its build starts: the retry keeps the "Killed" lines
    failed, retried = sorted(
        (logs / "builds").glob("*-flash-attn*.log"), key=lambda path: (path.name[:15], len(path.name))
    )
    assert "Killed signal" in failed.read_text(encoding="utf-8")
    assert "Killed signal" not in retried.read_text(encoding="utf-8")
    named = [line.rsplit(" in ", 1)[1] for line in result.stderr.splitlines() if "full build log in" in line]
    assert named[0] == named[-2] == str(failed)  # at the start of the build, and after its failure
    assert named[-1] == str(retried)


def test_no_retry_leaves_an_oom_failure_failed(package_index: PackageIndex, tmp_path: Path) -> None:
    project = write_project(tmp_path / "app", "flash-attn")
    env = environment(package_index, LLM_SYNC_TEST_MODE="oom", MAX_JOBS="4")  # the user's own: never halved
    result = llm_sync(
        ["--cuda", "12.8", "--arch", "9.0", "--no-build-check", "--no-retry"], env=env, cwd=project
    )
    assert result.returncode == 1
    assert "OOM killer" in result.stderr
    assert "retrying" not in result.stderr
    assert "Killed signal" in result.stderr


def test_a_macos_teammate_can_sync_the_same_lock(package_index: PackageIndex, tmp_path: Path) -> None:
    project = write_project(tmp_path / "app", "flash-attn")
    env = environment(package_index)
    assert llm_sync(["--cuda", "12.8", "--arch", "9.0", "--no-sync"], env=env, cwd=project).returncode == 0
    assert (
        subprocess.run(
            [uv_binary(), "lock"], env=env, cwd=project, capture_output=True, check=False
        ).returncode
        == 0
    )
    mac = subprocess.run(
        [uv_binary(), "sync", "--locked", "--dry-run", "--python-platform", "aarch64-apple-darwin"],
        env=env,
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert mac.returncode == 0, mac.stderr
    assert "torch==2.9.0+cpu" in mac.stderr  # CPU wheels on the Mac
    assert "flash-attn" not in mac.stderr  # and no CUDA extension to build there

    # Without the marker, the Mac would be asked to build flash-attn from source.
    text = (project / "pyproject.toml").read_text(encoding="utf-8").replace(" ; sys_platform == 'linux'", "")
    (project / "pyproject.toml").write_text(text, encoding="utf-8")
    unmarked = subprocess.run(
        [uv_binary(), "sync", "--dry-run", "--python-platform", "aarch64-apple-darwin"],
        env=env,
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "flash-attn" in unmarked.stderr


def test_a_cuda_124_driver_makes_uv_backtrack_vllm_to_the_torch_it_can_get(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "app", "vllm")  # unpinned: uv picks the newest that works
    env = environment(package_index, UV_CUDA_DRIVER_VERSION="550.54.14")
    result = llm_sync([], env=env, cwd=project)
    assert result.returncode == 0, result.stderr
    assert installed_version(project, "torch") == "2.6.0+cu124"
    assert installed_version(project, "vllm") == "0.8.5"  # not 0.11.2, which pins torch 2.9.0


def test_an_unreachable_pytorch_index_gets_the_mirror_hint(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "app", "torch")
    env = environment(package_index, LLM_SYNC_TORCH_INDEX_URL="http://127.0.0.1:9/whl", UV_HTTP_RETRIES="0")
    result = llm_sync(["--cuda", "12.8", "--arch", "9.0"], env=env, cwd=project)
    assert result.returncode != 0
    hints = [line for line in result.stderr.splitlines() if line.startswith("hint:")]
    assert len(hints) == 1, result.stderr
    assert "could not reach the PyTorch index (127.0.0.1:9)" in hints[0]
    assert "pyproject.toml already routes torch there" in hints[0]
    assert "--mirror" in hints[0]
    assert "--torch-index-url" in hints[0]
    assert "git checkout pyproject.toml" in hints[0]
    assert "--relief" not in result.stderr
