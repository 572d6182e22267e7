"""The `llm-sync` command line: parse, call the core with keywords, map errors to exit codes."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from uvx_llm import __version__, config, log, paths
from uvx_llm import catalog as catalog_module
from uvx_llm import plan as plan_module
from uvx_llm import project as project_module

# Commands import the rest when they need it (machine detection, uv, progress):
# `check` runs on every commit as a pre-commit hook, and start-up time is its cost.
from uvx_llm.build import EnvSetting
from uvx_llm.errors import ExitCode, LlmSyncError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from uvx_llm import machine as machine_module
    from uvx_llm import progress
    from uvx_llm import uv as uv_module
    from uvx_llm.checkouts import Checkout

logger = log.get_logger("llm-sync")
_USER_CONFIG_READ: dict[str, Any] = {}
COMMANDS = ("sync", "plan", "check", "detect", "config", "doctor")
_VALUE_OPTIONS = {"--project", "--backend", "--cuda", "--arch", "--torch-index-url", "--python", "--timeout"}


@dataclass(frozen=True)
class Common:
    """The options every command shares (detect and config take a few of them)."""

    project: Path | None = None
    backend: str | None = None
    cuda: str | None = None
    arch: str | None = None
    torch_index_url: str | None = None
    mirror: str | None = None
    default_index_url: str | None = None
    python_install_mirror: str | None = None
    relief: str | None = None
    force: bool = False
    all_archs: bool = False
    log_format: str | None = None
    verbose: int = 0
    quiet: int = 0


def _common_options(function: Any) -> Any:
    options = [
        click.option(
            "--project",
            type=click.Path(path_type=Path),
            help="Project folder (default: nearest pyproject.toml upward).",
        ),
        click.option(
            "--backend", help="PyTorch backend: auto, cpu, cu126, cu128, ... [env: LLM_SYNC_BACKEND]"
        ),
        click.option(
            "--cuda", metavar="X.Y", help="Plan for a driver that runs CUDA X.Y instead of this machine's."
        ),
        click.option(
            "--arch",
            metavar="X.Y[,X.Y]",
            help="Plan for GPUs of these compute capabilities instead of this machine's.",
        ),
        click.option(
            "--torch-index-url",
            metavar="URL",
            help="Base URL of the PyTorch wheel indexes (a mirror). [env: LLM_SYNC_TORCH_INDEX_URL]",
        ),
        click.option(
            "--mirror",
            metavar="NAME|URL",
            help="Mirror preset (tuna, nju, aliyun) or a PyTorch wheel mirror's base URL. [env: LLM_SYNC_MIRROR]",
        ),
        click.option(
            "--default-index-url",
            metavar="URL",
            help="A PyPI mirror for this run. [env: LLM_SYNC_DEFAULT_INDEX_URL]",
        ),
        click.option(
            "--python-install-mirror",
            metavar="URL",
            help="Where uv downloads Python builds from. [env: LLM_SYNC_PYTHON_INSTALL_MIRROR]",
        ),
        click.option(
            "--relief",
            type=click.Choice(["override", "metadata"]),
            help="How to relieve a framework's hard pin the project contradicts (default override). [env: LLM_SYNC_RELIEF]",
        ),
        click.option(
            "--force", is_flag=True, help="Replace hand-written torch routing that disagrees with the plan."
        ),
        click.option(
            "--all-archs",
            is_flag=True,
            help="Build CUDA extensions for their default GPU architectures, not only this machine's.",
        ),
        click.option(
            "--log-format",
            type=click.Choice(["human", "json"]),
            help="Messages for people, or one JSON object per event for CI. [env: LLM_SYNC_LOG_FORMAT]",
        ),
        click.option("-v", "--verbose", count=True, help="More detail (repeatable)."),
        click.option("-q", "--quiet", count=True, help="Errors only."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _common(kwargs: dict[str, Any]) -> Common:
    return Common(**{key: kwargs.pop(key) for key in list(Common.__dataclass_fields__)})


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="llm-sync")
def cli() -> None:
    """Make `uv sync` work for GPU/LLM projects on this machine.

    Without a command, runs `sync`. Arguments after `--` go to `uv sync`.
    """


# --- shared steps ---------------------------------------------------------------------------


def _user_config() -> tuple[dict[str, Any], Path]:
    """The user config file, read once per run (logging set-up and planning both need it)."""
    path = paths.config_dir() / config.USER_CONFIG_NAME
    if _USER_CONFIG_READ.get("path") != path:
        _USER_CONFIG_READ.update(path=path, table=config.load_user_config(path))
    return _USER_CONFIG_READ["table"], path


def _settings(common: Common, project_table: dict[str, Any]) -> config.Resolved:
    user_table, user_path = _user_config()
    cli_values = {
        "backend": common.backend,
        "mirror": common.mirror,
        "torch-index-url": common.torch_index_url,
        "torch-index-format": None,  # no option of its own: LLM_SYNC_TORCH_INDEX_FORMAT or a file
        "default-index-url": common.default_index_url,
        "python-install-mirror": common.python_install_mirror,
        "relief": common.relief,
        "log-format": common.log_format,
    }
    return config.resolve(
        cli=cli_values,
        env=os.environ,
        project_table=project_table,
        user_table=user_table,
        user_path=user_path,
        catalog=catalog_module.load(),
    )


def _setup(common: Common) -> None:
    """Logging as the settings say (log-format needs no project: it is not a project key)."""
    log.configure(
        verbosity=common.verbose - common.quiet, log_format=_settings(common, {})["log-format"].value
    )


def _target_given(common: Common) -> bool:
    return bool(common.cuda or common.arch)


def _machine(common: Common, catalog: catalog_module.Catalog) -> machine_module.Machine:
    from uvx_llm import machine as machine_module  # noqa: PLC0415 - see the imports

    # The target machine: --cuda/--arch, else LLM_SYNC_CUDA/LLM_SYNC_ARCH (image builds).
    cuda_text = common.cuda or os.environ.get("LLM_SYNC_CUDA", "").strip()
    arch_text = common.arch or os.environ.get("LLM_SYNC_ARCH", "").strip()
    if cuda_text or arch_text:
        cuda = machine_module.parse_cuda(cuda_text) if cuda_text else None
        archs = machine_module.parse_arch_list(arch_text) if arch_text else None
        found = machine_module.target(cuda=cuda, archs=archs)
    else:
        found = machine_module.detect(catalog, env=os.environ)
    for note in found.notes:
        quiet_note = note.startswith("NVML unusable: the NVML library") or not found.has_nvidia
        (logger.debug if quiet_note else logger.warning)(note)
    return found


def _load_project(common: Common) -> project_module.Project:
    path = project_module.locate(common.project, cwd=Path.cwd())
    return project_module.load(path)


def _request(
    common: Common, project: project_module.Project, catalog: catalog_module.Catalog
) -> plan_module.Request:
    settings = _settings(common, project.config)
    chosen = config.indexes(settings, catalog)
    return plan_module.Request(
        backend=settings["backend"],
        index_base=chosen.torch_base,
        index_format=chosen.torch_format,
        extra_env=_mirror_environment(chosen),
        relief=settings["relief"].value,
        force=common.force,
        all_archs=common.all_archs,
        environment=dict(os.environ),
    )


def _checkouts(project: project_module.Project) -> tuple[Checkout, ...]:
    """Framework checkouts at the project root and those [tool.llm-sync] checkouts lists."""
    from uvx_llm import checkouts, frameworks  # noqa: PLC0415 - see the imports

    listed = project.config.get("checkouts", [])
    folders = [frameworks.parse_entry(entry)[0] for entry in listed] if isinstance(listed, list) else []
    return tuple(checkouts.find(project.root, folders))


def _mirror_environment(chosen: config.Indexes) -> tuple[EnvSetting, ...]:
    """Mirrors that are this machine's business: told to uv, never written to the file."""
    settings = []
    for variable, setting in (
        ("UV_DEFAULT_INDEX", chosen.default_index),
        ("UV_PYTHON_INSTALL_MIRROR", chosen.python_install_mirror),
    ):
        if setting is None:
            continue
        if os.environ.get(variable):
            settings.append(
                EnvSetting(variable, os.environ[variable], "set in your environment: kept", from_user=True)
            )
        else:
            settings.append(EnvSetting(variable, setting.value, f"from {setting.origin}"))
    return tuple(settings)


def _make_plan(
    common: Common, *, detect: bool
) -> tuple[project_module.Project, plan_module.Plan, machine_module.Machine | None]:
    with _stage("load"):
        catalog = catalog_module.load()
        project = _load_project(common)
    machine, host, found_toolkit = None, None, None
    if detect:
        from uvx_llm import resources, toolkit  # noqa: PLC0415 - see the imports

        with _stage("detect"):
            machine = _machine(common, catalog)
            host, found_toolkit = resources.detect(), toolkit.find(os.environ)
    request = _request(common, project, catalog)
    with _stage("plan"):
        made = plan_module.make(
            machine=machine,
            project=project,
            catalog=catalog,
            request=request,
            host=host,
            toolkit=found_toolkit,
            checkouts=_checkouts(project),
        )
    return project, made, machine


@contextlib.contextmanager
def _stage(name: str) -> Iterator[None]:
    """Time one stage of the run; reported in JSON logs and with -v."""
    started = time.perf_counter()
    try:
        yield
    finally:
        if log.wants_timings():
            logger.info("stage", stage=name, seconds=round(time.perf_counter() - started, 4))


def _report(made: plan_module.Plan) -> None:
    for decision in made.decisions:
        logger.info("decision", topic=decision.topic, choice=decision.choice, reason=decision.reason)
    for setting in made.env:
        logger.info("environment", name=setting.name, value=setting.shown, reason=setting.reason)
    for warning in made.warnings:
        logger.warning(warning)


# --- commands ------------------------------------------------------------------------------------


@cli.command(context_settings={"ignore_unknown_options": False})
@_common_options
@click.option("--no-sync", is_flag=True, help="Stop after updating pyproject.toml.")
@click.option(
    "--no-build-check",
    is_flag=True,
    help="Run uv sync even when a CUDA-extension build looks bound to fail (no nvcc, CUDA mismatch).",
)
@click.option(
    "--no-retry", is_flag=True, help="Do not retry a build the OOM killer stopped with half the jobs."
)
@click.argument("uv_args", nargs=-1, type=click.UNPROCESSED)
def sync(no_sync: bool, no_build_check: bool, no_retry: bool, uv_args: tuple[str, ...], **kwargs: Any) -> int:
    """Detect, plan, update pyproject.toml, run `uv sync` (the default command)."""
    from uvx_llm import progress  # noqa: PLC0415 - see the imports
    from uvx_llm import uv as uv_module  # noqa: PLC0415 - see the imports

    common = _common(kwargs)
    _setup(common)
    project, made, _ = _make_plan(common, detect=True)
    _report(made)
    from uvx_llm import patch as patch_module  # noqa: PLC0415 - see the imports

    new_text = patch_module.render(project, made.actions)
    uv = None
    if not no_sync:
        if not no_build_check:
            _refuse_doomed_builds(made, project)
        uv = uv_module.find()
        uv_module.require(uv, made.uv_min_version)
    if new_text != project.text:
        patch_module.write_atomic(project.path, patch_module.encode(project, new_text))
        logger.info(f"updated {project.path}")
    if uv is None:
        return ExitCode.OK
    env = made.uv_environment()
    with _stage("sync"):
        code, diagnosis = _run_uv(uv, project, uv_args, env)
    if diagnosis is not None and diagnosis.kind == progress.OOM and not no_retry:
        halved = _halve_jobs(env)
        if halved is not None:
            logger.warning(f"retrying once with MAX_JOBS={halved['MAX_JOBS']} (--no-retry turns this off)")
            code, _ = _run_uv(uv, project, uv_args, halved)
    return code


def _run_uv(
    uv: uv_module.Uv, project: project_module.Project, args: tuple[str, ...], env: dict[str, str]
) -> tuple[int, progress.Diagnosis | None]:
    """One `uv sync` with build progress; (exit code, diagnosis of a failed build)."""
    from uvx_llm import progress  # noqa: PLC0415 - see the imports
    from uvx_llm import uv as uv_module  # noqa: PLC0415 - see the imports

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
        _explain_unsatisfiable(shown.output)
    if code == 0 or not shown.builds:
        return code, None
    diagnosis = progress.diagnose(shown.builds[-1].lines)
    excerpt = "\n".join(f"    {line}" for line in diagnosis.excerpt)
    logger.error(f"{shown.builds[-1].package} failed to build: {diagnosis.summary}\n{excerpt}")
    return code, diagnosis


def _explain_unsatisfiable(output: list[str]) -> None:
    """After uv's own explanation: the packages involved and what llm-sync can do about it."""
    from uvx_llm import progress  # noqa: PLC0415 - see the imports

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


def _halve_jobs(env: dict[str, str]) -> dict[str, str] | None:
    """The environment with half the compile jobs; None when MAX_JOBS is the user's own (then it is
    inherited, not in ``env``) or already 1."""
    if "MAX_JOBS" not in env or env["MAX_JOBS"] == "1":
        return None
    jobs = str(max(1, int(env["MAX_JOBS"]) // 2))
    return {**env, "MAX_JOBS": jobs, "CMAKE_BUILD_PARALLEL_LEVEL": jobs}


def _installed(project: project_module.Project, package: str) -> bool:
    """Whether the project's .venv already has ``package`` (then nothing is built)."""
    dist = package.replace("-", "_")
    return any(project.root.glob(f".venv/lib/python*/site-packages/{dist}-*.dist-info"))


def _refuse_doomed_builds(made: plan_module.Plan, project: project_module.Project) -> None:
    if made.build_blockers and not all(_installed(project, p) for p in made.built_packages):
        raise LlmSyncError(
            "a CUDA extension would be compiled, and the build cannot succeed on this machine",
            why="; ".join(made.build_blockers),
            fix="do what the message says, or pass --no-build-check if a built wheel is already in uv's cache",
        )


def _plan_document(
    project: project_module.Project,
    made: plan_module.Plan,
    machine: machine_module.Machine | None,
    diff_text: str,
    command: list[str],
) -> dict[str, Any]:
    return {
        "project": str(project.path),
        "machine": machine.to_json() if machine else None,
        "backend": made.backend,
        "decisions": [{"topic": d.topic, "choice": d.choice, "reason": d.reason} for d in made.decisions],
        "warnings": list(made.warnings),
        "diff": diff_text,
        "uv": {
            "command": command,
            "environment": {s.name: s.shown for s in made.env if not s.from_user},
            "environment_reasons": [
                {"name": s.name, "value": s.shown, "reason": s.reason, "from_user": s.from_user}
                for s in made.env
            ],
            "min_version": str(made.uv_min_version) if made.uv_min_version else None,
        },
    }


@cli.command()
@_common_options
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of text.")
@click.argument("uv_args", nargs=-1, type=click.UNPROCESSED)
def plan(as_json: bool, uv_args: tuple[str, ...], **kwargs: Any) -> int:
    """Show the machine facts, every decision, the diff and the uv command; write nothing."""
    common = _common(kwargs)
    _setup(common)
    project, made, machine = _make_plan(common, detect=True)
    from uvx_llm import patch as patch_module  # noqa: PLC0415 - see the imports

    diff_text = patch_module.diff(project, patch_module.render(project, made.actions))
    command = ["uv", "sync", "--project", str(project.root), *uv_args]
    if as_json:
        import json  # noqa: PLC0415 - see the imports

        click.echo(json.dumps(_plan_document(project, made, machine, diff_text, command), indent=2))
        return ExitCode.OK
    sections: list[tuple[str, list[str]]] = [
        ("Machine", machine.summary() if machine else []),
        ("Decisions", [f"{d.topic}: {d.choice}\n    {d.reason}" for d in made.decisions]),
        ("Warnings", list(made.warnings)),
    ]
    for title, lines in sections:
        if lines:
            click.echo(f"{title}:")
            click.echo("\n".join(f"  {line}" for line in lines))
    click.echo("Changes to pyproject.toml:" + ("" if diff_text else " none"))
    if diff_text:
        click.echo(diff_text.rstrip("\n"))
    click.echo("Would run:\n  " + " ".join(command))
    if made.env:
        click.echo("  with environment:")
        for setting in made.env:
            click.echo(f"    {setting.name}={setting.shown}\n        {setting.reason}")
    else:
        click.echo("  environment: inherited unchanged")
    if made.uv_min_version:
        click.echo(f"  (needs uv >= {made.uv_min_version})")
    return ExitCode.OK


def _status(message: str, *, quiet: int) -> None:
    """A result line of `check`: printed directly, so an up-to-date check never loads the logger."""
    if not quiet:
        click.echo(message, err=True)


@cli.command()
@_common_options
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of text.")
@click.option(
    "--fix",
    is_flag=True,
    help="Write the changes (still exits 1 when there were any, as pre-commit expects).",
)
def check(fix: bool, as_json: bool, **kwargs: Any) -> int:
    """Exit 0 if pyproject.toml is as llm-sync maintains it for its recorded backend, else show the diff and exit 1.

    Machine-independent: no detection, no network.
    """
    common = _common(kwargs)
    _setup(common)
    if _target_given(common):
        raise click.UsageError(
            "check is machine-independent: --cuda/--arch do not apply (use `llm-sync plan`)"
        )
    project, made, _ = _make_plan(common, detect=False)
    if not as_json:
        for warning in made.warnings:
            logger.warning(warning)
    up_to_date, diff_text = not made.actions, ""
    if made.actions:  # the editing machinery (tomlkit) loads only when there is an edit
        from uvx_llm import patch as patch_module  # noqa: PLC0415 - see the imports

        new_text = patch_module.render(project, made.actions)
        up_to_date = new_text == project.text
        diff_text = "" if up_to_date else patch_module.diff(project, new_text)
        if fix and not up_to_date:
            patch_module.write_atomic(project.path, patch_module.encode(project, new_text))
    if as_json:
        import json  # noqa: PLC0415 - see the imports

        document = {
            "project": str(project.path),
            "up_to_date": up_to_date,
            "fixed": fix and not up_to_date,
            "backend": made.backend,
            "diff": diff_text,
            "warnings": list(made.warnings),
        }
        click.echo(json.dumps(document, indent=2))
    elif up_to_date:
        _status(f"{project.path} is up to date", quiet=common.quiet)
    else:
        click.echo(diff_text.rstrip("\n"))
        hint = f"fixed {project.path}" if fix else "run `llm-sync check --fix` (or `llm-sync`) to apply"
        _status(hint, quiet=common.quiet)
    return ExitCode.OK if up_to_date else ExitCode.DIFFERENCES


@cli.command()
@click.option(
    "--project",
    type=click.Path(path_type=Path),
    help="Project folder (default: nearest pyproject.toml upward).",
)
@click.option(
    "--python",
    "python",
    type=click.Path(path_type=Path),
    help="The interpreter to inspect (default: the project environment, UV_PROJECT_ENVIRONMENT or .venv).",
)
@click.option(
    "--timeout", type=float, default=60.0, show_default=True, help="Seconds the interpreter gets to answer."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of text.")
def doctor(project: Path | None, python: Path | None, timeout: float, as_json: bool) -> int:
    """Check the machine and the project's environment; say how to fix each problem."""
    from uvx_llm import doctor as doctor_module  # noqa: PLC0415 - see the imports
    from uvx_llm import resources, toolkit  # noqa: PLC0415 - see the imports

    common = Common(project=project)
    _setup(common)
    if python is not None and not python.exists():
        raise LlmSyncError(
            f"--python {python} does not exist",
            fix="give the path of a Python interpreter, e.g. .venv/bin/python",
        )
    catalog = catalog_module.load()
    try:
        loaded: project_module.Project | None = _load_project(common)
    except LlmSyncError:
        if project is not None:
            raise
        loaded = None
    report = doctor_module.diagnose(
        machine=_machine(common, catalog),
        toolkit=toolkit.find(os.environ),
        host=resources.detect(),
        catalog=catalog,
        project_root=loaded.root if loaded else None,
        project_finding=_project_finding(common, loaded, doctor_module) if loaded else None,
        python=python,
        env=os.environ,
        timeout=timeout,
    )
    if as_json:
        import json  # noqa: PLC0415 - see the imports

        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        click.echo(report.render())
    return ExitCode.DIFFERENCES if report.has_errors else ExitCode.OK


def _project_finding(common: Common, loaded: project_module.Project, doctor_module: Any) -> Any:
    """Whether pyproject.toml is as llm-sync maintains it (the check command's answer)."""
    try:
        _, made, _ = _make_plan(common, detect=False)
    except LlmSyncError as error:
        return doctor_module.Finding("project", doctor_module.WARNING, error.what, error.why, error.fix)
    if made.actions:
        return doctor_module.Finding(
            "project",
            doctor_module.WARNING,
            f"{loaded.path} is not as llm-sync maintains it",
            "llm-sync check shows the difference",
            "run `llm-sync check --fix` (or `llm-sync`)",
        )
    return doctor_module.Finding("project", doctor_module.OK, f"{loaded.path} is up to date")


@cli.command("config")
@click.option(
    "--project",
    type=click.Path(path_type=Path),
    help="Project folder (default: nearest pyproject.toml upward).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of text.")
def show_config(project: Path | None, as_json: bool) -> int:
    """Print every setting, its value and where it came from."""
    common = Common(project=project)
    _setup(common)
    try:
        loaded: project_module.Project | None = _load_project(common)
    except LlmSyncError:
        if project is not None:
            raise
        loaded = None  # outside a project: the project level is simply empty
    if loaded is not None:
        config.validate_table(loaded.config, catalog_module.load())
    settings = _settings(common, loaded.config if loaded else {})
    recorded = loaded.config.get("backend") if loaded else None
    user_path = paths.config_dir() / config.USER_CONFIG_NAME
    if as_json:
        import json  # noqa: PLC0415 - see the imports

        document = {
            "settings": {k: {"value": s.value, "origin": s.origin} for k, s in settings.settings.items()},
            "recorded_backend": recorded,
            "project": str(loaded.path) if loaded else None,
            "user_config": str(user_path),
            "precedence": [
                "command line",
                "LLM_SYNC_* environment",
                "[tool.llm-sync]",
                "user config file",
                "default",
            ],
        }
        click.echo(json.dumps(document, indent=2))
        return ExitCode.OK
    click.echo(
        "precedence: command line > LLM_SYNC_* environment > [tool.llm-sync] > user config file > default"
    )
    click.echo(f"user config file: {user_path}{'' if user_path.exists() else ' (none)'}")
    click.echo(f"project: {loaded.path if loaded else '(none)'}")
    for key, setting in settings.settings.items():
        click.echo(f"{key} = {setting.value}    ({setting.origin})")
    click.echo(
        f"recorded backend = {recorded or '(none yet)'}    ([tool.llm-sync] backend, written by llm-sync)"
    )
    return ExitCode.OK


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of text.")
@click.option("--cuda", metavar="X.Y", help="Describe a target driver instead of detecting.")
@click.option("--arch", metavar="X.Y[,X.Y]", help="Describe target GPUs instead of detecting.")
@click.option("-v", "--verbose", count=True, help="More detail.")
@click.option("-q", "--quiet", count=True, help="Errors only.")
def detect(as_json: bool, cuda: str | None, arch: str | None, verbose: int, quiet: int) -> int:
    """Show the machine facts llm-sync plans with."""
    common = Common(cuda=cuda, arch=arch, verbose=verbose, quiet=quiet)

    _setup(common)
    machine = _machine(common, catalog_module.load())
    if as_json:
        import json  # noqa: PLC0415 - see the imports

        click.echo(json.dumps(machine.to_json(), indent=2))
    else:
        click.echo("\n".join([*machine.summary(), *(f"note: {n}" for n in machine.notes)]))
    return ExitCode.OK


# --- entry point -------------------------------------------------------------------------------------


def with_default_command(argv: list[str]) -> list[str]:
    """`llm-sync [options] [-- uv args]` means `llm-sync sync ...`; a command may follow options."""
    previous = ""
    for position, word in enumerate(argv):
        if word == "--":
            break
        if word in COMMANDS and previous not in _VALUE_OPTIONS:
            return [word, *argv[:position], *argv[position + 1 :]]
        previous = word
    if any(token in {"--help", "-h", "--version"} for token in argv[:1]):
        return argv
    return ["sync", *argv]


def _write_crash_log(error: BaseException) -> Path | None:
    import traceback  # noqa: PLC0415 - see the imports
    from datetime import datetime, timezone  # noqa: PLC0415 - see the imports

    try:
        folder = paths.log_dir()
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(tz=timezone.utc).strftime("%Y%m%dT%H%M%S")
        path = folder / f"crash-{stamp}.log"
        path.write_text(
            f"llm-sync {__version__}\nargv: {sys.argv}\n\n" + "".join(traceback.format_exception(error)),
            encoding="utf-8",
        )
    except OSError:
        return None
    return path


def run(argv: list[str] | None = None) -> None:
    """Run the command line and exit with its code."""
    args = with_default_command(sys.argv[1:] if argv is None else argv)
    _USER_CONFIG_READ.clear()  # read once per run, never carried over to the next
    try:
        code = cli.main(args=args, prog_name="llm-sync", standalone_mode=False)
    except LlmSyncError as error:
        click.echo(error.render(), err=True)
        code = error.exit_code
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("interrupted", err=True)
        code = ExitCode.INTERRUPTED
    except click.exceptions.Exit as done:
        code = done.exit_code
    except click.ClickException as error:
        error.show()
        code = ExitCode.USAGE if error.exit_code == ExitCode.USAGE else error.exit_code
    except Exception as error:  # noqa: BLE001 - the one place unexpected errors become a message
        crash_log = _write_crash_log(error)
        where = f"details in {crash_log}" if crash_log else "run with -v for details"
        click.echo(
            f"error: unexpected {type(error).__name__}: {error}\n  {where}; please report it", err=True
        )
        code = ExitCode.INTERNAL
    sys.exit(code if isinstance(code, int) else ExitCode.OK)
