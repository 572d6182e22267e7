"""Writing pyproject.toml: links, owners, permissions, concurrent edits and signals, on real files."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import uvx_llm
from uvx_llm import cli, files
from uvx_llm.errors import ExitCode, LlmSyncError

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(uvx_llm.__file__).resolve().parents[1]
GOOD = '[project]\nname = "app"\nversion = "0.1.0"\ndependencies = ["torch"]  # keep\n'
as_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to create files of other users"
)


def run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as done:
        cli.run(argv)
    code = done.value.code
    assert isinstance(code, int)
    return code


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(files.TEMP_SUFFIX))


def test_mode_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "pyproject.toml"
    target.write_text("old\n", encoding="utf-8")
    target.chmod(0o640)
    files.write(target, b"new\n")
    assert target.read_bytes() == b"new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["pyproject.toml"]


def test_read_only_file_is_refused_and_untouched(tmp_path: Path) -> None:
    target = tmp_path / "pyproject.toml"
    target.write_text("old\n", encoding="utf-8")
    target.chmod(0o444)
    with pytest.raises(LlmSyncError, match="read-only"):
        files.write(target, b"new\n")
    assert target.read_bytes() == b"old\n"


def test_failed_replace_leaves_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "pyproject.toml"
    target.write_text("old\n", encoding="utf-8")

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(LlmSyncError, match="No space left"):
        files.write(target, b"new\n")
    assert target.read_bytes() == b"old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["pyproject.toml"]


def test_a_file_changed_since_it_was_read_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "pyproject.toml"
    target.write_text("edited by someone else\n", encoding="utf-8")
    with pytest.raises(LlmSyncError, match="changed while llm-sync ran; run again") as refused:
        files.write(target, b"new\n", expected=b"old\n")
    assert refused.value.exit_code == ExitCode.USAGE
    assert target.read_bytes() == b"edited by someone else\n"


@pytest.mark.parametrize("spelling", ["cwd", "--project DIR", "--project FILE"])
def test_a_symlinked_pyproject_is_written_through_to_its_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spelling: str
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    real = shared / "base.toml"
    real.write_text(GOOD, encoding="utf-8")
    project = tmp_path / "app"
    project.mkdir()
    link = project / "pyproject.toml"
    link.symlink_to(real)
    monkeypatch.chdir(project if spelling == "cwd" else tmp_path)
    where = {
        "cwd": [],
        "--project DIR": ["--project", str(project)],
        "--project FILE": ["--project", str(link)],
    }
    assert run(["check", "--fix", "--backend", "cpu", *where[spelling]]) == ExitCode.DIFFERENCES
    assert link.is_symlink()
    assert "pytorch-cpu" in real.read_text(encoding="utf-8")
    assert "# keep" in real.read_text(encoding="utf-8")
    assert leftovers(shared) == leftovers(project) == []


def test_a_hard_link_is_not_split(tmp_path: Path) -> None:
    target = tmp_path / "pyproject.toml"
    target.write_text("old\n", encoding="utf-8")
    other = tmp_path / "copy.toml"
    os.link(target, other)
    files.write(target, b"new and longer\n")
    assert other.read_bytes() == target.read_bytes() == b"new and longer\n"
    assert other.stat().st_ino == target.stat().st_ino
    files.write(target, b"short\n")
    assert other.read_bytes() == b"short\n"
    assert leftovers(tmp_path) == []


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder every user may write into (pytest's own temporary folders are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="llm-sync-"))
    folder.chmod(0o777)
    yield folder
    shutil.rmtree(folder)


def write_as(user: int, groups: list[int], target: Path) -> tuple[int, str]:
    """files.write in a real process of another user: (exit status, message).

    A fork, not a new interpreter: root's Python may live where other users cannot run it.
    """
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: become the user, write, report, never return into pytest
        status = 0
        try:
            os.close(reader)
            os.setgroups(groups)
            os.setgid(user)
            os.setuid(user)
            files.write(target, b"new\n")
        except LlmSyncError as error:
            os.write(writer, error.render().encode())
            status = 2
        except BaseException:  # noqa: BLE001 - anything else is reported as a failure
            status = 3
        os._exit(status)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        message = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), message


@as_root
def test_owner_and_group_are_kept(tmp_path: Path) -> None:
    target = tmp_path / "pyproject.toml"
    target.write_text("old\n", encoding="utf-8")
    os.chown(target, 1234, 5678)
    target.chmod(0o664)
    files.write(target, b"new\n")
    info = target.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (1234, 5678, 0o664)


@as_root
def test_a_group_shared_file_keeps_its_owner_and_group(open_folder: Path) -> None:
    target = open_folder / "pyproject.toml"
    target.write_text("old\n", encoding="utf-8")
    os.chown(target, 1234, 5678)
    target.chmod(0o664)
    assert write_as(4321, [5678], target) == (0, "")
    info = target.stat()
    assert target.read_bytes() == b"new\n"
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (1234, 5678, 0o664)
    assert leftovers(open_folder) == []


@as_root
def test_a_file_this_user_may_not_write_is_refused_not_replaced(open_folder: Path) -> None:
    target = open_folder / "pyproject.toml"
    target.write_text("old\n", encoding="utf-8")
    target.chmod(0o644)  # root's; the folder lets anyone rename over it
    status, message = write_as(4321, [], target)
    assert status == 2
    assert "may not be written by this user" in message
    assert target.read_bytes() == b"old\n"
    assert target.stat().st_uid == 0
    assert leftovers(open_folder) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_the_write_leaves_no_temporary_file(tmp_path: Path, signum: int) -> None:
    target = tmp_path / "pyproject.toml"
    target.write_text("old\n", encoding="utf-8")
    started = tmp_path / "started"
    code = (
        "import os, sys, time; from pathlib import Path; from uvx_llm import files\n"
        "real = os.fsync\n"
        "def slow(fd):\n    Path(sys.argv[2]).touch(); time.sleep(1.5); real(fd)\n"
        "os.fsync = slow\n"
        "files.write(Path(sys.argv[1]), b'new\\n' * 1000)\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code, str(target), str(started)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stderr=subprocess.DEVNULL,
    ) as child:
        deadline = time.monotonic() + 30
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        child.send_signal(signum)
        child.wait(timeout=30)
    assert target.read_bytes() in {b"old\n", b"new\n" * 1000}
    assert leftovers(tmp_path) == []
