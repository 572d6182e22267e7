"""Live progress for source builds that uv runs, from uv's own stderr.

With RUST_LOG=uv_build_frontend=debug uv prints every build-backend line as
``DEBUG <line>`` (checked with uv 0.13.8), after a ``Building <package>`` line.
torch's extension builder prints ``Compiling objects...`` and then runs ninja,
whose ``[N/M] <command>`` line appears when a step *finishes* (ninja prints the
status at an edge's start only on a smart terminal, and the build's output is a
pipe), so the file named is the last one finished, never one in flight.

Those lines become progress: a status line redrawn in place on a terminal (cut
to its width, ticking every second), and plain lines elsewhere (CI, devcontainer
logs): at the start of compiling, at every 10 % and at least every 30 s while a
step runs. A timer thread drives the ticking and the 30 s heartbeat, so a long
step is never silent. The ETA models ninja's parallel waves (see `Build.eta_seconds`).

The build's full output goes to a log file per package and attempt; its path is
shown when the build starts and again when it fails or is interrupted. On
failure the first compiler error is shown with a diagnosis instead of thousands
of lines.
"""

from __future__ import annotations

import heapq
import os
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, TextIO, final

from uvx_llm import ttystream

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from pathlib import Path
    from types import TracebackType

_BUILDING = re.compile(r"^\s*Building (\S+?)(?:==\S+)?(?: @ \S+)?\s*$")
_BUILT = re.compile(r"^\s*Built (\S+?)(?:==\S+)?(?: @ \S+)?\s*$")
_NINJA = re.compile(r"^\[(\d+)/(\d+)\]\s*(.*)$")
_COMPILING = re.compile(r"^(?:Compiling objects\.\.\.|Emitting ninja build file )")
_SOURCE = re.compile(r"(\S+\.(?:cu|cpp|cc|c|cxx))\b")
_UV_DUMP = re.compile(r"^ {9}")  # uv repeats the whole build output, indented, after a failure
PLAIN_EVERY_SECONDS = 30.0
PLAIN_EVERY_PERCENT = 10
TICK_SECONDS = 1.0
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
FALLBACK_COLUMNS = 80


def parallel_jobs(env: Mapping[str, str]) -> int:
    """How many compiles ninja runs at once: MAX_JOBS from the build's environment
    (``env`` first, then this process's), else ninja's own default (CPUs + 2)."""
    for source in (env, os.environ):
        value = source.get("MAX_JOBS", "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return (os.cpu_count() or 1) + 2


@dataclass
class Build:
    package: str
    started: float
    jobs: int = 1
    log: TextIO | None = None
    log_path: Path | None = None
    compile_started: float | None = None
    done: int = 0
    total: int = 0
    last_finished: str = ""
    finished_at: list[float] = field(default_factory=list)  # when step i+1 finished
    lines: list[str] = field(default_factory=list)  # kept for diagnosis (bounded)
    ended: bool = False
    failed: bool = False
    last_reported_percent: int = -1
    last_reported_at: float = 0.0

    def eta_seconds(self, now: float) -> float | None:
        """Time left until ninja's last step finishes, or None before the first wave.

        ninja keeps ``jobs`` compiles running: the first ``jobs`` start together and
        finish together, one step time after compiling started, so "elapsed time over
        steps finished" is wildly high at step 1 or 2 (73m50s said, 21m52s real).
        Instead the rest of the build is replayed as ninja runs it: a step starts
        whenever one finishes (a step's start is an earlier step's finish, pairing
        them in order), each step takes the mean time of the steps finished so far,
        and the steps still to start go to the slots as they free up. Until the first
        ``jobs`` steps are done that mean is not known (a short step finishing early
        would make it far too low), so there is no estimate then.
        """
        if self.total <= 0:
            return None
        jobs = max(1, min(self.jobs, self.total))
        finished = self.finished_at[: self.done]
        if len(finished) < jobs:
            return None
        start = self.started if self.compile_started is None else self.compile_started
        started = min(self.total, jobs + len(finished))
        starts = [start] * jobs + finished[: started - jobs]  # in start order
        step = sum(end - began for end, began in zip(finished, starts[: len(finished)], strict=True)) / len(
            finished
        )
        slots = [max(now, began + step) for began in starts[len(finished) :]]  # the steps in flight
        slots += [now] * (jobs - len(slots))  # idle slots (fewer steps than jobs remain)
        heapq.heapify(slots)
        for _ in range(self.total - started):  # the steps not started yet, in ninja's order
            heapq.heappush(slots, heapq.heappop(slots) + step)
        return max(slots) - now


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def status_line(build: Build, now: float) -> str:
    """One line about ``build``: steps, percent, elapsed, ETA, the last finished file."""
    head = f"building {build.package}"
    elapsed = _clock(now - build.started)
    if not build.total:
        doing = "waiting for the compiler…" if build.compile_started is not None else "preparing the build…"
        return f"{head} {elapsed}: {doing}"
    percent = 100 * build.done // build.total
    eta = build.eta_seconds(now)
    if build.done >= build.total:
        tail = " (linking, packing the wheel)"
    elif eta is None:
        tail = " ETA estimating…"
    elif eta < 1:
        tail = " ETA any moment"
    else:
        tail = f" ETA {_clock(eta)}"
    last = f"  last finished: {build.last_finished}" if build.last_finished else ""
    return f"{head} [{build.done}/{build.total}] {percent}% {elapsed}{tail}{last}"


def _terminal_columns(out: TextIO) -> int:
    try:
        return os.get_terminal_size(out.fileno()).columns or FALLBACK_COLUMNS
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return FALLBACK_COLUMNS


def fit(text: str, columns: int) -> str:
    """``text`` cut to one row of a terminal ``columns`` wide, leaving the last column
    free (writing into it makes some terminals wrap, leaving a stale row behind)."""
    room = max(1, columns - 1)
    return text if len(text) <= room else text[: room - 1] + "…"


@final
class Progress:
    """Consumes uv's stderr line by line; shows uv's own lines and build progress.

    Use it as a context manager: a timer thread then calls `tick` every second
    (the elapsed time and spinner move, plain output gets its 30 s heartbeat), and
    leaving the block early (Ctrl-C) names the logs of builds that did not finish.
    """

    def __init__(
        self,
        *,
        out: TextIO,
        terminal: bool,
        log_dir: Path | None,
        jobs: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(tz=timezone.utc),
        columns: Callable[[], int] | None = None,
        tick_seconds: float = TICK_SECONDS,
        raw: Callable[[bytes], None] | None = None,
    ) -> None:
        self.out = out
        self.terminal = terminal
        self.log_dir = log_dir
        self.jobs = jobs if jobs is not None else parallel_jobs({})
        self.clock = clock
        self.wall_clock = wall_clock
        self.columns = columns if columns is not None else lambda: _terminal_columns(out)
        self.tick_seconds = tick_seconds
        self.raw = raw if raw is not None else self._write_bytes
        self.builds: list[Build] = []
        self.output: list[str] = []  # uv's own lines, for explaining a failed resolution
        self._status_shown = False
        self._in_failure_dump = False
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._splitter = ttystream.Splitter()
        self._child_drew_at = float("-inf")  # when bytes from a child on a pseudo-terminal were last shown

    @property
    def current(self) -> Build | None:
        return self.builds[-1] if self.builds else None

    # -- lifetime ---------------------------------------------------------------------------------

    def __enter__(self) -> Progress:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close(interrupted=kind is not None)

    def start(self) -> None:
        """Start the timer thread (once)."""
        if self._ticker is None:
            self._ticker = threading.Thread(
                target=self._tick_until_stopped, name="llm-sync progress", daemon=True
            )
            self._ticker.start()

    def _tick_until_stopped(self) -> None:
        while not self._stop.wait(self.tick_seconds):
            self.tick()

    def close(self, *, interrupted: bool = False) -> None:
        """Stop the timer, clear the status line, close the logs and name the logs of
        builds that failed or, when ``interrupted``, did not finish."""
        self._stop.set()
        if self._ticker is not None and self._ticker is not threading.current_thread():
            self._ticker.join()
        with self._lock:
            self._pieces(self._splitter.flush())
            self._clear_status()
            for build in self.builds:
                if build.log is not None:
                    build.log.close()
                    build.log = None
                if build.log_path is None:
                    continue
                if build.failed:
                    self.out.write(f"{build.package}: the build failed; full build log in {build.log_path}\n")
                elif interrupted and not build.ended:
                    self.out.write(
                        f"{build.package}: the build was interrupted; its log so far is in {build.log_path}\n"
                    )
            self.out.flush()

    # -- input ------------------------------------------------------------------------------------

    def feed(self, line: str) -> None:
        """One line of uv's stderr, read from a pipe: shown here (build lines go to the logs)."""
        with self._lock:
            self._take(line, echo=True)

    def feed_bytes(self, data: bytes) -> None:
        """Bytes of uv's stderr, read from a pseudo-terminal: uv's own drawing (its live bars,
        carriage returns, colours) reaches the terminal as it is, less the build lines;
        the complete lines are read as `feed` reads them."""
        with self._lock:
            self._pieces(self._splitter.feed(data))

    def _pieces(self, pieces: list[ttystream.Piece]) -> None:
        for piece in pieces:
            if piece.show:
                self._clear_status()
                self.raw(piece.show)
                self._child_drew_at = self.clock()
            if piece.line is not None:
                self._take(piece.line, echo=False)

    def _write_bytes(self, data: bytes) -> None:
        self.out.flush()
        buffer = getattr(self.out, "buffer", None)
        if buffer is None:  # a text-only stream (tests): the text as the terminal would get it
            self.out.write(data.decode("utf-8", errors="replace"))
        else:
            buffer.write(data)
            buffer.flush()

    def _take(self, line: str, *, echo: bool) -> None:
        if line.startswith("DEBUG "):
            self._build_line(line[len("DEBUG ") :])
            return
        if _UV_DUMP.match(line) and self._in_failure_dump:
            return  # already in the log file, and shown as a diagnosis
        if len(self.output) < 2000:  # noqa: PLR2004 - a resolution explanation is far shorter
            self.output.append(line)
        building, built = _BUILDING.match(line), _BUILT.match(line)
        build = self.current
        if line.startswith("error: Failed to build"):
            self._in_failure_dump = True
            if build is not None and not build.ended:
                build.ended = build.failed = True
        elif built:
            for finished in self.builds:
                finished.ended = finished.ended or finished.package == built.group(1)
        elif build is not None and build.total and build.done >= build.total:
            build.ended = True  # uv's closing lines: the 100 % line is not drawn again under each
        self._show(line, echo=echo)
        if building:
            self._start(building.group(1))

    def tick(self) -> None:
        """Called every second by the timer: redraw the ticking status line on a
        terminal; elsewhere a plain line when the build has been silent for 30 s."""
        with self._lock:
            build = self.current
            if build is None or build.ended:
                return
            if self.terminal:
                if self._status_shown or self.clock() - self._child_drew_at >= self.tick_seconds:
                    self._draw(build)
            elif self.clock() - build.last_reported_at >= PLAIN_EVERY_SECONDS:
                self._plain(build)

    def _start(self, package: str) -> None:
        build = Build(package=package, started=self.clock(), jobs=self.jobs)
        build.last_reported_at = build.started
        if self.log_dir is not None:
            build.log_path, build.log = self._open_log(package)
            self.out.write(f"building {package}: full build log in {build.log_path}\n")
            self.out.flush()
        self.builds.append(build)
        if self.terminal:
            self._draw(build)

    def _open_log(self, package: str) -> tuple[Path, TextIO]:
        """A new log file: an attempt never overwrites an earlier one's log (an OOM
        retry keeps the failed attempt's "Killed" lines)."""
        assert self.log_dir is not None  # noqa: S101 - the caller checked; narrows the type for mypy
        self.log_dir.mkdir(parents=True, exist_ok=True)
        stem = f"{self.wall_clock().strftime('%Y%m%dT%H%M%S')}-{package.replace('/', '_')}"
        attempt = 1
        while True:
            path = self.log_dir / (f"{stem}.log" if attempt == 1 else f"{stem}-{attempt}.log")
            try:
                return path, path.open("x", encoding="utf-8")
            except FileExistsError:
                attempt += 1

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
        now = self.clock()
        if _COMPILING.match(text):  # a ninja run starts (a package with two extensions has two)
            fresh = build.compile_started is None or build.total > 0
            build.compile_started, build.done, build.total, build.finished_at = now, 0, 0, []
            if fresh and not self.terminal:
                self._plain(build)
            return
        match = _NINJA.match(text)
        if match:
            done, total = int(match.group(1)), int(match.group(2))
            if done < build.done or (total != build.total and build.total):  # another ninja run, unannounced
                build.compile_started = build.finished_at[-1] if build.finished_at else now
                build.finished_at = []
                build.last_reported_percent = -1
            build.finished_at.extend([now] * (done - len(build.finished_at)))
            build.done, build.total = done, total
            source = _SOURCE.findall(match.group(3))
            build.last_finished = source[-1].rsplit("/", 1)[-1] if source else match.group(3)[:60]
            self._report(build)

    # -- output -----------------------------------------------------------------------------------

    def _show(self, line: str, *, echo: bool) -> None:
        if echo:  # from a pseudo-terminal, the line is on the terminal already
            self._clear_status()
            self.out.write(line + "\n")
            self.out.flush()
        build = self.current
        if self.terminal and build is not None and not build.ended:
            self._draw(build)

    def _clear_status(self) -> None:
        if self._status_shown:
            self.out.write("\r\x1b[2K")
            self._status_shown = False

    def _draw(self, build: Build) -> None:
        now = self.clock()
        spinner = SPINNER[int(now - build.started) % len(SPINNER)]
        self.out.write("\r\x1b[2K" + fit(f"{spinner} {status_line(build, now)}", self.columns()))
        self.out.flush()
        self._status_shown = True

    def _plain(self, build: Build) -> None:
        now = self.clock()
        build.last_reported_at = now
        if build.total:
            build.last_reported_percent = 100 * build.done // build.total
        self.out.write(status_line(build, now) + "\n")
        self.out.flush()

    def _report(self, build: Build) -> None:
        if self.terminal:
            self._draw(build)
            return
        percent = 100 * build.done // build.total if build.total else 0
        step = percent // PLAIN_EVERY_PERCENT
        due = self.clock() - build.last_reported_at >= PLAIN_EVERY_SECONDS
        first = build.last_reported_percent < 0
        if (
            first
            or step > build.last_reported_percent // PLAIN_EVERY_PERCENT
            or due
            or build.done == build.total
        ):
            self._plain(build)


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
    "one",
    "only",
    "following",
    "available",
    "can",
    "conclude",
    "is",
    "are",
    "no",
    # marker variables: uv prints `pkg{sys_platform == 'linux'}` and `platform_machine == ...`-compatible
    "sys_platform",
    "platform_machine",
    "platform_system",
    "python_version",
    "python_full_version",
    "implementation_name",
    "platform_python_implementation",
    "os_name",
    "extra",
}
# Markers and quoted text in uv's explanation: never package names.
_NOT_NAMES = re.compile(r"\{[^}]*\}|`[^`]*`|'[^']*'")


def unsatisfiable(lines: Iterable[str]) -> list[str] | None:
    """The packages uv's "No solution found" explanation names; None when uv said no such thing."""
    text = list(lines)
    start = next((i for i, line in enumerate(text) if _NO_SOLUTION in line), None)
    if start is None:
        return None
    names: list[str] = []
    for line in text[start:]:
        for match in _NAMED.finditer(_NOT_NAMES.sub(" ", line)):
            name = (match.group(1) or match.group(2) or "").lower()
            if name and name not in _NOT_PACKAGES and name not in names:
                names.append(name)
    return names
