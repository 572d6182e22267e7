"""Processes and exit codes (docs/guarantees.md, docs/exit-codes.md): uv runs in its own process
group and its whole tree goes down on Ctrl-C and SIGTERM; a uv killed by a signal is named; a
closed or full stdout is an error. The uv here is a stand-in script (tests/standins/uv_standin.py)
that starts a real grandchild which would outlive it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import GOOD, STANDINS

from uvx_llm import proc

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="process groups and signals are POSIX")


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for its parent."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def standin_uv(folder: Path) -> Path:
    uv = folder / "uv"
    uv.write_text(
        f"#!{sys.executable}\n" + (STANDINS / "uv_standin.py").read_text(encoding="utf-8"), encoding="utf-8"
    )
    uv.chmod(0o755)
    return uv


def project(tmp_path: Path) -> Path:
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "pyproject.toml").write_text(GOOD, encoding="utf-8")
    return folder


def env_with(tmp_path: Path, mode: str) -> dict[str, str]:
    return {
        **os.environ,
        "UV": str(standin_uv(tmp_path)),
        "LLM_SYNC_TEST_UV": mode,
        "LLM_SYNC_TEST_UV_PIDS": str(tmp_path / "pids"),
    }


# `--frozen` skips `uv lock`: the stand-in's `sync` is the one run.
SYNC = [
    sys.executable,
    "-m",
    "uvx_llm",
    "--cuda",
    "12.8",
    "--arch",
    "9.0",
    "--no-build-check",
    "--",
    "--frozen",
]


def started_tree(tmp_path: Path) -> tuple[subprocess.Popen[str], list[int]]:
    process = subprocess.Popen(
        SYNC,
        env=env_with(tmp_path, "wait"),
        cwd=project(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pids_file = tmp_path / "pids"
    deadline = time.monotonic() + 60
    while not (pids_file.exists() and pids_file.read_text(encoding="utf-8").endswith("\n")):
        assert time.monotonic() < deadline, process.communicate(timeout=5)
        time.sleep(0.05)
    return process, [int(pid) for pid in pids_file.read_text(encoding="utf-8").split()]


@pytest.mark.parametrize(
    ("signum", "code", "said"), [(signal.SIGTERM, 143, "by SIGTERM"), (signal.SIGINT, 130, "")]
)
def test_a_signal_to_llm_sync_alone_takes_the_whole_uv_tree_down(
    tmp_path: Path, signum: int, code: int, said: str
) -> None:
    process, tree = started_tree(tmp_path)
    assert all(alive(pid) for pid in tree)
    os.kill(process.pid, signum)  # llm-sync's PID only, as `docker stop` or `kill` does
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    assert f"interrupted{' ' + said if said else ''}" in stderr
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in tree) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [pid for pid in tree if alive(pid)] == []


def test_grandchildren_a_finished_uv_leaves_behind_are_ended(tmp_path: Path) -> None:
    result = subprocess.run(
        SYNC,
        env=env_with(tmp_path, "leave-behind"),
        cwd=project(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    tree = [int(pid) for pid in (tmp_path / "pids").read_text(encoding="utf-8").split()]
    assert [pid for pid in tree if alive(pid)] == []


@pytest.mark.parametrize(
    ("mode", "code", "message"),
    [
        ("signal-SIGKILL", 137, "uv sync was killed by SIGKILL (the OOM killer?)"),
        ("signal-SIGSEGV", 139, "uv sync was killed by SIGSEGV (a crash inside uv)"),
        ("exit-2", 1, "uv sync failed (uv's exit code 2)"),
    ],
)
def test_how_uv_ended_decides_the_exit_code(tmp_path: Path, mode: str, code: int, message: str) -> None:
    result = subprocess.run(
        SYNC,
        env=env_with(tmp_path, mode),
        cwd=project(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == code, result.stderr
    assert message in result.stderr


def plan_into(stdout: int, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "uvx_llm", "plan", "--cuda", "12.8", "--arch", "9.0"],
        cwd=project(tmp_path),
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_closed_stdout_is_a_clear_error(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # `llm-sync plan | head -0`: the reader is gone
    try:
        result = plan_into(write_end, tmp_path)
    finally:
        os.close(write_end)
    assert result.returncode == 4, result.stderr
    assert "error: cannot write the output: Broken pipe" in result.stderr
    assert "Traceback" not in result.stderr
    assert "Exception ignored" not in result.stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_stdout_is_a_clear_error(tmp_path: Path) -> None:
    with Path("/dev/full").open("w", encoding="utf-8") as full:
        result = plan_into(full.fileno(), tmp_path)
    assert result.returncode == 4, result.stderr
    assert "cannot write the output: No space left on device" in result.stderr


def test_a_timed_out_program_takes_its_children_along(tmp_path: Path) -> None:
    """A child whose grandchild keeps the output pipe open: the timeout still comes in time."""
    record = tmp_path / "pid"
    script = f"import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); open({str(record)!r}, 'w').write(str(p.pid)); time.sleep(60)"
    started = time.monotonic()
    result = proc.run([sys.executable, "-c", script], timeout=2)
    assert result.timed_out
    assert time.monotonic() - started < 10
    assert not alive(int(record.read_text(encoding="utf-8")))


def test_output_that_is_not_utf8_is_read_with_replacements() -> None:
    result = proc.run(
        [sys.executable, "-c", "import sys; sys.stdout.buffer.write(b'caf\\xe9\\n')"], timeout=30
    )
    assert result.ok
    assert result.stdout == "caf\ufffd\n"


def test_signal_names() -> None:
    assert proc.signal_name(9) == "SIGKILL"
    assert proc.signal_name(200) == "signal 200"
