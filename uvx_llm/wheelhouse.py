"""Compile once per team or cluster: built CUDA-extension wheels shared through a folder.

The `wheelhouse` setting names a folder the team shares (NFS, a mounted bucket). After a
`uv sync` that built a package, llm-sync copies uv's own cache entry for that build into
the folder, under a key of package, version, torch (with its local tag, so the CUDA
variant), GPU architectures and Python. Before the next `uv sync` on any machine, the
entries whose key matches are copied into that machine's uv cache, and uv installs the
wheel instead of building it.

Why uv's cache entry and not `--find-links` (checked with uv 0.13.9, docs/decisions.md):
a find-links wheel next to the index sdist makes `uv lock` record the package from the
folder (`source = { registry = "/shared/wheels" }`, a path, no hash, the sdist dropped),
so teammates without the folder cannot `uv sync --locked`; and `uv sync --locked
--find-links` ignores the folder and builds. A wheel installed beside uv (`uv pip
install`) is a direct-URL install that plain `uv run` replaces by rebuilding. uv's cache
entry keeps uv.lock as it is (the index sdist and its hash) and uv itself checks it: the
entry's revision carries the sdist's hashes, and the built wheel sits under a hash of the
build settings (extra-build-variables, extra-build-dependencies, config-settings), so an
entry built for other GPUs or another torch is never used, only ignored (uv builds).

Pure key and path logic first; the copying at the end is called from syncing.py only.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from uvx_llm.catalog import show_sm

if TYPE_CHECKING:
    from collections.abc import Iterable

    from uvx_llm.catalog import Pair

SETTING = "wheelhouse"
# uv's cache bucket for source distributions from an index: sdists-v<N>/index/<index hash>/<name>/<version>.
_INDEX_ENTRIES = "sdists-v*/index/*"


@dataclass(frozen=True)
class Key:
    """What a built wheel depends on beyond what uv itself checks: one wheelhouse folder."""

    package: str
    version: str
    torch: str  # with its local tag: 2.9.0+cu128
    archs: tuple[Pair, ...]
    python: str  # "3.11"

    @property
    def build(self) -> Path:
        """The folder for everything but the Python: package/version/torch/archs."""
        archs = "-".join(show_sm(a) for a in self.archs) or "default-archs"
        return Path(canonicalize_name(self.package)) / self.version / f"torch-{self.torch}" / archs

    @property
    def folder(self) -> Path:
        return self.build / f"py{self.python}"

    def __str__(self) -> str:
        return self.folder.as_posix()


def python_of_venv(venv: Path) -> str | None:
    """ "3.11" from a virtual environment's pyvenv.cfg; None without one."""
    try:
        lines = (venv / "pyvenv.cfg").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in lines:
        name, _, value = line.partition("=")
        if name.strip() in {"version_info", "version"}:
            parts = value.strip().split(".")
            if len(parts) >= 2:  # noqa: PLR2004 - major and minor
                return f"{parts[0]}.{parts[1]}"
    return None


def cache_entries(cache: Path, package: str, version: str) -> list[Path]:
    """uv's cache folders for ``package`` ``version`` built from an index sdist."""
    name = canonicalize_name(package)
    return sorted(p for p in cache.glob(f"{_INDEX_ENTRIES}/{name}/{version}") if p.is_dir())


def _has_wheel(folder: Path) -> bool:
    return any(folder.rglob("*.whl"))


def _skip(_folder: str, names: list[str]) -> set[str]:
    """Leave out uv's lock files and the unpacked sdist (uv needs neither to install a built wheel)."""
    return {n for n in names if n.endswith(".lock") or n == "src"}


def export(*, cache: Path, house: Path, key: Key) -> Path | None:
    """Copy uv's cache entry for ``key``'s build into the wheelhouse; the folder written, or None
    when there is nothing built to share or the wheelhouse already has it (the first machine wins).

    Written under a temporary name and renamed, so a teammate never sees half an entry."""
    target = house / key.folder
    if target.exists():
        return None
    entries = [e for e in cache_entries(cache, key.package, key.version) if _has_wheel(e)]
    if not entries:
        return None
    staging = house / f".incoming-{uuid.uuid4().hex}"
    for entry in entries:
        shutil.copytree(entry, staging / entry.relative_to(cache), ignore=_skip)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        staging.rename(target)
    except OSError:  # another machine finished first
        shutil.rmtree(staging, ignore_errors=True)
        return None
    return target


def matching(house: Path, keys: Iterable[Key]) -> list[Path]:
    """The wheelhouse folders for ``keys``, every Python: uv picks the wheel whose tags fit."""
    found: list[Path] = []
    for key in keys:
        folder = house / key.build
        if folder.is_dir():
            found.extend(sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith("py")))
    return found


def restore(*, house_entry: Path, cache: Path) -> int:
    """Copy one wheelhouse entry into uv's cache, never replacing a file there; the wheels added.

    A version folder the cache already has keeps its own revision: the entry's built-wheel
    folders are added to each of its revisions (a revision is one download of the same sdist;
    uv checks its hashes against uv.lock)."""
    added = 0
    for version_folder in (p for p in house_entry.glob(f"{_INDEX_ENTRIES}/*/*") if p.is_dir()):
        destination = cache / version_folder.relative_to(house_entry)
        if not destination.exists():
            shutil.copytree(version_folder, destination)
            added += sum(1 for _ in destination.rglob("*.whl"))
            continue
        built = [b for rev in version_folder.iterdir() if rev.is_dir() for b in rev.iterdir() if b.is_dir()]
        for revision in (r for r in destination.iterdir() if r.is_dir()):
            for folder in built:
                if not (revision / folder.name).exists():
                    shutil.copytree(folder, revision / folder.name)
                    added += sum(1 for _ in folder.rglob("*.whl"))
    return added


# --- the edges, called from syncing.py ----------------------------------------------------------


def keys(*, root: Path, packages: Iterable[str], archs: tuple[Pair, ...], python: str) -> list[Key]:
    """The keys of ``packages`` as uv.lock has them for Linux and ``python``; none without a lock."""
    from uvx_llm import lockfile  # noqa: PLC0415 - read only when a wheelhouse is set

    path = root / "uv.lock"
    if not path.exists():
        return []
    stack = lockfile.stack(lockfile.read(path), platform="linux", python=python)
    torch = stack.get("torch")
    if torch is None:
        return []
    found = []
    for name in packages:
        locked = stack.get(name)
        if locked is not None and locked.source.startswith("registry"):
            found.append(Key(locked.name, str(locked.version), str(torch.version), archs, python))
    return found


def uv_cache(uv_path: Path, env: dict[str, str]) -> Path | None:
    """uv's cache folder as uv sees it with ``env`` (UV_CACHE_DIR, --cache-dir's variable, defaults)."""
    from uvx_llm import proc  # noqa: PLC0415 - see keys

    result = proc.run([str(uv_path), "cache", "dir"], env=env, timeout=30)
    if not result.ok or not result.stdout.strip():
        return None
    return Path(result.stdout.strip())
