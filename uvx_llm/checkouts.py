"""Local framework checkouts (verl/, OpenRLHF/) and what they require, read without
running any of their code.

Sources, first that answers: the PEP 621 [project] table of pyproject.toml (unless
its dependencies are dynamic), setup.cfg, setup.py read with `ast` (literal
install_requires / extras_require, names bound to literals, and the requirements
files it reads), then requirements*.txt. A checkout's code is never executed: a
setup.py is data here.
"""

from __future__ import annotations

import ast
import configparser
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from uvx_llm import tomlread
from uvx_llm.log import get_logger

if TYPE_CHECKING:
    from pathlib import Path

KNOWN_FRAMEWORKS = ("verl", "OpenRLHF")  # folders looked for at the project root
_REQUIREMENTS_FILE = re.compile(r"requirements[\w.-]*\.txt$")


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
        for node in tree.body:
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                self.names[node.targets[0].id] = node.value
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
        node = self.keyword(name)
        if isinstance(node, ast.Name):
            node = self.names.get(node.id)
        return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None

    def version(self) -> str | None:
        """A literal version, or the text of the version file it reads (verl's pattern)."""
        literal = self.text("version")
        if literal:
            return literal
        node = self.keyword("version")
        files = (
            [c.value for c in ast.walk(node) if isinstance(c, ast.Constant) and isinstance(c.value, str)]
            if node
            else []
        )
        for name in files:
            path = self.folder / name
            if path.is_file() and path.stat().st_size < 100:  # noqa: PLR2004 - a version file, not a module
                return path.read_text(encoding="utf-8").strip() or None
        return None

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


def read(folder: Path, written_as: str) -> Checkout:
    """What a checkout requires, without running it."""
    data = _pyproject(folder)
    project = data.get("project", {})
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
    )


def find(root: Path, configured: list[str]) -> list[Checkout]:
    """Checkouts at the project root (verl/, OpenRLHF/) and those listed in [tool.llm-sync] checkouts."""
    folders = [name for name in KNOWN_FRAMEWORKS if (root / name).is_dir()]
    folders += [c for c in configured if c not in folders]
    return [_read_or_warn(root / folder, folder) for folder in folders if (root / folder).is_dir()]


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


def _read_or_warn(folder: Path, written_as: str) -> Checkout:
    """A checkout whose files cannot be read is a warning and an empty reading, never a crash:
    checkouts are found automatically, so one broken file would otherwise stop every command."""
    try:
        return read(folder, written_as)
    except _UNREADABLE as error:
        reason = f"{type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}"
        log.warning(
            f"cannot read the checkout {folder}'s requirements ({reason}); it is left out of the plan"
        )
        return Checkout(written_as, None, (), {}, f"nothing readable ({reason})")
