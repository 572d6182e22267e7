from __future__ import annotations

import io
from typing import TYPE_CHECKING

from uvx_llm import progress

if TYPE_CHECKING:
    from pathlib import Path


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


def test_plain_output_reports_every_ten_percent_and_keeps_uvs_lines(tmp_path: Path) -> None:
    out, clock = io.StringIO(), Clock()
    shown = progress.Progress(out=out, terminal=False, log_dir=tmp_path, clock=clock)
    shown.feed("Resolved 4 packages in 19ms")
    shown.feed("   Building flash-attn==2.8.3")
    for line in ninja_lines(100):
        clock.now += 1
        shown.feed(line)
    shown.feed(" + flash-attn==2.8.3")
    shown.close()
    text = out.getvalue()
    reports = [line for line in text.splitlines() if line.startswith("building flash-attn")]
    assert len(reports) == 11  # the first step, then 10%, 20%, ... 100%
    assert reports[0].startswith("building flash-attn [1/100] 1%")
    assert reports[1].startswith("building flash-attn [10/100] 10% 10s ETA 1m30s  flash_fwd_hdim10.cu")
    assert "Resolved 4 packages" in text
    assert " + flash-attn==2.8.3" in text
    assert "\r" not in text
    [build] = shown.builds
    assert build.log_path is not None
    assert build.log_path.read_text(encoding="utf-8").count("nvcc -c") == 100


def test_plain_output_reports_at_least_every_thirty_seconds() -> None:
    out, clock = io.StringIO(), Clock()
    shown = progress.Progress(out=out, terminal=False, log_dir=None, clock=clock)
    shown.feed("   Building flash-attn==2.8.3")
    for line in ninja_lines(1000)[:30]:  # 3 % in 30 steps of 31 s each
        clock.now += 31
        shown.feed(line)
    assert out.getvalue().count("building flash-attn") == 30


def test_terminal_output_redraws_one_status_line() -> None:
    out, clock = io.StringIO(), Clock()
    shown = progress.Progress(out=out, terminal=True, log_dir=None, clock=clock)
    shown.feed("   Building flash-attn==2.8.3")
    for line in ninja_lines(3):
        shown.feed(line)
    shown.feed("Installed 1 package")
    shown.close()
    text = out.getvalue()
    assert text.count("\r\x1b[2K") >= 3
    assert "building flash-attn [3/3] 100%" in text
    assert "Installed 1 package\n" in text


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
