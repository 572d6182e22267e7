"""One run's inputs, gathered: settings, project, machine and plan.

Every command starts here. `make_plan` is the pipeline (load → detect → plan) and
the functions below it are the commands' cores, which take keywords and return
values (`check`, `preview`, `show_settings`); the command line only renders them.

`check` runs on every commit as a pre-commit hook, and start-up time is its cost:
machine detection, uv, progress and the editing machinery (tomlkit) load only in
the functions that use them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from uvx_llm import actions, config, log, paths
from uvx_llm import catalog as catalog_module
from uvx_llm import plan as plan_module
from uvx_llm import project as project_module
from uvx_llm.errors import LlmSyncError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from uvx_llm import doctor as doctor_module
    from uvx_llm import findings
    from uvx_llm import fleet as fleet_module
    from uvx_llm import machine as machine_module
    from uvx_llm import newer as newer_module
    from uvx_llm.checkouts import Checkout
    from uvx_llm.resources import Resources
    from uvx_llm.toolkit import Toolkit

logger = log.get_logger("llm-sync")
_USER_CONFIG_READ: dict[str, Any] = {}


@dataclass(frozen=True)
class Options:
    """What the command line gave: settings by key (config.SPECS; None where not given), and the
    switches that are not settings."""

    given: Mapping[str, str | None] = field(default_factory=dict)
    project: Path | None = None
    force: bool = False
    all_archs: bool = False
    verbose: int = 0
    quiet: int = 0
    color: str = "auto"  # --color: auto, always or never
    fleet: fleet_module.Fleet | None = None  # sync --ray: the cluster's nodes, when --machines is not set


@dataclass(frozen=True)
class Run:
    """One run's project, its plan, and the machine it was planned for (None: no detection),
    with what else the plan was made from (to plan again once uv.lock exists)."""

    project: project_module.Project
    plan: actions.Plan
    machine: machine_module.Machine | None
    request: actions.Request | None = None
    host: Resources | None = None
    toolkit: Toolkit | None = None
    checkouts: tuple[Checkout, ...] = ()
    catalog: catalog_module.Catalog | None = None  # with pins read from the index (newer.py)
    fleet: fleet_module.Fleet | None = None  # --machines: the nodes the machine stands for


def reset() -> None:
    """Forget what the last run read (the user config file is read once per run)."""
    _USER_CONFIG_READ.clear()


def user_config() -> tuple[dict[str, Any], Path]:
    """The user config file, read once per run (logging set-up and planning both need it)."""
    path = paths.config_dir() / config.USER_CONFIG_NAME
    if _USER_CONFIG_READ.get("path") != path:
        _USER_CONFIG_READ.update(path=path, table=config.load_user_config(path))
    return _USER_CONFIG_READ["table"], path


def settings(options: Options, project_table: dict[str, Any]) -> config.Resolved:
    user_table, user_path = user_config()
    return config.resolve(
        cli=options.given,
        env=os.environ,
        project_table=project_table,
        user_table=user_table,
        user_path=user_path,
        catalog=catalog_module.load(),
    )


def set_up_logging(options: Options) -> None:
    """Logging as the settings say (log-format needs no project: it is not a project key)."""
    log.configure(verbosity=options.verbose - options.quiet, color=options.color)  # for the settings' errors
    log.configure(
        verbosity=options.verbose - options.quiet,
        log_format=settings(options, {})["log-format"].value,
        color=options.color,
    )


def machine(options: Options, catalog: catalog_module.Catalog) -> machine_module.Machine:
    """The target machine (--cuda/--rocm/--arch, else their LLM_SYNC_* variables), else this one."""
    from uvx_llm import machine as machine_module  # noqa: PLC0415 - see the module docstring

    resolved = settings(options, {})  # the target is no project setting
    cuda, rocm, arch = resolved["cuda"], resolved["rocm"], resolved["arch"]
    found = machine_module.for_run(
        catalog,
        cuda=cuda.value,
        arch=arch.value,
        env=os.environ,
        cuda_origin=cuda.origin,
        arch_origin=arch.origin,
        rocm=rocm.value,
        rocm_origin=rocm.origin,
    )
    for note in found.notes:
        quiet_note = not found.trouble and (
            note.startswith("NVML unusable: the NVML library") or not found.has_nvidia
        )
        (logger.debug if quiet_note else logger.warning)(note)
    return found


def load_project(options: Options) -> project_module.Project:
    """The project; inside a uv workspace member, the workspace root (where uv reads [tool.uv]),
    with the members' files."""
    from uvx_llm import workspace  # noqa: PLC0415 - see the module docstring

    path = project_module.locate(options.project, cwd=Path.cwd())
    root = workspace.root_of(path)
    if root is None:
        return project_module.load(path)
    logger.info(
        f"{path.parent.name} is a member of the uv workspace at {root.parent}: "
        f"planning and writing {root} (uv reads [tool.uv] only there)"
    )
    return dataclasses.replace(project_module.load(root), entered_from=path.parent)


def project_if_any(options: Options) -> project_module.Project | None:
    """The project; None outside one, unless --project named it (then its error stands)."""
    try:
        return load_project(options)
    except LlmSyncError:
        if options.project is not None:
            raise
        return None


def request(
    options: Options, project: project_module.Project, catalog: catalog_module.Catalog
) -> actions.Request:
    resolved = settings(options, project.config)
    chosen = config.indexes(resolved, catalog)
    return actions.Request(
        backend=resolved["backend"],
        channel=resolved["channel"],
        index_base=chosen.torch_base,
        index_format=chosen.torch_format,
        locked_torch=locked_torch(project) if chosen.torch_format == "flat" else None,
        extra_env=config.mirror_environment(chosen, os.environ),
        relief=resolved["relief"].value,
        force=options.force,
        all_archs=options.all_archs,
        environment=dict(os.environ),
        prefer=resolved["prefer"].value,
        prebuilt_url=resolved["prebuilt-url"].value,
        wheelhouse=resolved["wheelhouse"].value,
        vllm_build=resolved["vllm-build"].value,
        compiler_launcher=compiler_launcher(os.environ),
    )


def compiler_launcher(env: Mapping[str, str]) -> str | None:
    """sccache, else ccache, when on PATH (vLLM's setup.py prefers them in that order)."""
    return next((name for name in ("sccache", "ccache") if shutil.which(name, path=env.get("PATH"))), None)


def checkouts(project: project_module.Project) -> tuple[Checkout, ...]:
    """Framework checkouts at the project root and those [tool.llm-sync] checkouts lists."""
    from uvx_llm import checkouts  # noqa: PLC0415 - see the module docstring

    return tuple(checkouts.find(project.root, checkouts.declared(project.config.get("checkouts"))))


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Time one stage of the run; reported in JSON logs and with -v."""
    started = time.perf_counter()
    try:
        yield
    finally:
        if log.wants_timings():
            logger.info("stage", stage=name, seconds=round(time.perf_counter() - started, 4))


def default_index(options: Options, project: project_module.Project, catalog: catalog_module.Catalog) -> str:
    """The index uv reads packages from: UV_DEFAULT_INDEX (or the older UV_INDEX_URL), else the
    default-index-url setting or mirror preset, else the project's default [[tool.uv.index]], else PyPI."""
    from uvx_llm import newer  # noqa: PLC0415 - see the module docstring

    for variable in ("UV_DEFAULT_INDEX", "UV_INDEX_URL"):
        if os.environ.get(variable, "").strip():
            return os.environ[variable].strip()
    chosen = config.indexes(settings(options, project.config), catalog).default_index
    if chosen is not None and chosen.value:
        return str(chosen.value)
    for entry in project.uv_indexes:
        if entry.get("default") is True and isinstance(entry.get("url"), str):
            return str(entry["url"])
    return newer.PYPI


def learn_newer(
    options: Options, project: project_module.Project, catalog: catalog_module.Catalog, *, reads: str
) -> newer_module.Learned | None:
    """Pins of the vllm releases the project names that the catalog lacks: read from the index's
    METADATA (``reads``: network, cache or offline), cached under the user cache directory.
    None when there is none: then the index reader (urllib, email) is never even imported,
    which `check` in a pre-commit hook would pay for on every commit."""
    from uvx_llm.torch_fit import newer_than_catalog  # noqa: PLC0415 - see the module docstring

    requirements = [r for dep_list in project.dependency_lists() for r in dep_list.requirements]
    newest = catalog_module.newest_vllm(catalog.vllm)
    vllm = [r for r in requirements if r.name.lower() == "vllm"]
    if newest is None or not any(newer_than_catalog(r.specifier, newest) for r in vllm):
        return None
    from uvx_llm import newer  # noqa: PLC0415 - see the module docstring

    learned = newer.learn(
        requirements,
        catalog,
        index=default_index(options, project, catalog),
        cache=paths.cache_dir(),
        reads=reads,
    )
    for pin in learned.pins:
        logger.debug(f"vllm {pin.vllm} pins torch=={pin.torch}: {pin.source}")
    return learned


def fleet(options: Options, project: project_module.Project) -> fleet_module.Fleet | None:
    """The fleet the `machines` setting names (None when it is not set); exit 2 for a bad document."""
    resolved = settings(options, project.config)
    chosen = resolved["machines"]
    if not chosen.value:
        return options.fleet
    targets = [s for s in (resolved["cuda"], resolved["arch"]) if s.value]
    if targets:
        raise LlmSyncError(
            f"{chosen.origin} and {targets[0].origin} both describe what to plan for",
            why="--machines plans for the machines its documents describe; --cuda/--arch for one target",
            fix="give one of them (a target machine can be a document: `llm-sync detect --json "
            "--cuda 12.8 --arch 9.0 > facts/target.json`)",
        )
    from uvx_llm import fleet as fleet_module  # noqa: PLC0415 - see the module docstring

    base = project.root if chosen.origin == "[tool.llm-sync]" else Path.cwd()
    return fleet_module.combine(fleet_module.read(fleet_module.paths_of(chosen.value, base=base)))


def _with_fleet(made: actions.Plan, planned: fleet_module.Fleet | None) -> actions.Plan:
    if planned is None:
        return made
    return dataclasses.replace(
        made,
        decisions=(*planned.decisions, *made.decisions),
        warnings=(*planned.warnings, *made.warnings),
    )


def make_plan(options: Options, *, detect: bool, offline: bool = False) -> Run:
    """Load the project, detect the machine (when ``detect``), and plan. A vllm newer than the
    catalog has its METADATA read from the index when planning for a machine (not ``offline``);
    without ``detect`` (check) only llm-sync's cache is read.

    With the `machines` setting, the plan is for that fleet (read from files: `check` too);
    the build tuning is still this machine's (it runs the builds)."""
    with stage("load"):
        catalog = catalog_module.load()
        project = load_project(options)
        planned_fleet = fleet(options, project)
    found = planned_fleet.machine if planned_fleet else None
    host, found_toolkit = None, None
    if detect:
        from uvx_llm import resources, toolkit  # noqa: PLC0415 - see the module docstring

        with stage("detect"):
            if planned_fleet is None:
                found = machine(options, catalog)
            host, found_toolkit = resources.detect(), toolkit.find(os.environ)
    asked = request(options, project, catalog)
    with stage("index"):
        reads = "offline" if offline else "network" if detect else "cache"
        learned = learn_newer(options, project, catalog, reads=reads)
    if learned is not None:
        catalog = dataclasses.replace(catalog, vllm=(*catalog.vllm, *learned.pins))
        asked = dataclasses.replace(asked, unread=learned.unread)
    found_checkouts = checkouts(project)
    with stage("plan"):
        made = plan_module.make(
            machine=found,
            project=project,
            catalog=catalog,
            request=asked,
            host=host,
            toolkit=found_toolkit,
            checkouts=found_checkouts,
        )
    return Run(
        project,
        _with_fleet(made, planned_fleet),
        found,
        asked,
        host,
        found_toolkit,
        found_checkouts,
        catalog,
        planned_fleet,
    )


def replan(run: Run) -> Run:
    """The same run planned again from the file on disk and the uv.lock it now has (a flat
    mirror's build torch is pinned to the locked one); the machine is not detected again."""
    assert run.request is not None  # noqa: S101 - make_plan always records it
    project = dataclasses.replace(
        project_module.load(run.project.path), entered_from=run.project.entered_from
    )
    asked = dataclasses.replace(run.request, locked_torch=locked_torch(project))
    made = plan_module.make(
        machine=run.machine,
        project=project,
        catalog=run.catalog or catalog_module.load(),
        request=asked,
        host=run.host,
        toolkit=run.toolkit,
        checkouts=run.checkouts,
    )
    return dataclasses.replace(run, project=project, plan=_with_fleet(made, run.fleet), request=asked)


def locked_torch(project: project_module.Project) -> str | None:
    """The torch a Linux machine gets from the project's uv.lock; None without a lock."""
    path = project.root / "uv.lock"
    if not path.exists():
        return None
    from uvx_llm import lockfile  # noqa: PLC0415 - only a flat mirror's build needs the lock

    python = lockfile.lowest_python(project.table("project").get("requires-python"))
    torch = lockfile.stack(lockfile.read(path), platform="linux", python=python).get("torch")
    return str(torch.version) if torch is not None else None


def write_edits(
    project: project_module.Project, edits: tuple[tuple[project_module.Project, str], ...]
) -> None:
    """Write the changed files (all or none); a uv workspace member's file is named when it changes."""
    from uvx_llm import patch as patch_module  # noqa: PLC0415 - see the module docstring

    edits = patch_module.changed(edits)
    patch_module.write_all(edits)
    for file, _ in edits:
        if file is not project:
            logger.info(
                f"updated the workspace member's {file.path.relative_to(project.root).as_posix()}: "
                "its own requirement lists (the plan's decisions say which, with -v)"
            )


def report(made: actions.Plan, *, except_warnings: tuple[str, ...] = ()) -> None:
    """Every decision, environment setting and warning, as log messages (decisions and settings are
    shown with -v; a warning an error is about to repeat is left out)."""
    for decision in made.decisions:
        logger.info("decision", topic=decision.topic, choice=decision.choice, reason=decision.reason)
    for setting in made.env:
        logger.info("environment", name=setting.name, value=setting.shown, reason=setting.reason)
    for warning in made.warnings:
        if warning not in except_warnings:
            logger.warning(warning)


# --- the commands' cores -------------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    """What `llm-sync plan` shows: the run, the diff and the uv command that would run."""

    run: Run
    diff: str
    command: tuple[str, ...]


def offline(uv_args: tuple[str, ...]) -> bool:
    """uv is told not to use the network (``--offline``, UV_OFFLINE): llm-sync does not either."""
    from uvx_llm import newer  # noqa: PLC0415 - see the module docstring

    return newer.offline_requested(uv_args, os.environ)


def preview(options: Options, *, uv_args: tuple[str, ...]) -> Preview:
    run = make_plan(options, detect=True, offline=offline(uv_args))
    from uvx_llm import patch as patch_module  # noqa: PLC0415 - see the module docstring

    diff_text = patch_module.diff_all(run.project, patch_module.render_all(run.project, run.plan.actions))
    command = ("uv", "sync", "--project", str(run.project.root), *uv_args)
    return Preview(run=run, diff=diff_text, command=command)


@dataclass(frozen=True)
class Checked:
    """What `llm-sync check` found (and fixed, with ``fix``)."""

    run: Run
    up_to_date: bool
    diff: str
    fixed: bool


def check(options: Options, *, fix: bool) -> Checked:
    """Whether pyproject.toml is as llm-sync maintains it; with ``fix``, make it so."""
    run = make_plan(options, detect=False)
    up_to_date, diff_text = not run.plan.actions, ""
    if run.plan.actions:  # the editing machinery (tomlkit) loads only when there is an edit
        from uvx_llm import patch as patch_module  # noqa: PLC0415 - see the module docstring

        edits = patch_module.changed(patch_module.render_all(run.project, run.plan.actions))
        up_to_date = not edits
        diff_text = patch_module.diff_all(run.project, edits)
        if fix and not up_to_date:
            write_edits(run.project, edits)
    return Checked(run=run, up_to_date=up_to_date, diff=diff_text, fixed=fix and not up_to_date)


@dataclass(frozen=True)
class Shown:
    """What `llm-sync config` shows: every setting with its origin."""

    settings: config.Resolved
    project: project_module.Project | None
    recorded_backend: str | None
    user_config: Path


def show_settings(options: Options) -> Shown:
    loaded = project_if_any(options)  # outside a project: the project level is simply empty
    if loaded is not None:
        config.validate_table(loaded.config, catalog_module.load())
    return Shown(
        settings=settings(options, loaded.config if loaded else {}),
        project=loaded,
        recorded_backend=loaded.config.get("backend") if loaded else None,
        user_config=paths.config_dir() / config.USER_CONFIG_NAME,
    )


def project_finding(options: Options, loaded: project_module.Project) -> findings.Finding:
    """Whether pyproject.toml is as llm-sync maintains it (the check command's answer), for doctor."""
    from uvx_llm import findings  # noqa: PLC0415 - see the module docstring

    try:
        run = make_plan(options, detect=False)
    except LlmSyncError as error:
        return findings.Finding("project", findings.WARNING, error.what, error.why, error.fix)
    if run.plan.actions:
        return findings.Finding(
            "project",
            findings.WARNING,
            f"{loaded.path} is not as llm-sync maintains it",
            "llm-sync check shows the difference",
            "run `llm-sync check --fix` (or `llm-sync`)",
        )
    return findings.Finding("project", findings.OK, f"{loaded.path} is up to date")


def diagnose(options: Options, *, python: Path | None, timeout: float) -> doctor_module.Report:
    """`llm-sync doctor`: the machine and the project's environment, checked."""
    from uvx_llm import doctor as doctor_module  # noqa: PLC0415 - see the module docstring
    from uvx_llm import resources, toolkit  # noqa: PLC0415 - see the module docstring

    if python is not None and not python.exists():
        raise LlmSyncError(
            f"--python {python} does not exist",
            fix="give the path of a Python interpreter, e.g. .venv/bin/python",
        )
    catalog = catalog_module.load()
    loaded = project_if_any(options)
    return doctor_module.diagnose(
        machine=machine(options, catalog),
        toolkit=toolkit.find(os.environ),
        host=resources.detect(),
        catalog=catalog,
        project_root=loaded.root if loaded else None,
        project_finding=project_finding(options, loaded) if loaded else None,
        python=python,
        env=os.environ,
        timeout=timeout,
    )


def diagnose_cluster(
    options: Options, *, address: str, python: Path | None, timeout: float
) -> doctor_module.Report:
    """`llm-sync doctor --ray`: every alive node of a Ray cluster probed, and their differences
    (docs/doctor.md#a-ray-cluster). Ray runs in the project's interpreter (or ``python``)."""
    from uvx_llm import cluster  # noqa: PLC0415 - see the module docstring

    loaded = project_if_any(options)
    if loaded is None:
        raise LlmSyncError(
            "doctor --ray needs the project: each node is probed in the project's environment at the same path",
            fix="run it in the project folder, or give --project",
        )
    from uvx_llm.build import recorded_archs  # noqa: PLC0415 - see the module docstring
    from uvx_llm.cluster_files import tracked  # noqa: PLC0415 - see the module docstring
    from uvx_llm.cluster_sync import driver_interpreter, run_or_explain  # noqa: PLC0415 - same

    # as sync --ray: --python, else the project's environment here, else llm-sync's own (the [ray] extra)
    driver = driver_interpreter(loaded.root, python)
    document = run_or_explain(
        lambda: cluster.run_driver(
            driver, address=address, project_root=loaded.root, timeout=timeout, files=tracked(loaded)
        )
    )
    return cluster.report(
        document, catalog_module.load(), address=address, timeout=timeout, built_for=recorded_archs(loaded)
    )
