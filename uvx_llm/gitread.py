"""A checkout's commit, read from its .git without running git where the files answer.

A vLLM checkout's precompiled binaries are published per commit of vLLM's main branch
(``wheels.vllm.ai/<commit>/``), so the commit to fetch them for is where the checkout
meets upstream main: its HEAD when HEAD is on main, else the merge base of HEAD and the
upstream main branch the checkout knows. HEAD and refs are plain files (loose refs,
``packed-refs``; a worktree's or submodule's ``.git`` file points at its git directory);
only a merge base needs git itself, through `proc` (never hooks: merge-base runs none).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from uvx_llm import proc

if TYPE_CHECKING:
    from pathlib import Path

_SHA = re.compile(r"^[0-9a-f]{40}$")
# The upstream main branch, as a clone or a fork's second remote names it (first found wins).
MAIN_REFS = ("refs/remotes/upstream/main", "refs/remotes/origin/main")
_SMALL = 4096  # bytes: HEAD, a ref or a .git file, not a pack


@dataclass(frozen=True)
class Commit:
    """The checkout's HEAD and the upstream-main commit its binaries are published for."""

    head: str | None
    base: str | None  # the commit on upstream main to fetch binaries for; None: unknown
    how: str  # how ``base`` was found, or why it was not


def _text(path: Path) -> str | None:
    try:
        if not path.is_file() or path.stat().st_size > _SMALL:
            return None
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def git_dir(folder: Path) -> Path | None:
    """The checkout's git directory: ``.git``, or where a ``.git`` file (worktree, submodule) points."""
    dot = folder / ".git"
    if dot.is_dir():
        return dot
    text = _text(dot)
    if text and text.startswith("gitdir:"):
        target = (folder / text.removeprefix("gitdir:").strip()).resolve()
        return target if target.is_dir() else None
    return None


def _common_dir(gitdir: Path) -> Path:
    """Where refs live: a linked worktree's ``commondir``, else the git directory itself."""
    common = _text(gitdir / "commondir")
    return (gitdir / common).resolve() if common else gitdir


def resolve(gitdir: Path, ref: str) -> str | None:
    """The commit ``ref`` ("refs/heads/main") names: a loose ref file, else ``packed-refs``."""
    for root in dict.fromkeys((gitdir, _common_dir(gitdir))):
        loose = _text(root / ref)
        if loose and _SHA.match(loose):
            return loose
    try:
        packed = (_common_dir(gitdir) / "packed-refs").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in packed.splitlines():
        sha, _, name = line.partition(" ")
        if name.strip() == ref and _SHA.match(sha):
            return sha
    return None


def head(gitdir: Path) -> str | None:
    text = _text(gitdir / "HEAD")
    if text is None:
        return None
    if text.startswith("ref:"):
        return resolve(gitdir, text.removeprefix("ref:").strip())
    return text if _SHA.match(text) else None


def upstream_main(gitdir: Path) -> tuple[str, str] | None:
    """(ref, commit) of the upstream main branch the checkout has fetched."""
    for ref in MAIN_REFS:
        sha = resolve(gitdir, ref)
        if sha:
            return ref, sha
    return None


def merge_base(folder: Path, one: str, other: str) -> str | None:
    """``git merge-base``: the one question the files do not answer without walking history."""
    result = proc.run(
        ["git", "-C", str(folder), "merge-base", one, other],
        env={"GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0"},
        timeout=30,
    )
    sha = result.stdout.strip() if result.failure is None and result.returncode == 0 else ""
    return sha if _SHA.match(sha) else None


def commit(folder: Path) -> Commit:
    """Where ``folder`` meets upstream main: HEAD when it is on main, else the merge base."""
    gitdir = git_dir(folder)
    if gitdir is None:
        return Commit(None, None, f"{folder.name}/ is not a git checkout (no .git)")
    sha = head(gitdir)
    if sha is None:
        return Commit(None, None, f"{folder.name}/.git has no readable HEAD")
    main = upstream_main(gitdir)
    if main is None:
        return Commit(
            sha,
            None,
            f"{folder.name}/.git has no {' or '.join(MAIN_REFS)}: vLLM's setup.py then looks the merge base "
            "up itself (it asks api.github.com), else takes the nightly binaries",
        )
    ref, main_sha = main
    if main_sha == sha:
        return Commit(sha, sha, f"HEAD is {ref}, read from {folder.name}/.git")
    base = merge_base(folder, sha, main_sha)
    if base is None:
        return Commit(sha, None, f"`git merge-base HEAD {ref}` gave no answer in {folder.name}/")
    return Commit(sha, base, f"the merge base of HEAD and {ref} (`git merge-base`)")
