"""Applying a Plan to pyproject.toml: style-preserving edits, a diff (files.py writes it).

Edits go through tomlkit, so comments, order, quoting and whitespace outside the
changed entries survive. Before anything is written the result is parsed again
and compared with the same actions applied to plain data: a file that would not
say exactly what the plan says is never written.
"""

from __future__ import annotations

import codecs
import copy
import dataclasses
import difflib
from typing import TYPE_CHECKING, Any

import tomlkit
from packaging.utils import canonicalize_name
from tomlkit.items import AoT, Array, InlineTable, Table

from uvx_llm import files, tomlread
from uvx_llm.actions import (
    Action,
    AddBuildDependencies,
    AddConstraint,
    AddOverride,
    AddRequirement,
    RemoveIndex,
    ReplaceBuildDependency,
    SetBound,
    SetBuildVariables,
    SetConfig,
    SetDependencyMetadata,
    SetIndex,
    SetOverride,
    SetPathSource,
    SetRequirement,
    SetSource,
)
from uvx_llm.errors import LlmSyncError
from uvx_llm.project import TOOL_KEY, Project

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from tomlkit.container import Container


def _body(node: Any) -> list[tuple[Any, Any]]:
    container = node if hasattr(node, "body") else getattr(node, "value", None)
    return list(getattr(container, "body", None) or [])


def _end_with_blank_line(parent: Any) -> None:
    """Make the table rendered last under ``parent`` end with a blank line.

    tomlkit puts a newly appended table right under the previous one; a blank
    line between tables is how people (and uv) write them.
    """
    node = parent
    while True:
        body = _body(node)
        last = body[-1][1] if body else None
        if isinstance(last, AoT):
            last = last.body[-1] if last.body else None
        if isinstance(last, Table):
            node = last
            continue
        if node is not parent and isinstance(node, Table) and not node.as_string().endswith("\n\n"):
            node.add(tomlkit.nl())
        return


def _get(doc: Container, keys: tuple[str, ...]) -> Any:
    node: Any = doc
    for key in keys:
        if key not in node:
            return None
        node = node[key]
    return node


def _append_at_end(doc: Container, keys: tuple[str, ...], item: Any) -> None:
    """Put ``item`` at ``keys`` as a new section at the end of the file.

    Appending a chain of super tables to the document works even where the
    parent ([tool], [tool.uv]) is split across the file, which tomlkit cannot
    append into in place.
    """
    _end_with_blank_line(doc)
    for key in reversed(keys[1:]):
        parent = tomlkit.table(is_super_table=True)
        parent.append(key, item)
        item = parent
    doc.append(keys[0], item)


def _inline_parent(doc: Container, keys: tuple[str, ...]) -> tuple[Any, tuple[str, ...]] | None:
    """When the nearest existing parent of ``keys`` is written inline (`[tool] uv = { ... }`,
    `tool = { uv = { ... } }`): that inline table and the keys still missing under it."""
    for depth in range(len(keys) - 1, 0, -1):
        parent = _get(doc, keys[:depth])
        if parent is not None:
            return (parent, keys[depth:]) if isinstance(parent, InlineTable) else None
    return None


def _place(doc: Container, keys: tuple[str, ...], item: Any, inline_item: Any) -> Any:
    """Put a new ``item`` at ``keys``: inside an inline parent as ``inline_item`` (a section
    cannot go inside an inline table), else as a new section at the end of the file."""
    inline = _inline_parent(doc, keys)
    if inline is None:
        _append_at_end(doc, keys, item)
        return item
    node, missing = inline
    for key in missing[:-1]:
        node[key] = tomlkit.inline_table()
        node = node[key]
    node[missing[-1]] = inline_item
    return node[missing[-1]]


def _table(doc: Container, *keys: str) -> Any:
    """The table at ``keys``, created when missing: at the end of the file, or inside an inline parent."""
    existing = _get(doc, keys)
    if existing is not None:
        return existing
    return _place(doc, keys, tomlkit.table(), tomlkit.inline_table())


def _inline_text(value: Any) -> str:
    if isinstance(value, dict):
        pairs = ", ".join(f"{tomlkit.key(k).as_string()} = {_inline_text(v)}" for k, v in value.items())
        return "{ " + pairs + " }"
    if isinstance(value, list):
        return "[\n" + "".join(f"    {_inline_text(v)},\n" for v in value) + "]"
    return str(tomlkit.item(value).as_string())


def _item(value: Any) -> Any:
    """A tomlkit item for plain data, written the way uv's docs write sources:
    ``{ index = "...", marker = "..." }``, one entry per line in arrays."""
    return tomlkit.parse(f"value = {_inline_text(value)}\n")["value"]


def _requirement_array(doc: Container, action: AddRequirement | SetRequirement) -> Array:
    if action.kind == "dependencies":
        project: Any = doc["project"]
        if "dependencies" not in project:
            project["dependencies"] = tomlkit.array()
        array: Array = project["dependencies"]
        return array
    tables: Any = doc
    parent = (
        tables["project"]["optional-dependencies"] if action.kind == "extra" else tables["dependency-groups"]
    )
    found: Array = parent[action.list_name]
    return found


def _set_index(doc: Container, action: SetIndex) -> None:
    indexes: AoT | Array | None = _get(doc, ("tool", "uv", "index"))
    fresh = indexes is None
    if indexes is None:
        indexes = _place(doc, ("tool", "uv", "index"), tomlkit.aot(), tomlkit.array())
    if isinstance(indexes, Array):  # index = [{ ... }]: entries stay inline tables
        _set_inline_index(indexes, action)
        return
    assert isinstance(indexes, AoT)  # noqa: S101 - shapes.check let only arrays of tables through
    for table in indexes:
        if table.get("name") == action.name:
            table["url"] = action.url
            table["explicit"] = True
            if action.format:
                table["format"] = action.format
            elif "format" in table:
                del table["format"]
            return
    table = tomlkit.table()
    table.update({"name": action.name, "url": action.url, "explicit": True})
    if action.format:
        table["format"] = action.format
    # Blank lines between the tables, as people write them: the previous table
    # gets a trailing blank line, and ours one too when it is followed by others.
    last = indexes.body[-1] if indexes.body else None
    followed_by_blank = fresh or (last is not None and last.as_string().endswith("\n\n"))
    if last is not None and not last.as_string().endswith("\n\n"):
        last.add(tomlkit.nl())
    indexes.append(table)
    table.trivia.indent = ""  # tomlkit indents tables appended to a new array itself
    if followed_by_blank and not fresh:
        table.add(tomlkit.nl())


def _set_inline_index(indexes: Array, action: SetIndex) -> None:
    entry = {"name": action.name, "url": action.url, "explicit": True}
    if action.format:
        entry["format"] = action.format
    for position, table in enumerate(indexes):
        if table.get("name") == action.name:
            kept = {k: v for k, v in table.unwrap().items() if k not in {"url", "explicit", "format"}}
            indexes[position] = _item({**kept, **entry})
            return
    indexes.append(_item(entry))


def _remove_index(doc: Container, action: RemoveIndex) -> None:
    indexes: AoT = _get(doc, ("tool", "uv", "index"))
    for position, table in enumerate(indexes):
        if table.get("name") == action.name:
            del indexes[position]
            return


def _add_commented(doc: Container, key: str, requirement: str, comment: str) -> None:
    """Append to a [tool.uv] requirement list, one entry per line with its reason."""
    uv = _table(doc, "tool", "uv")
    if key not in uv:
        uv[key] = tomlkit.array()
    entries = uv[key]
    closed_on_own_line = entries.as_string().rstrip("]").endswith("\n")
    entries.add_line(requirement, comment=comment)
    if not closed_on_own_line:
        entries.add_line(indent="")  # the closing bracket on its own line


def _doc_constraint(doc: Container, action: AddConstraint) -> None:
    _add_commented(doc, "constraint-dependencies", action.requirement, action.comment)


def _doc_replace_commented(doc: Container, key: str, old: str | None, new: str | None, comment: str) -> None:
    """llm-sync's own entry ``old`` of a [tool.uv] requirement list replaced by ``new`` (None: taken away)."""
    if old is not None:
        entries = _table(doc, "tool", "uv")[key]
        del entries[[str(item) for item in entries].index(old)]  # its comment goes with it
    if new is not None:
        _add_commented(doc, key, new, comment)


def _data_replace_commented(data: dict[str, Any], key: str, old: str | None, new: str | None) -> None:
    uv = _plain_dict(data, "tool", "uv")
    kept = [e for e in uv.get(key, []) if e != old]
    uv[key] = [*kept, *([new] if new is not None else [])]


def _doc_bound(doc: Container, action: SetBound) -> None:
    _doc_replace_commented(doc, "constraint-dependencies", action.old, action.requirement, action.comment)


def _data_bound(data: dict[str, Any], action: SetBound) -> None:
    _data_replace_commented(data, "constraint-dependencies", action.old, action.requirement)


def _doc_set_override(doc: Container, action: SetOverride) -> None:
    _doc_replace_commented(doc, "override-dependencies", action.old, action.requirement, action.comment)


def _data_set_override(data: dict[str, Any], action: SetOverride) -> None:
    _data_replace_commented(data, "override-dependencies", action.old, action.requirement)


def _data_constraint(data: dict[str, Any], action: AddConstraint) -> None:
    uv = _plain_dict(data, "tool", "uv")
    uv["constraint-dependencies"] = [*uv.get("constraint-dependencies", []), action.requirement]


def _doc_path_source(doc: Container, action: SetPathSource) -> None:
    _table(doc, "tool", "uv", "sources")[action.package] = _item({"path": action.folder, "editable": True})


def _doc_override(doc: Container, action: AddOverride) -> None:
    _add_commented(doc, "override-dependencies", action.requirement, action.comment)


def _doc_metadata(doc: Container, action: SetDependencyMetadata) -> None:
    metadata: AoT | None = _get(doc, ("tool", "uv", "dependency-metadata"))
    if metadata is None:
        metadata = tomlkit.aot()
        _append_at_end(doc, ("tool", "uv", "dependency-metadata"), metadata)
    table = tomlkit.table()
    table.add(tomlkit.comment(action.comment))
    table.update({"name": action.name, "version": action.version})
    requires = tomlkit.array()
    for line in action.requires_dist:
        requires.add_line(line)
    requires.add_line(indent="")
    table["requires-dist"] = requires
    metadata.append(table)


def _same_package(table: Any, package: str) -> str:
    """The key ``table`` already has for ``package`` (`Torch` for torch), else ``package``."""
    wanted = canonicalize_name(package)
    return next((str(key) for key in table if canonicalize_name(str(key)) == wanted), package)


def _doc_source(doc: Container, action: SetSource) -> None:
    sources = _table(doc, "tool", "uv", "sources")
    key = _same_package(sources, action.package)
    if action.value is None:  # llm-sync's own entries withdrawn (release wheels that no longer fit)
        sources.remove(key)
    else:
        sources[key] = _item(action.value)


def _doc_add_requirement(doc: Container, action: AddRequirement) -> None:
    _requirement_array(doc, action).append(action.requirement)


def _doc_set_requirement(doc: Container, action: SetRequirement) -> None:
    array = _requirement_array(doc, action)
    array[[str(item) for item in array].index(action.old)] = action.new


def _doc_build_dependencies(doc: Container, action: AddBuildDependencies) -> None:
    table = _table(doc, "tool", "uv", "extra-build-dependencies")
    if action.package in table:
        for entry in action.entries:
            table[action.package].append(_item(entry))
    else:
        table[action.package] = _item(list(action.entries))


def _same_entry(item: Any, entry: Any) -> bool:
    plain = item.unwrap() if hasattr(item, "unwrap") else item
    return bool(plain == entry)


def _doc_replace_build_dependency(doc: Container, action: ReplaceBuildDependency) -> None:
    entries = _table(doc, "tool", "uv", "extra-build-dependencies")[action.package]
    position = next(i for i, item in enumerate(entries) if _same_entry(item, action.old))
    entries[position] = _item(action.new)


def _data_replace_build_dependency(data: dict[str, Any], action: ReplaceBuildDependency) -> None:
    entries = _plain_dict(data, "tool", "uv", "extra-build-dependencies")[action.package]
    entries[entries.index(action.old)] = action.new


def _doc_build_variables(doc: Container, action: SetBuildVariables) -> None:
    table = _table(doc, "tool", "uv", "extra-build-variables")
    current = table.get(action.package)
    if isinstance(current, Table):  # its own [tool.uv.extra-build-variables.<package>] section
        for key, value in action.variables:
            current[key] = value
    else:  # an inline table is written anew: tomlkit appends to one without separators
        table[action.package] = _item({**(current or {}), **dict(action.variables)})


def _doc_config(doc: Container, action: SetConfig) -> None:
    _table(doc, "tool", TOOL_KEY)[action.key] = action.value


def apply_to_document(doc: Container, actions: Iterable[Action]) -> None:
    for action in actions:
        STEPS[type(action)][0](doc, action)


def _plain_dict(parent: dict[str, Any], *keys: str) -> dict[str, Any]:
    for key in keys:
        parent = parent.setdefault(key, {})
    return parent


def _plain_requirements(data: dict[str, Any], kind: str, name: str | None) -> list[Any]:
    if kind == "dependencies":
        found: list[Any] = data["project"]["dependencies"]
    elif kind == "extra":
        found = data["project"]["optional-dependencies"][name]
    else:
        found = data["dependency-groups"][name]
    return found


def _index_in_data(uv: dict[str, Any], action: SetIndex | RemoveIndex) -> None:
    indexes = [i for i in uv.get("index", []) if i.get("name") != action.name]
    if isinstance(action, SetIndex):
        old = next((i for i in uv.get("index", []) if i.get("name") == action.name), None)
        entry = {**(old or {}), "name": action.name, "url": action.url, "explicit": True}
        entry.pop("format", None)
        if action.format:
            entry["format"] = action.format
        position = uv.get("index", []).index(old) if old else len(indexes)
        indexes.insert(position, entry)
    uv["index"] = indexes


def _data_source(data: dict[str, Any], action: SetSource) -> None:
    sources = _plain_dict(data, "tool", "uv", "sources")
    key = _same_package(sources, action.package)
    if action.value is None:
        sources.pop(key, None)
    else:
        sources[key] = action.value


def _data_index(data: dict[str, Any], action: SetIndex | RemoveIndex) -> None:
    _index_in_data(_plain_dict(data, "tool", "uv"), action)


def _data_add_requirement(data: dict[str, Any], action: AddRequirement) -> None:
    if action.kind == "dependencies":
        data["project"].setdefault("dependencies", []).append(action.requirement)
    else:
        _plain_requirements(data, action.kind, action.list_name).append(action.requirement)


def _data_set_requirement(data: dict[str, Any], action: SetRequirement) -> None:
    values = _plain_requirements(data, action.kind, action.list_name)
    values[values.index(action.old)] = action.new


def _data_build_dependencies(data: dict[str, Any], action: AddBuildDependencies) -> None:
    table = _plain_dict(data, "tool", "uv", "extra-build-dependencies")
    table[action.package] = [*table.get(action.package, []), *action.entries]


def _data_build_variables(data: dict[str, Any], action: SetBuildVariables) -> None:
    table = _plain_dict(data, "tool", "uv", "extra-build-variables")
    table[action.package] = {**table.get(action.package, {}), **dict(action.variables)}


def _data_config(data: dict[str, Any], action: SetConfig) -> None:
    _plain_dict(data, "tool", TOOL_KEY)[action.key] = action.value


def _data_path_source(data: dict[str, Any], action: SetPathSource) -> None:
    _plain_dict(data, "tool", "uv", "sources")[action.package] = {"path": action.folder, "editable": True}


def _data_override(data: dict[str, Any], action: AddOverride) -> None:
    uv = _plain_dict(data, "tool", "uv")
    uv["override-dependencies"] = [*uv.get("override-dependencies", []), action.requirement]


def _data_metadata(data: dict[str, Any], action: SetDependencyMetadata) -> None:
    uv = _plain_dict(data, "tool", "uv")
    entry = {"name": action.name, "version": action.version, "requires-dist": list(action.requires_dist)}
    uv["dependency-metadata"] = [*uv.get("dependency-metadata", []), entry]


# One row per action: how it edits the tomlkit document, and the same edit on plain data
# (what the written file must parse back to). A new action is one class in actions.py and one row.
STEPS: dict[type, tuple[Callable[[Container, Any], None], Callable[[dict[str, Any], Any], None]]] = {
    SetSource: (_doc_source, _data_source),
    SetIndex: (_set_index, _data_index),
    RemoveIndex: (_remove_index, _data_index),
    AddRequirement: (_doc_add_requirement, _data_add_requirement),
    SetRequirement: (_doc_set_requirement, _data_set_requirement),
    AddBuildDependencies: (_doc_build_dependencies, _data_build_dependencies),
    SetBuildVariables: (_doc_build_variables, _data_build_variables),
    ReplaceBuildDependency: (_doc_replace_build_dependency, _data_replace_build_dependency),
    SetConfig: (_doc_config, _data_config),
    SetPathSource: (_doc_path_source, _data_path_source),
    AddOverride: (_doc_override, _data_override),
    SetDependencyMetadata: (_doc_metadata, _data_metadata),
    AddConstraint: (_doc_constraint, _data_constraint),
    SetBound: (_doc_bound, _data_bound),
    SetOverride: (_doc_set_override, _data_set_override),
}


def apply_to_data(data: dict[str, Any], actions: Iterable[Action]) -> dict[str, Any]:
    """The same actions on plain data: what the written file must parse back to."""
    result = copy.deepcopy(data)
    for action in actions:
        STEPS[type(action)][1](result, action)
    return result


def _member(action: Action) -> str | None:
    return action.member if isinstance(action, (AddRequirement, SetRequirement)) else None


def render_all(project: Project, actions: tuple[Action, ...]) -> tuple[tuple[Project, str], ...]:
    """(file, its new text) for the project and each uv workspace member an action edits."""
    edits = [(project, render(project, actions))]
    for folder, member in project.members:
        own = tuple(
            dataclasses.replace(a, member=None)
            for a in actions
            if isinstance(a, (AddRequirement, SetRequirement)) and a.member == folder
        )
        if own:
            edits.append((member, render(member, own)))
    return tuple(edits)


def changed(edits: tuple[tuple[Project, str], ...]) -> tuple[tuple[Project, str], ...]:
    return tuple((file, text) for file, text in edits if text != file.text)


def diff_all(project: Project, edits: tuple[tuple[Project, str], ...]) -> str:
    """One diff for every file that changes, each named relative to the project's folder."""
    return "".join(
        diff(file, text, name=file.path.relative_to(project.root).as_posix() if file is not project else None)
        for file, text in edits
    )


def write_all(edits: tuple[tuple[Project, str], ...]) -> None:
    """Write every changed file, or none (each is checked before the first is written)."""
    files.write_each([(file.path, encode(file, text), file.raw) for file, text in changed(edits)])


def render(project: Project, actions: tuple[Action, ...]) -> str:
    """The new file text (line endings as the file had them, no BOM); a uv workspace member's
    edits are left to ``render_all``."""
    actions = tuple(a for a in actions if _member(a) is None)
    if not actions:
        return project.text
    doc = project.document()
    expected = apply_to_data(project.data, actions)
    try:
        apply_to_document(doc, actions)
        text = tomlkit.dumps(doc)
        read_back = tomlkit.parse(text).unwrap()
        strict_read = tomlread.loads(text)  # what the next run, and tools with a strict reader, see
    except Exception as error:  # noqa: BLE001 - tomlkit raises many kinds (KeyAlreadyPresent, TypeError, AttributeError) for layouts it cannot edit; each is this refusal, never a crash
        raise _cannot_edit(
            project, f"the TOML editor failed on this layout ({type(error).__name__}: {error})"
        ) from None
    if read_back != expected or strict_read != expected:
        raise _cannot_edit(project, "the edited file would not read back as planned")
    return text


def _cannot_edit(project: Project, why: str) -> LlmSyncError:
    return LlmSyncError(
        f"llm-sync cannot edit {project.path} safely in its current spelling; nothing was written",
        why=why,
        fix=(
            "write the [tool.uv] / [tool.llm-sync] tables as sections ([tool.uv], [[tool.uv.index]], "
            "[tool.uv.sources]) rather than inline or dotted, and run llm-sync again; please report the "
            "layout so that it can be supported"
        ),
    )


def diff(project: Project, new_text: str, *, name: str | None = None) -> str:
    name = name or project.path.name
    return "".join(
        difflib.unified_diff(
            project.text.splitlines(keepends=True),
            new_text.splitlines(keepends=True),
            fromfile=f"a/{name}",
            tofile=f"b/{name}",
        )
    )


def encode(project: Project, text: str) -> bytes:
    """Back to the file's bytes: its line endings and byte-order mark."""
    if project.newline != "\n":
        text = text.replace("\n", project.newline)
    data = text.encode("utf-8")
    return codecs.BOM_UTF8 + data if project.bom else data
