"""A pseudo-terminal's byte stream, split into what the user sees and the lines llm-sync reads.

uv under a pseudo-terminal draws its download bars with carriage returns and
cursor movements, colours its words, and (with RUST_LOG) prints each build-backend
line as ``DEBUG <line>``. `Splitter.feed` takes the bytes as they come and returns:

- the bytes for the user's terminal, passed on at once, partial redraws included
  (a bar that is redrawn ten times a second must not wait for a newline), less the
  ``DEBUG`` lines, which go to the build log and the status line instead;
- the complete lines as plain text: colour codes out, and of a row that was
  redrawn with ``\\r`` only what it shows last, so a bar's partial redraws are
  never taken for lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_ESCAPE_TEXT = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]|\x1b[=>78]")
_INCOMPLETE_ESCAPE = re.compile(rb"\x1b(?:\[[0-9;?]*[ -/]*)?$")
_COLOUR = rb"(?:\x1b\[[0-9;]*m)*"
HIDDEN_PREFIX = "DEBUG "
_HIDDEN = re.compile(_COLOUR + rb"DEBUG" + _COLOUR + rb" ")
_MAYBE_HIDDEN = re.compile(_COLOUR + rb"D(?:E(?:B(?:U(?:G" + _COLOUR + rb")?)?)?)?$")  # its start, so far


def plain(text: str) -> str:
    """``text`` without terminal escape sequences."""
    return _ESCAPE_TEXT.sub("", text)


def visible_line(raw: bytes) -> str:
    """What a row of terminal output shows once drawn: the part after its last carriage
    return, colour codes out."""
    text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
    return plain(text.rsplit("\r", 1)[-1])


@dataclass
class Piece:
    """Bytes to show (may be empty), and the complete line they end, if they end one."""

    show: bytes
    line: str | None = None


@dataclass
class Splitter:
    _pending: bytearray = field(default_factory=bytearray)  # the current row, since the last newline
    _shown: int = 0  # how much of it already went to the terminal

    def feed(self, data: bytes) -> list[Piece]:
        self._pending += data
        pieces: list[Piece] = []
        while (end := self._pending.find(b"\n")) >= 0:
            raw = bytes(self._pending[: end + 1])
            del self._pending[: end + 1]
            shown, self._shown = self._shown, 0
            hidden = _HIDDEN.search(raw, shown)
            if hidden is not None:
                pieces.append(
                    Piece(raw[shown : hidden.start()], HIDDEN_PREFIX + visible_line(raw[hidden.end() :]))
                )
            else:
                pieces.append(Piece(raw[shown:], visible_line(raw)))
        limit = self._safe_limit()
        if limit > self._shown:
            pieces.append(Piece(bytes(self._pending[self._shown : limit])))
            self._shown = limit
        return pieces

    def flush(self) -> list[Piece]:
        """The end of the stream: a last row without a newline."""
        if not self._pending:
            return []
        pieces = self.feed(b"\n")
        pieces[0].show = pieces[0].show.removesuffix(b"\n")  # the newline was not the child's
        return pieces

    def _safe_limit(self) -> int:
        """How much of the unfinished row can be shown now: all of it, unless it holds the
        start of a hidden line (or what may become one: ``DE`` at its end) or an unfinished
        escape sequence."""
        pending = bytes(self._pending)
        hidden = _HIDDEN.search(pending, self._shown)
        if hidden is not None:
            return hidden.start()
        limit = len(pending)
        unfinished = _INCOMPLETE_ESCAPE.search(pending)
        if unfinished is not None:
            limit = unfinished.start()
        maybe = _MAYBE_HIDDEN.search(pending, self._shown, limit)
        if maybe is not None:
            limit = maybe.start()  # may become a hidden line: wait for the rest of it
        return max(limit, self._shown)
