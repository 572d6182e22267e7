"""Writing the user's pyproject.toml without losing it.

The promises (docs/guarantees.md): a symlink is written through to its target;
a hard link is not split; owner, group and mode stay; a file this user may not
write is refused, never replaced; a file changed since it was read is refused;
SIGINT/SIGTERM during the write neither leave a temporary file behind nor a
half-written file (they are held back for the few milliseconds the write takes).
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from uvx_llm.errors import LlmSyncError

if TYPE_CHECKING:
    from collections.abc import Iterator

TEMP_SUFFIX = ".llm-sync"
_HELD_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", signal.SIGINT)})


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT/SIGTERM/SIGHUP wait until the block is left, then arrive as usual."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _refuse_unwritable(path: Path, target: Path, info: os.stat_result) -> None:
    shown = path if path == target else f"{path} (a link to {target})"
    if not stat.S_IMODE(info.st_mode) & stat.S_IWUSR:
        raise LlmSyncError(
            f"{shown} is read-only; nothing was written",
            why="its permissions do not allow writing, and llm-sync does not override that",
            fix=f"make it writable (chmod u+w {target}) or run `llm-sync plan` to see the changes",
        )
    try:
        fd = os.open(target, os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as error:
        raise LlmSyncError(
            f"{shown} may not be written by this user ({error.strerror}); nothing was written",
            why="llm-sync respects file permissions: it never replaces a file it could not edit",
            fix=f"run as a user who may write {target}, or run `llm-sync plan` to see the changes",
        ) from None
    os.close(fd)


def _refuse_changed(path: Path, target: Path, expected: bytes) -> bytes:
    try:
        current = target.read_bytes()
    except OSError as error:
        raise LlmSyncError(f"cannot read {path} again: {error.strerror}; nothing was written") from None
    if current != expected:
        raise LlmSyncError(
            f"{path} changed while llm-sync ran; run again; nothing was written",
            why="another program or person edited it after llm-sync read it, and writing would lose that edit",
            fix="run llm-sync again",
        )
    return current


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _write_in_place(target: Path, data: bytes, original: bytes) -> None:
    """Overwrite the file itself: its inode (hard links), owner, group and mode stay.

    A failure half-way (a full disk) puts the original bytes back: they fit in the
    space the file already had.
    """
    fd = os.open(target, os.O_WRONLY)
    try:
        try:
            _write_all(fd, data)
            os.ftruncate(fd, len(data))
            os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.lseek(fd, 0, os.SEEK_SET)
                _write_all(fd, original)
                os.ftruncate(fd, len(original))
            raise
    finally:
        os.close(fd)


def _replace(target: Path, data: bytes, info: os.stat_result) -> bool:
    """A new file renamed over the target; False when that cannot keep owner and group, or
    the folder takes no new file."""
    try:
        fd, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=TEMP_SUFFIX)
    except PermissionError:  # a writable file in a folder this user may not add to
        return False
    temp = Path(temp_name)
    try:
        try:
            mine = os.fstat(fd)
            if (mine.st_uid, mine.st_gid) != (info.st_uid, info.st_gid):
                try:
                    os.fchown(fd, info.st_uid, info.st_gid)
                except PermissionError:
                    temp.unlink()
                    return False
            os.fchmod(fd, stat.S_IMODE(info.st_mode))
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        temp.replace(target)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    return True


def write(path: Path, data: bytes, *, expected: bytes | None = None) -> None:
    """Put ``data`` into the file ``path`` names, or raise LlmSyncError and leave it alone.

    ``expected``: the bytes llm-sync read at the start; anything else there now
    means someone edited the file meanwhile.
    """
    target = Path(os.path.realpath(path))
    with signals_held():
        try:
            info = target.stat()
        except OSError as error:
            raise LlmSyncError(f"cannot read {path}'s permissions: {error.strerror}") from None
        _refuse_unwritable(path, target, info)
        original = _refuse_changed(path, target, expected) if expected is not None else None
        try:
            if original is None:
                original = target.read_bytes()
            if info.st_nlink > 1 or not _replace(target, data, info):
                _write_in_place(target, data, original)
        except OSError as error:
            raise LlmSyncError(
                f"cannot write {path}: {error.strerror}; the file is unchanged",
                fix=f"check that {target.parent} is writable and the disk is not full",
            ) from None


def write_each(writes: list[tuple[Path, bytes, bytes]]) -> None:
    """Several files (a uv workspace's root and members): each (path, new bytes, bytes read) is checked
    (writable, unchanged since read) before the first is written, so a refusal writes none of them."""
    for path, _, expected in writes:
        target = Path(os.path.realpath(path))
        try:
            info = target.stat()
        except OSError as error:
            raise LlmSyncError(f"cannot read {path}'s permissions: {error.strerror}") from None
        _refuse_unwritable(path, target, info)
        _refuse_changed(path, target, expected)
    for path, data, expected in writes:
        write(path, data, expected=expected)
