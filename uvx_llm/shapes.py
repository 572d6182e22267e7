"""The shapes uv accepts for the tables llm-sync reads and edits, checked when the file is read.

A file tomllib reads may still be one uv refuses (`sources = 5`, an index without a
`url`, a source naming an index nobody declared). llm-sync would otherwise fail
somewhere inside planning or editing (exit 3), or worse, say "up to date" about a
file uv cannot use. Each check names the key and what uv expects there (exit 2).
"""

from __future__ import annotations

from typing import Any

from packaging.utils import canonicalize_name

from uvx_llm.errors import LlmSyncError


def _refuse(path: object, key: str, expected: str, value: Any) -> LlmSyncError:
    shown = type(value).__name__ if not isinstance(value, (str, int, float, bool)) else repr(value)
    return LlmSyncError(
        f"{path}: {key} must be {expected}, not {shown}",
        why="uv refuses this shape, and llm-sync reads and edits this key",
        fix=f"correct {key} (uv's documentation on settings shows each one's shape); nothing was written",
    )


def _table(data: Any, key: str, path: object) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _refuse(path, key, "a table", data)
    return data


def _strings(value: Any, key: str, path: object) -> None:
    if not isinstance(value, list):
        raise _refuse(path, key, "an array of requirement strings", value)
    for item in value:
        if not isinstance(item, str):
            raise _refuse(path, f"{key} entry", "a requirement string", item)


def _requirement_lists(data: dict[str, Any], path: object) -> None:
    project = data.get("project", {})
    if "dependencies" in project:
        _strings(project["dependencies"], "[project] dependencies", path)
    extras = _table(project.get("optional-dependencies", {}), "[project.optional-dependencies]", path)
    for name, values in extras.items():
        _strings(values, f"[project.optional-dependencies] {name}", path)
    groups = _table(data.get("dependency-groups", {}), "[dependency-groups]", path)
    for name, values in groups.items():
        key = f"[dependency-groups] {name}"
        if not isinstance(values, list):
            raise _refuse(path, key, "an array", values)
        for value in values:
            if not isinstance(value, str) and not (isinstance(value, dict) and "include-group" in value):
                raise _refuse(
                    path, key, 'an array of requirement strings and { include-group = "..." }', value
                )


def _indexes(uv: dict[str, Any], path: object) -> set[str]:
    indexes = uv.get("index", [])
    if not isinstance(indexes, list):
        raise _refuse(path, "[tool.uv] index", "an array of tables ([[tool.uv.index]])", indexes)
    names = set()
    for entry in indexes:
        if not isinstance(entry, dict):
            raise _refuse(path, "[tool.uv] index", "an array of tables ([[tool.uv.index]])", entry)
        if "url" not in entry:
            raise LlmSyncError(
                f"{path}: the [[tool.uv.index]] {entry.get('name', '')!s} has no url".replace("  ", " "),
                why="uv needs the url of every index",
                fix='add url = "https://..." to it, or remove the index',
            )
        if not isinstance(entry["url"], str):
            raise _refuse(path, "[[tool.uv.index]] url", "a URL string", entry["url"])
        if "name" in entry:
            if not isinstance(entry["name"], str):
                raise _refuse(path, "[[tool.uv.index]] name", "a string", entry["name"])
            names.add(entry["name"])
    return names


def _sources(uv: dict[str, Any], indexes: set[str], path: object) -> None:
    sources = _table(uv.get("sources", {}), "[tool.uv] sources", path)
    seen: dict[str, str] = {}
    for package, value in sources.items():
        key = f"[tool.uv.sources] {package}"
        canonical = canonicalize_name(package)
        if canonical in seen:
            raise LlmSyncError(
                f"{path}: [tool.uv.sources] names {seen[canonical]!r} and {package!r}, the same package",
                why="package names are compared canonically (case, '-', '_' and '.' do not count); uv rejects duplicate sources",
                fix="keep one of the two entries",
            )
        seen[canonical] = package
        entries = value if isinstance(value, list) else [value]
        for entry in entries:
            if not isinstance(entry, dict):
                raise _refuse(path, key, "a table or an array of tables", entry)
            index = entry.get("index")
            if index is not None and index not in indexes:
                raise LlmSyncError(
                    f"{path}: {key} names the index {index!r}, which no [[tool.uv.index]] declares",
                    why="uv refuses a source whose index is not declared",
                    fix=f'declare it ([[tool.uv.index]] name = "{index}", url = "...") or correct the name',
                )


def _per_package(uv: dict[str, Any], key: str, expected: str, path: object) -> None:
    table = _table(uv.get(key, {}), f"[tool.uv] {key}", path)
    for package, value in table.items():
        if expected == "array" and not isinstance(value, list):
            raise _refuse(path, f"[tool.uv.{key}] {package}", "an array", value)
        if expected == "table" and not isinstance(value, dict):
            raise _refuse(path, f"[tool.uv.{key}] {package}", "a table", value)


def check(data: dict[str, Any], path: object) -> None:
    """Raise for the first shape uv would refuse among the keys llm-sync reads and edits."""
    _requirement_lists(data, path)
    tool = _table(data.get("tool", {}), "[tool]", path)
    _table(tool.get("llm-sync", {}), "[tool] llm-sync", path)
    uv = _table(tool.get("uv", {}), "[tool] uv", path)
    indexes = _indexes(uv, path)
    _sources(uv, indexes, path)
    for key in ("constraint-dependencies", "override-dependencies", "build-constraint-dependencies"):
        if key in uv:
            _strings(uv[key], f"[tool.uv] {key}", path)
    _per_package(uv, "extra-build-dependencies", "array", path)
    _per_package(uv, "extra-build-variables", "table", path)
    metadata = uv.get("dependency-metadata", [])
    if not isinstance(metadata, list) or not all(isinstance(m, dict) for m in metadata):
        raise _refuse(path, "[tool.uv] dependency-metadata", "an array of tables", metadata)
