"""Reading a project's pyproject.toml: its bytes, its requirements, its llm-sync table.

The file is read once; everything downstream works on the plain data and the
tomlkit document kept here. Line endings and a UTF-8 byte-order mark are
remembered so that writing gives back the same bytes outside what changed.
"""

from __future__ import annotations

import codecs
import dataclasses
import functools
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from uvx_llm import tomlread
from uvx_llm.errors import LlmSyncError

if TYPE_CHECKING:
    from tomlkit import TOMLDocument

if TYPE_CHECKING:
    from pathlib import Path

PYPROJECT = "pyproject.toml"
_TOMLLIB_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")
_TOMLKIT_POSITION = re.compile(r"\s*at line \d+ col \d+")
TOOL_KEY = "llm-sync"


@dataclass(frozen=True)
class DepList:
    """One list of requirements: [project] dependencies, an extra, or a dependency group."""

    kind: str  # "dependencies" | "extra" | "group"
    name: str | None
    requirements: tuple[Requirement, ...]
    member: str | None = None  # a uv workspace member's folder, relative to the root; None: the root

    @property
    def label(self) -> str:
        where = f"{self.member}/{PYPROJECT} " if self.member else ""
        if self.kind == "dependencies":
            return f"{where}[project] dependencies"
        if self.kind == "extra":
            return f"{where}[project.optional-dependencies] {self.name}"
        return f"{where}[dependency-groups] {self.name}"

    def names(self) -> frozenset[str]:
        return frozenset(canonicalize_name(r.name) for r in self.requirements)


@dataclass(frozen=True)
class Project:
    path: Path
    raw: bytes
    text: str  # decoded, without BOM, with "\n" line endings when the file was all CRLF
    newline: str
    bom: bool
    data: dict[str, Any]
    # A uv workspace root's members (read, never run; `workspace.members`), by folder relative to
    # the root. Their requirement lists are part of the plan; uv reads [tool.uv] only here.
    members: tuple[tuple[str, Project], ...] = ()
    # Where llm-sync was started when that is a member of this workspace (None: here).
    entered_from: Path | None = None

    @property
    def root(self) -> Path:
        return self.path.parent

    def owner(self, member: str | None) -> Project:
        """The file a requirement list belongs to: this one (None) or a workspace member's."""
        if member is None:
            return self
        return dict(self.members)[member]

    def document(self) -> TOMLDocument:
        """A fresh, editable tomlkit document of the file (tomlkit loads only when editing)."""
        import tomlkit  # noqa: PLC0415 - see _read_toml
        import tomlkit.exceptions  # noqa: PLC0415 - same

        try:
            return tomlkit.parse(self.text)
        except (tomlkit.exceptions.ParseError, RecursionError) as error:
            # tomllib read it; the editor refuses it (values nested past 100 levels)
            raise LlmSyncError(
                f"llm-sync cannot edit {self.path}: {str(error).splitlines()[0][:200]}",
                why="the file is valid TOML, but the TOML editor llm-sync uses refuses it",
                fix="simplify the value it names (nesting under 100 levels); nothing was written",
            ) from None

    def table(self, *keys: str) -> dict[str, Any]:
        node: Any = self.data
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
            if node is None:
                return {}
        return node if isinstance(node, dict) else {}

    @property
    def config(self) -> dict[str, Any]:
        return self.table("tool", TOOL_KEY)

    @property
    def uv_sources(self) -> dict[str, Any]:
        """[tool.uv.sources] by canonical package name (`Torch` is torch's source)."""
        return {canonicalize_name(k): v for k, v in self.table("tool", "uv", "sources").items()}

    @property
    def uv_indexes(self) -> list[dict[str, Any]]:
        indexes = self.table("tool", "uv").get("index", [])
        return [i for i in indexes if isinstance(i, dict)] if isinstance(indexes, list) else []

    def dependency_lists(self) -> tuple[DepList, ...]:
        return self._dependency_lists

    @functools.cached_property
    def _dependency_lists(self) -> tuple[DepList, ...]:
        """Parsed once: several planning steps read them, and verl's file has ~100."""
        project = self.table("project")
        lists = [
            DepList(
                "dependencies",
                None,
                _requirements(project.get("dependencies", []), self.path, "[project] dependencies"),
            )
        ]
        for extra, reqs in self.table("project", "optional-dependencies").items():
            lists.append(DepList("extra", extra, _requirements(reqs, self.path, f"extra {extra!r}")))
        for group, reqs in self.table("dependency-groups").items():
            lists.append(
                DepList("group", group, _requirements(reqs, self.path, f"dependency group {group!r}"))
            )
        for folder, member in self.members:
            lists.extend(
                dataclasses.replace(dep_list, member=folder) for dep_list in member.dependency_lists()
            )
        return tuple(lists)

    def with_dependencies(self, requirements: list[str]) -> Project:
        """The project as if ``requirements`` were in [project] dependencies (for planning)."""
        if not requirements:
            return self
        data = {**self.data, "project": {**self.data.get("project", {})}}
        data["project"]["dependencies"] = [*data["project"].get("dependencies", []), *requirements]
        return dataclasses.replace(self, data=data)

    def declared(self) -> frozenset[str]:
        """Every package named in any requirement list, canonicalised."""
        return self._declared

    @functools.cached_property
    def _declared(self) -> frozenset[str]:
        return frozenset().union(*(dep_list.names() for dep_list in self.dependency_lists()))


def _requirements(values: Any, path: Path, where: str) -> tuple[Requirement, ...]:
    if not isinstance(values, list):
        raise LlmSyncError(
            f"{path}: {where} is not a list",
            why="PEP 621 requirement lists are arrays of strings",
            fix=f'write {where} as ["package>=1.0", ...]',
        )
    parsed = []
    for value in values:
        if not isinstance(value, str):  # {include-group = "..."} in dependency groups
            continue
        try:
            parsed.append(Requirement(value))
        except InvalidRequirement as error:
            raise LlmSyncError(
                f"{path}: {where} has an invalid requirement {value!r}",
                why=str(error),
                fix='correct it to a PEP 508 requirement such as "torch>=2.6"',
            ) from None
    return tuple(parsed)


def find(start: Path) -> Path:
    """The nearest pyproject.toml at or above ``start``, like uv does."""
    start = start.resolve()
    for folder in (start, *start.parents):
        candidate = folder / PYPROJECT
        if candidate.is_file():
            return candidate
    raise LlmSyncError(
        f"no {PYPROJECT} in {start} or any folder above it",
        why="llm-sync configures an existing uv project",
        fix="run it inside the project, pass --project DIR, or create one with `uv init`",
    )


def locate(project_dir: Path | None, *, cwd: Path) -> Path:
    if project_dir is None:
        return find(cwd)
    # A symlinked pyproject.toml stays the link: the project is where the link is
    # (as with `cd` there), and writing goes through to its target.
    if project_dir.name == PYPROJECT and not project_dir.is_dir():
        candidate = project_dir.parent.resolve() / PYPROJECT
    elif project_dir.exists() and not project_dir.is_dir():
        raise LlmSyncError(
            f"--project {project_dir} is a file, not a project folder or a {PYPROJECT}",
            why=f"--project names the folder that holds {PYPROJECT}, or that file itself",
            fix=f"pass the project's folder (or its {PYPROJECT})",
        )
    else:
        candidate = project_dir.resolve() / PYPROJECT
    if not candidate.is_file():
        raise LlmSyncError(
            f"no {PYPROJECT} at {candidate}",
            why="--project must name a folder that holds a pyproject.toml",
            fix="pass the project's folder, or create a project there with `uv init`",
        )
    return candidate


def _decode(raw: bytes, path: Path) -> tuple[str, bool]:
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in raw[:4096]:
        raise LlmSyncError(
            f"{path} is not UTF-8 text: it looks like UTF-16 (NUL bytes between its characters)",
            why="TOML files must be UTF-8",
            fix="re-save the file as UTF-8 (e.g. `iconv -f UTF-16 -t UTF-8`)",
        )
    bom = raw.startswith(codecs.BOM_UTF8)
    try:
        text = raw[len(codecs.BOM_UTF8) :].decode("utf-8") if bom else raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise LlmSyncError(
            f"{path} is not UTF-8 text (byte {error.start})",
            why="TOML files must be UTF-8",
            fix="re-save the file as UTF-8",
        ) from None
    return text, bom


def split_newlines(text: str) -> tuple[str, str]:
    """(text with "\\n" endings, the file's line ending). Mixed endings stay as they are."""
    crlf = text.count("\r\n")
    if crlf and crlf == text.count("\n"):
        return text.replace("\r\n", "\n"), "\r\n"
    return text, "\n"


def _syntax_error(path: Path, message: str, line: int | str, column: int | str) -> LlmSyncError:
    return LlmSyncError(
        f"{path} is not valid TOML: {message} (line {line}, column {column})",
        why="llm-sync edits pyproject.toml and will not guess at a broken file",
        fix=f"fix the syntax at line {line}, column {column}; `uv lock` reports the same error",
    )


def _read_toml(text: str, path: Path) -> dict[str, Any]:
    """The file's data. tomllib where it exists: reading verl's 17 kB pyproject takes
    tomlkit ~26 ms and tomllib ~2 ms, which a pre-commit hook pays on every commit;
    tomlkit is loaded only when something is to be edited."""
    try:
        return tomlread.loads(text)
    except ValueError as error:
        found = _TOMLLIB_POSITION.search(str(error))
        if found:
            message = _TOMLLIB_POSITION.sub("", str(error)).strip()
            raise _syntax_error(path, message, *found.groups()) from None
    # No position in the message ("at end of document"): tomlkit names the line and column.
    import tomlkit  # noqa: PLC0415 - positions for the error path only
    import tomlkit.exceptions  # noqa: PLC0415 - same

    try:
        tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as error:
        message = str(error.args[0]) if error.args else str(error)
        message = _TOMLKIT_POSITION.sub("", message).strip()  # the position is said once, below
        # tomlkit's way of saying the text ran out
        message = message.replace(
            "Unexpected character: '\\x00'", "the file ends before the value is complete"
        )
        raise _syntax_error(path, message, error.line, error.col) from None
    # tomllib refused what tomlkit accepts: trust the stricter one
    raise _syntax_error(path, "rejected by Python's TOML parser", "?", "?")


def parse(raw: bytes, path: Path) -> Project:
    text, bom = _decode(raw, path)
    text, newline = split_newlines(text)
    data = _read_toml(text, path)
    virtual_root = "project" not in data and workspace_table(data) is not None
    if not isinstance(data.get("project"), dict) and not virtual_root:
        raise LlmSyncError(
            f"{path} has no [project] table",
            why="uv sync needs a PEP 621 project; a Poetry-only or tool-only pyproject.toml is not one",
            fix="add a [project] table with name, version and dependencies (`uv init --bare` writes a minimal one), or migrate with `uvx migrate-to-uv`",
        )
    from uvx_llm import shapes  # noqa: PLC0415 - keeps this module's import list short

    shapes.check(data, path)
    return Project(path=path, raw=raw, text=text, newline=newline, bom=bom, data=data)


def workspace_table(data: dict[str, Any]) -> dict[str, Any] | None:
    """[tool.uv.workspace] when the file declares a uv workspace (its root), else None."""
    node: Any = data
    for key in ("tool", "uv", "workspace"):
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def load(path: Path) -> Project:
    """The project at ``path``; a uv workspace root comes with its members' files."""
    loaded = parse(_read_bytes(path), path)
    if workspace_table(loaded.data) is None:
        return loaded
    from uvx_llm import workspace  # noqa: PLC0415 - only workspace roots need it

    members = tuple(
        (folder, parse(_read_bytes(loaded.root / folder / PYPROJECT), loaded.root / folder / PYPROJECT))
        for folder in workspace.members(loaded.root, loaded.data)
    )
    return dataclasses.replace(loaded, members=members)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise LlmSyncError(
            f"cannot read {path}: {error.strerror}",
            fix="check that the file exists and is readable",
        ) from None
