"""uv workspaces: a root's members, and the root a member belongs to.

uv reads `[tool.uv]` settings (indexes, sources, constraint- and override-dependencies,
extra-build-*) only from the workspace root and keeps one uv.lock there, while every
member's requirement lists are part of that lock. So llm-sync plans and writes at the
root, with the members' requirement lists in view. Member files are read, never run.

Membership follows uv: `[tool.uv.workspace] members` are globs relative to the root,
`exclude` globs remove folders again, and only folders holding a pyproject.toml count.
A project finds its root by walking up to the first pyproject.toml with
`[tool.uv.workspace]`; when that workspace does not include it, it is a project of its
own (uv stops there too).
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any

from uvx_llm import tomlread
from uvx_llm.project import PYPROJECT, workspace_table


def _globs(table: dict[str, Any], key: str) -> list[str]:
    values = table.get(key, [])
    return [v for v in values if isinstance(v, str)] if isinstance(values, list) else []


def _expand(root: Path, patterns: list[str]) -> set[str]:
    found: set[str] = set()
    for pattern in patterns:
        for match in glob.glob(pattern.rstrip("/"), root_dir=root, recursive=True):  # noqa: PTH207 - root_dir keeps the matches relative, as uv's globs are
            found.add(Path(os.path.normpath(match)).as_posix())
    return found


def members(root: Path, data: dict[str, Any]) -> list[str]:
    """The member folders (relative to ``root``, sorted) that hold a pyproject.toml, the root left out."""
    table = workspace_table(data) or {}
    chosen = _expand(root, _globs(table, "members")) - _expand(root, _globs(table, "exclude"))
    return sorted(f for f in chosen if f not in {"", "."} and (root / f / PYPROJECT).is_file())


def root_of(pyproject: Path) -> Path | None:
    """The pyproject.toml of the workspace ``pyproject``'s folder is a member of; None when it is not
    a member (or is a root itself)."""
    folder = pyproject.parent.resolve()
    try:
        own = tomlread.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # reading it again fails with the exact message
    if workspace_table(own) is not None:
        return None
    for above in folder.parents:
        candidate = above / PYPROJECT
        if not candidate.is_file():
            continue
        try:
            data = tomlread.loads(candidate.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # uv stops with its own error; llm-sync plans the member as its own project
        if workspace_table(data) is None:
            continue
        relative = folder.relative_to(above).as_posix()
        return candidate if relative in members(above, data) else None
    return None
