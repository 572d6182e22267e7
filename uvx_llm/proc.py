"""The one way llm-sync starts other programs (the only module that imports subprocess).

Argument lists only (never a shell), environment changes passed explicitly and
logged, and a child that outlives Ctrl-C is terminated, then killed. A program
that cannot be started, or does not answer in time, is a value (`Completed.failure`),
not an exception: every caller has something to say about it, none has to catch.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING

from uvx_llm.log import get_logger

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

log = get_logger(__name__)

# How long a child gets to exit on its own after Ctrl-C (it saw the SIGINT too),
# then after SIGTERM, before it is killed.
GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class Completed:
    args: tuple[str, ...]
    returncode: int  # -1 when it did not run to completion
    stdout: str
    stderr: str
    failure: str | None = None  # why it did not run to completion: the OS's reason, or the timeout
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        """It ran and exited 0."""
        return self.failure is None and self.returncode == 0


def _environment(overrides: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    if overrides:
        env.update(overrides)
    return env


def _stop(process: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    """Give the child its chance to stop on its own, then terminate, then kill."""
    for signal_next in (None, process.terminate, process.kill):
        if signal_next is not None:
            signal_next()
        try:
            process.wait(timeout=GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            continue
        return


def run(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
) -> Completed:
    """Run to completion and capture output; a program that cannot start or answer in
    ``timeout`` seconds comes back with ``failure`` set."""
    log.debug("run", argv=list(args), env=dict(env or {}), cwd=str(cwd) if cwd else None)
    try:
        result = subprocess.run(
            list(args),
            env=_environment(env),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Completed(tuple(args), -1, "", "", failure=f"no answer within {timeout:g} s", timed_out=True)
    except OSError as error:
        return Completed(tuple(args), -1, "", "", failure=error.strerror or str(error))
    except ValueError as error:  # an argument Python cannot pass on (a NUL byte in a path)
        return Completed(tuple(args), -1, "", "", failure=str(error))
    return Completed(tuple(args), result.returncode, result.stdout, result.stderr)


def run_streaming(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    on_stderr_line: Callable[[str], None] | None = None,
    on_stderr_bytes: Callable[[bytes], None] | None = None,
) -> int:
    """Run with stdout shown as it comes; return the exit code.

    With ``on_stderr_line`` each stderr line is handed over as it arrives
    (build progress); without it stderr goes straight to the terminal.
    With ``on_stderr_bytes`` (and a POSIX pseudo-terminal to be had) the child's
    stderr is a pseudo-terminal instead, so it draws its own live progress and
    colours, and its bytes are handed over as they come (see `run_in_terminal`).
    On Ctrl-C the child is stopped and KeyboardInterrupt propagates.
    """
    if on_stderr_bytes is not None and _pty_available():
        return run_in_terminal(args, env=env, cwd=cwd, on_stderr_bytes=on_stderr_bytes)
    log.debug("run", argv=list(args), env=dict(env or {}), cwd=str(cwd) if cwd else None)
    stderr = subprocess.PIPE if on_stderr_line is not None else None
    with subprocess.Popen(
        list(args),
        env=_environment(env),
        cwd=cwd,
        stderr=stderr,
        text=True,
        errors="replace",
        bufsize=1,
    ) as process:
        try:
            if on_stderr_line is not None and process.stderr is not None:
                for line in process.stderr:
                    on_stderr_line(line.rstrip("\n"))
            return process.wait()
        except KeyboardInterrupt:
            _stop(process)
            raise


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
        process = subprocess.Popen(list(args), env=_environment(env), cwd=cwd, stderr=child_side)
    except BaseException:
        os.close(controller)
        raise
    finally:
        os.close(child_side)  # the child holds its own copy: reading ends when it (and its children) close it
    with process:
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
        except KeyboardInterrupt:
            _stop(process)
            raise
        finally:
            os.close(controller)
