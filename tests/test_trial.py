"""Trial locks (trial.py): which `uv sync` arguments reach `uv lock`, and the scratch copy of a
project that a trial lock writes into without touching the project. The locks themselves run
the real uv in tests/test_verified.py and tests/test_workspaces.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

from uvx_llm import trial

if TYPE_CHECKING:
    from pathlib import Path


def test_only_the_arguments_that_shape_the_resolution_reach_uv_lock() -> None:
    given = ("--extra", "train", "--offline", "-P", "torch", "--resolution=lowest", "--no-dev", "-U")
    assert trial.lock_arguments(given) == ("--offline", "-P", "torch", "--resolution=lowest", "-U")
    assert trial.lock_arguments(()) == ()


def test_a_file_written_in_the_copy_never_reaches_the_project(tmp_path: Path) -> None:
    project = tmp_path / "ws"
    member = project / "packages" / "serve"
    member.mkdir(parents=True)
    (member / "pyproject.toml").write_text("original\n", encoding="utf-8")
    (member / "README.md").write_text("kept\n", encoding="utf-8")
    copy = tmp_path / "copy"
    copy.mkdir()
    trial._link_entries(project, copy)
    folder = trial._own_folder(copy, member.relative_to(project))
    assert folder == copy / "packages" / "serve"
    assert not folder.is_symlink()
    assert not (copy / "packages").is_symlink()
    assert (folder / "README.md").read_text(encoding="utf-8") == "kept\n"  # a link to the project's
    written = folder / "pyproject.toml"
    written.unlink()
    written.write_text("the plan's\n", encoding="utf-8")
    assert (member / "pyproject.toml").read_text(encoding="utf-8") == "original\n"
