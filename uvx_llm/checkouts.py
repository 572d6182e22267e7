"""Local framework checkouts (verl/, OpenRLHF/) and what they require, read without
running any of their code.

Sources, first that answers: the PEP 621 [project] table of pyproject.toml (unless
its dependencies are dynamic; a pyproject.toml with only tool settings counts as
absent), setup.cfg, setup.py read with `ast` (literal install_requires /
extras_require, names bound to literals, the requirements files it reads, and a
name or version returned by a small helper function: a literal, a file it reads, or
a conditional between those, of which the default branch is taken), then
requirements*.txt. The version also comes from `[tool.setuptools.dynamic]`'s file
or a `version.txt`. A checkout's code is never executed: a setup.py is data here.

What could not be read is said (``Checkout.unread``), and ``[tool.llm-sync]
checkouts`` can declare it by hand: ``{ path = "vendor/OpenRLHF", name = "openrlhf",
extras = ["vllm"] }`` (``Declared``).
"""

from __future__ import annotations

import ast
import configparser
import dataclasses
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from uvx_llm import tomlread
from uvx_llm.log import get_logger

if TYPE_CHECKING:
    from pathlib import Path

    from uvx_llm.gitread import Commit


KNOWN_FRAMEWORKS = ("verl", "OpenRLHF", "vllm")  # folders looked for at the project root
VLLM = "vllm"  # a vLLM checkout: its commit is read too (its precompiled binaries are per commit)
_REQUIREMENTS_FILE = re.compile(r"requirements[\w.-]*\.txt$")
_ENTRY = re.compile(r"^(?P<folder>[^\[\]]+?)(?:\[(?P<extras>[^\]]*)\])?$")
_SMALL_FILE = 200  # bytes: a version file, not a module
DECLARE_HINT = (
    'declare it by hand in [tool.llm-sync]: checkouts = [{{ path = "{folder}", name = "<its package name>", '
    'extras = ["vllm"] }}]'
)


@dataclass(frozen=True)
class Declared:
    """One [tool.llm-sync] checkouts entry: "verl[vllm]" or { path, name, version, extras }."""

    folder: str
    extras: tuple[str, ...] = ()
    name: str | None = None  # given by hand: wins over what is read
    version: str | None = None


def parse_entry(entry: str) -> tuple[str, tuple[str, ...]]:
    """ "verl[vllm,gpu]" -> ("verl", ("vllm", "gpu"))."""
    match = _ENTRY.match(entry.strip())
    if not match:
        return entry.strip(), ()
    extras = tuple(e.strip() for e in (match.group("extras") or "").split(",") if e.strip())
    return match.group("folder").strip().rstrip("/"), extras


def declared(value: object) -> list[Declared]:
    """The [tool.llm-sync] checkouts entries (validated by config: strings or tables)."""
    found = []
    for entry in value if isinstance(value, list) else []:
        if isinstance(entry, str):
            folder, extras = parse_entry(entry)
            found.append(Declared(folder, extras))
        elif isinstance(entry, dict) and isinstance(entry.get("path"), str):
            folder, inline = parse_entry(str(entry["path"]))
            extras = tuple(str(e) for e in entry.get("extras", ()) if isinstance(e, str)) or inline
            name, version = entry.get("name"), entry.get("version")
            found.append(
                Declared(
                    folder,
                    extras,
                    name if isinstance(name, str) else None,
                    version if isinstance(version, str) else None,
                )
            )
    return found


log = get_logger("llm-sync")


@dataclass(frozen=True)
class Checkout:
    folder: str  # as written in pyproject.toml: relative to the project root
    name: str | None
    requires: tuple[str, ...]
    extras: dict[str, tuple[str, ...]] = field(default_factory=dict)
    read_from: str = ""
    own_uv_config: bool = False  # extras per backend, conflicts, its own indexes
    version: str | None = None  # when readable without running anything
    unread: tuple[str, ...] = ()  # what could not be read without running it
    missing: bool = False  # listed in [tool.llm-sync] checkouts, but no such folder
    own_sources: tuple[str, ...] = ()  # packages its own [tool.uv.sources] routes
    commit: Commit | None = None  # a vLLM checkout's HEAD and upstream-main commit (gitread)

    @property
    def is_vllm(self) -> bool:
        return not self.missing and not self.own_uv_config and (self.name or "").lower() == VLLM


def requirements_file(path: Path, seen: frozenset[Path] = frozenset()) -> tuple[str, ...]:
    """Requirement lines of a requirements file, following -r includes; options skipped."""
    if path in seen or not path.is_file():
        return ()
    found: list[str] = []
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ")):
            found += requirements_file(path.parent / line.split(maxsplit=1)[1], seen | {path})
        elif not line.startswith("-"):
            found.append(line)
    return tuple(found)


# --- setup.py, read as a syntax tree -----------------------------------------------------


class _SetupReader:
    """Literal values of a setup.py: never imported, never executed."""

    def __init__(self, tree: ast.Module, folder: Path) -> None:
        self.folder = folder
        self.names: dict[str, ast.expr] = {}
        self.functions: dict[str, ast.FunctionDef] = {}
        self.body = tree.body
        for node in tree.body:
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                self.names[node.targets[0].id] = node.value
            elif isinstance(node, ast.FunctionDef):
                self.functions[node.name] = node
        self.call = next(
            (n for n in ast.walk(tree) if isinstance(n, ast.Call) and _called_name(n) == "setup"), None
        )

    def keyword(self, name: str) -> ast.expr | None:
        if self.call is None:
            return None
        return next((k.value for k in self.call.keywords if k.arg == name), None)

    def strings(self, node: ast.expr | None) -> tuple[str, ...] | None:
        """A list of requirement strings from a literal, a name bound to one, a sum of
        those, or an expression that reads requirements files."""
        if node is None:
            return None
        if isinstance(node, ast.Name) and node.id in self.names:
            return self.strings(self.names[node.id])
        if isinstance(node, (ast.List, ast.Tuple)) and all(
            isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts
        ):
            return tuple(str(e.value) for e in node.elts if isinstance(e, ast.Constant))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.strings(node.left), self.strings(node.right)
            return None if left is None or right is None else (*left, *right)
        files = [
            c.value
            for c in ast.walk(node)
            if isinstance(c, ast.Constant) and isinstance(c.value, str) and _REQUIREMENTS_FILE.search(c.value)
        ]
        if files:
            return tuple(r for f in files for r in requirements_file(self.folder / f))
        return None

    def text(self, name: str) -> str | None:
        """The keyword's value: a literal, a name bound to one, a small file it reads, or what a
        helper function returns (its default branch), all without running anything."""
        return self.value(self.keyword(name), self.body, depth=0)

    def value(self, node: ast.expr | None, scope: list[ast.stmt], depth: int) -> str | None:  # noqa: PLR0911 - one return per expression kind read
        if node is None or depth > 4:  # noqa: PLR2004 - helpers calling helpers: a few levels
            return None
        if isinstance(node, ast.Constant):
            return node.value if isinstance(node.value, str) else None
        if isinstance(node, ast.IfExp):  # "a-nightly" if _is_nightly() else "a": the default is the else
            return self.value(node.orelse, scope, depth + 1)
        if isinstance(node, ast.Call):
            called = _called_name(node)
            if isinstance(node.func, ast.Name) and called in self.functions:
                function = self.functions[called]
                return self.value(_returned(function.body), function.body, depth + 1)
            return self.file_text(node)  # open("version.txt").read().strip()
        if isinstance(node, ast.Name):
            binding = _binding(node.id, scope) or _binding(node.id, self.body)
            if isinstance(binding, ast.Assign):
                return self.value(binding.value, scope, depth + 1)
            if binding is not None:  # with open(...) as f: version = f.read().strip()
                return self.file_text(binding)
        return None

    def file_text(self, node: ast.AST) -> str | None:
        """The stripped text of the one small file inside the checkout that ``node`` names."""
        for constant in ast.walk(node):
            if isinstance(constant, ast.Constant) and isinstance(constant.value, str):
                text = small_file(self.folder, constant.value)
                if text:
                    return text
        return None

    def version(self) -> str | None:
        """A literal version, a helper's, or the text of the version file it reads (verl's pattern)."""
        return self.text("version")

    def extras(self) -> dict[str, tuple[str, ...]]:
        node = self.keyword("extras_require")
        if isinstance(node, ast.Name):
            node = self.names.get(node.id)
        if not isinstance(node, ast.Dict):
            return {}
        extras = {}
        for key, value in zip(node.keys, node.values, strict=True):
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                found = self.strings(value)
                if found is not None:
                    extras[key.value] = found
        return extras


def small_file(folder: Path, name: str) -> str | None:
    """The stripped text of a small file inside ``folder`` (never outside it), or None."""
    if not name or "\n" in name or len(name) > 200:  # noqa: PLR2004 - a path, not prose
        return None
    try:
        path = (folder / name).resolve()
        if not path.is_relative_to(folder.resolve()) or not path.is_file():
            return None
        if path.stat().st_size > _SMALL_FILE:
            return None
        return path.read_text(encoding="utf-8").strip() or None
    except (OSError, ValueError):
        return None


def _returned(body: list[ast.stmt]) -> ast.expr | None:
    """What a function body returns by default: its last return, or the else branch of a
    closing if/else (``if nightly: return "a-nightly"`` / ``return "a"``)."""
    for statement in reversed(body):
        if isinstance(statement, ast.Return):
            return statement.value
        if isinstance(statement, ast.If) and statement.orelse:
            return _returned(statement.orelse)
    return None


def _binding(name: str, body: list[ast.stmt]) -> ast.stmt | None:
    """The last statement of ``body`` that binds ``name`` unconditionally: an assignment, or a
    ``with`` block (``with open(...) as f: name = f.read()``). Conditional changes (``if
    nightly: version += ".dev"``) are the non-default branch and are skipped."""
    for statement in reversed(body):
        if isinstance(statement, ast.Assign):
            if any(isinstance(t, ast.Name) and t.id == name for t in statement.targets):
                return statement
        elif isinstance(statement, (ast.With, ast.Try)) and any(
            isinstance(t, ast.Name) and t.id == name and isinstance(t.ctx, ast.Store)
            for t in ast.walk(statement)
        ):
            return statement
    return None


def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _from_setup_py(folder: Path) -> Checkout | None:
    path = folder / "setup.py"
    if not path.is_file():
        return None
    try:
        tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"), filename=str(path))
    except SyntaxError:
        return None
    reader = _SetupReader(tree, folder)
    requires = reader.strings(reader.keyword("install_requires"))
    if requires is None and reader.call is None:
        return None
    return Checkout(
        folder.name,
        reader.text("name"),
        requires or (),
        reader.extras(),
        "setup.py (read as a syntax tree, not run)",
        version=reader.version(),
    )


def _from_setup_cfg(folder: Path) -> Checkout | None:
    path = folder / "setup.cfg"
    if not path.is_file():
        return None
    parser = configparser.ConfigParser(interpolation=None)  # a "%" in a requirement is no template
    parser.read(path, encoding="utf-8")
    if not parser.has_option("options", "install_requires"):
        return None
    requires = tuple(
        line.strip() for line in parser.get("options", "install_requires").splitlines() if line.strip()
    )
    extras = {}
    if parser.has_section("options.extras_require"):
        for extra, value in parser.items("options.extras_require"):
            extras[extra] = tuple(line.strip() for line in value.splitlines() if line.strip())
    name = parser.get("metadata", "name", fallback=None)
    version = parser.get("metadata", "version", fallback=None)
    return Checkout(folder.name, name, requires, extras, "setup.cfg", version=version)


def _pyproject(folder: Path) -> dict[str, Any]:
    path = folder / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        return tomlread.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _has_own_uv_config(data: dict[str, Any]) -> bool:
    uv = data.get("tool", {}).get("uv", {})
    return bool(uv.get("conflicts") or uv.get("index") or uv.get("sources"))


def _own_sources(data: dict[str, Any]) -> tuple[str, ...]:
    sources = data.get("tool", {}).get("uv", {}).get("sources", {})
    return tuple(sorted(str(k) for k in sources)) if isinstance(sources, dict) else ()


def _dynamic_version(folder: Path, data: dict[str, Any]) -> str | None:
    """[tool.setuptools.dynamic] version = { file = ... } (verl's pyproject.toml)."""
    dynamic = data.get("tool", {}).get("setuptools", {}).get("dynamic", {})
    spec = dynamic.get("version") if isinstance(dynamic, dict) else None
    files = spec.get("file") if isinstance(spec, dict) else None
    for name in [files] if isinstance(files, str) else files if isinstance(files, list) else []:
        text = small_file(folder, str(name))
        if text:
            return text
    return None


def _read(folder: Path, written_as: str) -> Checkout:
    data = _pyproject(folder)
    project = data.get("project", {})
    project = project if isinstance(project, dict) else {}
    own = _has_own_uv_config(data)
    if project and "dependencies" not in project.get("dynamic", []):
        extras = {k: tuple(v) for k, v in project.get("optional-dependencies", {}).items()}
        return Checkout(
            written_as,
            project.get("name"),
            tuple(project.get("dependencies", [])),
            extras,
            "pyproject.toml",
            own,
            project.get("version"),
        )
    static_extras = (
        {k: tuple(v) for k, v in project.get("optional-dependencies", {}).items()}
        if project and "optional-dependencies" not in project.get("dynamic", [])
        else None
    )
    for reader in (_from_setup_cfg, _from_setup_py):
        found = reader(folder)
        if found is not None:
            name = project.get("name") or found.name
            extras = static_extras if static_extras is not None else found.extras
            version = project.get("version") or found.version
            return Checkout(written_as, name, found.requires, extras, found.read_from, own, version)
    files = sorted(folder.glob("requirements*.txt"))
    requires = tuple(r for f in files for r in requirements_file(f))
    return Checkout(
        written_as,
        project.get("name"),
        requires,
        {},
        ", ".join(f.name for f in files) or "nothing readable",
        own,
        project.get("version"),
    )


def read(folder: Path, written_as: str, declared: Declared | None = None) -> Checkout:
    """What a checkout requires, without running it; what it could not read, said."""
    found = _read(folder, written_as)
    data = _pyproject(folder)
    version = (
        (declared.version if declared else None)
        or found.version
        or _dynamic_version(folder, data)
        or small_file(folder, "version.txt")
    )
    name = (declared.name if declared else None) or found.name
    unread = []
    if not name:
        unread.append(f"its package name ({found.read_from})")
    if found.read_from == "nothing readable":
        unread.append(
            "its requirements (no pyproject.toml [project], setup.cfg, setup.py or requirements*.txt)"
        )
    is_vllm = (name or "").lower() == VLLM
    return dataclasses.replace(
        found,
        name=name,
        version=version,
        unread=tuple(unread),
        own_sources=_own_sources(data),
        commit=_commit(folder) if is_vllm else None,
    )


def find(root: Path, configured: list[Declared]) -> list[Checkout]:
    """Checkouts at the project root (verl/, OpenRLHF/) and those listed in [tool.llm-sync] checkouts;
    a listed folder that is not there comes back ``missing``, never dropped in silence."""
    by_folder = {d.folder: d for d in configured}
    folders = [name for name in KNOWN_FRAMEWORKS if (root / name).is_dir()]
    folders += [d.folder for d in configured if d.folder not in folders]
    return [
        _read_or_warn(root / folder, folder, by_folder.get(folder))
        if (root / folder).is_dir()
        else Checkout(folder, None, (), read_from="no such folder", missing=True)
        for folder in folders
    ]


# What a broken or absurd checkout makes the readers raise: an unparsable setup.cfg, a setup.py
# nested past the parser's limits or holding NUL bytes, values of the wrong type.
_UNREADABLE = (
    configparser.Error,
    RecursionError,
    MemoryError,
    ValueError,
    TypeError,
    AttributeError,
    OSError,
)


def _read_or_warn(folder: Path, written_as: str, declared: Declared | None) -> Checkout:
    """A checkout whose files cannot be read is a warning and an empty reading, never a crash:
    checkouts are found automatically, so one broken file would otherwise stop every command."""
    try:
        return read(folder, written_as, declared)
    except _UNREADABLE as error:
        reason = f"{type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}"
        log.warning(
            f"cannot read the checkout {folder}'s requirements ({reason}); it is left out of the plan"
        )
        return Checkout(written_as, None, (), {}, f"nothing readable ({reason})")


def _commit(folder: Path) -> Commit:
    from uvx_llm import gitread  # noqa: PLC0415 - only a vLLM checkout needs its commit (and git)

    return gitread.commit(folder)
