"""Running uv for a plan: the file update, `uv sync` with build progress, the retry policy.

`sync` is `llm-sync sync`'s core: plan, refuse a build already known to fail,
write pyproject.toml, run uv, and when the OOM killer stopped a compile, run it
once more with half the jobs (the jobs were sized in build.py from the same
memory figures; halving belongs here, next to the run that showed them wrong).
A failed run is explained: the build's first error with a diagnosis, and for
uv's "No solution found", the packages involved and what llm-sync can do.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from uvx_llm import files, log, paths, pipeline, render
from uvx_llm.errors import ExitCode, LlmSyncError
from uvx_llm.trial import lock_arguments, scratch_lock

if TYPE_CHECKING:
    from uvx_llm import cluster_sync, progress
    from uvx_llm import uv as uv_module
    from uvx_llm import wheelhouse as wheelhouse_module
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
    cluster: cluster_sync.Target | None = None,
) -> int:
    """Detect, plan, update pyproject.toml, run `uv sync`; uv's exit code. With ``cluster``
    (`--ray`): planned for the cluster's nodes, locked here, synced on every node (cluster_sync)."""
    from uvx_llm import patch as patch_module  # noqa: PLC0415 - loads only for sync and plan
    from uvx_llm import uv as uv_module  # noqa: PLC0415 - same

    surveyed = survey(cluster, options)
    options = surveyed.options if surveyed is not None else options
    run = pipeline.make_plan(options, detect=True, offline=pipeline.offline(uv_args))
    made, project = run.plan, run.project
    uv_args = member_arguments(project, uv_args)
    # with --ray the nodes build, not this machine: its toolkit says nothing about theirs
    refused = refusal(made, project, no_sync=no_sync, no_build_check=no_build_check or surveyed is not None)
    # each decision: shown with -v, in JSON logs always; a refused build's reason only once, in the error
    # (with --ray, never: they are about this machine's toolkit)
    pipeline.report(made, except_warnings=made.build_blockers if refused or surveyed is not None else ())
    if refused is not None:
        raise refused
    edits = patch_module.changed(patch_module.render_all(project, made.actions))
    uv = None
    if not no_sync:
        uv = uv_module.find()
        uv_module.require(uv, made.uv_min_version)
    changed = bool(edits)
    if changed:
        pipeline.write_edits(project, edits)
        logger.debug("updated %s", ", ".join(str(file.path) for file, _ in edits))
    env = made.uv_environment()
    # with --ray the nodes compile, each with its own MAX_JOBS (cluster_sync says so per node)
    announce(run, changed=changed, compiles=uv is not None and surveyed is None, env=env)
    if uv is None:
        return ExitCode.OK
    env = {**env, **colour_environment()}
    if "--frozen" not in uv_args:
        with pipeline.stage("lock"):
            code = lock_phase(run, uv, uv_args, env)
        if code != 0:
            return uv_failed("uv lock", code)
        if "--locked" not in uv_args:
            uv_args = ("--locked", *uv_args)  # installs exactly what was just verified
    if surveyed is not None:
        return surveyed.finish(run, uv_args)
    return install(run, uv, uv_args, env, no_retry=no_retry)


def survey(cluster: cluster_sync.Target | None, options: pipeline.Options) -> cluster_sync.Surveyed | None:
    """`--ray`: the cluster's nodes, and the options that plan for them (cluster_sync.py)."""
    if cluster is None:
        return None
    from uvx_llm import cluster_sync  # noqa: PLC0415 - only with --ray

    return cluster_sync.prepare(options, cluster)


def install(
    run: pipeline.Run, uv: uv_module.Uv, uv_args: tuple[str, ...], env: dict[str, str], *, no_retry: bool
) -> int:
    """`uv sync` (retried once with half the jobs after an OOM kill), with the team's shared builds."""
    from uvx_llm import progress  # noqa: PLC0415 - see sync

    shared = TeamBuilds.open(run, uv, env)
    with pipeline.stage("sync"):
        code, diagnosis = run_uv(uv, run.project, uv_args, env, run.plan)
    if diagnosis is not None and diagnosis.kind == progress.OOM and not no_retry:
        halved = halve_jobs(env)
        if halved is not None:
            logger.warning(f"retrying once with MAX_JOBS={halved['MAX_JOBS']} (--no-retry turns this off)")
            code, _ = run_uv(uv, run.project, uv_args, halved, run.plan)
    if code != 0:
        return uv_failed("uv sync", code)
    if shared is not None:
        shared.share()
    return ExitCode.OK


class TeamBuilds:
    """The `wheelhouse` setting at work: matching builds copied into uv's cache before `uv sync`,
    this machine's builds copied out after it (uvx_llm/wheelhouse.py says why uv's cache entry)."""

    def __init__(self, run: pipeline.Run, house: Path, cache: Path) -> None:
        self.run, self.house, self.cache = run, house, cache

    @classmethod
    def open(cls, run: pipeline.Run, uv: uv_module.Uv, env: dict[str, str]) -> TeamBuilds | None:
        from uvx_llm import wheelhouse  # noqa: PLC0415 - only with a wheelhouse

        if run.request is None or not run.request.wheelhouse or not run.plan.built_packages:
            return None
        house = Path(run.request.wheelhouse).expanduser()
        cache = wheelhouse.uv_cache(uv.path, env)
        if cache is None:
            logger.warning(
                f"{wheelhouse.SETTING}: `uv cache dir` gave no folder; builds are not shared this time"
            )
            return None
        shared = cls(run, house, cache)
        for entry in wheelhouse.matching(house, shared.keys(python=None)):
            added = wheelhouse.restore(house_entry=entry, cache=cache)
            if added:
                logger.info(
                    f"{wheelhouse.SETTING}: {entry.relative_to(house)} from {house}: uv installs it, no compile"
                )
        return shared

    def keys(self, *, python: str | None) -> list[wheelhouse_module.Key]:
        from uvx_llm import build, lockfile, wheelhouse  # noqa: PLC0415 - see open
        from uvx_llm import project as project_module  # noqa: PLC0415 - same

        root = self.run.project.root
        written = project_module.load(self.run.project.path)  # the team's architectures as just recorded
        version = python or wheelhouse.python_of_venv(root / ".venv")
        version = version or lockfile.lowest_python(written.table("project").get("requires-python"))
        return wheelhouse.keys(
            root=root,
            packages=self.run.plan.built_packages,
            archs=build.recorded_archs(written),
            python=version,
        )

    def share(self) -> None:
        from uvx_llm import wheelhouse  # noqa: PLC0415 - see open

        python = wheelhouse.python_of_venv(self.run.project.root / ".venv")
        if python is None:
            return
        for key in self.keys(python=python):
            try:
                written = wheelhouse.export(cache=self.cache, house=self.house, key=key)
            except OSError as error:
                logger.warning(f"{wheelhouse.SETTING}: could not copy {key} to {self.house}: {error}")
                continue
            if written is not None:
                logger.info(f"{wheelhouse.SETTING}: shared {key} in {self.house} for the team")


def member_arguments(project: Project, uv_args: tuple[str, ...]) -> tuple[str, ...]:
    """Started inside a uv workspace member: `uv sync --package <member>`, as uv itself does there
    (the lock is the workspace's either way), unless the arguments choose packages already."""
    if project.entered_from is None or any(
        a.split("=", 1)[0] in {"--package", "--all-packages"} for a in uv_args
    ):
        return uv_args
    for folder, member in project.members:
        if (project.root / folder).resolve() == project.entered_from.resolve():
            name = member.table("project").get("name")
            return (*uv_args, "--package", str(name)) if isinstance(name, str) else uv_args
    return uv_args


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


def lock_phase(run: pipeline.Run, uv: uv_module.Uv, uv_args: tuple[str, ...], env: dict[str, str]) -> int:
    """`uv lock` and the check against the plan; on a flat mirror with builds, the build's torch
    pinned to the one just locked (the file written again) and the lock checked once more."""
    from uvx_llm import patch as patch_module  # noqa: PLC0415 - see sync

    code = lock_and_verify(uv, run.project, run.plan, uv_args, env)
    if code == 0 and fence_cuda_builds(run.project, uv=uv, uv_args=uv_args, env=env):
        code = lock_and_verify(uv, run.project, run.plan, uv_args, env)
    flat = run.request is not None and run.request.index_format == "flat"
    if code != 0 or not flat or not run.plan.built_packages:
        return code
    after = pipeline.replan(run)
    if not after.plan.actions:
        return code
    pipeline.report(after.plan)
    pipeline.write_edits(after.project, patch_module.render_all(after.project, after.plan.actions))
    return lock_and_verify(uv, after.project, after.plan, uv_args, env)


def announce(run: pipeline.Run, *, changed: bool, compiles: bool, env: dict[str, str]) -> None:
    """The run's own lines before uv starts (render.sync_summary)."""
    builds = tuple(p for p in run.plan.built_packages if not installed(run.project, p)) if compiles else ()
    colour = log.use_colour(sys.stderr)
    for line in render.sync_summary(
        run, changed=changed, builds=builds, jobs=env.get("MAX_JOBS"), colour=colour
    ):
        logger.info(line)


def lock_and_verify(
    uv: uv_module.Uv, project: Project, made: Plan, uv_args: tuple[str, ...], env: dict[str, str]
) -> int:
    """`uv lock`, then the lock read back and held against the plan; uv's exit code, or an error
    (with the previous uv.lock put back) when uv locked a stack the plan does not allow."""
    from uvx_llm import files, lockfile  # noqa: PLC0415 - see sync
    from uvx_llm import uv as uv_module  # noqa: PLC0415 - same

    path = project.root / "uv.lock"
    before = path.read_bytes() if path.exists() else None
    args = lock_arguments(uv_args)
    logger.debug("running uv lock %s", " ".join(args))
    with shown_progress(env) as shown:  # `uv lock` may build a package for its metadata
        code = uv_module.lock(uv, project_dir=project.root, uv_args=args, env=env, **stderr_handlers(shown))
    if code != 0 and relieve_index_pins(project, shown.output):
        logger.debug("running uv lock %s (with the relief)", " ".join(args))
        with shown_progress(env) as shown:
            code = uv_module.lock(
                uv, project_dir=project.root, uv_args=args, env=env, **stderr_handlers(shown)
            )
    if code != 0:
        explain_failure(shown.output, project=project, made=made, uv_args=uv_args)
        return code
    python = lockfile.lowest_python(project.table("project").get("requires-python"))
    stacks, problems = lockfile.check(lockfile.read(path), made.expectation, python=python)
    if problems and tighten(project, made, lockfile.too_old(stacks, made.expectation)):
        with shown_progress(env) as shown:
            code = uv_module.lock(
                uv, project_dir=project.root, uv_args=args, env=env, **stderr_handlers(shown)
            )
        if code != 0:
            explain_failure(shown.output, project=project, made=made, uv_args=uv_args)
            return code
        stacks, problems = lockfile.check(lockfile.read(path), made.expectation, python=python)
    if not problems:
        logger.debug("uv.lock agrees with the plan", python=python)
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


FENCE_MARK = "llm-sync: CUDA-only"


def fence_cuda_builds(
    project: Project, *, uv: uv_module.Uv, uv_args: tuple[str, ...], env: dict[str, str]
) -> bool:
    """A CUDA build (flash-attn, deepspeed…) that a framework from an index requires everywhere
    reaches the macOS side of the universal lock as a source-only package, which a Mac `uv sync`
    would compile. Its requirement's marker cannot be changed from outside; an override can, but
    replaces the framework's own pin. So the version comes from a trial lock *without* llm-sync's
    overrides (the framework's pin as it is today, re-read on every sync) and the override is
    written for Linux only with that version. Whether the file changed (then lock again)."""
    from uvx_llm import bounds, lockfile  # noqa: PLC0415 - see sync
    from uvx_llm import catalog as catalog_module  # noqa: PLC0415 - same
    from uvx_llm import patch as patch_module  # noqa: PLC0415 - same
    from uvx_llm import project as project_module  # noqa: PLC0415 - same
    from uvx_llm.actions import SetOverride  # noqa: PLC0415 - same

    current = project_module.load(project.path)
    ours = bounds.owned(current, FENCE_MARK)  # llm-sync's own fences, by package
    markers = {b.name: b.platform_marker for b in catalog_module.load().builds if b.platform_marker}
    python = lockfile.lowest_python(current.table("project").get("requires-python"))
    packages: list[dict[str, Any]] | None = lockfile.read(current.root / "uv.lock")
    if ours:  # what the frameworks ask for today, without the fences
        free = patch_module.render(current, tuple(SetOverride(None, "", old) for old in ours.values()))
        _, packages = scratch_lock(
            current,
            ((current, free),),
            uv=uv,
            args=lock_arguments(uv_args),
            env=env,
            on_line=lambda _line: None,
        )
    if packages is None:
        return False
    linux, mac = (lockfile.stack(packages, platform=p, python=python) for p in ("linux", "macos"))
    actions = []
    for name, marker in markers.items():
        locked, elsewhere = linux.get(name), mac.get(name)
        wanted = f"{name}=={locked.version} ; {marker}" if locked and elsewhere else None
        if wanted != ours.get(name) and (wanted or name in ours):
            actions.append(
                SetOverride(wanted, f"{FENCE_MARK}: a framework requires it everywhere", ours.get(name))
            )
    if not actions:
        return False
    text = patch_module.render(current, tuple(actions))
    files.write(current.path, patch_module.encode(current, text), expected=current.raw)
    for action in actions:
        what = f"wrote {action.requirement}" if action.requirement else f"took away {action.old}"
        logger.warning(
            f"{what} in [tool.uv] override-dependencies: a CUDA build that a framework requires everywhere "
            "stays off macOS (where it would compile), at the version the framework asks for today; locking again"
        )
    return True


def tighten(project: Project, made: Plan, old: list[str]) -> bool:
    """The lock holds a release older than any the catalog knows (a 2023 vllm that pins no torch,
    reached through a package the plan did not bound): write a floor at the oldest known release
    as llm-sync's own bound, so the next lock cannot fall back to it. Whether anything was
    written (never over a bound that is already there: then the project's own constraint keeps
    uv there, and the run stops with the disagreement)."""
    from uvx_llm import bounds  # noqa: PLC0415 - see sync
    from uvx_llm import patch as patch_module  # noqa: PLC0415 - same
    from uvx_llm import project as project_module  # noqa: PLC0415 - same
    from uvx_llm.actions import SetBound  # noqa: PLC0415 - same

    current = project_module.load(project.path)
    owned = bounds.owned(current)
    constrained = {b.package for b in made.expectation.bounds}
    floors = [
        SetBound(
            f"{name}>={made.expectation.oldest[name]}",
            f"{bounds.MARK}: releases before {made.expectation.oldest[name]} pin no torch, and uv fell back to one",
        )
        for name in old
        if name not in owned and name not in constrained
    ]
    if not floors:
        return False
    files.write(
        current.path,
        patch_module.encode(current, patch_module.render(current, tuple(floors))),
        expected=current.raw,
    )
    for floor in floors:
        logger.warning(
            f"uv.lock held a release older than llm-sync knows: wrote {floor.requirement}, locking again"
        )
    return True


def colour_environment() -> dict[str, str]:
    """What tells uv the run's --color: NO_COLOR for never, FORCE_COLOR for always (on a
    terminal uv colours by itself)."""
    choice = log.colour_choice()
    if choice == "never":
        return {"NO_COLOR": "1"}
    if choice == "always":
        return {"FORCE_COLOR": "1"}
    return {}


def shown_progress(env: dict[str, str]) -> progress.Progress:
    """Build progress for one uv run, on stderr (a status line on a terminal, plain lines elsewhere)."""
    from uvx_llm import progress  # noqa: PLC0415 - see sync

    return progress.Progress(
        out=sys.stderr,
        terminal=sys.stderr.isatty(),
        log_dir=paths.log_dir() / "builds",
        jobs=progress.parallel_jobs(env),
    )


def stderr_handlers(shown: progress.Progress) -> dict[str, Any]:
    """How uv's stderr reaches ``shown``: on a terminal through a pseudo-terminal (uv keeps its
    live download bars and colours), elsewhere line by line from a pipe (CI logs)."""
    if shown.terminal:
        return {"on_stderr_bytes": shown.feed_bytes}
    return {"on_stderr_line": shown.feed}


def run_uv(
    uv: uv_module.Uv,
    project: Project,
    args: tuple[str, ...],
    env: dict[str, str],
    made: Plan | None = None,
) -> tuple[int, progress.Diagnosis | None]:
    """One `uv sync` with build progress; (exit code, diagnosis of a failed build)."""
    from uvx_llm import progress  # noqa: PLC0415 - see sync
    from uvx_llm import uv as uv_module  # noqa: PLC0415 - see sync

    logger.debug("running %s", " ".join(uv_module.sync_command(uv, project_dir=project.root, uv_args=args)))
    with shown_progress(env) as shown:  # names each build's log at its start, and again on failure or Ctrl-C
        code = uv_module.sync(uv, project_dir=project.root, uv_args=args, env=env, **stderr_handlers(shown))
    if code != 0:
        explain_failure(shown.output, project=project, made=made, uv_args=args)
    if code == 0 or not shown.builds:
        return code, None
    diagnosis = progress.diagnose(shown.builds[-1].lines)
    excerpt = "\n".join(f"    {line}" for line in diagnosis.excerpt)
    logger.error(f"{shown.builds[-1].package} failed to build: {diagnosis.summary}\n{excerpt}")
    return code, diagnosis


def relieve_index_pins(project: Project, output: list[str]) -> bool:
    """After "No solution found": when uv's explanation shows a framework from an index pinning
    what the project pins otherwise (openrlhf: transformers==4.55.2, the project 4.56.0), the
    same relief as for a checkout: the project's pin written to override-dependencies, with its
    reason. Whether anything was written (then the lock runs once more)."""
    from uvx_llm import frameworks  # noqa: PLC0415 - see sync
    from uvx_llm import patch as patch_module  # noqa: PLC0415 - same
    from uvx_llm import project as project_module  # noqa: PLC0415 - same

    current = project_module.load(project.path)
    found = frameworks.index_conflicts(current, output)
    relief = frameworks.index_relief(current, found)
    if not relief.actions:
        return False
    files.write(
        current.path,
        patch_module.encode(current, patch_module.render(current, tuple(relief.actions))),
        expected=current.raw,
    )
    for decision in relief.decisions:
        logger.warning(
            f"conflict relief: {decision.choice} — {decision.reason}; written to {current.path}, locking again"
        )
    return True


FRAMEWORKS = ("verl", "openrlhf")  # the frameworks whose pins llm-sync can relieve (frameworks.py)
_NETWORK = re.compile(
    r"Failed to fetch|Request failed after|error sending request|tcp connect error|dns error"
    r"|Connection refused|connection (?:reset|closed)|timed out|failed to lookup address|Could not connect",
    re.IGNORECASE,
)


def explain_failure(
    output: list[str], *, project: Project, made: Plan | None, uv_args: tuple[str, ...] = ()
) -> None:
    """After uv's own error: hints that fit it (an unreachable PyTorch index, no solution)."""
    if made is not None and torch_index_unreachable(output, made):
        hint_unreachable_index(project, made)
        return
    explain_unsatisfiable(output, offline="--offline" in uv_args)


def torch_indexes(made: Plan) -> list[str]:
    """The URLs of the PyTorch indexes the plan routes torch to."""
    from uvx_llm import actions  # noqa: PLC0415 - see sync

    return [a.url for a in made.actions if isinstance(a, actions.SetIndex) and a.name.startswith("pytorch-")]


def torch_index_unreachable(output: list[str], made: Plan) -> bool:
    """Whether uv failed to reach one of the PyTorch indexes (not a resolution failure)."""
    hosts = {urlsplit(url).netloc for url in torch_indexes(made)} - {""}
    text = "\n".join(output)
    return bool(hosts) and bool(_NETWORK.search(text)) and any(host in text for host in hosts)


def hint_unreachable_index(project: Project, made: Plan) -> None:
    hosts = ", ".join(dict.fromkeys(urlsplit(url).netloc for url in torch_indexes(made)))
    logger.info(
        "hint",
        text=(
            f"uv could not reach the PyTorch index ({hosts}). {project.path.name} already routes torch "
            f"there ({made.backend} builds). Behind a firewall or far from it, use a mirror: "
            "`llm-sync --mirror tuna` (or nju, aliyun, or a URL) or `--torch-index-url URL`. "
            f"To undo the routing: `git checkout {project.path.name}`, or run `llm-sync --backend cpu`."
        ),
    )


def explain_unsatisfiable(output: list[str], *, offline: bool = False) -> None:
    """After uv's own explanation: the packages involved and what llm-sync can do about it, only
    the advice that fits (framework relief when a framework is involved, torch's index when torch is)."""
    from uvx_llm import progress  # noqa: PLC0415 - see sync

    names = progress.unsatisfiable(output)
    if names is None:
        return
    involved = ", ".join(names) or "see uv's explanation above"
    logger.error(
        f"uv found no set of versions that satisfies every requirement; packages involved: {involved}"
    )
    if offline:
        logger.info(
            "hint",
            text="with --offline uv uses only its cache: run once without --offline to download what is missing",
        )
        return
    frameworks = [name for name in names if name in FRAMEWORKS]
    if frameworks:
        logger.info(
            "hint",
            text=(
                f"if {', '.join(frameworks)}'s hard pin is the cause, llm-sync can relieve it: keep the "
                "framework's checkout in verl/ or OpenRLHF/ (or list it in [tool.llm-sync] checkouts) and "
                "run llm-sync again (--relief override, the default, or --relief metadata)"
            ),
        )
    if "torch" in names:
        logger.info("hint", text="`llm-sync plan` shows which torch releases the backend's index offers")


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


def refusal(made: Plan, project: Project, *, no_sync: bool, no_build_check: bool) -> LlmSyncError | None:
    """The error that stops a CUDA-extension build the plan knows cannot succeed, or None."""
    if no_sync or no_build_check or not made.build_blockers:
        return None
    if all(installed(project, p) for p in made.built_packages):
        return None
    problems, fixes = zip(*(split_blocker(b) for b in made.build_blockers), strict=True)
    fixes = tuple(f for f in fixes if f)
    return LlmSyncError(
        f"{', '.join(made.built_packages)} cannot be built on this machine; nothing was changed",
        why="; ".join(problems),
        fix="; ".join(fixes)
        + ("; or " if fixes else "")
        + "pass --no-build-check if a wheel built earlier is in uv's cache",
    )


def split_blocker(blocker: str) -> tuple[str, str]:
    """A build blocker's sentence (build.toolkit_blockers) as (the problem, its fix): the fix is
    what follows the last ". " or, in a one-sentence blocker, the last ": "."""
    for mark in (". ", ": "):
        problem, found, fix = blocker.rpartition(mark)
        if found and problem and fix:
            return problem.rstrip("."), fix.rstrip(".")
    return blocker, ""


def refuse_doomed_builds(made: Plan, project: Project) -> None:
    """Raise when a CUDA extension would be compiled and the plan knows the build cannot succeed."""
    error = refusal(made, project, no_sync=False, no_build_check=False)
    if error is not None:
        raise error
