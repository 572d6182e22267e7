from __future__ import annotations

import heapq
import io
import itertools
import random
import subprocess
import threading
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import pytest
from helpers import environment, uv_binary, write_project

from uvx_llm import progress

if TYPE_CHECKING:
    from pathlib import Path

    from pkgindex import PackageIndex


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ninja_lines(total: int) -> list[str]:
    return [
        f"DEBUG [{n}/{total}] /usr/local/cuda/bin/nvcc -c csrc/flash_fwd_hdim{n}.cu -o x.o"
        for n in range(1, total + 1)
    ]


def reports(out: io.StringIO) -> list[str]:
    return [line for line in out.getvalue().splitlines() if line.startswith("building flash-attn")]


def test_plain_output_reports_every_ten_percent_and_keeps_uvs_lines(tmp_path: Path) -> None:
    out, clock = io.StringIO(), Clock()
    shown = progress.Progress(out=out, terminal=False, log_dir=tmp_path, jobs=1, clock=clock)
    shown.feed("Resolved 4 packages in 19ms")
    shown.feed("   Building flash-attn==2.8.3")
    for line in ninja_lines(100):
        clock.now += 1
        shown.feed(line)
    shown.feed("      Built flash-attn==2.8.3")
    shown.feed(" + flash-attn==2.8.3")
    shown.close()
    text = out.getvalue()
    [build] = shown.builds
    assert build.log_path is not None
    lines = reports(out)
    assert lines[0] == f"building flash-attn: full build log in {build.log_path}"
    assert len(lines) == 12  # the log, the first step, then 10%, 20%, ... 100%
    assert lines[1] == "building flash-attn [1/100] 1% 1s ETA 1m39s  last finished: flash_fwd_hdim1.cu"
    assert lines[2] == "building flash-attn [10/100] 10% 10s ETA 1m30s  last finished: flash_fwd_hdim10.cu"
    assert lines[-1].startswith("building flash-attn [100/100] 100% 1m40s (linking, packing the wheel)")
    assert "Resolved 4 packages" in text
    assert " + flash-attn==2.8.3" in text
    assert "\r" not in text
    assert build.log_path.read_text(encoding="utf-8").count("nvcc -c") == 100


def test_plain_output_reports_at_least_every_thirty_seconds_when_steps_are_slow() -> None:
    out, clock = io.StringIO(), Clock()
    shown = progress.Progress(out=out, terminal=False, log_dir=None, clock=clock)
    shown.feed("   Building flash-attn==2.8.3")
    for line in ninja_lines(1000)[:30]:  # 3 % in 30 steps of 31 s each
        clock.now += 31
        shown.feed(line)
    assert len(reports(out)) == 30


def heartbeat_gaps(out: io.StringIO, shown: progress.Progress, clock: Clock, seconds: int) -> list[float]:
    """Tick once a second for ``seconds`` with no line from the build; the gaps between lines shown."""
    times = [clock.now]
    for _ in range(seconds):
        clock.now += 1
        before = len(reports(out))
        shown.tick()
        if len(reports(out)) > before:
            times.append(clock.now)
    times.append(clock.now)
    return [later - earlier for earlier, later in itertools.pairwise(times)]


def test_a_long_step_gets_a_plain_line_every_thirty_seconds() -> None:
    out, clock = io.StringIO(), Clock()
    shown = progress.Progress(out=out, terminal=False, log_dir=None, jobs=16, clock=clock)
    shown.feed("   Building flash-attn==2.8.3")
    shown.feed("DEBUG running build_ext")
    assert max(heartbeat_gaps(out, shown, clock, 40)) <= progress.PLAIN_EVERY_SECONDS
    assert reports(out)[-1] == "building flash-attn 30s: preparing the build…"
    shown.feed("DEBUG Compiling objects...")  # torch's extension builder, just before ninja
    assert reports(out)[-1] == "building flash-attn 40s: waiting for the compiler…"
    assert (
        max(heartbeat_gaps(out, shown, clock, 55)) <= progress.PLAIN_EVERY_SECONDS
    )  # the 55 s before [1/73]
    shown.feed(ninja_lines(73)[0])
    assert (
        max(heartbeat_gaps(out, shown, clock, 126)) <= progress.PLAIN_EVERY_SECONDS
    )  # the longest silence seen
    assert reports(out)[-1].startswith("building flash-attn [1/73] 1% 3m35s ETA estimating…")
    shown.feed("      Built flash-attn==2.8.3")
    shown.feed(" + flash-attn==2.8.3")
    before = len(reports(out))
    clock.now += 60
    shown.tick()
    assert len(reports(out)) == before  # the build is over: no more heartbeats


def test_the_timer_thread_ticks() -> None:
    class Watched(io.StringIO):
        def __init__(self) -> None:
            super().__init__()
            self.heartbeat = threading.Event()

        def write(self, text: str) -> int:
            if "waiting for the compiler" in text and "31s" in text:
                self.heartbeat.set()
            return super().write(text)

    out, clock = Watched(), Clock()
    with progress.Progress(out=out, terminal=False, log_dir=None, clock=clock, tick_seconds=0.01) as shown:
        shown.feed("   Building flash-attn==2.8.3")
        shown.feed("DEBUG Compiling objects...")
        clock.now += 31  # no line from the build since; only the timer can report
        assert out.heartbeat.wait(timeout=30)


# --- the ETA ---------------------------------------------------------------------------------


def ninja_timeline(durations: list[float], jobs: int, compile_started: float) -> list[float]:
    """When each step finishes, as ninja runs them: ``jobs`` slots, a step starting
    whenever a slot frees up, in the build file's order."""
    slots = [compile_started] * jobs
    finishes = []
    for duration in durations:
        finish = heapq.heappop(slots) + duration
        finishes.append(finish)
        heapq.heappush(slots, finish)
    return sorted(finishes)


@pytest.mark.parametrize("seed", range(5))
def test_the_eta_models_parallel_waves(seed: int) -> None:
    """flash-attn on the H100: 73 steps, MAX_JOBS=16, about 4 minutes each (the whole build
    was 21m52s); the first 16 finish together. From the first completed wave on, every
    second, the ETA is within a factor of 1.5 of the truth while at least half a step remains."""
    steps, jobs, step_time = 73, 16, 250.0
    rng = random.Random(seed)  # noqa: S311 - a reproducible timeline, not a secret
    durations = [step_time * rng.uniform(0.85, 1.15) for _ in range(steps)]
    out, clock = io.StringIO(), Clock()
    shown = progress.Progress(out=out, terminal=False, log_dir=None, jobs=jobs, clock=clock)
    shown.feed("   Building flash-attn==2.8.3")
    clock.now += 40
    shown.feed("DEBUG Compiling objects...")
    finishes = ninja_timeline(durations, jobs, clock.now)
    end, lines = finishes[-1], ninja_lines(steps)
    [build] = shown.builds
    checked = 0
    for second in range(int(clock.now), int(end - step_time / 2)):
        while build.done < steps and finishes[build.done] <= second:
            clock.now = finishes[build.done]
            shown.feed(lines[build.done])
        clock.now = second
        eta = build.eta_seconds(clock.now)
        if build.done < jobs:
            assert eta is None
            assert "ETA estimating…" in progress.status_line(build, clock.now) or build.done == 0
            continue
        assert eta is not None
        truth = end - clock.now
        assert truth / 1.5 <= eta <= truth * 1.5, (build.done, eta, truth)
        checked += 1
    assert checked > 700


def test_eta_at_the_end_of_each_wave() -> None:
    """The numbers the report quotes: predicted against actual when each wave completes."""
    steps, jobs = 73, 16
    rng = random.Random(0)  # noqa: S311 - a reproducible timeline, not a secret
    durations = [250.0 * rng.uniform(0.85, 1.15) for _ in range(steps)]
    clock = Clock()
    shown = progress.Progress(out=io.StringIO(), terminal=False, log_dir=None, jobs=jobs, clock=clock)
    shown.feed("   Building flash-attn==2.8.3")
    clock.now += 40
    shown.feed("DEBUG Compiling objects...")
    finishes = ninja_timeline(durations, jobs, clock.now)
    table = {}
    for n, (finish, line) in enumerate(zip(finishes, ninja_lines(steps), strict=True), start=1):
        clock.now = finish
        shown.feed(line)
        if n % jobs == 0:
            eta = shown.builds[0].eta_seconds(finish)
            assert eta is not None
            table[n // jobs] = (round(eta), round(finishes[-1] - finish))
    for predicted, actual in table.values():
        assert actual / 1.5 <= predicted <= actual * 1.5
    assert table[1][0] < 2 * table[1][1]  # the old estimate said about 4.5 times the truth here


def test_no_eta_from_the_first_steps_of_a_wave() -> None:
    """The real run: step 1 (a short C++ file) after 61 s, step 2 after 188 s; the old
    estimate said 73m50s and 111m06s for a build of 21m52s."""
    out, clock = io.StringIO(), Clock()
    shown = progress.Progress(out=out, terminal=False, log_dir=None, jobs=16, clock=clock)
    shown.feed("   Building flash-attn==2.8.3")
    lines = ninja_lines(73)
    for n, after in ((1, 61), (2, 188)):
        clock.now = 1000 + after
        shown.feed(lines[n - 1])
        assert shown.builds[0].eta_seconds(clock.now) is None
        assert "ETA estimating…" in reports(out)[-1]


def test_the_eta_counts_fewer_steps_than_jobs() -> None:
    clock = Clock()
    shown = progress.Progress(out=io.StringIO(), terminal=False, log_dir=None, jobs=16, clock=clock)
    shown.feed("   Building flash-attn==2.8.3")
    clock.now += 100
    shown.feed("DEBUG [1/4] nvcc -c a.cu")
    assert shown.builds[0].eta_seconds(clock.now) is None
    for n in (2, 3, 4):
        shown.feed(f"DEBUG [{n}/4] nvcc -c a.cu")
    assert shown.builds[0].eta_seconds(clock.now) == 0.0


def test_parallel_jobs_come_from_max_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_JOBS", "6")
    assert progress.parallel_jobs({"MAX_JOBS": "16"}) == 16
    assert progress.parallel_jobs({}) == 6
    monkeypatch.delenv("MAX_JOBS")
    assert progress.parallel_jobs({}) >= 3  # ninja's default: the CPUs + 2


# --- the terminal status line ----------------------------------------------------------------


def drawn(text: str) -> list[str]:
    """What each redraw left on the status row."""
    return [part.split("\n")[0] for part in text.split("\r\x1b[2K")[1:] if part.split("\n")[0]]


@pytest.mark.parametrize("columns", [40, 60, 80, 200])
def test_the_status_line_fits_the_terminal(columns: int) -> None:
    out, clock = io.StringIO(), Clock()
    shown = progress.Progress(
        out=out, terminal=True, log_dir=None, jobs=16, clock=clock, columns=lambda: columns
    )
    shown.feed("   Building flash-attn==2.8.3")
    for line in ninja_lines(40):
        clock.now += 7
        shown.feed(line)
        shown.tick()
    rows = drawn(out.getvalue())
    assert rows
    assert all(len(row) <= columns - 1 for row in rows)
    if columns == 200:
        assert rows[-1].endswith(
            "building flash-attn [40/40] 100% 4m40s (linking, packing the wheel)  last finished: flash_fwd_hdim40.cu"
        )
    else:
        assert rows[-1].endswith("…")


def test_elapsed_time_ticks_during_a_long_step() -> None:
    out, clock = io.StringIO(), Clock()
    shown = progress.Progress(out=out, terminal=True, log_dir=None, jobs=16, clock=clock, columns=lambda: 200)
    shown.feed("   Building flash-attn==2.8.3")
    shown.feed(ninja_lines(73)[0])
    for _ in range(3):
        clock.now += 1
        shown.tick()
    rows = drawn(out.getvalue())
    assert [row.split("% ")[1].split(" ")[0] for row in rows[-4:]] == ["0s", "1s", "2s", "3s"]
    assert len({row[0] for row in rows[-4:]}) == 4  # the spinner turns
    assert "last finished: flash_fwd_hdim1.cu" in rows[-1]


def test_a_status_line_shows_before_the_first_step() -> None:
    out, clock = io.StringIO(), Clock()
    shown = progress.Progress(out=out, terminal=True, log_dir=None, clock=clock, columns=lambda: 80)
    shown.feed("   Building flash-attn==2.8.3")
    shown.feed("DEBUG Compiling objects...")
    clock.now += 55
    shown.tick()
    assert drawn(out.getvalue())[-1].endswith("building flash-attn 55s: waiting for the compiler…")


def test_the_finished_line_is_not_redrawn_under_uvs_closing_lines() -> None:
    out, clock = io.StringIO(), Clock()
    shown = progress.Progress(out=out, terminal=True, log_dir=None, clock=clock, columns=lambda: 80)
    shown.feed("   Building flash-attn==2.8.3")
    for line in ninja_lines(3):
        shown.feed(line)
    shown.feed("      Built flash-attn==2.8.3")
    shown.feed("Prepared 1 package in 21m52s")
    shown.feed("Installed 1 package in 5ms")
    shown.feed(" + flash-attn==2.8.3")
    clock.now += 5
    shown.tick()
    shown.close()
    text = out.getvalue()
    assert text.count("[3/3] 100%") == 1
    assert text.endswith(
        "      Built flash-attn==2.8.3\nPrepared 1 package in 21m52s\nInstalled 1 package in 5ms\n + flash-attn==2.8.3\n"
    )


def test_terminal_output_redraws_one_status_line() -> None:
    out, clock = io.StringIO(), Clock()
    shown = progress.Progress(out=out, terminal=True, log_dir=None, clock=clock, columns=lambda: 80)
    shown.feed("   Building flash-attn==2.8.3")
    for line in ninja_lines(3):
        shown.feed(line)
    shown.feed("Installed 1 package")
    shown.close()
    text = out.getvalue()
    assert text.count("\r\x1b[2K") >= 3
    assert "building flash-attn [3/3] 100%" in text
    assert "Installed 1 package\n" in text


# --- build logs ------------------------------------------------------------------------------


def test_each_attempt_gets_its_own_log(tmp_path: Path) -> None:
    same_second = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    paths: list[Path] = []
    for attempt in ("Killed signal terminated program cc1plus", "[1/1] nvcc -c a.cu"):
        shown = progress.Progress(
            out=io.StringIO(), terminal=False, log_dir=tmp_path, wall_clock=lambda: same_second
        )
        shown.feed("   Building flash-attn==2.8.3")
        shown.feed(f"DEBUG {attempt}")
        shown.close()
        log_path = shown.builds[0].log_path
        assert log_path is not None
        paths.append(log_path)
    assert paths == [
        tmp_path / "20250102T030405-flash-attn.log",
        tmp_path / "20250102T030405-flash-attn-2.log",
    ]
    assert "Killed" in paths[0].read_text(encoding="utf-8")
    assert "nvcc" in paths[1].read_text(encoding="utf-8")


def test_the_log_is_named_on_ctrl_c(tmp_path: Path) -> None:
    out = io.StringIO()
    shown = progress.Progress(out=out, terminal=True, log_dir=tmp_path)

    def interrupted() -> None:
        with shown:
            shown.feed("   Building flash-attn==2.8.3")
            shown.feed("DEBUG [1/73] nvcc -c a.cu")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    log_path = shown.builds[0].log_path
    assert f"\nbuilding flash-attn: full build log in {log_path}\n" in out.getvalue()
    assert out.getvalue().endswith(
        f"\r\x1b[2Kflash-attn: the build was interrupted; its log so far is in {log_path}\n"
    )


def test_the_log_is_named_after_a_failure(tmp_path: Path) -> None:
    out = io.StringIO()
    with progress.Progress(out=out, terminal=False, log_dir=tmp_path) as shown:
        shown.feed("   Building flash-attn==2.8.3")
        shown.feed("DEBUG cc1plus: fatal error: Killed signal terminated program cc1plus")
        shown.feed("error: Failed to build `flash-attn==2.8.3`")
    assert out.getvalue().endswith(
        f"flash-attn: the build failed; full build log in {shown.builds[0].log_path}\n"
    )


def test_uvs_repeated_dump_after_a_failure_is_not_shown() -> None:
    out = io.StringIO()
    shown = progress.Progress(out=out, terminal=False, log_dir=None)
    shown.feed("   Building flash-attn==2.8.3")
    shown.feed("DEBUG error: identifier undefined")
    shown.feed("error: Failed to build `flash-attn==2.8.3`")
    shown.feed("  cause: The build backend returned an error")
    shown.feed("         [stdout]")
    shown.feed("         5000 lines of compiler output")
    text = out.getvalue()
    assert "cause: The build backend returned an error" in text
    assert "5000 lines" not in text


def test_lines_before_any_build_are_only_shown() -> None:
    out = io.StringIO()
    shown = progress.Progress(out=out, terminal=False, log_dir=None)
    shown.feed("DEBUG stray")
    assert shown.builds == []


def test_diagnoses() -> None:
    oom = progress.diagnose(
        [
            "[3/73] nvcc ...",
            "cc1plus: fatal error: Killed signal terminated program cc1plus",
            "error: command failed",
        ]
    )
    assert oom.kind == progress.OOM
    assert "OOM killer" in oom.summary
    assert (
        progress.diagnose(
            [
                "RuntimeError: The detected CUDA version (13.0) mismatches the version that was used to compile PyTorch (12.8)."
            ]
        ).kind
        == "cuda-mismatch"
    )
    assert progress.diagnose(["OSError: CUDA_HOME environment variable is not set."]).kind == "no-nvcc"
    assert (
        progress.diagnose(
            [
                "UserWarning: Attempted to use ninja as the BuildExtension backend but we could not find ninja.. Falling back to using the slow distutils backend."
            ]
        ).kind
        == "no-ninja"
    )
    compile_error = progress.diagnose(
        [f"line {n}" for n in range(10)]
        + ['csrc/x.cu(12): error: identifier "foo" is undefined']
        + [f"after {n}" for n in range(10)]
    )
    assert compile_error.kind == "compile-error"
    assert compile_error.excerpt[3] == 'csrc/x.cu(12): error: identifier "foo" is undefined'
    assert len(compile_error.excerpt) == 7
    assert progress.diagnose(["a", "b"]).excerpt == ("a", "b")


UV_NO_SOLUTION = [
    "  × No solution found when resolving dependencies:",
    "  ╰─▶ Because there is no version of torch==2.7.1 and all versions of vllm depend on torch==2.7.1, we can",
    "      conclude that all versions of vllm cannot be used.",
    "      And because your project depends on vllm==0.9.0, we can conclude that your project's requirements",
    "      are unsatisfiable.",
]


def test_unsatisfiable_names_the_packages_uv_explains() -> None:
    assert progress.unsatisfiable(["Resolved 3 packages"]) is None
    assert progress.unsatisfiable(UV_NO_SOLUTION) == ["torch", "vllm"]
    openrlhf = [
        "  × No solution found when resolving dependencies:",
        "  ╰─▶ Because openrlhf depends on transformers==4.55.2 and your project depends on transformers==4.56.0,",
        "      we can conclude that your project and openrlhf are incompatible.",
    ]
    assert progress.unsatisfiable(openrlhf) == ["openrlhf", "transformers"]


def test_uv_lines_are_kept_for_the_explanation() -> None:
    shown = progress.Progress(out=io.StringIO(), terminal=False, log_dir=None)
    for line in UV_NO_SOLUTION:
        shown.feed(line)
    assert progress.unsatisfiable(shown.output) == ["torch", "vllm"]


def test_a_second_ninja_run_starts_a_new_count() -> None:
    """A package with two extensions runs ninja twice; the ETA of the second run is its own."""
    out, clock = io.StringIO(), Clock()
    shown = progress.Progress(out=out, terminal=False, log_dir=None, jobs=2, clock=clock)
    shown.feed("   Building apex==0.1")
    shown.feed("DEBUG Emitting ninja build file build/temp/build.ninja...")
    shown.feed("DEBUG Compiling objects...")
    for n in (1, 2):
        clock.now += 100
        shown.feed(f"DEBUG [{n}/2] nvcc -c a{n}.cu")
    shown.feed("DEBUG Compiling objects...")
    clock.now += 10
    shown.feed("DEBUG [1/4] nvcc -c b1.cu")
    shown.feed("DEBUG [2/4] nvcc -c b2.cu")
    [build] = shown.builds
    assert build.finished_at == [clock.now, clock.now]
    assert build.eta_seconds(clock.now) == 10.0  # one more wave of 10 s
    assert [line for line in out.getvalue().splitlines() if "waiting for the compiler" in line] == [
        "building apex 0s: waiting for the compiler…",
        "building apex 3m20s: waiting for the compiler…",
    ]
    clock.now += 10
    shown.feed("DEBUG [1/3] c++ -c c1.cpp")  # and one without torch's announcement
    assert build.finished_at == [clock.now]
    assert build.compile_started == clock.now - 10


@pytest.mark.uv
def test_unsatisfiable_names_only_packages_in_real_uv_output(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    """Real uv output with markers (`torch{sys_platform == 'linux'}`), "one of:" and
    "only ... is available": the hint lists packages, never those words."""
    for version, torch in (("0.7.3", "2.5.1"), ("0.8.0", "2.6.0")):
        if not any(p.name.startswith(f"vllm-{version}-") for p in package_index.prefixes.get("/simple", [])):
            package_index.add("/simple", "vllm", version, requires=[f"torch=={torch}"])
    project = write_project(
        tmp_path / "app",
        "vllm>=0.7.3,<=0.8.5",
        "torch>=2.7 ; sys_platform == 'linux' and platform_machine == 'x86_64'",
    )
    locked = subprocess.run(
        [uv_binary(), "lock"],
        env=environment(package_index),
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "No solution found" in locked.stderr, locked.stderr
    names = progress.unsatisfiable(locked.stderr.splitlines())
    assert names is not None
    assert set(names) <= {"vllm", "torch"}, (names, locked.stderr)
    assert "vllm" in names
