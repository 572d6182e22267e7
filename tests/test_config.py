from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from test_cli import GOOD, run

from uvx_llm import config, paths
from uvx_llm.errors import ExitCode, LlmSyncError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from uvx_llm.catalog import Catalog

USER = Path("/home/u/.config/llm-sync/config.toml")


def resolve(
    cat: Catalog,
    *,
    cli: Mapping[str, str | None] | None = None,
    env: dict[str, str] | None = None,
    project: dict[str, str] | None = None,
    user: dict[str, str] | None = None,
) -> config.Resolved:
    return config.resolve(
        cli=cli or {},
        env=env or {},
        project_table=project or {},
        user_table=user or {},
        user_path=USER,
        catalog=cat,
    )


def test_one_precedence_for_every_setting(cat: Catalog) -> None:
    levels = {
        "cli": {"torch-index-url": "https://cli.example/whl"},
        "env": {"LLM_SYNC_TORCH_INDEX_URL": "https://env.example/whl"},
        "project": {"torch-index-url": "https://project.example/whl"},
        "user": {"torch-index-url": "https://user.example/whl"},
    }
    assert resolve(cat, cli=levels["cli"], env=levels["env"], project=levels["project"], user=levels["user"])[
        "torch-index-url"
    ] == config.Setting("https://cli.example/whl", "--torch-index-url")
    assert (
        resolve(cat, env=levels["env"], project=levels["project"], user=levels["user"])[
            "torch-index-url"
        ].origin
        == "LLM_SYNC_TORCH_INDEX_URL"
    )
    assert (
        resolve(cat, project=levels["project"], user=levels["user"])["torch-index-url"].origin
        == "[tool.llm-sync]"
    )
    assert resolve(cat, user=levels["user"])["torch-index-url"] == config.Setting(
        "https://user.example/whl", str(USER)
    )
    assert resolve(cat)["torch-index-url"] == config.Setting("https://download.pytorch.org/whl", "default")


def test_backend_request_is_not_a_project_setting(cat: Catalog) -> None:
    # [tool.llm-sync] backend is the recorded backend, handled by the plan, not a request.
    assert resolve(cat, project={"backend": "cu128"}, user={"backend": "cpu"})["backend"] == config.Setting(
        "cpu", str(USER)
    )
    assert resolve(cat)["backend"].value == "auto"


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"env": {"LLM_SYNC_BACKEND": "cu999"}}, "unknown backend 'cu999'"),
        ({"user": {"log-format": "xml"}}, "unknown log format 'xml'"),
        ({"cli": {"torch-index-url": "mirror.example"}}, "not an index URL"),
    ],
)
def test_invalid_values_name_the_setting_and_the_valid_ones(
    cat: Catalog, kwargs: dict[str, dict[str, str]], words: str
) -> None:
    with pytest.raises(LlmSyncError) as caught:
        resolve(cat, **kwargs)
    assert words in caught.value.what
    assert caught.value.why or caught.value.fix


def test_user_config_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    assert config.load_user_config(path) == {}
    path.write_text('torch-index-url = "https://mirror.example/whl"\n', encoding="utf-8")
    assert config.load_user_config(path) == {"torch-index-url": "https://mirror.example/whl"}
    path.write_text('torch_index_url = "x"\n', encoding="utf-8")
    with pytest.raises(LlmSyncError, match="unknown key 'torch_index_url'"):
        config.load_user_config(path)
    path.write_text("backend = [\n", encoding="utf-8")
    with pytest.raises(LlmSyncError, match="not valid TOML"):
        config.load_user_config(path)
    path.write_text("backend = 3\n", encoding="utf-8")
    with pytest.raises(LlmSyncError, match="must be a string"):
        config.load_user_config(path)


def test_config_command_shows_values_and_origins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        GOOD + '\n[tool.llm-sync]\nbackend = "cu128"\ntorch-index-url = "https://project.example/whl"\n',
        encoding="utf-8",
    )
    user = paths.config_dir() / "config.toml"
    user.parent.mkdir(parents=True, exist_ok=True)
    user.write_text('log-format = "human"\nbackend = "cpu"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLM_SYNC_BACKEND", "cu126")
    assert run(["config"]) == 0
    out = capsys.readouterr().out
    assert "backend = cu126    (LLM_SYNC_BACKEND)" in out
    assert "torch-index-url = https://project.example/whl    ([tool.llm-sync])" in out
    assert f"log-format = human    ({user})" in out
    assert "recorded backend = cu128" in out
    assert run(["config", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["settings"]["backend"] == {"value": "cu126", "origin": "LLM_SYNC_BACKEND"}
    assert document["recorded_backend"] == "cu128"


def test_config_outside_a_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run(["config"]) == 0
    assert "project: (none)" in capsys.readouterr().out


def test_a_bad_user_config_stops_every_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "pyproject.toml").write_text(GOOD, encoding="utf-8")
    user = paths.config_dir() / "config.toml"
    user.parent.mkdir(parents=True, exist_ok=True)
    user.write_text('mirorr = "tuna"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert run(["plan", "--cuda", "12.8"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "unknown key 'mirorr'" in err
    assert str(user) in err


def test_a_recorded_architecture_list_that_is_not_one_names_the_key(cat: Catalog) -> None:
    with pytest.raises(LlmSyncError, match=r"\[tool.llm-sync\] cuda-archs 'ninety'") as caught:
        config.validate_table({"cuda-archs": "ninety"}, cat)
    assert caught.value.fix
    config.validate_table({"cuda-archs": "8.0;9.0"}, cat)
