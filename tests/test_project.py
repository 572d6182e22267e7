from __future__ import annotations

from pathlib import Path

import pytest
from helpers import proj

from uvx_llm import project
from uvx_llm.errors import LlmSyncError


def test_find_walks_up_like_uv(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n', encoding="utf-8")
    deep = tmp_path / "src" / "pkg"
    deep.mkdir(parents=True)
    assert project.find(deep) == (tmp_path / "pyproject.toml").resolve()


def test_no_pyproject_anywhere(tmp_path: Path) -> None:
    with pytest.raises(LlmSyncError) as caught:
        project.find(tmp_path)
    assert "uv init" in caught.value.fix


def test_project_option_must_point_at_a_project(tmp_path: Path) -> None:
    with pytest.raises(LlmSyncError, match=r"no pyproject\.toml at"):
        project.locate(tmp_path, cwd=tmp_path)


def test_syntax_error_names_line_and_column() -> None:
    with pytest.raises(LlmSyncError) as caught:
        proj('[project]\nname = "x"\ndependencies = ["torch"\n')
    assert "line 4" in caught.value.what or "line 3" in caught.value.what
    assert "column" in caught.value.what


def test_poetry_only_project_is_refused() -> None:
    with pytest.raises(LlmSyncError) as caught:
        proj('[tool.poetry]\nname = "x"\n')
    assert "no [project] table" in caught.value.what
    assert "Poetry" in caught.value.why


def test_not_utf8() -> None:
    with pytest.raises(LlmSyncError, match="not UTF-8"):
        project.parse(b'[project]\nname = "\xff"\n', Path("pyproject.toml"))


def test_invalid_requirement_is_named() -> None:
    with pytest.raises(LlmSyncError, match=r"invalid requirement 'torch>>2'"):
        proj('[project]\nname = "x"\ndependencies = ["torch>>2"]\n').dependency_lists()


def test_requirements_must_be_a_list() -> None:
    with pytest.raises(LlmSyncError, match="must be an array of requirement strings"):
        proj('[project]\nname = "x"\ndependencies = "torch"\n').dependency_lists()


def test_dependency_lists_cover_extras_and_groups() -> None:
    loaded = proj(
        '[project]\nname = "x"\ndependencies = ["Flash_Attn"]\n'
        '[project.optional-dependencies]\nserve = ["vllm"]\n'
        '[dependency-groups]\ndev = ["pytest", {include-group = "lint"}]\nlint = ["ruff"]\n'
    )
    labels = [d.label for d in loaded.dependency_lists()]
    assert labels == [
        "[project] dependencies",
        "[project.optional-dependencies] serve",
        "[dependency-groups] dev",
        "[dependency-groups] lint",
    ]
    assert loaded.declared() == {"flash-attn", "vllm", "pytest", "ruff"}


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(LlmSyncError, match="cannot read"):
        project.load(tmp_path / "missing.toml")
