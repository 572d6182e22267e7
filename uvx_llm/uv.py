"""Finding uv, checking its version, and running `uv sync`."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.version import InvalidVersion, Version

from uvx_llm import proc
from uvx_llm.errors import LlmSyncError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

_VERSION = re.compile(r"\buv (\d+\.\d+\.\d+\S*)")
# `uv --version` answers in milliseconds; one that hangs is skipped for the next candidate.
VERSION_TIMEOUT = 10.0


@dataclass(frozen=True)
class Uv:
    path: Path
    version: Version
    found_by: str  # "$UV", "PATH", "the uv package"


def _candidates(env: Mapping[str, str]) -> list[tuple[str, str]]:
    found = []
    if env.get("UV"):
        found.append((env["UV"], "$UV"))
    on_path = shutil.which("uv", path=env.get("PATH"))
    if on_path:
        found.append((on_path, "PATH"))
    try:
        from uv import find_uv_bin  # noqa: PLC0415 - the optional `uv` package from PyPI

        found.append((find_uv_bin(), "the uv package"))
    except (ImportError, FileNotFoundError):
        pass
    return found


def version_of(path: str) -> Version | None:
    result = proc.run([path, "--version"], timeout=VERSION_TIMEOUT)
    if result.failure is not None:
        return None
    match = _VERSION.search(result.stdout)
    if result.returncode != 0 or not match:
        return None
    try:
        return Version(match.group(1))
    except InvalidVersion:
        return None


def find(env: Mapping[str, str] | None = None) -> Uv:
    """uv as `uvx llm-sync` started it ($UV), else from PATH, else the `uv` package."""
    env = os.environ if env is None else env
    tried = []
    for path, found_by in _candidates(env):
        version = version_of(path)
        if version is not None:
            return Uv(Path(path), version, found_by)
        tried.append(f"{path} ({found_by})")
    raise LlmSyncError(
        "uv not found",
        why="llm-sync runs `uv sync`; looked at $UV, PATH and the `uv` Python package"
        + (f"; unusable: {', '.join(tried)}" if tried else ""),
        fix="install uv (`pip install uv` or https://docs.astral.sh/uv/getting-started/installation/), or pass --no-sync",
    )


def require(uv: Uv, minimum: Version | None) -> None:
    if minimum is not None and uv.version < minimum:
        raise LlmSyncError(
            f"uv {uv.version} at {uv.path} is too old for the settings llm-sync writes",
            why=f"they need uv >= {minimum}",
            fix="run `uv self update` (or `pip install -U uv` when uv came from pip)",
        )


def sync_command(uv: Uv, *, project_dir: Path, uv_args: Sequence[str]) -> list[str]:
    return [str(uv.path), "sync", "--project", str(project_dir), *uv_args]


def lock(
    uv: Uv,
    *,
    project_dir: Path,
    uv_args: Sequence[str],
    env: Mapping[str, str],
    on_stderr_line: Callable[[str], None] | None = None,
    on_stderr_bytes: Callable[[bytes], None] | None = None,
) -> int:
    """Run `uv lock` in the foreground; its exit code. With ``on_stderr_bytes``, uv's stderr
    is a pseudo-terminal (its live progress and colours kept; see proc.run_in_terminal)."""
    return proc.run_streaming(
        [str(uv.path), "lock", "--project", str(project_dir), *uv_args],
        env=env,
        cwd=project_dir,
        on_stderr_line=on_stderr_line,
        on_stderr_bytes=on_stderr_bytes,
    )


def sync(
    uv: Uv,
    *,
    project_dir: Path,
    uv_args: Sequence[str],
    env: Mapping[str, str],
    on_stderr_line: Callable[[str], None] | None = None,
    on_stderr_bytes: Callable[[bytes], None] | None = None,
) -> int:
    """Run `uv sync` in the foreground; its exit code. Ctrl-C raises KeyboardInterrupt.
    ``on_stderr_bytes``: as for `lock`."""
    return proc.run_streaming(
        sync_command(uv, project_dir=project_dir, uv_args=uv_args),
        env=env,
        cwd=project_dir,
        on_stderr_line=on_stderr_line,
        on_stderr_bytes=on_stderr_bytes,
    )


@dataclass(frozen=True)
class LockCheck:
    """Whether the project's environment holds what uv.lock says, as `uv sync --check` sees it."""

    in_sync: bool
    changes: tuple[str, ...] = ()  # uv's "+ name==version" / "- name==version" lines
    problem: str | None = None  # set when uv could not compare at all


def check_environment(uv: Uv, *, project_dir: Path, timeout: float = 60.0) -> LockCheck:
    """Compare the environment with uv.lock without resolving, downloading or changing anything.

    --frozen: the lock as it is (whether it is stale is `uv lock --check`'s business and
    needs the index); --offline: never the network; --inexact: packages the user added on
    purpose (extras, `uv pip install`) are not counted as differences.
    """
    args = [
        str(uv.path),
        "sync",
        "--check",
        "--frozen",
        "--offline",
        "--inexact",
        "--project",
        str(project_dir),
    ]
    result = proc.run(args, cwd=project_dir, timeout=timeout)
    if result.timed_out:
        return LockCheck(in_sync=False, problem=f"`uv sync --check` did not answer within {timeout:g} s")
    if result.failure is not None:
        return LockCheck(in_sync=False, problem=f"{uv.path} cannot be run: {result.failure}")
    if result.returncode == 0:
        return LockCheck(in_sync=True)
    output = result.stderr + result.stdout
    changes = tuple(line.strip() for line in output.splitlines() if line.startswith((" + ", " - ")))
    if "outdated" in output or changes:
        return LockCheck(in_sync=False, changes=changes)
    errors = [
        line for line in output.splitlines() if line.startswith("error:")
    ] or output.strip().splitlines()[-1:]
    return LockCheck(in_sync=False, problem=errors[0] if errors else f"exit code {result.returncode}")


# `uv sync` options a user may type before `--` (`llm-sync --frozen`); from `uv sync --help`, uv 0.9.
SYNC_OPTIONS = frozenset(
    [
        "--frozen",
        "--locked",
        "--offline",
        "--no-cache",
        "--refresh",
        "--refresh-package",
        "--upgrade",
        "-U",
        "--upgrade-package",
        "-P",
        "--dry-run",
        "--check",
        "--inexact",
        "--exact",
        "--active",
        "--extra",
        "--all-extras",
        "--no-extra",
        "--group",
        "--all-groups",
        "--no-group",
        "--only-group",
        "--dev",
        "--no-dev",
        "--only-dev",
        "--no-default-groups",
        "--no-install-project",
        "--no-install-workspace",
        "--no-install-package",
        "--no-editable",
        "--no-sources",
        "--reinstall",
        "--reinstall-package",
        "--compile-bytecode",
        "--link-mode",
        "--python",
        "-p",
        "--python-preference",
        "--index",
        "--default-index",
        "--index-url",
        "--extra-index-url",
        "--find-links",
        "--index-strategy",
        "--keyring-provider",
        "--prerelease",
        "--resolution",
        "--no-build",
        "--no-binary",
        "--no-build-isolation",
        "--no-build-isolation-package",
        "--package",
        "--all-packages",
        "--script",
        "--output-format",
        "--config-setting",
        "--native-tls",
        "--allow-insecure-host",
        "--exclude-newer",
        "--fork-strategy",
    ]
)


def misplaced_option(option: str, *, command: str) -> LlmSyncError | None:
    """The error for a `uv sync` option given before `--` to a command that passes it on to uv
    (sync and plan), else None (the command line's own "no such option" message stands)."""
    name = option.split("=", 1)[0]
    if command not in {"sync", "plan"} or name not in SYNC_OPTIONS:
        return None
    return LlmSyncError(
        f"uv options go after `--`: `llm-sync {'plan ' if command == 'plan' else ''}-- {option}`",
        why=f"{name} is an option of `uv sync`, which llm-sync runs; before `--` come llm-sync's own options",
    )
