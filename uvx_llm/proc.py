"""The one way llm-sync starts other programs (the only module that imports subprocess).

Argument lists only (never a shell), environment changes passed explicitly and
logged. Every child starts in its own process group (session), so that stopping
it takes its whole tree down: uv's build backends and their compilers included.
On Ctrl-C or SIGTERM the group gets SIGINT, then SIGTERM, then SIGKILL, each after
a grace period; grandchildren left behind by a child that exited are killed too.
A program that cannot be started, or does not answer in time, is a value
(`Completed.failure`), not an exception: every caller has something to say about
it, none has to catch.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from uvx_llm.log import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

log = get_logger(__name__)

# How long a child's tree gets after each signal (SIGINT, as a terminal's Ctrl-C
# would send it, then SIGTERM) before the next one; SIGKILL comes last.
GRACE_SECONDS = 5.0
# How long what a finished child left running in its group gets before it is stopped.
LEFTOVER_GRACE = 1.0
# Captured output beyond this is cut (a runaway program must not fill memory).
CAPTURE_LIMIT = 8 * 2**20
_POSIX = sys.platform != "win32"
_Process = subprocess.Popen[str] | subprocess.Popen[bytes]


@dataclass(frozen=True)
class Completed:
    args: tuple[str, ...]
    returncode: int  # -1 when it did not run to completion; -N when signal N ended it
    stdout: str
    stderr: str
    failure: str | None = None  # why it did not run to completion: the OS's reason, or the timeout
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        """It ran and exited 0."""
        return self.failure is None and self.returncode == 0


def signal_name(number: int) -> str:
    """9 -> "SIGKILL"; an unknown number -> "signal 42"."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _environment(overrides: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    if overrides:
        env.update(overrides)
    return env


def _signal_group(process: _Process, signum: int) -> bool:
    """Send ``signum`` to the child's process group; False when the group is gone."""
    if not _POSIX:  # pragma: no cover - no process groups on Windows: the child alone
        if process.poll() is not None:
            return False
        process.terminate()
        return True
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member changed its user (setuid): the leader is ours still
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signum)
    return True


def _group_alive(process: _Process) -> bool:
    if process.poll() is None:
        return True
    if not _POSIX:  # pragma: no cover - see _signal_group
        return False
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_for_group(process: _Process, seconds: float) -> bool:
    """Whether the whole group is gone within ``seconds`` (the leader is reaped meanwhile)."""
    deadline = time.monotonic() + seconds
    while _group_alive(process):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def stop_tree(process: _Process, *, grace: float | None = None) -> None:
    """Take the child and everything it started down: SIGINT, SIGTERM, then SIGKILL."""
    grace = GRACE_SECONDS if grace is None else grace
    for signum in (signal.SIGINT, signal.SIGTERM):
        if not _signal_group(process, signum) or _wait_for_group(process, grace):
            return
    _signal_group(process, signal.SIGKILL)
    _wait_for_group(process, grace)


def _popen(
    args: Sequence[str], *, env: Mapping[str, str] | None, cwd: Path | None, capture: bool, stderr_pipe: bool
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        list(args),
        env=_environment(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL if capture else None,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.PIPE if capture or stderr_pipe else None,
        text=True,
        errors="replace",  # a program's bytes are never a reason to fail (non-UTF-8 output)
        start_new_session=_POSIX,  # its own group: stopped as a whole, never by a terminal's signal alone
    )


def run(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
) -> Completed:
    """Run to completion and capture output; a program that cannot start or answer in
    ``timeout`` seconds comes back with ``failure`` set (and its tree is taken down)."""
    log.debug("run", argv=list(args), env=dict(env or {}), cwd=str(cwd) if cwd else None)
    try:
        process = _popen(args, env=env, cwd=cwd, capture=True, stderr_pipe=True)
    except OSError as error:
        return Completed(tuple(args), -1, "", "", failure=error.strerror or str(error))
    except ValueError as error:  # an argument Python cannot pass on (a NUL byte in a path)
        return Completed(tuple(args), -1, "", "", failure=str(error))
    with process:
        watcher = _end_leftovers_when_done(process)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_tree(process, grace=0.5)
            with contextlib.suppress(subprocess.TimeoutExpired, ValueError):
                process.communicate(timeout=1)
            return Completed(
                tuple(args), -1, "", "", failure=f"no answer within {timeout:g} s", timed_out=True
            )
        except BaseException:  # Ctrl-C, SIGTERM: the child's tree goes first
            stop_tree(process)
            raise
        finally:
            watcher.join(timeout=4 * LEFTOVER_GRACE)
    return Completed(tuple(args), process.returncode, stdout[:CAPTURE_LIMIT], stderr[:CAPTURE_LIMIT])


def _end_leftovers_when_done(process: _Process) -> threading.Thread:
    """Once the child exits, what it left running in its group is stopped: a grandchild would
    otherwise hold the output pipes open (and the caller waiting) and outlive llm-sync."""

    def watch() -> None:
        process.wait()
        if _group_alive(process):
            stop_tree(process, grace=LEFTOVER_GRACE)

    watcher = threading.Thread(target=watch, name="llm-sync-reaper", daemon=True)
    watcher.start()
    return watcher


def run_streaming(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    on_stderr_line: Callable[[str], None] | None = None,
    on_stderr_bytes: Callable[[bytes], None] | None = None,
) -> int:
    """Run with stdout shown as it comes; return the exit code (-N when signal N ended it).

    With ``on_stderr_line`` each stderr line is handed over as it arrives
    (build progress); without it stderr goes straight to the terminal.
    With ``on_stderr_bytes`` (and a POSIX pseudo-terminal to be had) the child's
    stderr is a pseudo-terminal instead, so it draws its own live progress and
    colours, and its bytes are handed over as they come (see `run_in_terminal`).
    On Ctrl-C or SIGTERM (KeyboardInterrupt) the child's whole tree is stopped and
    the exception propagates.
    """
    if on_stderr_bytes is not None and _pty_available():
        return run_in_terminal(args, env=env, cwd=cwd, on_stderr_bytes=on_stderr_bytes)
    log.debug("run", argv=list(args), env=dict(env or {}), cwd=str(cwd) if cwd else None)
    with _popen(args, env=env, cwd=cwd, capture=False, stderr_pipe=on_stderr_line is not None) as process:
        watcher = _end_leftovers_when_done(process)
        try:
            if on_stderr_line is not None and process.stderr is not None:
                for line in process.stderr:
                    on_stderr_line(line.rstrip("\n"))
            return process.wait()
        except BaseException:
            stop_tree(process)
            raise
        finally:
            watcher.join(timeout=4 * LEFTOVER_GRACE)


def _pty_available() -> bool:
    return os.name == "posix"


def _set_up_terminal(to_fd: int) -> None:
    """The pseudo-terminal gets the size of the terminal llm-sync writes to (stderr), so
    the child's progress bars fit it (80x24, the default, when there is none), and keeps
    the child's newlines as they are."""
    import fcntl  # noqa: PLC0415 - POSIX only, and only on this path
    import termios  # noqa: PLC0415 - same

    for fd in (2, 1, 0):
        try:
            size = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
        except OSError:
            continue
        fcntl.ioctl(to_fd, termios.TIOCSWINSZ, size)
        break
    attributes = termios.tcgetattr(to_fd)
    attributes[1] &= ~termios.ONLCR  # "\n" stays "\n": the user's terminal adds its own "\r"
    termios.tcsetattr(to_fd, termios.TCSANOW, attributes)


def run_in_terminal(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    on_stderr_bytes: Callable[[bytes], None],
) -> int:
    """Run with stderr on a new pseudo-terminal and hand its bytes over as they come
    (carriage-return redraws and colour codes included); stdout and stdin are inherited.

    The child sees a terminal, so a program like uv draws its live download bars; the
    caller decides what reaches the user's terminal and reads the lines it needs.
    """
    import pty  # noqa: PLC0415 - POSIX only, and only on this path

    log.debug("run", argv=list(args), env=dict(env or {}), cwd=str(cwd) if cwd else None, terminal=True)
    controller, child_side = pty.openpty()
    try:
        _set_up_terminal(child_side)
        process = subprocess.Popen(
            list(args),
            env=_environment(env),
            cwd=cwd,
            stderr=child_side,
            start_new_session=True,  # its own group, as in run_streaming; the pty is not its controlling terminal
        )
    except BaseException:
        os.close(controller)
        raise
    finally:
        os.close(child_side)  # the child holds its own copy: reading ends when it (and its children) close it
    with process:
        watcher = _end_leftovers_when_done(process)
        try:
            while True:
                try:
                    data = os.read(controller, 65536)
                except OSError:  # EIO: every holder of the other side has closed it (Linux)
                    break
                if not data:  # end of file (BSD, macOS)
                    break
                on_stderr_bytes(data)
            return process.wait()
        except BaseException:
            stop_tree(process)
            raise
        finally:
            watcher.join(timeout=4 * LEFTOVER_GRACE)
            os.close(controller)
