"""The run as a process: SIGTERM and SIGHUP stop it as Ctrl-C does, a crash leaves a log
(credentials masked, never overwriting an earlier one), and a stdout that failed is silenced so
Python's own flush at exit does not fail again. Used by the entry point (cli.run) only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

from uvx_llm import __version__, paths
from uvx_llm.errors import ExitCode, Interrupted, LlmSyncError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

_STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def write_crash_log(error: BaseException) -> Path | None:
    """A new file per crash (never an earlier one overwritten), credentials masked; None
    when it cannot be written, and then no empty file is left behind."""
    import traceback  # noqa: PLC0415 - see the imports
    from datetime import datetime, timezone  # noqa: PLC0415 - see the imports

    from uvx_llm.redact import redact, redact_data  # noqa: PLC0415 - see the imports

    text = redact(
        f"llm-sync {__version__}\nargv: {redact_data(list(sys.argv))}\n\n"
        + "".join(traceback.format_exception(error))
    ).encode("utf-8", errors="backslashreplace")
    stamp = datetime.now(tz=timezone.utc).strftime("%Y%m%dT%H%M%S")
    created: Path | None = None
    try:
        folder = paths.log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        for attempt in range(100):
            path = folder / f"crash-{stamp}-{os.getpid()}{f'-{attempt}' if attempt else ''}.log"
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue
            created = path
            with os.fdopen(fd, "wb") as handle:
                handle.write(text)
            return path
    except OSError:
        if created is not None:
            with contextlib.suppress(OSError):
                created.unlink()
    return None


def _raise_interrupted(signum: int, _frame: object) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def signals_as_interrupts() -> Iterator[None]:
    """SIGTERM (docker stop, CI cancel, `timeout`) and SIGHUP (a closed terminal) stop the run as
    Ctrl-C does: uv's process tree is taken down, and the exit code is 128 + the signal."""
    previous: dict[int, Any] = {}
    try:
        for signum in _STOP_SIGNALS:
            previous[signum] = signal.signal(signum, _raise_interrupted)
    except ValueError:  # not the main thread (an embedding program): its handlers stay
        pass
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def silence_stdout() -> None:
    """After stdout failed, point it at /dev/null: Python's own flush at exit must not fail again."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def output_error(error: OSError) -> LlmSyncError:
    return LlmSyncError(
        f"cannot write the output: {error.strerror or error}",
        why="standard output was closed (a pipe whose reader stopped) or its device is full",
        fix="give the output somewhere to go, e.g. a file on a disk with space",
        exit_code=ExitCode.OUTPUT,
    )
