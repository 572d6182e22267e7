"""The copying a node does, standard library only: uv's cache entries to and from the
wheelhouse folder, and the project files llm-sync changed (``carry_files``).

Two callers run this same text: wheelhouse.py on this machine (around `uv sync`), and
`sync --ray`'s node task, which gets this module's source and runs it on each node
(where llm-sync is not installed: only the project's interpreter is). So nothing here
imports beyond the standard library, and names come in canonical (`flash-attn`).
"""

from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
import uuid
from pathlib import Path

# uv's cache bucket for source distributions from an index: sdists-v<N>/index/<index hash>/<name>/<version>.
INDEX_ENTRIES = "sdists-v*/index/*"


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


def cache_entries(cache: Path, name: str, version: str) -> list[Path]:
    """uv's cache folders for ``name`` (canonical) ``version`` built from an index sdist."""
    return sorted(p for p in cache.glob(f"{INDEX_ENTRIES}/{name}/{version}") if p.is_dir())


def _has_wheel(folder: Path) -> bool:
    return any(folder.rglob("*.whl"))


def _skip(_folder: str, names: list[str]) -> set[str]:
    """Leave out uv's lock files and the unpacked sdist (uv needs neither to install a built wheel)."""
    return {n for n in names if n.endswith(".lock") or n == "src"}


def export(*, cache: Path, target: Path, name: str, version: str) -> Path | None:
    """Copy uv's cache entry for ``name`` ``version`` to ``target`` (a wheelhouse folder); the
    folder written, or None when nothing was built or ``target`` exists (the first machine wins).

    Written under a temporary name beside ``target`` and renamed: nobody sees half an entry."""
    if target.exists():
        return None
    entries = [e for e in cache_entries(cache, name, version) if _has_wheel(e)]
    if not entries:
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".incoming-{uuid.uuid4().hex}"
    for entry in entries:
        shutil.copytree(entry, staging / entry.relative_to(cache), ignore=_skip)
    try:
        staging.rename(target)
    except OSError:  # another machine finished first
        shutil.rmtree(staging, ignore_errors=True)
        return None
    return target


def entries_of(build: Path) -> list[Path]:
    """The wheelhouse folders of one build (package/version/torch/archs), every Python."""
    if not build.is_dir():
        return []
    return sorted(p for p in build.iterdir() if p.is_dir() and p.name.startswith("py"))


def restore(*, house_entry: Path, cache: Path) -> int:
    """Copy one wheelhouse entry into uv's cache, never replacing a file there; the wheels added.

    A version folder the cache already has keeps its own revision: the entry's built-wheel
    folders are added to each of its revisions (a revision is one download of the same sdist;
    uv checks its hashes against uv.lock)."""
    added = 0
    for version_folder in (p for p in house_entry.glob(f"{INDEX_ENTRIES}/*/*") if p.is_dir()):
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


def pack(folder: Path) -> bytes:
    """A folder as tar bytes: `sync --ray` carries the first node's build to the others in Ray's
    object store when no wheelhouse folder is shared (uv's built wheels are compressed already)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(folder, arcname=".")
    return buffer.getvalue()


def unpack(data: bytes, folder: Path) -> None:
    """``pack``'s bytes into ``folder``: plain files and folders only, nothing outside it."""
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        members = archive.getmembers()
        for member in members:
            where = (folder / member.name).resolve()
            if not (member.isfile() or member.isdir()) or not where.is_relative_to(folder.resolve()):
                raise ValueError(f"refusing {member.name!r} in a carried build")
        # Python's own "data" filter where it has one (3.10.12+, 3.11.4+): also quiet on 3.12+
        safe: dict[str, str] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        archive.extractall(folder, members=members, **safe)  # type: ignore[arg-type]  # noqa: S202 - every member checked above


def carry_files(root: Path, files: dict[str, dict[str, str | None]]) -> list[str]:
    """The project files llm-sync changed on the head, onto this node's copy of the project
    (cluster_files.py): each written only over the copy the survey saw (its ``before`` digest),
    left alone where it reads the new text already (a shared folder); the files written.
    ValueError for a copy that is neither: it changed there, and is never overwritten."""
    written = []
    for relative, change in sorted(files.items()):
        path = root / relative
        try:
            current: str | None = hashlib.sha256(path.read_bytes()).hexdigest()
        except FileNotFoundError:
            current = None
        if current == change["after"]:
            continue
        if current != change["before"]:
            message = f"{relative} at {root} changed there since the survey; not overwritten"
            raise ValueError(message)
        staging = path.with_name(f".{path.name}.llm-sync-{uuid.uuid4().hex}")
        staging.write_bytes(str(change["text"]).encode("utf-8"))
        if current is not None:
            shutil.copymode(path, staging)
        staging.replace(path)
        written.append(relative)
    return written


def source() -> str:
    """This module's text, for a node task to run (`sync --ray`)."""
    return Path(__file__).read_text(encoding="utf-8")
