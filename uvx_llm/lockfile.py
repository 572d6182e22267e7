"""What uv locked, read back from uv.lock, and how it compares with a plan. Pure but for `read`.

The plan is a claim about the stack ("torch 2.9-2.14 from cu130, vllm from a
release that pins such a torch"); the lock is uv's answer. This module reads the
answer for one platform at a time (a universal lock forks by markers: Linux gets
``torch 2.9.0+cu130``, macOS ``torch 2.9.0``) and lists every place where it
leaves the plan's bounds, so llm-sync can stop before installing the wrong stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from packaging.markers import InvalidMarker, Marker
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from uvx_llm import tomlread
from uvx_llm.errors import LlmSyncError

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from packaging.specifiers import SpecifierSet

# Marker environments of the platforms a team's lock serves.
LINUX = {
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
}
MACOS = {
    "sys_platform": "darwin",
    "platform_system": "Darwin",
    "platform_machine": "arm64",
    "os_name": "posix",
}
PLATFORMS = {"linux": LINUX, "macos": MACOS}


@dataclass(frozen=True)
class Locked:
    name: str
    version: Version
    source: str  # "registry <url>", "editable <path>", "path <path>", "url <url>", "virtual ."…
    editable: bool = False

    @property
    def local(self) -> str | None:
        """The local version label: "cu130" for 2.9.0+cu130."""
        return self.version.local

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


@dataclass(frozen=True)
class Stack:
    """The packages one platform gets from a universal lock."""

    platform: str
    python: str
    packages: Mapping[str, Locked] = field(default_factory=dict)

    def get(self, name: str) -> Locked | None:
        return self.packages.get(canonicalize_name(name))


TRACKED = (
    "torch",
    "torchvision",
    "torchaudio",
    "vllm",
    "flash-attn",
    "xformers",
    "transformers",
    "tensordict",
    "verl",
    "openrlhf",
)


@dataclass(frozen=True)
class Resolution:
    """What `uv lock` made of a plan, per platform: the tracked packages and any disagreement."""

    code: int  # uv lock's exit code
    seconds: float
    stacks: tuple[Stack, ...] = ()
    problems: tuple[str, ...] = ()
    output: tuple[str, ...] = ()  # uv's lines, for the explanation of a failed lock

    @property
    def ok(self) -> bool:
        return self.code == 0 and not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "uv_lock_exit_code": self.code,
            "seconds": round(self.seconds, 2),
            "stacks": {
                s.platform: {n: str(p.version) for n in TRACKED if (p := s.get(n)) is not None}
                for s in self.stacks
            },
            "problems": list(self.problems),
        }


@dataclass(frozen=True)
class Bound:
    """A version range the plan promises for a package, with the reason it is the plan's."""

    package: str
    specifier: SpecifierSet
    reason: str


@dataclass(frozen=True)
class Expectation:
    """What the lock must show for the plan to hold."""

    variant: str | None = None  # Linux torch's local label ("cu130"); None: not routed
    bounds: tuple[Bound, ...] = ()
    oldest: Mapping[str, Version] = field(default_factory=dict)  # the oldest release the catalog knows
    editable: tuple[str, ...] = ()  # checkouts that must be installed editable


WORKSPACE_MEMBER = "llm-sync workspace member"  # marks the [manifest] members' package tables


def parse(text: str, *, where: str = "uv.lock") -> list[dict[str, Any]]:
    """The ``[[package]]`` tables of a uv.lock text."""
    try:
        data = tomlread.loads(text)
    except ValueError as error:
        raise LlmSyncError(
            f"{where} is not valid TOML: {error}",
            why="uv wrote it, so it was changed by hand or cut short",
            fix="delete it and run llm-sync again (uv writes a new lock)",
        ) from None
    packages = data.get("package", [])
    found = [p for p in packages if isinstance(p, dict)] if isinstance(packages, list) else []
    # A uv workspace's members are projects too: walks start from each of them, not only from ".".
    manifest = data.get("manifest", {})
    listed = manifest.get("members", []) if isinstance(manifest, dict) else []
    members = (
        {canonicalize_name(m) for m in listed if isinstance(m, str)} if isinstance(listed, list) else set()
    )
    return [
        {**p, WORKSPACE_MEMBER: True} if canonicalize_name(str(p.get("name", ""))) in members else p
        for p in found
    ]


def read(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise LlmSyncError(
            f"cannot read {path}: {error.strerror}",
            why="uv lock should have written it",
            fix="run `uv lock` in the project and look at its output",
        ) from None
    return parse(text, where=str(path))


def _source(table: Mapping[str, Any]) -> tuple[str, bool]:
    source = table.get("source", {})
    if not isinstance(source, dict) or not source:
        return "unknown", False
    kind, value = next(iter(source.items()))
    return f"{kind} {value}", kind == "editable"


def _applies(table: Mapping[str, Any], environment: Mapping[str, str]) -> bool:
    markers = table.get("resolution-markers")
    if not isinstance(markers, list) or not markers:
        return True
    return any(_marker_holds(str(text), environment) for text in markers)


def _marker_holds(text: str, environment: Mapping[str, str]) -> bool:
    try:
        return Marker(text).evaluate(dict(environment))
    except InvalidMarker:
        return True  # a marker this packaging cannot read: count the fork rather than hide it


def _environment(platform: str, python: str) -> dict[str, str]:
    return {
        **PLATFORMS[platform],
        "python_version": python,
        "python_full_version": f"{python}.0",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "extra": "",
    }


def _is_root(table: Mapping[str, Any]) -> bool:
    if table.get(WORKSPACE_MEMBER) is True:
        return True
    source = table.get("source")
    return isinstance(source, dict) and any(source.get(k) == "." for k in ("virtual", "editable"))


def _edges(table: Mapping[str, Any], *, everything: bool, extras: set[str]) -> list[dict[str, Any]]:
    """A package's dependency entries: its own, those of the extras asked for, and for the
    project itself every extra and group (any of them may be synced)."""
    edges = [d for d in table.get("dependencies", []) if isinstance(d, dict)]
    for key in ("optional-dependencies", "dev-dependencies"):
        groups = table.get(key, {})
        for group, entries in groups.items() if isinstance(groups, dict) else ():
            if everything or group in extras:
                edges += [d for d in entries if isinstance(d, dict)]
    return edges


def _reachable(packages: list[dict[str, Any]], environment: Mapping[str, str]) -> list[dict[str, Any]] | None:
    """The package tables a machine with ``environment`` installs: walked from the project
    along the dependency entries whose markers hold there (a `flash-attn ; sys_platform ==
    'linux'` never reaches macOS). None when the lock names no project to start from."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for table in packages:
        by_name.setdefault(canonicalize_name(str(table.get("name", ""))), []).append(table)
    roots = [t for t in packages if _is_root(t)]
    if not roots:
        return None
    seen: dict[int, dict[str, Any]] = {}
    queue: list[tuple[dict[str, Any], set[str], bool]] = [(r, set(), True) for r in roots]
    while queue:
        table, extras, is_root = queue.pop()
        seen[id(table)] = table
        for edge in _edges(table, everything=is_root, extras=extras):
            if not _marker_holds(str(edge.get("marker", "python_version >= '0'")), environment):
                continue
            candidates = by_name.get(canonicalize_name(str(edge.get("name", ""))), [])
            if "version" in edge:
                candidates = [c for c in candidates if str(c.get("version")) == str(edge["version"])]
            candidates = [c for c in candidates if _applies(c, environment)] or candidates
            wanted = set(edge.get("extra", []))
            for target in candidates[:1]:
                if id(target) not in seen or wanted:
                    queue.append((target, wanted, False))
                    seen[id(target)] = target
    return list(seen.values())


def stack(packages: list[dict[str, Any]], *, platform: str, python: str) -> Stack:
    """The versions a ``platform`` machine with ``python`` ("3.11") installs from the lock."""
    environment = _environment(platform, python)
    reachable = _reachable(packages, environment)
    found: dict[str, Locked] = {}
    for table in reachable if reachable is not None else packages:
        name, version = table.get("name"), table.get("version")
        if not isinstance(name, str) or not _applies(table, environment):
            continue
        try:
            parsed = Version(str(version)) if version is not None else Version("0")
        except InvalidVersion:
            continue
        source, editable = _source(table)
        key = canonicalize_name(name)
        # Forks that overlap (rare; uv keeps them disjoint) resolve to the newest.
        if key not in found or parsed > found[key].version:
            found[key] = Locked(key, parsed, source, editable)
    return Stack(platform, python, found)


def lowest_python(requires_python: object) -> str:
    """The oldest CPython minor a ``requires-python`` allows ("3.10"); the forks a lock makes
    for newer ones are read the same way, so the oldest is the one to check."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet  # noqa: PLC0415 - only here

    try:
        allowed = SpecifierSet(str(requires_python or ""))
    except InvalidSpecifier:
        allowed = SpecifierSet()
    minors = [f"3.{minor}" for minor in range(8, 16)]
    return next((m for m in minors if allowed.contains(f"{m}.0", prereleases=True)), "3.11")


def check(
    packages: list[dict[str, Any]], expected: Expectation, *, python: str
) -> tuple[tuple[Stack, ...], list[str]]:
    """The stacks of every platform a team's lock serves, and every way they leave the plan."""
    stacks = tuple(stack(packages, platform=platform, python=python) for platform in PLATFORMS)
    problems = [f"{s.platform}: {problem}" for s in stacks for problem in disagreements(s, expected)]
    return stacks, problems


def too_old(stacks: tuple[Stack, ...], expected: Expectation) -> list[str]:
    """The packages some platform locked older than any release the catalog knows (the ones a
    floor at that release keeps uv from)."""
    return sorted(
        {
            name
            for s in stacks
            for name, oldest in expected.oldest.items()
            if (p := s.get(name)) is not None and Version(p.version.public) < oldest
        }
    )


def disagreements(locked: Stack, expected: Expectation) -> list[str]:
    """Every way ``locked`` leaves the plan, as sentences naming the package, the version and the bound."""
    problems: list[str] = []
    torch = locked.get("torch")
    if (
        expected.variant
        and locked.platform == "linux"
        and torch is not None
        and torch.local != expected.variant
    ):
        problems.append(
            f"torch {torch.version} on Linux is not the planned {expected.variant} build ({torch.source})"
        )
    for bound in expected.bounds:
        package = locked.get(bound.package)
        if package is not None and not bound.specifier.contains(package.version.public, prereleases=True):
            problems.append(
                f"{package} is outside the planned {bound.package}{bound.specifier} ({bound.reason})"
            )
    for name, oldest in expected.oldest.items():
        package = locked.get(name)
        if package is not None and Version(package.version.public) < oldest:
            problems.append(
                f"{package} is older than any {name} release llm-sync knows ({oldest}): "
                "such old releases pin no torch, so the resolver fell back to them"
            )
    for name in expected.editable:
        package = locked.get(name)
        if package is None or not package.editable:
            state = "missing" if package is None else f"from {package.source}"
            problems.append(f"the checkout {name} is not installed editable ({state})")
    return problems
