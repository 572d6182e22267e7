"""The project's own files on every Ray node: the same pyproject.toml and uv.lock everywhere.

`sync --ray` runs `uv sync --locked` for the same project path on each node, so each node must
read the same project files as this machine. On a shared folder they are the same files; with a
checkout per node (the same commit at the same path) they are copies, and what llm-sync writes
here does not reach them by itself. So:

- the survey reads each node's SHA-256 of the files (``tracked``). A node whose copy differs
  from this machine's *before* anything is written has another commit or local changes: an
  error, and nothing is written;
- after the lock here, each file llm-sync changed goes to every node with the digest it had
  before. A node whose copy still has that digest gets the new text (written beside it and
  renamed, as llm-sync writes here); a node that already reads the new text (a shared folder)
  is left alone; any other is that node's failure, never overwritten.

`doctor --ray` compares the digests across nodes like any other fact (a node with a stale uv.lock).
Pure, but for reading this machine's files.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from uvx_llm.errors import ExitCode, LlmSyncError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    from uvx_llm.cluster import NodeAnswer
    from uvx_llm.project import Project

MISSING = "missing"


def tracked(project: Project) -> tuple[str, ...]:
    """The files every node must share, relative to the project's folder: pyproject.toml,
    uv.lock and each uv workspace member's pyproject.toml."""
    members = (member.path.relative_to(project.root).as_posix() for _, member in project.members)
    return ("pyproject.toml", "uv.lock", *members)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digests(root: Path, paths: Sequence[str]) -> dict[str, str | None]:
    """Each file's SHA-256 under ``root`` (None: no such file)."""
    return {relative: _digest_of(root / relative) for relative in paths}


def _digest_of(path: Path) -> str | None:
    try:
        return digest(path.read_bytes())
    except FileNotFoundError:
        return None


def shown(value: str | None) -> str:
    """A digest as the doctor compares it: short, or "missing"."""
    return value[:12] if value else MISSING


def differing(nodes: Sequence[NodeAnswer], here: Mapping[str, str | None]) -> dict[str, list[str]]:
    """The nodes whose copies differ from this machine's files: node name -> the files."""
    found: dict[str, list[str]] = {}
    for node in nodes:
        other = [path for path, value in here.items() if path in node.files and node.files[path] != value]
        if other:
            found[node.name] = other
    return found


def not_the_same_project(differ: Mapping[str, list[str]], root: Path) -> LlmSyncError | None:
    """The error for nodes whose project files are not this machine's (nothing written yet)."""
    if not differ:
        return None
    listed = "; ".join(f"{name}: {', '.join(paths)}" for name, paths in sorted(differ.items()))
    return LlmSyncError(
        f"the project at {root} is not the same on every Ray node ({listed})",
        why="sync --ray syncs every node from the same pyproject.toml and uv.lock; a node whose copy "
        "differs (another commit, local changes, no checkout at that path) would install something "
        "else; nothing was changed",
        fix="put the same project at that path on every node (a shared folder, or the same commit "
        "checked out), then run `llm-sync sync --ray` again",
        exit_code=ExitCode.DIFFERENCES,
    )


def changes(root: Path, before: Mapping[str, str | None]) -> dict[str, dict[str, Any]]:
    """The files llm-sync changed here since ``before``: for each, the digest it had, the new
    digest and the new text, for the nodes with copies (a removed file is not carried)."""
    found: dict[str, dict[str, Any]] = {}
    for relative, was in before.items():
        path = root / relative
        now = _digest_of(path)
        if now is not None and now != was:
            # bytes as they are (a CRLF file stays CRLF): JSON carries text, so UTF-8 text
            found[relative] = {"before": was, "after": now, "text": path.read_bytes().decode("utf-8")}
    return found
