"""Trial locks: `uv lock` of a plan in a temporary copy of the project, the project untouched.

`plan --resolve` locks the plan there to show what uv would pick; `sync` locks there without
llm-sync's CUDA-build fences to read what the frameworks ask for today (syncing.py). The copy
holds the files the plan changes (pyproject.toml, a uv workspace member's file) and a copy of
uv.lock as its own files, and links to everything else, so checkouts keep their relative paths
and the project's own files stay byte-identical.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from uvx_llm import lockfile, pipeline
    from uvx_llm import uv as uv_module
    from uvx_llm.project import Project

# `uv sync` options that shape the resolution: they reach `uv lock` too (with their value, if any).
LOCK_OPTIONS = {"--offline": 0, "--upgrade": 0, "-U": 0, "--refresh": 0, "--no-cache": 0, "--locked": 0}
LOCK_OPTIONS_WITH_VALUE = ("--upgrade-package", "-P", "--prerelease", "--resolution", "--index-strategy")


def lock_arguments(uv_args: tuple[str, ...]) -> tuple[str, ...]:
    """The user's `uv sync` arguments that `uv lock` understands and that change what it locks."""
    kept: list[str] = []
    pending = False
    for arg in uv_args:
        if pending:
            kept.append(arg)
            pending = False
        elif arg in LOCK_OPTIONS or arg.split("=", 1)[0] in LOCK_OPTIONS_WITH_VALUE:
            kept.append(arg)
            pending = arg in LOCK_OPTIONS_WITH_VALUE  # the value is the next argument
    return tuple(kept)


def resolve(run: pipeline.Run, *, uv_args: tuple[str, ...]) -> lockfile.Resolution:
    """`plan --resolve`: the plan applied and locked in a temporary copy of the project.

    The copy holds the new pyproject.toml and a copy of uv.lock as its own files
    and links to everything else (checkouts keep their relative paths), so the
    project's own files, uv.lock included, stay byte-identical.
    """
    import time  # noqa: PLC0415 - only plan --resolve needs it

    from uvx_llm import lockfile  # noqa: PLC0415 - see the module docstring
    from uvx_llm import patch as patch_module  # noqa: PLC0415 - same
    from uvx_llm import uv as uv_module  # noqa: PLC0415 - same

    project, made = run.project, run.plan
    uv = uv_module.find()
    uv_module.require(uv, made.uv_min_version)
    output: list[str] = []
    started = time.monotonic()
    code, packages = scratch_lock(
        project,
        patch_module.render_all(project, made.actions),
        uv=uv,
        args=lock_arguments(uv_args),
        env=made.uv_environment(),
        on_line=output.append,
    )
    seconds = time.monotonic() - started
    if code != 0 or packages is None:
        return lockfile.Resolution(code, seconds, output=tuple(output))
    python = lockfile.lowest_python(project.table("project").get("requires-python"))
    stacks, problems = lockfile.check(packages, made.expectation, python=python)
    return lockfile.Resolution(code, seconds, stacks, tuple(problems), tuple(output))


def scratch_lock(
    project: Project,
    edits: tuple[tuple[Project, str], ...],
    *,
    uv: uv_module.Uv,
    args: tuple[str, ...],
    env: dict[str, str],
    on_line: Callable[[str], None],
) -> tuple[int, list[dict[str, Any]] | None]:
    """`uv lock` of the ``edits`` (pyproject.toml, and a uv workspace member's file, each with its
    new text) in a temporary copy of the project: the copy links to everything else (checkouts
    keep their relative paths) and starts from a copy of uv.lock, so the project's own files stay
    byte-identical. (uv's exit code, the locked packages.)"""
    import tempfile  # noqa: PLC0415 - only trial locks need it

    from uvx_llm import lockfile  # noqa: PLC0415 - see the module docstring
    from uvx_llm import patch as patch_module  # noqa: PLC0415 - same
    from uvx_llm import uv as uv_module  # noqa: PLC0415 - same

    with tempfile.TemporaryDirectory(prefix="llm-sync-resolve-") as scratch:
        copy = Path(scratch)
        _link_entries(project.root, copy, leave_out={"pyproject.toml", "uv.lock", ".venv", ".git"})
        for file, text in edits:
            relative = file.path.relative_to(project.root)
            written = _own_folder(copy, relative.parent) / relative.name
            written.unlink(
                missing_ok=True
            )  # a link to the project's own file: replaced, never written through
            written.write_bytes(patch_module.encode(file, text))
        if (project.root / "uv.lock").exists():
            (copy / "uv.lock").write_bytes((project.root / "uv.lock").read_bytes())
        code = uv_module.lock(uv, project_dir=copy, uv_args=args, env=env, on_stderr_line=on_line)
        return code, (lockfile.read(copy / "uv.lock") if code == 0 else None)


def _link_entries(source: Path, target: Path, *, leave_out: frozenset[str] | set[str] = frozenset()) -> None:
    for entry in source.iterdir():
        if entry.name not in leave_out:
            (target / entry.name).symlink_to(entry)


def _own_folder(copy: Path, relative: Path) -> Path:
    """``copy / relative`` as real folders (each entry inside a link to the project's), so that a
    file written there stays in the copy: a workspace member's pyproject.toml in a trial lock."""
    here = copy
    for part in relative.parts:
        here = here / part
        if here.is_symlink():
            real = here.resolve()
            here.unlink()
            here.mkdir()
            _link_entries(real, here)
    return here
