"""A mirror password never reaches output, logs or crash logs: each path that shows a
setting, an environment or an argv, in text and in JSON."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import pytest

from uvx_llm import cli, log, paths, proc
from uvx_llm import plan as plan_module
from uvx_llm.errors import ExitCode
from uvx_llm.redact import redact, redact_data

if TYPE_CHECKING:
    from pathlib import Path

SECRET = "hunter2"  # noqa: S105 - the made-up password the tests look for
GOOD = '[project]\nname = "app"\nversion = "0.1.0"\ndependencies = ["torch"]\n'


def run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as done:
        cli.run(argv)
    code = done.value.code
    assert isinstance(code, int)
    return code


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "pyproject.toml").write_text(GOOD, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "pyproject.toml"


@pytest.mark.parametrize(
    "text",
    [
        f"https://alice:{SECRET}@mirror.example/simple",
        f"alice:{SECRET}@mirror.example/simple",
        f"UV_DEFAULT_INDEX=alice:{SECRET}@mirror.example/simple",
        f"index at alice:{SECRET}@[::1]:8080/simple failed",
    ],
)
def test_credentials_with_or_without_a_scheme_are_masked(text: str) -> None:
    assert SECRET not in redact(text)
    assert "mirror.example" in redact(text) or "[::1]" in redact(text)


@pytest.mark.parametrize(
    "text", ["git@github.com:org/repo", "torch @ https://example.com/t.whl", "http://127.0.0.1:8080/x"]
)
def test_text_without_credentials_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_argv_options_and_assignments_are_masked() -> None:
    argv = ["llm-sync", "--", "--password", SECRET, f"--token={SECRET}", f"UV_INDEX_M_PASSWORD={SECRET}"]
    assert SECRET not in str(redact_data(argv))
    assert redact_data(["uv", "sync", "--frozen"]) == ["uv", "sync", "--frozen"]


@pytest.mark.parametrize("log_format", ["human", "json"])
def test_the_verbose_run_event_masks_the_environment(
    log_format: str, capsys: pytest.CaptureFixture[str]
) -> None:
    log.configure(verbosity=1, log_format=log_format)
    try:
        proc.run(
            [sys.executable, "-c", "pass", f"--index-url=https://alice:{SECRET}@mirror.example/simple"],
            env={
                "UV_INDEX_MIRROR_PASSWORD": SECRET,
                "UV_DEFAULT_INDEX": f"alice:{SECRET}@mirror.example/simple",
                "UV_INDEX_MIRROR_USERNAME": "alice",
            },
        )
    finally:
        log.configure()
    err = capsys.readouterr().err
    assert "UV_INDEX_MIRROR_PASSWORD" in err
    assert "mirror.example" in err
    assert SECRET not in err


@pytest.mark.usefixtures("app")
def test_a_crash_log_masks_argv_and_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(**_kwargs: object) -> None:
        raise RuntimeError(f"boom at https://alice:{SECRET}@mirror.example")

    monkeypatch.setattr(plan_module, "make", broken)
    argv = ["plan", "--", "--index-url", f"https://alice:{SECRET}@mirror.example/simple"]
    monkeypatch.setattr(sys, "argv", ["llm-sync", *argv])
    assert run(argv) == ExitCode.INTERNAL
    assert SECRET not in capsys.readouterr().err
    (crash_log,) = paths.log_dir().glob("crash-*.log")
    text = crash_log.read_text(encoding="utf-8")
    assert "mirror.example" in text
    assert SECRET not in text


@pytest.mark.usefixtures("app")
def test_crash_logs_are_named_uniquely(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(**_kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(plan_module, "make", broken)
    assert run(["plan"]) == run(["plan"]) == ExitCode.INTERNAL  # within one second
    assert len(list(paths.log_dir().glob("crash-*.log"))) == 2


@pytest.mark.usefixtures("app")
def test_a_message_that_cannot_be_encoded_still_gets_its_crash_log(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(**_kwargs: object) -> None:
        raise RuntimeError("boom \udcff")  # a lone surrogate, as from a file name in a foreign encoding

    monkeypatch.setattr(plan_module, "make", broken)
    assert run(["plan"]) == ExitCode.INTERNAL
    (crash_log,) = paths.log_dir().glob("crash-*.log")
    assert "boom \\udcff" in crash_log.read_text(encoding="utf-8")


@pytest.mark.skipif(sys.platform == "win32", reason="file size limits are POSIX")
@pytest.mark.usefixtures("app")
def test_no_empty_crash_log_when_it_cannot_be_written(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import resource  # noqa: PLC0415 - POSIX only
    import signal  # noqa: PLC0415 - POSIX only

    def broken(**_kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(plan_module, "make", broken)
    paths.log_dir().mkdir(parents=True)
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, limits[1]))  # a real "file too large" on any write
    try:
        code = run(["plan"])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
        signal.signal(signal.SIGXFSZ, previous)
    assert code == ExitCode.INTERNAL
    assert "run with -v for details" in capsys.readouterr().err
    assert not list(paths.log_dir().glob("crash-*.log"))


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
@pytest.mark.usefixtures("app")
def test_config_masks_credentials(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    monkeypatch.setenv("LLM_SYNC_DEFAULT_INDEX_URL", f"https://alice:{SECRET}@mirror.example/simple")
    monkeypatch.setenv("LLM_SYNC_TORCH_INDEX_URL", f"https://alice:{SECRET}@mirror.example/whl")
    assert run(["config", *(["--json"] if as_json else [])]) == 0
    out = capsys.readouterr().out
    if as_json:
        json.loads(out)
    assert "mirror.example" in out
    assert SECRET not in out
