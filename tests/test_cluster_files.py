"""The project's own files on every Ray node (cluster_files.py, and wheelcopy.carry_files, which
the node task runs): the survey's check before anything is written, and carrying llm-sync's
edits to nodes that have their own copy of the project."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from uvx_llm import cluster, cluster_files, wheelcopy
from uvx_llm.cluster import NodeAnswer
from uvx_llm.interpreter import Environment
from uvx_llm.project import load

if TYPE_CHECKING:
    from pathlib import Path

PYPROJECT = b'[project]\r\nname = "app"\r\nversion = "0.1.0"\r\n'  # CRLF: carried byte for byte


def _project(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_bytes(PYPROJECT)
    return root


def test_the_tracked_files_are_the_roots_and_every_members(tmp_path: Path) -> None:
    root = _project(tmp_path / "ws")
    (root / "pyproject.toml").write_bytes(PYPROJECT + b'\n[tool.uv.workspace]\nmembers = ["packages/*"]\n')
    _project(root / "packages" / "serve")
    assert cluster_files.tracked(load(root / "pyproject.toml")) == (
        "pyproject.toml",
        "uv.lock",
        "packages/serve/pyproject.toml",
    )


def test_a_node_whose_copy_differs_stops_the_sync_before_anything_is_written(tmp_path: Path) -> None:
    root = _project(tmp_path / "app")
    here = cluster_files.digests(root, ("pyproject.toml", "uv.lock"))
    assert here["uv.lock"] is None
    same = NodeAnswer("gpu-01", "a", files=dict(here))
    other = NodeAnswer("gpu-02", "b", files={**here, "uv.lock": "0" * 64})
    silent = NodeAnswer("gpu-03", "c")  # answered nothing about the files: not compared
    differ = cluster_files.differing([same, other, silent], here)
    assert differ == {"gpu-02": ["uv.lock"]}
    error = cluster_files.not_the_same_project(differ, root)
    assert error is not None
    assert error.what == f"the project at {root} is not the same on every Ray node (gpu-02: uv.lock)"
    assert "nothing was changed" in error.why
    assert cluster_files.not_the_same_project({}, root) is None


def test_the_changed_files_go_to_a_nodes_own_copy_byte_for_byte(tmp_path: Path) -> None:
    head = _project(tmp_path / "head")
    node = _project(tmp_path / "node")
    (node / "pyproject.toml").chmod(0o640)
    before = cluster_files.digests(head, ("pyproject.toml", "uv.lock"))
    (head / "pyproject.toml").write_bytes(PYPROJECT + b'[tool.llm-sync]\r\nbackend = "cu128"\r\n')
    (head / "uv.lock").write_bytes(b"version = 1\n")
    changes = cluster_files.changes(head, before)
    assert sorted(changes) == ["pyproject.toml", "uv.lock"]
    assert changes["uv.lock"]["before"] is None

    assert wheelcopy.carry_files(node, changes) == ["pyproject.toml", "uv.lock"]
    for name in ("pyproject.toml", "uv.lock"):
        assert (node / name).read_bytes() == (head / name).read_bytes()
    assert (node / "pyproject.toml").stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in node.iterdir()) == ["pyproject.toml", "uv.lock"]  # no staging left
    # a shared folder (or a second run): the node reads the new text already, nothing is written
    assert wheelcopy.carry_files(node, changes) == []


def test_a_copy_changed_on_the_node_is_never_overwritten(tmp_path: Path) -> None:
    head = _project(tmp_path / "head")
    node = _project(tmp_path / "node")
    before = cluster_files.digests(head, ("pyproject.toml",))
    (head / "pyproject.toml").write_bytes(PYPROJECT + b"# llm-sync's edit\r\n")
    (node / "pyproject.toml").write_bytes(PYPROJECT + b"# someone's edit on the node\r\n")
    with pytest.raises(ValueError, match=r"pyproject\.toml at .* changed there since the survey"):
        wheelcopy.carry_files(node, cluster_files.changes(head, before))
    assert (node / "pyproject.toml").read_bytes().endswith(b"# someone's edit on the node\r\n")


def test_doctor_names_a_node_with_another_uv_lock() -> None:
    def node(name: str, lock: str) -> NodeAnswer:
        files: dict[str, str | None] = {"pyproject.toml": "a" * 64, "uv.lock": lock}
        return NodeAnswer(name, name, environment=Environment("/p", facts={"python": "3.12.3"}), files=files)

    [finding] = cluster.differences([node("a", "1" * 64), node("b", "1" * 64), node("c", "2" * 64)])
    assert (
        finding.title
        == "the project's uv.lock differs across nodes: c: 222222222222 (the other 2 have 111111111111)"
    )
