"""uv on a pseudo-terminal: its live drawing reaches the user's terminal, its build lines reach progress."""

from __future__ import annotations

import os
import sys
import threading
from typing import TYPE_CHECKING

import pytest
from helpers import STANDINS

from uvx_llm import proc, progress, ttystream

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.skipif(os.name != "posix", reason="pseudo-terminals are POSIX")


def _read_all(fd: int, into: bytearray) -> None:
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the other side is closed
            return
        if not data:
            return
        into += data


def test_a_child_on_a_pseudo_terminal_draws_live_and_its_build_lines_reach_progress(tmp_path: Path) -> None:
    """A real pty stands for the user's terminal; the stand-in uv draws a bar with carriage
    returns and colours and prints a build's DEBUG lines, as uv does with RUST_LOG."""
    user_side, terminal_side = os.openpty()
    seen = bytearray()
    reader = threading.Thread(target=_read_all, args=(user_side, seen))
    reader.start()
    with os.fdopen(terminal_side, "w", encoding="utf-8", closefd=True) as terminal:
        shown = progress.Progress(out=terminal, terminal=True, log_dir=tmp_path, jobs=2, columns=lambda: 80)
        with shown:
            code = proc.run_streaming(
                [sys.executable, str(STANDINS / "drawing_uv.py")], on_stderr_bytes=shown.feed_bytes
            )
    reader.join(timeout=10)
    os.close(user_side)
    assert code == 0
    screen = bytes(seen)
    assert b"stderr is a terminal: True" in screen  # the child saw a terminal: uv draws its bars
    assert (
        b"\r\x1b[2K\x1b[36mtorch\x1b[39m 40MiB/120MiB\r\x1b[2K\x1b[36mtorch\x1b[39m 80MiB" in screen
    )  # live redraws
    assert b"\x1b[32m\x1b[1mBuilt\x1b[0m flash-attn" in screen  # uv's colours, as uv wrote them
    assert b"DEBUG" not in screen  # build lines go to the log and the status line, not the screen
    assert b"building flash-attn [2/2] 100%" in screen  # llm-sync's own status line
    build = shown.builds[0]
    assert (build.package, build.done, build.total, build.ended) == ("flash-attn", 2, 2, True)
    assert build.log_path is not None
    log_text = build.log_path.read_text(encoding="utf-8")
    assert log_text == (
        "Compiling objects...\n[1/2] nvcc -c kernel0.cu -o kernel0.o\n[2/2] nvcc -c kernel1.cu -o kernel1.o\n"
    )
    assert "Downloaded torch" in shown.output  # uv's own lines, plain, for explaining a failure
    assert not any("MiB/120MiB" in line for line in shown.output)  # partial redraws are not lines


def test_without_a_pseudo_terminal_stderr_is_read_line_by_line() -> None:
    lines: list[str] = []
    code = proc.run_streaming([sys.executable, str(STANDINS / "drawing_uv.py")], on_stderr_line=lines.append)
    assert code == 0
    assert lines[0] == "stderr is a terminal: False"
    assert "DEBUG\x1b[0m [2/2] nvcc -c kernel1.cu -o kernel1.o" in "".join(lines)


def _split(chunks: list[bytes]) -> tuple[bytes, list[str]]:
    splitter = ttystream.Splitter()
    pieces = [piece for chunk in chunks for piece in splitter.feed(chunk)] + splitter.flush()
    return b"".join(p.show for p in pieces), [p.line for p in pieces if p.line is not None]


def test_redraws_are_shown_at_once_and_only_the_final_row_is_a_line() -> None:
    splitter = ttystream.Splitter()
    assert [p.show for p in splitter.feed(b"\r\x1b[2K torch 1MiB")] == [
        b"\r\x1b[2K torch 1MiB"
    ]  # no newline yet
    shown, lines = _split(
        [b"\r\x1b[2K torch 1MiB", b"\r\x1b[2K torch 2MiB", b"\r\x1b[2K\x1b[1mDone\x1b[0m\n"]
    )
    assert shown == b"\r\x1b[2K torch 1MiB\r\x1b[2K torch 2MiB\r\x1b[2K\x1b[1mDone\x1b[0m\n"
    assert lines == ["Done"]


def test_build_lines_are_held_back_even_in_pieces_and_after_a_bar() -> None:
    shown, lines = _split([b"\r bar 5%", b"\x1b[34mDE", b"BUG\x1b[0m [1/4] c++ a.cpp\n", b"DEBUG x\nlast"])
    assert shown == b"\r bar 5%last"
    assert lines == ["DEBUG [1/4] c++ a.cpp", "DEBUG x", "last"]
    shown, lines = _split([b"\x1b[3", b"1merror\x1b[0m: no\n"])  # an escape sequence cut in two
    assert shown == b"\x1b[31merror\x1b[0m: no\n"
    assert lines == ["error: no"]
