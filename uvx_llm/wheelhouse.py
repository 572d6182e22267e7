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

Pure key and path logic here; the copying is wheelcopy.py's (standard library only: `sync --ray`
runs the same text on each node).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from uvx_llm import wheelcopy
from uvx_llm.catalog import show_sm
from uvx_llm.wheelcopy import python_of_venv, restore

if TYPE_CHECKING:
    from collections.abc import Iterable

    from uvx_llm.catalog import Pair

SETTING = "wheelhouse"
__all__ = ["SETTING", "Key", "export", "keys", "matching", "python_of_venv", "restore", "uv_cache"]


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


def export(*, cache: Path, house: Path, key: Key) -> Path | None:
    """Copy uv's cache entry for ``key``'s build into the wheelhouse (wheelcopy.export)."""
    return wheelcopy.export(
        cache=cache, target=house / key.folder, name=canonicalize_name(key.package), version=key.version
    )


def matching(house: Path, keys: Iterable[Key]) -> list[Path]:
    """The wheelhouse folders for ``keys``, every Python: uv picks the wheel whose tags fit."""
    return [entry for key in keys for entry in wheelcopy.entries_of(house / key.build)]


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
