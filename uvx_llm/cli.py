"""The `llm-sync` command line: parse, call the core with keywords, map errors to exit codes."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from uvx_llm import __version__, cli_argv, config, lifecycle, log, pipeline, render
from uvx_llm.errors import ExitCode, Interrupted, LlmSyncError
from uvx_llm.pipeline import Options

if TYPE_CHECKING:
    from collections.abc import Callable

logger = log.get_logger("llm-sync")


def _print(text: str, *, colour: bool | None = None) -> None:
    """A command's result on stdout, flushed and checked: a closed pipe (`| head -0`) or a full
    disk (`> /dev/full`) is an error with its own exit code, never a silent exit 0."""
    try:
        click.echo(text, color=colour)
        sys.stdout.flush()
    except OSError as error:
        raise lifecycle.output_error(error) from None


def _setting_option(spec: config.Spec) -> Any:
    """A setting's command-line option, made from its declaration."""
    return click.option(
        spec.option,
        spec.param,
        metavar=spec.metavar,
        multiple=spec.multiple,
        type=click.Choice(spec.choices) if spec.choices else None,
        help=f"{spec.help[0].upper()}{spec.help[1:].rstrip('.')}. [env: {spec.env}]",
    )


def _setting_options(*keys: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options of these settings (all that have one, when none are named)."""

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        specs = [config.SPEC_BY_KEY[key] for key in keys] if keys else list(config.SPECS)
        for spec in reversed(specs):
            if spec.flag:
                function = _setting_option(spec)(function)
        return function

    return decorate


_PROJECT = click.option(
    "--project",
    type=click.Path(path_type=Path),
    help="Project folder (default: nearest pyproject.toml upward).",
)
_VERBOSE = click.option(
    "-v", "--verbose", count=True, help="Also each decision and uv's environment (repeatable)."
)
_QUIET = click.option("-q", "--quiet", count=True, help="Errors only.")
_COLOR = click.option(
    "--color",
    type=click.Choice(log.COLOR_CHOICES),
    default="auto",
    show_default=True,
    help="Colour: auto (on a terminal, unless NO_COLOR), always, or never. Passed on to uv.",
)


_TARGET_KEYS = ("cuda", "rocm", "arch")  # what `check`, being machine-independent, does not take


def _common_options(function: Any) -> Any:
    return _shared_options(function, target=True)


def _check_options(function: Any) -> Any:
    return _shared_options(function, target=False)


def _shared_options(function: Any, *, target: bool) -> Any:
    keys = [spec.key for spec in config.SPECS if target or spec.key not in _TARGET_KEYS]
    options: list[Callable[[Callable[..., Any]], Callable[..., Any]]] = [
        _PROJECT,
        _setting_options(*keys),
        click.option(
            "--force", is_flag=True, help="Replace hand-written torch routing that disagrees with the plan."
        ),
        click.option(
            "--all-archs",
            is_flag=True,
            help="Build CUDA extensions for their default GPU architectures, not only this machine's.",
        ),
        _VERBOSE,
        _QUIET,
        _COLOR,
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _joined(value: str | tuple[str, ...] | None) -> str | None:
    """A repeatable option's values as one setting value (os.pathsep between them, as in PATH)."""
    if isinstance(value, tuple):
        return os.pathsep.join(value) if value else None
    return value


def _options(kwargs: dict[str, Any]) -> Options:
    """The shared options out of a command's keywords, set up logging as they say."""
    given = {spec.key: _joined(kwargs.pop(spec.param)) for spec in config.SPECS if spec.param in kwargs}
    switches = {
        key: kwargs.pop(key)
        for key in ("project", "force", "all_archs", "verbose", "quiet", "color")
        if key in kwargs
    }
    options = Options(given=given, **switches)
    pipeline.set_up_logging(options)
    return options


JSON_FORMAT = 1  # the "version" of every JSON document: raised when a field changes meaning or goes


def _echo_json(document: dict[str, Any]) -> None:
    import json  # noqa: PLC0415 - only the JSON outputs need it

    _print(json.dumps({"version": JSON_FORMAT, **document}, indent=2))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="llm-sync")
def cli() -> None:
    """Make `uv sync` work for GPU/LLM projects on this machine.

    Without a command, runs `sync`. Arguments after `--` go to `uv sync`.
    """


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
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="auto",
    default=None,
    metavar="[ADDRESS]",
    help="Plan for every alive node of a running Ray cluster, lock here, then `uv sync --locked` on each "
    "node (docs/cluster.md).",
)
@click.option(
    "--python",
    "python",
    type=click.Path(path_type=Path),
    help="With --ray: the interpreter that drives Ray (default: the project's environment, else llm-sync's own).",
)
@click.option(
    "--node-timeout",
    type=float,
    default=7200.0,
    show_default=True,
    help="With --ray: seconds each wave of nodes gets to sync (a build included).",
)
@click.argument("uv_args", nargs=-1, type=click.UNPROCESSED)
def sync(
    *,
    no_sync: bool,
    no_build_check: bool,
    no_retry: bool,
    ray_address: str | None,
    python: Path | None,
    node_timeout: float,
    uv_args: tuple[str, ...],
    **kwargs: Any,
) -> int:
    """Detect, plan, update pyproject.toml, run `uv sync` (the default command)."""
    from uvx_llm import syncing  # noqa: PLC0415 - uv and progress load only where they are used
    from uvx_llm.cluster_sync import Target  # noqa: PLC0415 - same

    cluster = Target(ray_address, python, node_timeout) if ray_address is not None else None
    return syncing.sync(
        _options(kwargs),
        uv_args=uv_args,
        no_sync=no_sync,
        no_build_check=no_build_check,
        no_retry=no_retry,
        cluster=cluster,
    )


@cli.command()
@_common_options
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of text.")
@click.option(
    "--resolve",
    is_flag=True,
    help="Also lock the plan with uv in a temporary copy and show the locked stack (exit 1 if it leaves the plan).",
)
@click.argument("uv_args", nargs=-1, type=click.UNPROCESSED)
def plan(as_json: bool, resolve: bool, uv_args: tuple[str, ...], **kwargs: Any) -> int:
    """Show the machine facts, every decision, the diff and the uv command; write nothing."""
    preview = pipeline.preview(_options(kwargs), uv_args=uv_args)
    resolution = None
    if resolve:
        from uvx_llm import trial  # noqa: PLC0415 - uv loads only where it is used

        resolution = trial.resolve(preview.run, uv_args=uv_args)
    if as_json:
        _echo_json(render.plan_document(preview, resolution))
    else:
        colour = log.use_colour(sys.stdout)
        _print(render.plan_text(preview, colour=colour), colour=colour)
        if resolution is not None:
            _print(render.resolution_text(resolution))
    return ExitCode.DIFFERENCES if resolution is not None and not resolution.ok else ExitCode.OK


def _status(message: str, *, quiet: int) -> None:
    """A result line of `check`: printed directly, so an up-to-date check never loads the logger."""
    if not quiet:
        click.echo(message, err=True)


@cli.command()
@_check_options
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
    options = _options(kwargs)
    checked = pipeline.check(options, fix=fix)
    project = checked.run.project
    if as_json:
        _echo_json(render.check_document(checked))
        return ExitCode.OK if checked.up_to_date else ExitCode.DIFFERENCES
    for warning in checked.run.plan.warnings:
        logger.warning(warning)
    if checked.up_to_date:
        _status(f"{project.path} is up to date", quiet=options.quiet)
    else:
        _print(checked.diff.rstrip("\n"))
        hint = f"fixed {project.path}" if fix else "run `llm-sync check --fix` (or `llm-sync`) to apply"
        _status(hint, quiet=options.quiet)
    return ExitCode.OK if checked.up_to_date else ExitCode.DIFFERENCES


@cli.command()
@_PROJECT
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
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value="auto",
    default=None,
    metavar="[ADDRESS]",
    help="Probe every alive node of a running Ray cluster (default address: auto, or RAY_ADDRESS) and "
    "compare them; Ray runs in the project's interpreter.",
)
@_COLOR
def doctor(python: Path | None, timeout: float, as_json: bool, ray_address: str | None, **kwargs: Any) -> int:
    """Check the machine and the project's environment; say how to fix each problem."""
    options = _options(kwargs)
    if ray_address is not None:
        report = pipeline.diagnose_cluster(options, address=ray_address, python=python, timeout=timeout)
    else:
        report = pipeline.diagnose(options, python=python, timeout=timeout)
    if as_json:
        _echo_json(report.to_json())
    else:
        colour = log.use_colour(sys.stdout)
        _print(report.render(colour=colour), colour=colour)
    return ExitCode.DIFFERENCES if report.has_errors else ExitCode.OK


@cli.command("config")
@_PROJECT
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of text.")
def show_config(as_json: bool, **kwargs: Any) -> int:
    """Print every setting, its value and where it came from."""
    shown = pipeline.show_settings(_options(kwargs))
    if as_json:
        _echo_json(render.settings_document(shown))
    else:
        _print(render.settings_text(shown))
    return ExitCode.OK


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of text.")
@_setting_options("cuda", "rocm", "arch")
@_VERBOSE
@_QUIET
def detect(as_json: bool, **kwargs: Any) -> int:
    """Show the machine facts llm-sync plans with."""
    from uvx_llm import catalog  # noqa: PLC0415 - only detect reads it here

    machine = pipeline.machine(_options(kwargs), catalog.load())
    if as_json:
        _echo_json(machine.to_json())
    else:
        _print("\n".join([*machine.summary(), *(f"note: {n}" for n in machine.notes)]))
    return ExitCode.OK


# --- entry point -------------------------------------------------------------------------------------


def with_default_command(argv: list[str]) -> list[str]:
    """`llm-sync [options] [-- uv args]` means `llm-sync sync ...` (cli_argv.default_command)."""
    return cli_argv.default_command(argv, cli)


def _interrupted_by(error: BaseException) -> int:
    """The signal behind a KeyboardInterrupt (click wraps it in Abort)."""
    cause = error.__cause__ if isinstance(error, click.exceptions.Abort) else error
    return cause.signum if isinstance(cause, Interrupted) else signal.SIGINT


def run(argv: list[str] | None = None) -> None:
    """Run the command line and exit with its code."""
    with lifecycle.signals_as_interrupts():
        code = _run(sys.argv[1:] if argv is None else argv)
        try:
            sys.stdout.flush()  # what click printed itself (--help, --version)
        except OSError as error:
            lifecycle.silence_stdout()
            click.echo(lifecycle.output_error(error).render(), err=True)
            code = ExitCode.OUTPUT
    sys.exit(code)


def _run(argv: list[str]) -> int:
    pipeline.reset()  # the user config file is read once per run, never carried over to the next
    log.configure()  # nor are the last run's verbosity and colour
    try:
        args = with_default_command(argv)
        code = cli.main(args=args, prog_name="llm-sync", standalone_mode=False)
    except LlmSyncError as error:
        if error.exit_code == ExitCode.OUTPUT:
            lifecycle.silence_stdout()
        colour = log.use_colour(sys.stderr)
        click.echo(error.render(colour=colour), err=True, color=colour)
        code = error.exit_code
    except (KeyboardInterrupt, click.exceptions.Abort) as error:
        signum = _interrupted_by(error)
        shown = "" if signum == signal.SIGINT else f" by {signal.Signals(signum).name}"
        click.echo(f"interrupted{shown}", err=True)
        code = ExitCode.SIGNAL + signum
    except click.exceptions.Exit as done:
        code = done.exit_code
    except click.NoSuchOption as error:
        from uvx_llm import uv as uv_module  # noqa: PLC0415 - only on this error's path

        misplaced = uv_module.misplaced_option(error.option_name, command=args[0] if args else "")
        if misplaced is None:
            cli_argv.explain_unknown_option(error).show()
        else:
            colour = log.use_colour(sys.stderr)
            click.echo(misplaced.render(colour=colour), err=True, color=colour)
        code = ExitCode.USAGE
    except click.ClickException as error:
        error.show()
        code = ExitCode.USAGE if error.exit_code == ExitCode.USAGE else error.exit_code
    except Exception as error:  # noqa: BLE001 - the one place unexpected errors become a message
        crash_log = lifecycle.write_crash_log(error)
        where = f"details in {crash_log}" if crash_log else "run with -v for details"
        from uvx_llm.redact import redact  # noqa: PLC0415 - see the imports

        click.echo(
            redact(f"error: unexpected {type(error).__name__}: {error}\n  {where}; please report it"),
            err=True,
        )
        code = ExitCode.INTERNAL
    return code if isinstance(code, int) else ExitCode.OK
