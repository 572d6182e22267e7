"""Running uv for a plan: the file update, `uv sync` with build progress, the retry policy.

`sync` is `llm-sync sync`'s core: plan, refuse a build already known to fail,
write pyproject.toml, run uv, and when the OOM killer stopped a compile, run it
once more with half the jobs (the jobs were sized in build.py from the same
memory figures; halving belongs here, next to the run that showed them wrong).
A failed run is explained: the build's first error with a diagnosis, and for
uv's "No solution found", the packages involved and what llm-sync can do.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from uvx_llm import files, log, paths, pipeline
from uvx_llm.errors import ExitCode, LlmSyncError

if TYPE_CHECKING:
    from uvx_llm import lockfile, progress
    from uvx_llm import uv as uv_module
    from uvx_llm.actions import Plan
    from uvx_llm.project import Project

logger = log.get_logger("llm-sync")


def sync(
    options: pipeline.Options,
    *,
    uv_args: tuple[str, ...] = (),
    no_sync: bool = False,
    no_build_check: bool = False,
    no_retry: bool = False,
) -> int:
    """Detect, plan, update pyproject.toml, run `uv sync`; uv's exit code."""
    from uvx_llm import patch as patch_module  # noqa: PLC0415 - loads only for sync and plan
    from uvx_llm import progress  # noqa: PLC0415 - same
    from uvx_llm import uv as uv_module  # noqa: PLC0415 - same

    run = pipeline.make_plan(options, detect=True)
    made, project = run.plan, run.project
    pipeline.report(made)
    new_text = patch_module.render(project, made.actions)
    uv = None
    if not no_sync:
        if not no_build_check:
            refuse_doomed_builds(made, project)
        uv = uv_module.find()
        uv_module.require(uv, made.uv_min_version)
    if new_text != project.text:
        files.write(project.path, patch_module.encode(project, new_text), expected=project.raw)
        logger.info(f"updated {project.path}")
    if uv is None:
        return ExitCode.OK
    env = made.uv_environment()
    if "--frozen" not in uv_args:
        with pipeline.stage("lock"):
            code = lock_and_verify(uv, project, made, uv_args, env)
        if code != 0:
            return uv_failed("uv lock", code)
        if "--locked" not in uv_args:
            uv_args = ("--locked", *uv_args)  # installs exactly what was just verified
    with pipeline.stage("sync"):
        code, diagnosis = run_uv(uv, project, uv_args, env)
    if diagnosis is not None and diagnosis.kind == progress.OOM and not no_retry:
        halved = halve_jobs(env)
        if halved is not None:
            logger.warning(f"retrying once with MAX_JOBS={halved['MAX_JOBS']} (--no-retry turns this off)")
            code, _ = run_uv(uv, project, uv_args, halved)
    return uv_failed("uv sync", code) if code != 0 else ExitCode.OK


# What a signal that killed uv most likely means.
_SIGNAL_CAUSES = {"SIGKILL": "the OOM killer?", "SIGSEGV": "a crash inside uv", "SIGBUS": "a crash inside uv"}


def uv_failed(command: str, code: int) -> int:
    """llm-sync's exit code for a uv that failed: 1 (uv's own message is above), or, for a uv a signal
    killed, an error naming the signal with 128 + its number. uv's own exit code is never passed
    on as it is: its 2 would read as llm-sync's "bad input, nothing written" (docs/exit-codes.md)."""
    from uvx_llm import proc  # noqa: PLC0415 - see sync

    if code < 0:
        name = proc.signal_name(-code)
        cause = _SIGNAL_CAUSES.get(name)
        raise LlmSyncError(
            f"{command} was killed by {name}" + (f" ({cause})" if cause else ""),
            why="uv did not finish; pyproject.toml keeps llm-sync's changes, the environment may be partly installed",
            fix=(
                "look for 'Out of memory' in `dmesg` or `journalctl -k`; give the build more memory or fewer "
                "jobs (MAX_JOBS=2) and run llm-sync again"
                if name == "SIGKILL"
                else "run llm-sync again; if it happens again, report it to uv with `uv sync -v` output"
            ),
            exit_code=ExitCode.SIGNAL - code,
        )
    logger.error(f"{command} failed (uv's exit code {code}); uv's message is above")
    return ExitCode.DIFFERENCES


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


def lock_and_verify(
    uv: uv_module.Uv, project: Project, made: Plan, uv_args: tuple[str, ...], env: dict[str, str]
) -> int:
    """`uv lock`, then the lock read back and held against the plan; uv's exit code, or an error
    (with the previous uv.lock put back) when uv locked a stack the plan does not allow."""
    from uvx_llm import files, lockfile  # noqa: PLC0415 - see sync
    from uvx_llm import uv as uv_module  # noqa: PLC0415 - same

    path = project.root / "uv.lock"
    before = path.read_bytes() if path.exists() else None
    output: list[str] = []

    def show(line: str) -> None:
        output.append(line)
        print(line, file=sys.stderr)

    args = lock_arguments(uv_args)
    logger.info("running uv lock %s", " ".join(args))
    code = uv_module.lock(uv, project_dir=project.root, uv_args=args, env=env, on_stderr_line=show)
    if code != 0:
        explain_unsatisfiable(output)
        return code
    python = lockfile.lowest_python(project.table("project").get("requires-python"))
    _, problems = lockfile.check(lockfile.read(path), made.expectation, python=python)
    if not problems:
        logger.info("uv.lock agrees with the plan", python=python)
        return 0
    if before is None:
        path.unlink()
    else:
        files.write(path, before)
    raise LlmSyncError(
        "uv locked a stack the plan does not allow; nothing was installed and uv.lock is as it was",
        why="; ".join(problems),
        fix=(
            "pin the package named above to a release inside the plan (the bounds are in "
            "[tool.uv] constraint-dependencies, marked llm-sync), or remove a constraint of your own that "
            "keeps uv from it; `llm-sync plan` shows each bound and its reason"
        ),
        exit_code=ExitCode.DIFFERENCES,
    )


def resolve(run: pipeline.Run, *, uv_args: tuple[str, ...]) -> lockfile.Resolution:
    """`plan --resolve`: the plan applied and locked in a temporary copy of the project.

    The copy holds the new pyproject.toml and a copy of uv.lock as its own files
    and links to everything else (checkouts keep their relative paths), so the
    project's own files, uv.lock included, stay byte-identical.
    """
    import tempfile  # noqa: PLC0415 - only plan --resolve needs it
    import time  # noqa: PLC0415 - same

    from uvx_llm import lockfile  # noqa: PLC0415 - see sync
    from uvx_llm import patch as patch_module  # noqa: PLC0415 - same
    from uvx_llm import uv as uv_module  # noqa: PLC0415 - same

    project, made = run.project, run.plan
    uv = uv_module.find()
    uv_module.require(uv, made.uv_min_version)
    with tempfile.TemporaryDirectory(prefix="llm-sync-resolve-") as scratch:
        copy = Path(scratch)
        for entry in project.root.iterdir():
            if entry.name not in {"pyproject.toml", "uv.lock", ".venv", ".git"}:
                (copy / entry.name).symlink_to(entry)
        (copy / "pyproject.toml").write_bytes(
            patch_module.encode(project, patch_module.render(project, made.actions))
        )
        if (project.root / "uv.lock").exists():
            (copy / "uv.lock").write_bytes((project.root / "uv.lock").read_bytes())
        output: list[str] = []
        started = time.monotonic()
        code = uv_module.lock(
            uv,
            project_dir=copy,
            uv_args=lock_arguments(uv_args),
            env=made.uv_environment(),
            on_stderr_line=output.append,
        )
        seconds = time.monotonic() - started
        if code != 0:
            return lockfile.Resolution(code, seconds, output=tuple(output))
        python = lockfile.lowest_python(project.table("project").get("requires-python"))
        stacks, problems = lockfile.check(lockfile.read(copy / "uv.lock"), made.expectation, python=python)
    return lockfile.Resolution(code, seconds, stacks, tuple(problems), tuple(output))


def run_uv(
    uv: uv_module.Uv, project: Project, args: tuple[str, ...], env: dict[str, str]
) -> tuple[int, progress.Diagnosis | None]:
    """One `uv sync` with build progress; (exit code, diagnosis of a failed build)."""
    from uvx_llm import progress  # noqa: PLC0415 - see sync
    from uvx_llm import uv as uv_module  # noqa: PLC0415 - see sync

    logger.info("running %s", " ".join(uv_module.sync_command(uv, project_dir=project.root, uv_args=args)))
    shown = progress.Progress(
        out=sys.stderr,
        terminal=sys.stderr.isatty(),
        log_dir=paths.log_dir() / "builds",
        jobs=progress.parallel_jobs(env),
    )
    with shown:  # names each build's log at its start, and again on failure or Ctrl-C
        code = uv_module.sync(uv, project_dir=project.root, uv_args=args, env=env, on_stderr_line=shown.feed)
    if code != 0:
        explain_unsatisfiable(shown.output)
    if code == 0 or not shown.builds:
        return code, None
    diagnosis = progress.diagnose(shown.builds[-1].lines)
    excerpt = "\n".join(f"    {line}" for line in diagnosis.excerpt)
    logger.error(f"{shown.builds[-1].package} failed to build: {diagnosis.summary}\n{excerpt}")
    return code, diagnosis


def explain_unsatisfiable(output: list[str]) -> None:
    """After uv's own explanation: the packages involved and what llm-sync can do about it."""
    from uvx_llm import progress  # noqa: PLC0415 - see sync

    names = progress.unsatisfiable(output)
    if names is None:
        return
    involved = ", ".join(names) or "see uv's explanation above"
    logger.error(
        f"uv found no set of versions that satisfies every requirement; packages involved: {involved}. "
        "If a framework's hard pin is the cause, llm-sync can relieve it: keep the framework's checkout in "
        "verl/ or OpenRLHF/ (or list it in [tool.llm-sync] checkouts) and run llm-sync again "
        "(--relief override, the default, or --relief metadata). If torch is involved, `llm-sync plan` shows "
        "which torch releases the backend's index offers."
    )


def halve_jobs(env: dict[str, str]) -> dict[str, str] | None:
    """The environment with half the compile jobs; None when MAX_JOBS is the user's own (then it is
    inherited, not in ``env``) or already 1."""
    if "MAX_JOBS" not in env or env["MAX_JOBS"] == "1":
        return None
    jobs = str(max(1, int(env["MAX_JOBS"]) // 2))
    return {**env, "MAX_JOBS": jobs, "CMAKE_BUILD_PARALLEL_LEVEL": jobs}


def installed(project: Project, package: str) -> bool:
    """Whether the project's .venv already has ``package`` (then nothing is built)."""
    dist = package.replace("-", "_")
    return any(project.root.glob(f".venv/lib/python*/site-packages/{dist}-*.dist-info"))


def refuse_doomed_builds(made: Plan, project: Project) -> None:
    """Raise when a CUDA extension would be compiled and the plan knows the build cannot succeed."""
    if made.build_blockers and not all(installed(project, p) for p in made.built_packages):
        raise LlmSyncError(
            "a CUDA extension would be compiled, and the build cannot succeed on this machine",
            why="; ".join(made.build_blockers),
            fix="do what the message says, or pass --no-build-check if a built wheel is already in uv's cache",
        )
