"""The command line in-process: exit codes, messages, and files left untouched on bad input."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import pytest
from helpers import GOOD, run

from uvx_llm import cli, paths
from uvx_llm import plan as plan_module
from uvx_llm.errors import ExitCode

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "pyproject.toml").write_text(GOOD, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "pyproject.toml"


def test_plan_shows_everything_and_writes_nothing(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["plan", "--cuda", "12.8", "--arch", "9.0"]) == 0
    out = capsys.readouterr().out
    assert "highest CUDA the driver runs: 12.8" in out
    assert "backend: cu128" in out
    assert "+torch = [" in out
    assert "Would run:" in out
    assert "uv sync --project" in out
    assert app.read_text(encoding="utf-8") == GOOD


def test_plan_json(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["plan", "--json", "--cuda", "12.8", "--arch", "9.0", "--", "--frozen"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["backend"] == "cu128"
    assert document["machine"]["gpus"][0]["compute_capability"] == "9.0"
    assert document["uv"]["command"][-1] == "--frozen"
    assert {d["topic"] for d in document["decisions"]} >= {"backend", "pytorch routing", "torch dependency"}
    assert document["diff"].startswith("--- a/pyproject.toml")
    assert app.read_text(encoding="utf-8") == GOOD


def test_check_then_fix_then_clean(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["check"]) == ExitCode.DIFFERENCES  # no backend recorded yet
    assert "has not chosen a PyTorch backend" in capsys.readouterr().err
    assert run(["check", "--backend", "cu128"]) == ExitCode.DIFFERENCES
    assert '+backend = "cu128"' in capsys.readouterr().out
    assert app.read_text(encoding="utf-8") == GOOD
    assert run(["check", "--fix", "--backend", "cu128"]) == ExitCode.DIFFERENCES
    assert "pytorch-cu128" in app.read_text(encoding="utf-8")
    assert run(["check"]) == 0
    assert "up to date" in capsys.readouterr().err


@pytest.mark.usefixtures("app")
def test_check_refuses_machine_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["check", "--cuda", "12.8"]) == ExitCode.USAGE
    assert "machine-independent" in capsys.readouterr().err


def test_default_command_is_sync(app: Path) -> None:
    assert run(["--cuda", "12.8", "--arch", "9.0", "--no-sync"]) == 0
    assert "[tool.llm-sync]" in app.read_text(encoding="utf-8")
    assert "# serving" in app.read_text(encoding="utf-8")


def test_backend_from_the_environment(app: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_SYNC_BACKEND", "cpu")
    assert run(["--no-sync"]) == 0
    assert 'backend = "cpu"' in app.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], ["sync"]),
        (["--", "--frozen"], ["sync", "--", "--frozen"]),
        (["--project", "x", "plan"], ["plan", "--project", "x"]),
        (["--project", "plan", "--no-sync"], ["sync", "--project", "plan", "--no-sync"]),
        (["check", "--fix"], ["check", "--fix"]),
        (["--version"], ["--version"]),
        (["--", "plan"], ["sync", "--", "plan"]),
    ],
)
def test_with_default_command(argv: list[str], expected: list[str]) -> None:
    assert cli.with_default_command(argv) == expected


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--version"]) == 0
    assert "llm-sync" in capsys.readouterr().out


def test_detect_json_for_a_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["detect", "--json", "--cuda", "12.4", "--arch", "8.0"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["cuda_max"] == "12.4"
    assert facts["gpus"][0]["sm"] == "sm_80"


def test_detect_this_machine(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["detect"]) == 0
    assert "system:" in capsys.readouterr().out


# --- bad input: exit 2, a message with what/why/fix, the file untouched ------------------------


def assert_clear_error(capsys: pytest.CaptureFixture[str], *words: str) -> None:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "error:" in err
    for word in words:
        assert word in err


def test_no_pyproject(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run(["plan"]) == ExitCode.USAGE
    assert_clear_error(capsys, "no pyproject.toml", "fix:")


def test_toml_syntax_error(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app.write_text('[project]\nname = "app"\ndependencies = [\n', encoding="utf-8")
    assert run(["--no-sync", "--cuda", "12.8"]) == ExitCode.USAGE
    assert_clear_error(capsys, "not valid TOML", "line", "column")
    assert app.read_text(encoding="utf-8") == '[project]\nname = "app"\ndependencies = [\n'


def test_poetry_project(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app.write_text('[tool.poetry]\nname = "app"\n', encoding="utf-8")
    assert run(["--no-sync"]) == ExitCode.USAGE
    assert_clear_error(capsys, "no [project] table")


def test_unknown_backend_lists_the_valid_ones(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--backend", "cu999", "--no-sync"]) == ExitCode.USAGE
    assert_clear_error(capsys, "unknown backend 'cu999'", "cu128", "cpu")
    assert app.read_text(encoding="utf-8") == GOOD


def test_unknown_key_in_tool_table(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app.write_text(GOOD + '\n[tool.llm-sync]\nbakend = "cu128"\n', encoding="utf-8")
    assert run(["check"]) == ExitCode.USAGE
    assert_clear_error(capsys, "unknown key 'bakend'", "backend")


def test_read_only_pyproject(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app.chmod(0o444)
    assert run(["--cuda", "12.8", "--arch", "9.0", "--no-sync"]) == ExitCode.USAGE
    assert_clear_error(capsys, "read-only")
    assert app.read_text(encoding="utf-8") == GOOD


def test_uv_missing_leaves_the_file_untouched(
    app: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(app.parent))
    monkeypatch.setitem(sys.modules, "uv", None)  # the `uv` package is not importable either
    assert run(["--cuda", "12.8", "--arch", "9.0"]) == ExitCode.USAGE
    assert_clear_error(capsys, "uv not found", "pip install uv")
    assert app.read_text(encoding="utf-8") == GOOD


@pytest.mark.usefixtures("app")
def test_unexpected_error_is_short_and_logged(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(**_kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(plan_module, "make", broken)
    assert run(["plan"]) == ExitCode.INTERNAL
    err = capsys.readouterr().err
    assert "unexpected RuntimeError: boom" in err
    assert "Traceback" not in err
    logs = list(paths.log_dir().glob("crash-*.log"))
    assert len(logs) == 1
    assert "RuntimeError: boom" in logs[0].read_text(encoding="utf-8")


def test_bad_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["plan", "--bogus"]) == ExitCode.USAGE
    assert "No such option" in capsys.readouterr().err


def test_target_from_the_environment_for_image_builds(
    app: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LLM_SYNC_CUDA", "12.8")
    monkeypatch.setenv("LLM_SYNC_ARCH", "8.0")
    assert run(["plan", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["machine"]["cuda_max"] == "12.8"
    assert document["machine"]["gpus"][0]["sm"] == "sm_80"
    assert document["backend"] == "cu128"
    assert app.read_text(encoding="utf-8") == GOOD
    assert run(["check", "--backend", "cu128"]) == ExitCode.DIFFERENCES  # check ignores the target variables


@pytest.mark.usefixtures("app")
def test_check_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["check", "--json", "--backend", "cu128"]) == ExitCode.DIFFERENCES
    document = json.loads(capsys.readouterr().out)
    assert document["up_to_date"] is False
    assert document["fixed"] is False
    assert document["backend"] == "cu128"
    assert "+[tool.llm-sync]" in document["diff"]
    assert run(["check", "--json", "--fix", "--backend", "cu128"]) == ExitCode.DIFFERENCES
    assert json.loads(capsys.readouterr().out)["fixed"] is True
    assert run(["check", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["up_to_date"] is True


def test_json_log_format_gives_one_object_per_event_with_decisions_and_timings(
    app: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LLM_SYNC_LOG_FORMAT", "json")
    assert run(["--cuda", "12.8", "--arch", "9.0", "--no-sync"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    decisions = [e for e in events if e["event"] == "decision"]
    assert {d["topic"] for d in decisions} >= {"backend", "pytorch routing"}
    assert all(d["reason"] for d in decisions)
    stages = {e["stage"] for e in events if e["event"] == "stage"}
    assert stages >= {"load", "detect", "plan"}
    assert all("timestamp" in e and "level" in e for e in events)
    assert app.read_text(encoding="utf-8") != GOOD


def test_human_output_hides_timings_unless_verbose(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--cuda", "12.8", "--arch", "9.0", "--no-sync"]) == 0
    err = capsys.readouterr().err
    assert "llm-sync: cu128 (CUDA ≤ 12.8, sm_90) — pyproject.toml updated" in err
    assert "stage" not in err
    assert app.read_text(encoding="utf-8") != GOOD
    assert run(["-v", "--cuda", "12.8", "--arch", "9.0", "--no-sync"]) == 0
    verbose = capsys.readouterr().err
    assert "backend: cu128 — " in verbose  # each decision with its reason: -v (and `plan`)
    assert "stage (stage=plan" in verbose


@pytest.mark.usefixtures("app")
def test_a_default_run_says_what_it_did_in_a_few_lines(capsys: pytest.CaptureFixture[str]) -> None:
    """uv's register: the backend and its facts, whether the file changed and how; decisions and
    uv's environment (RUST_LOG, MAX_JOBS) only with -v; a second run one line."""
    assert run(["--cuda", "12.8", "--arch", "9.0", "--no-sync"]) == 0
    first = capsys.readouterr().err.splitlines()
    assert 2 <= len(first) <= 4, first
    assert first[0] == "llm-sync: cu128 (CUDA ≤ 12.8, sm_90) — pyproject.toml updated"
    assert "added torch" in first[1]
    assert "routed torch to pytorch-cu128" in first[1]
    assert run(["--cuda", "12.8", "--arch", "9.0", "--no-sync"]) == 0
    second = capsys.readouterr().err.splitlines()
    assert second == ["llm-sync: cu128 (CUDA ≤ 12.8, sm_90) — pyproject.toml unchanged"]
    assert run(["-v", "--cuda", "12.8", "--arch", "9.0", "--no-sync"]) == 0
    verbose = capsys.readouterr().err
    assert "pytorch routing: pytorch-cu128 on Linux" in verbose


def test_bad_log_format_variable(
    app: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LLM_SYNC_LOG_FORMAT", "xml")
    assert run(["check"]) == ExitCode.USAGE
    assert "json" in capsys.readouterr().err
    assert app.read_text(encoding="utf-8") == GOOD


# --- colour, as uv does it -----------------------------------------------------------------------

RED_ERROR, YELLOW_WARNING, CYAN_FIX = (
    "\x1b[1;31merror\x1b[0m:",
    "\x1b[1;33mwarning\x1b[0m:",
    "\x1b[1;36mfix\x1b[0m:",
)


@pytest.mark.usefixtures("app")
def test_colour_on_request_and_never_when_piped_or_with_no_color(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(["plan", "--cuda", "12.8", "--arch", "9.0"]) == 0
    piped = capsys.readouterr()
    assert "\x1b[" not in piped.out + piped.err  # captured output is no terminal
    assert run(["plan", "--color", "always", "--cuda", "12.8", "--arch", "9.0"]) == 0
    out = capsys.readouterr().out
    assert "\x1b[32m+torch = [" in out  # the diff: added lines green
    assert "\x1b[1m--- a/pyproject.toml" in out
    assert run(["--color", "always", "--backend", "cu999"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err.startswith(RED_ERROR)
    assert CYAN_FIX in err
    monkeypatch.setenv("NO_COLOR", "1")
    assert run(["--backend", "cu999"]) == ExitCode.USAGE
    assert "\x1b[" not in capsys.readouterr().err
    assert run(["--color", "never", "--backend", "cu999"]) == ExitCode.USAGE
    assert "\x1b[" not in capsys.readouterr().err


def test_warnings_and_doctor_severities_coloured_only_when_asked() -> None:
    from uvx_llm import doctor, findings, log  # noqa: PLC0415 - only this test renders a report

    report = doctor.Report(
        findings=(
            findings.Finding("toolchain", findings.ERROR, "no nvcc", fix="install the CUDA toolkit"),
            findings.Finding("machine", findings.OK, "driver 580.95"),
        ),
        facts={},
    )
    coloured = report.render(colour=True)
    assert "\x1b[1;31merror   \x1b[0m[toolchain] no nvcc" in coloured
    assert "\x1b[32mok      \x1b[0m[machine]" in coloured
    assert CYAN_FIX in coloured
    assert "\x1b[" not in report.render()
    assert log.HumanRenderer(colour=True)(None, "warning", {"event": "hm", "level": "warning"}).startswith(
        YELLOW_WARNING
    )


# --- messages that fit ---------------------------------------------------------------------------


@pytest.mark.usefixtures("app")
def test_a_uv_option_before_the_dashes_says_where_it_goes(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["--frozen"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err.startswith("error: uv options go after `--`: `llm-sync -- --frozen`")
    assert "Did you mean" not in err
    assert run(["plan", "--offline"]) == ExitCode.USAGE
    assert "`llm-sync plan -- --offline`" in capsys.readouterr().err
    assert run(["--no-such-thing"]) == ExitCode.USAGE  # not uv's either: click's own message
    assert "No such option" in capsys.readouterr().err


def test_every_json_document_carries_its_format_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pyproject.toml").write_text(GOOD, encoding="utf-8")
    for argv in (
        ["plan", "--json", "--project", str(tmp_path), "--cuda", "12.8", "--arch", "9.0"],
        ["detect", "--json", "--cuda", "12.8", "--arch", "9.0"],
        ["config", "--json", "--project", str(tmp_path)],
    ):
        run(argv)
        document = json.loads(capsys.readouterr().out)
        assert document["version"] == 1, argv
