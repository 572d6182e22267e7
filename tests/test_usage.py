"""Mistyped commands, uv's options before `--`, and option values (issue 13, items 3, 18, 19, 20,
24): each is a usage error (exit 2) found before anything is written, with a message that says
what to type instead."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pynvml
import pytest
from fakes import RecordedNvml, recorded
from helpers import GOOD, run

from uvx_llm import machine, uv
from uvx_llm.errors import ExitCode

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "pyproject.toml").write_text(GOOD, encoding="utf-8")
    monkeypatch.chdir(folder)
    return folder / "pyproject.toml"


@pytest.mark.parametrize(("word", "meant"), [("chek", "check"), ("detcet", "detect"), ("status", None)])
def test_a_mistyped_command_is_a_usage_error_and_writes_nothing(
    project: Path, capsys: pytest.CaptureFixture[str], word: str, meant: str | None
) -> None:
    before = project.read_bytes()
    assert run([word]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert f"no such command {word!r}" in err
    assert (f"did you mean {meant!r}?" in err) if meant else ("did you mean" not in err)
    assert "uv arguments go after `--`" in err
    assert project.read_bytes() == before


def test_a_bare_word_after_options_is_refused_too(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = project.read_bytes()
    assert run(["--cuda", "12.8", "--arch", "9.0", "plan", "chek"]) == ExitCode.USAGE
    assert "no such command 'chek'" in capsys.readouterr().err
    assert project.read_bytes() == before


@pytest.mark.usefixtures("project")
def test_words_after_double_dash_are_uvs(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["plan", "--cuda", "12.8", "--arch", "9.0", "--", "status"]) == ExitCode.OK
    assert "status" in capsys.readouterr().out


def test_a_uv_option_before_double_dash_says_where_it_goes(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = project.read_bytes()
    assert run(["sync", "--frozen"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "uv options go after `--`" in err
    assert "llm-sync -- --frozen" in err
    assert "--force" not in err
    assert project.read_bytes() == before


@pytest.mark.usefixtures("project")
def test_an_unknown_option_uv_does_not_have_says_where_uv_options_go(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = project.read_bytes()
    assert run(["sync", "--frozzen"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "No such option: --frozzen" in err
    assert "uv options go after `--` (llm-sync sync -- --frozzen)" in err
    assert "--force" not in err
    assert project.read_bytes() == before


def test_a_near_miss_of_our_own_option_is_suggested(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["plan", "--forse"]) == ExitCode.USAGE
    assert "did you mean --force?" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--cuda", "12"], "did you mean 12.0?"),
        (["--cuda", ""], "--cuda was given an empty value"),
        (["--cuda", "-12.8"], "not a CUDA version"),
        (["--cuda", "１２.８"], "not a CUDA version"),
        (["--cuda", "12.8", "--arch", "99.0"], "no GPU has compute capability 99.0"),
        (["--cuda", "12.8", "--arch", ""], "--arch was given an empty value"),
    ],
)
def test_bad_option_values_are_refused_before_anything_is_written(
    project: Path, capsys: pytest.CaptureFixture[str], args: list[str], said: str
) -> None:
    before = project.read_bytes()
    assert run(["sync", "--no-sync", *args]) == ExitCode.USAGE
    assert said in capsys.readouterr().err
    assert project.read_bytes() == before


@pytest.mark.usefixtures("project")
def test_an_arch_specific_spelling_plans_for_the_same_gpu(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["plan", "--cuda", "12.8", "--arch", "sm_90a", "--json"]) == ExitCode.OK
    assert '"sm": "sm_90"' in capsys.readouterr().out


@pytest.mark.usefixtures("project")
def test_a_bad_variable_is_named_as_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_SYNC_CUDA", "garbage")
    assert run(["plan"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "LLM_SYNC_CUDA 'garbage' is not a CUDA version" in err
    assert "--cuda" not in err.split("fix:")[0]


@pytest.mark.usefixtures("project")
def test_project_naming_a_file_that_is_not_pyproject(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "passwd"
    other.write_text("root:x:0:0::/root:/bin/sh\n", encoding="utf-8")
    assert run(["plan", "--project", str(other)]) == ExitCode.USAGE
    assert f"--project {other} is a file, not a project folder or a pyproject.toml" in capsys.readouterr().err


@pytest.mark.usefixtures("project")
def test_check_help_lists_only_what_check_takes(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["check", "--help"]) == ExitCode.OK
    shown = capsys.readouterr().out
    assert "--cuda" not in shown
    assert "--arch" not in shown
    assert "--torch-index-format" in shown
    assert run(["check", "--cuda", "12.8"]) == ExitCode.USAGE
    assert "check is machine-independent" in capsys.readouterr().err


@pytest.mark.usefixtures("project")
def test_torch_index_format_is_an_option_as_documented(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["plan", "--cuda", "12.8", "--arch", "9.0", "--mirror", "https://m.example/whl"]
    assert run([*args, "--torch-index-format", "flat"]) == ExitCode.OK
    assert 'format = "flat"' in capsys.readouterr().out


def test_a_broken_driver_never_records_cpu_for_the_team(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A GPU machine whose driver was updated without a reboot: NVML and nvidia-smi both fail."""
    fake = RecordedNvml(recorded(), fail_with=pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH)
    monkeypatch.setattr(machine, "load_nvml", lambda: fake)
    smi = tmp_path / "bin" / "nvidia-smi"
    smi.parent.mkdir()
    smi.write_text(
        "#!/bin/sh\necho 'Failed to initialize NVML: Driver/library version mismatch'\n"
        "echo 'NVML library version: 580.159'\nexit 18\n",
        encoding="utf-8",
    )
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{smi.parent}:{os.environ['PATH']}")
    before = project.read_bytes()
    assert run(["sync", "--no-sync"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "will not record `cpu` for the team" in err
    assert "Driver/library version mismatch" in err
    assert "warning" in err.lower()  # the notes are shown, not hidden behind -v
    assert project.read_bytes() == before
    assert run(["sync", "--no-sync", "--backend", "cpu"]) == ExitCode.OK  # on purpose, it is allowed


def test_a_hanging_uv_is_skipped_for_the_next_candidate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from uv import find_uv_bin  # noqa: PLC0415 - the uv wheel of the dev group

    hanging = tmp_path / "hanging-uv"
    hanging.write_text("#!/bin/sh\nsleep 60 &\nsleep 60\n", encoding="utf-8")
    hanging.chmod(0o755)
    (tmp_path / "uv").symlink_to(find_uv_bin())
    monkeypatch.setattr(uv, "VERSION_TIMEOUT", 1.0)
    found = uv.find({"UV": str(hanging), "PATH": str(tmp_path)})
    assert found.found_by == "PATH"


@pytest.mark.usefixtures("project")
def test_no_recorded_backend_suggests_no_particular_gpu_backend(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 13, item 24: the fix named cu128 on machines where `plan` picks another backend."""
    assert run(["check"]) == ExitCode.DIFFERENCES
    err = capsys.readouterr().err
    assert "--backend cu128" not in err
    assert "llm-sync plan" in err
    assert "--backend BACKEND" in err
