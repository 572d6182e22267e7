"""Live progress for source builds that uv runs, from uv's own stderr.

With RUST_LOG=uv_build_frontend=debug uv prints every build-backend line as
``DEBUG <line>`` (checked with uv 0.13.8), after a ``Building <package>`` line.
ninja's ``[N/M] <command>`` lines become progress: a live status line on a
terminal, a plain line at least every 10 % or 30 s elsewhere (CI, devcontainer
logs). The build's full output goes to a log file per package; on failure the
first compiler error is shown with a diagnosis instead of thousands of lines.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from pathlib import Path

_BUILDING = re.compile(r"^\s*Building (\S+?)(?:==\S+)?(?: @ \S+)?\s*$")
_NINJA = re.compile(r"^\[(\d+)/(\d+)\]\s*(.*)$")
_SOURCE = re.compile(r"(\S+\.(?:cu|cpp|cc|c|cxx))\b")
_UV_DUMP = re.compile(r"^ {9}")  # uv repeats the whole build output, indented, after a failure
PLAIN_EVERY_SECONDS = 30.0
PLAIN_EVERY_PERCENT = 10


@dataclass
class Build:
    package: str
    started: float
    log: TextIO | None = None
    log_path: Path | None = None
    done: int = 0
    total: int = 0
    current: str = ""
    lines: list[str] = field(default_factory=list)  # kept for diagnosis (bounded)
    last_reported_percent: int = -1
    last_reported_at: float = 0.0

    def eta_seconds(self, now: float) -> float | None:
        if self.done <= 0 or self.total <= 0:
            return None
        return (now - self.started) / self.done * (self.total - self.done)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def status_line(build: Build, now: float) -> str:
    eta = build.eta_seconds(now)
    percent = f" {100 * build.done // build.total}%" if build.total else ""
    steps = f" [{build.done}/{build.total}]" if build.total else ""
    tail = f" ETA {_clock(eta)}" if eta is not None else ""
    current = f"  {build.current}" if build.current else ""
    return f"building {build.package}{steps}{percent} {_clock(now - build.started)}{tail}{current}"


class Progress:
    """Consumes uv's stderr line by line; shows uv's own lines and build progress."""

    def __init__(
        self,
        *,
        out: TextIO,
        terminal: bool,
        log_dir: Path | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.out = out
        self.terminal = terminal
        self.log_dir = log_dir
        self.clock = clock
        self.builds: list[Build] = []
        self.output: list[str] = []  # uv's own lines, for explaining a failed resolution
        self._status_shown = False
        self._in_failure_dump = False

    @property
    def current(self) -> Build | None:
        return self.builds[-1] if self.builds else None

    # -- input ------------------------------------------------------------------------------------

    def feed(self, line: str) -> None:
        if line.startswith("DEBUG "):
            self._build_line(line[len("DEBUG ") :])
            return
        if _UV_DUMP.match(line) and self._in_failure_dump:
            return  # already in the log file, and shown as a diagnosis
        if len(self.output) < 2000:  # noqa: PLR2004 - a resolution explanation is far shorter
            self.output.append(line)
        if line.startswith("error: Failed to build"):
            self._in_failure_dump = True
        match = _BUILDING.match(line)
        if match:
            self._start(match.group(1))
        self._show(line)

    def _start(self, package: str) -> None:
        build = Build(package=package, started=self.clock())
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            stamp = datetime.now(tz=timezone.utc).strftime("%Y%m%dT%H%M%S")
            build.log_path = self.log_dir / f"{stamp}-{package.replace('/', '_')}.log"
            build.log = build.log_path.open("w", encoding="utf-8")
        self.builds.append(build)

    def _build_line(self, text: str) -> None:
        build = self.current
        if build is None:
            return
        if build.log is not None:
            build.log.write(text + "\n")
            build.log.flush()
        build.lines.append(text)
        if len(build.lines) > 20000:  # noqa: PLR2004 - enough for any diagnosis; the log has everything
            del build.lines[:10000]
        match = _NINJA.match(text)
        if match:
            build.done, build.total = int(match.group(1)), int(match.group(2))
            source = _SOURCE.findall(match.group(3))
            build.current = source[-1].rsplit("/", 1)[-1] if source else match.group(3)[:60]
            self._report(build)

    # -- output -----------------------------------------------------------------------------------

    def _show(self, line: str) -> None:
        self._clear_status()
        self.out.write(line + "\n")
        self.out.flush()
        if self.current is not None and self.current.total and self.terminal:
            self._draw(self.current)

    def _clear_status(self) -> None:
        if self._status_shown:
            self.out.write("\r\x1b[2K")
            self._status_shown = False

    def _draw(self, build: Build) -> None:
        self.out.write("\r\x1b[2K" + status_line(build, self.clock())[:160])
        self.out.flush()
        self._status_shown = True

    def _report(self, build: Build) -> None:
        now = self.clock()
        if self.terminal:
            self._draw(build)
            return
        percent = 100 * build.done // build.total if build.total else 0
        step = percent // PLAIN_EVERY_PERCENT
        due = now - build.last_reported_at >= PLAIN_EVERY_SECONDS
        if step > build.last_reported_percent // PLAIN_EVERY_PERCENT or due or build.done == build.total:
            build.last_reported_percent = percent
            build.last_reported_at = now
            self.out.write(status_line(build, now) + "\n")
            self.out.flush()

    def close(self) -> None:
        self._clear_status()
        for build in self.builds:
            if build.log is not None:
                build.log.close()
                build.log = None
        self.out.flush()


# --- diagnosis ---------------------------------------------------------------------------------------

OOM = "oom"
_DIAGNOSES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    (
        OOM,
        re.compile(
            r"Killed|signal 9|SIGKILL|out of memory|cannot allocate memory|std::bad_alloc", re.IGNORECASE
        ),
        "a compiler was killed for lack of memory (the OOM killer): too many parallel jobs for this machine",
    ),
    (
        "cuda-mismatch",
        re.compile(r"detected CUDA version \(.*\) mismatches|CUDA version mismatch", re.IGNORECASE),
        "nvcc's CUDA version differs from the one torch was built with: install the matching CUDA toolkit and set CUDA_HOME",
    ),
    (
        "no-nvcc",
        re.compile(
            r"nvcc: (?:not found|No such file)|CUDA_HOME environment variable is not set|No CUDA runtime is found",
            re.IGNORECASE,
        ),
        "nvcc was not found: install the CUDA toolkit and set CUDA_HOME",
    ),
    (
        "no-ninja",
        re.compile(
            r"Ninja is required|could not find ninja|falling back to (?:using )?(?:the slow )?distutils|ninja: (?:not found|command not found)",
            re.IGNORECASE,
        ),
        "ninja is missing from the build environment: add it to [tool.uv.extra-build-dependencies] (`llm-sync` does)",
    ),
)
_ERROR = re.compile(r"\berror\b[:\s]|\bError\b", re.IGNORECASE)


@dataclass(frozen=True)
class Diagnosis:
    kind: str
    summary: str
    excerpt: tuple[str, ...]


def diagnose(lines: Iterable[str], *, context: int = 3) -> Diagnosis:
    """What went wrong in a failed build: a known cause, and the first error with its context."""
    kept = list(lines)
    kind, summary = "compile-error", "the build failed"
    for name, pattern, explanation in _DIAGNOSES:
        if any(pattern.search(line) for line in kept):
            kind, summary = name, explanation
            break
    first = next((i for i, line in enumerate(kept) if _ERROR.search(line)), None)
    if first is None:
        excerpt = tuple(kept[-2 * context :])
    else:
        excerpt = tuple(kept[max(0, first - context) : first + context + 1])
    return Diagnosis(kind, summary, excerpt)


# --- unsatisfiable requirements ----------------------------------------------------------------

_NO_SOLUTION = "No solution found"
_NAMED = re.compile(
    r"(?:versions? of |depends? on |requires |of |[Bb]ecause |and )([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?"
    r"|\b([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?(?:==|>=|<=|!=|~=|>|<)"
)
_NOT_PACKAGES = {
    "your",
    "project",
    "the",
    "all",
    "we",
    "and",
    "because",
    "version",
    "versions",
    "that",
    "which",
    "there",
}


def unsatisfiable(lines: Iterable[str]) -> list[str] | None:
    """The packages uv's "No solution found" explanation names; None when uv said no such thing."""
    text = list(lines)
    start = next((i for i, line in enumerate(text) if _NO_SOLUTION in line), None)
    if start is None:
        return None
    names: list[str] = []
    for line in text[start:]:
        for match in _NAMED.finditer(line):
            name = (match.group(1) or match.group(2) or "").lower()
            if name and name not in _NOT_PACKAGES and name not in names:
                names.append(name)
    return names
