"""uv workspaces: members' requirement lists are planned, [tool.uv] is written at the root.

uv reads [tool.uv] (indexes, sources, constraints, extra-build-*) only at the workspace
root and keeps one uv.lock there; each member's own pyproject.toml keeps its requirement
lists. These tests run the real CLI and the real uv against the loopback index.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from helpers import environment, installed_version, llm_sync

from uvx_llm import lockfile, workspace

if TYPE_CHECKING:
    from pathlib import Path

    from pkgindex import PackageIndex

TARGET = ["--cuda", "12.8", "--arch", "9.0"]


def _member(folder: Path, name: str, *deps: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    listed = ", ".join(f'"{d}"' for d in deps)
    (folder / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "0.1.0"\nrequires-python = ">=3.10"\n'
        f"dependencies = [{listed}]\n\n[tool.uv]\npackage = false\n",
        encoding="utf-8",
    )
    return folder


def _workspace(tmp_path: Path) -> Path:
    """A root (no torch of its own), a vllm member, a flash-attn member, a member with nothing to
    route, and an excluded folder whose pyproject.toml is not even TOML (read, it would fail)."""
    root = tmp_path / "ws"
    root.mkdir()
    (root / "pyproject.toml").write_text(
        '[project]\nname = "ws"\nversion = "0.1.0"\nrequires-python = ">=3.10"\ndependencies = []\n\n'
        '[tool.uv]\npackage = false\n\n[tool.uv.workspace]\nmembers = ["packages/*"]\nexclude = ["packages/legacy"]\n',
        encoding="utf-8",
    )
    _member(root / "packages" / "serve", "serve", "vllm==0.11.2")
    _member(root / "packages" / "train", "train", "flash-attn")
    _member(root / "packages" / "docs", "docs")
    legacy = root / "packages" / "legacy"
    legacy.mkdir()
    (legacy / "pyproject.toml").write_text("this is [[ not toml\n", encoding="utf-8")
    return root


def test_members_follow_uvs_globs_and_excludes(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    (root / "packages" / "notes").mkdir()  # no pyproject.toml: not a member
    data = {"tool": {"uv": {"workspace": {"members": ["packages/*"], "exclude": ["packages/legacy"]}}}}
    assert workspace.members(root, data) == ["packages/docs", "packages/serve", "packages/train"]
    assert workspace.root_of(root / "packages" / "serve" / "pyproject.toml") == root / "pyproject.toml"
    assert workspace.root_of(root / "packages" / "legacy" / "pyproject.toml") is None  # excluded
    assert workspace.root_of(root / "pyproject.toml") is None  # the root is no member


@pytest.mark.uv
def test_a_workspace_is_planned_and_written_at_its_root_from_inside_a_member(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    root = _workspace(tmp_path)
    docs_before = (root / "packages" / "docs" / "pyproject.toml").read_bytes()
    legacy_before = (root / "packages" / "legacy" / "pyproject.toml").read_bytes()

    result = llm_sync(
        [*TARGET, "--no-build-check"], env=environment(package_index), cwd=root / "packages" / "serve"
    )
    assert result.returncode == 0, result.stderr
    assert (
        f"serve is a member of the uv workspace at {root}: planning and writing {root / 'pyproject.toml'}"
        in (" ".join(result.stderr.split()))
    )

    # [tool.uv] and [tool.llm-sync] at the root, where uv reads them
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    assert 'name = "pytorch-cu128"' in text
    assert "torch = [" in text  # the marker-split source
    assert "[tool.uv.extra-build-dependencies]" in text  # for the member's flash-attn
    assert 'backend = "cu128"' in text
    assert 'members = ["packages/*"]' in text  # the user's table stays
    # the members' own lists: torch beside its consumers, flash-attn only on Linux; said in one line each
    serve = (root / "packages" / "serve" / "pyproject.toml").read_text(encoding="utf-8")
    assert 'dependencies = ["vllm==0.11.2", "torch"]' in serve
    assert "[tool.uv.sources]" not in serve
    assert "[[tool.uv.index]]" not in serve
    train = (root / "packages" / "train" / "pyproject.toml").read_text(encoding="utf-8")
    assert "flash-attn ; sys_platform == 'linux'" in train
    assert '"torch"' in train
    assert "updated the workspace member's packages/serve/pyproject.toml" in result.stderr
    assert "updated the workspace member's packages/train/pyproject.toml" in result.stderr
    # a member with nothing to change, and an excluded folder, are byte-identical
    assert (root / "packages" / "docs" / "pyproject.toml").read_bytes() == docs_before
    assert (root / "packages" / "legacy" / "pyproject.toml").read_bytes() == legacy_before
    assert "docs/pyproject.toml" not in result.stderr

    # one uv.lock, at the root: the member's torch is the routed CUDA build on Linux, CPU elsewhere
    assert not (root / "packages" / "serve" / "uv.lock").exists()
    packages = lockfile.read(root / "uv.lock")
    linux = lockfile.stack(packages, platform="linux", python="3.10")
    assert str(linux.packages["torch"].version) == "2.9.0+cu128"
    assert "flash-attn" in linux.packages
    mac = lockfile.stack(packages, platform="macos", python="3.10")
    assert str(mac.packages["torch"].version) == "2.9.0+cpu"
    assert "flash-attn" not in mac.packages
    # uv synced the member it was started in (uv sync --package serve), into the root's .venv
    assert installed_version(root, "torch") == "2.9.0+cu128"
    assert installed_version(root, "vllm") == "0.11.2"

    # check: the same answer at the root and in a member, machine-independent
    env = environment(package_index)
    for cwd in (root, root / "packages" / "serve", root / "packages" / "docs"):
        checked = llm_sync(["check"], env=env, cwd=cwd)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    (root / "packages" / "serve" / "pyproject.toml").write_text(
        serve.replace('"vllm==0.11.2", "torch"', '"vllm==0.11.2"'), encoding="utf-8"
    )
    for cwd in (root, root / "packages" / "train"):
        stale = llm_sync(["check"], env=env, cwd=cwd)
        assert stale.returncode == 1, stale.stderr
        assert "packages/serve/pyproject.toml" in stale.stdout
    fixed = llm_sync(["check", "--fix"], env=env, cwd=root / "packages" / "train")
    assert fixed.returncode == 1, fixed.stderr  # fixed: a pre-commit hook stops the commit once
    assert "updated the workspace member's packages/serve/pyproject.toml" in fixed.stderr
    assert (root / "packages" / "serve" / "pyproject.toml").read_text(encoding="utf-8") == serve


def test_a_virtual_root_is_planned_with_its_members(package_index: PackageIndex, tmp_path: Path) -> None:
    """A root with no [project] of its own: [tool.uv] is still written there, torch goes beside vllm."""
    root = _workspace(tmp_path)
    (root / "pyproject.toml").write_text(
        '[tool.uv.workspace]\nmembers = ["packages/*"]\nexclude = ["packages/legacy"]\n', encoding="utf-8"
    )
    fixed = llm_sync(["check", "--fix", "--backend", "cu128"], env=environment(package_index), cwd=root)
    assert fixed.returncode == 1, fixed.stderr
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    assert "[project]" not in text
    assert 'name = "pytorch-cu128"' in text
    serve = (root / "packages" / "serve" / "pyproject.toml").read_text(encoding="utf-8")
    assert 'dependencies = ["vllm==0.11.2", "torch"]' in serve


def test_a_member_that_may_not_be_written_leaves_every_file_as_it_was(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    root = _workspace(tmp_path)
    member = root / "packages" / "serve" / "pyproject.toml"
    member.chmod(0o444)
    before = {path: path.read_bytes() for path in root.rglob("pyproject.toml")}
    refused = llm_sync(["check", "--fix", "--backend", "cu128"], env=environment(package_index), cwd=root)
    assert refused.returncode == 2, refused.stderr
    assert "read-only" in refused.stderr
    assert {path: path.read_bytes() for path in root.rglob("pyproject.toml")} == before


def test_plan_resolve_locks_the_members_edits_too_and_writes_nothing(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    """The trial lock holds the members' new requirement lists: train's flash-attn for Linux only
    (a Mac's side of the lock without it), serve's torch beside vllm."""
    root = _workspace(tmp_path)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    result = llm_sync(["plan", "--json", "--resolve", *TARGET], env=environment(package_index), cwd=root)
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)["resolved"]
    assert resolved["ok"] is True, resolved
    assert resolved["stacks"]["linux"]["torch"] == "2.9.0+cu128"
    assert resolved["stacks"]["linux"]["flash-attn"] == "9.9.9"
    assert "flash-attn" not in resolved["stacks"]["macos"]
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
