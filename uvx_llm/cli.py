"""The `llm-sync` command line: parse, call the core with keywords, map errors to exit codes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from uvx_llm import __version__, log, paths, pipeline, render
from uvx_llm.errors import ExitCode, LlmSyncError
from uvx_llm.pipeline import Options

logger = log.get_logger("llm-sync")
COMMANDS = ("sync", "plan", "check", "detect", "config", "doctor")
_VALUE_OPTIONS = {"--project", "--backend", "--cuda", "--arch", "--torch-index-url", "--python", "--timeout"}


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


def _options(kwargs: dict[str, Any]) -> Options:
    """The shared options out of a command's keywords, set up logging as they say."""
    options = Options(**{key: kwargs.pop(key) for key in list(Options.__dataclass_fields__)})
    pipeline.set_up_logging(options)
    return options


def _echo_json(document: dict[str, Any]) -> None:
    import json  # noqa: PLC0415 - only the JSON outputs need it

    click.echo(json.dumps(document, indent=2))


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
@click.argument("uv_args", nargs=-1, type=click.UNPROCESSED)
def sync(no_sync: bool, no_build_check: bool, no_retry: bool, uv_args: tuple[str, ...], **kwargs: Any) -> int:
    """Detect, plan, update pyproject.toml, run `uv sync` (the default command)."""
    from uvx_llm import syncing  # noqa: PLC0415 - uv and progress load only where they are used

    return syncing.sync(
        _options(kwargs), uv_args=uv_args, no_sync=no_sync, no_build_check=no_build_check, no_retry=no_retry
    )


@cli.command()
@_common_options
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of text.")
@click.argument("uv_args", nargs=-1, type=click.UNPROCESSED)
def plan(as_json: bool, uv_args: tuple[str, ...], **kwargs: Any) -> int:
    """Show the machine facts, every decision, the diff and the uv command; write nothing."""
    preview = pipeline.preview(_options(kwargs), uv_args=uv_args)
    if as_json:
        _echo_json(render.plan_document(preview))
    else:
        click.echo(render.plan_text(preview))
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
    options = _options(kwargs)
    if pipeline.target_given(options):
        raise click.UsageError(
            "check is machine-independent: --cuda/--arch do not apply (use `llm-sync plan`)"
        )
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
        click.echo(checked.diff.rstrip("\n"))
        hint = f"fixed {project.path}" if fix else "run `llm-sync check --fix` (or `llm-sync`) to apply"
        _status(hint, quiet=options.quiet)
    return ExitCode.OK if checked.up_to_date else ExitCode.DIFFERENCES


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
    options = Options(project=project)
    pipeline.set_up_logging(options)
    report = pipeline.diagnose(options, python=python, timeout=timeout)
    if as_json:
        _echo_json(report.to_json())
    else:
        click.echo(report.render())
    return ExitCode.DIFFERENCES if report.has_errors else ExitCode.OK


@cli.command("config")
@click.option(
    "--project",
    type=click.Path(path_type=Path),
    help="Project folder (default: nearest pyproject.toml upward).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of text.")
def show_config(project: Path | None, as_json: bool) -> int:
    """Print every setting, its value and where it came from."""
    options = Options(project=project)
    pipeline.set_up_logging(options)
    shown = pipeline.show_settings(options)
    if as_json:
        _echo_json(render.settings_document(shown))
    else:
        click.echo(render.settings_text(shown))
    return ExitCode.OK


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of text.")
@click.option("--cuda", metavar="X.Y", help="Describe a target driver instead of detecting.")
@click.option("--arch", metavar="X.Y[,X.Y]", help="Describe target GPUs instead of detecting.")
@click.option("-v", "--verbose", count=True, help="More detail.")
@click.option("-q", "--quiet", count=True, help="Errors only.")
def detect(as_json: bool, cuda: str | None, arch: str | None, verbose: int, quiet: int) -> int:
    """Show the machine facts llm-sync plans with."""
    from uvx_llm import catalog  # noqa: PLC0415 - only detect reads it here

    options = Options(cuda=cuda, arch=arch, verbose=verbose, quiet=quiet)
    pipeline.set_up_logging(options)
    machine = pipeline.machine(options, catalog.load())
    if as_json:
        _echo_json(machine.to_json())
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
    pipeline.reset()  # the user config file is read once per run, never carried over to the next
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
