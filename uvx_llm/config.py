"""Settings for one run, each with where it came from.

One precedence for every setting: command line > LLM_SYNC_* environment >
[tool.llm-sync] in pyproject.toml > the user config file > defaults.
`llm-sync config` prints the resolved values and their origins.

[tool.llm-sync] `backend` is different: it is the backend llm-sync *recorded* for
the team (written by llm-sync). The `backend` setting here is what this run asks
for (`auto` keeps the recorded one or picks for the machine).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from uvx_llm.build import parse_arch_text
from uvx_llm.errors import LlmSyncError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from pathlib import Path

    from uvx_llm.catalog import Catalog

USER_CONFIG_NAME = "config.toml"


@dataclass(frozen=True)
class Setting:
    value: str
    origin: str  # "--backend", "LLM_SYNC_BACKEND", "[tool.llm-sync]", "<user config path>", "default"


@dataclass(frozen=True)
class Spec:
    key: str
    option: str
    env: str
    in_project: bool  # may be set in [tool.llm-sync]
    description: str


SPECS = (
    Spec(
        "backend",
        "--backend",
        "LLM_SYNC_BACKEND",
        in_project=False,
        description="PyTorch backend to ask for: auto, cpu, cu126, cu128, ...",
    ),
    Spec(
        "mirror",
        "--mirror",
        "LLM_SYNC_MIRROR",
        in_project=True,
        description="a mirror preset (tuna, nju, aliyun) or the base URL of a PyTorch wheel mirror",
    ),
    Spec(
        "torch-index-url",
        "--torch-index-url",
        "LLM_SYNC_TORCH_INDEX_URL",
        in_project=True,
        description="base URL of the PyTorch wheel indexes (a mirror); <url>/<backend> is one index",
    ),
    Spec(
        "torch-index-format",
        "--torch-index-format",
        "LLM_SYNC_TORCH_INDEX_FORMAT",
        in_project=True,
        description="simple (PEP 503, the default) or flat (a mirror serving one plain file listing)",
    ),
    Spec(
        "default-index-url",
        "--default-index-url",
        "LLM_SYNC_DEFAULT_INDEX_URL",
        in_project=True,
        description="a PyPI mirror: uv's default index for this run (UV_DEFAULT_INDEX)",
    ),
    Spec(
        "python-install-mirror",
        "--python-install-mirror",
        "LLM_SYNC_PYTHON_INSTALL_MIRROR",
        in_project=True,
        description="where uv downloads Python builds from (UV_PYTHON_INSTALL_MIRROR)",
    ),
    Spec(
        "relief",
        "--relief",
        "LLM_SYNC_RELIEF",
        in_project=True,
        description="how to relieve a framework's hard pin the project contradicts: override or metadata",
    ),
    Spec(
        "log-format",
        "--log-format",
        "LLM_SYNC_LOG_FORMAT",
        in_project=False,
        description="human, or json (one JSON object per event)",
    ),
)
# Keys of [tool.llm-sync]: the settings allowed there, and the recorded backend.
PROJECT_KEYS = {
    "backend": "the backend llm-sync recorded for this project (written by llm-sync)",
    "cuda-archs": 'the GPU architectures the team builds for, e.g. "8.0;9.0" (written by llm-sync, only widened)',
    "checkouts": 'framework checkouts to install editable, e.g. ["verl[vllm]", "vendor/OpenRLHF"]',
} | {s.key: s.description for s in SPECS if s.in_project}
USER_KEYS = {s.key: s.description for s in SPECS}
LOG_FORMATS = ("human", "json")
INDEX_FORMATS = ("simple", "flat")
RELIEFS = ("override", "metadata")


def _check_keys(table: Mapping[str, Any], known: Mapping[str, str], where: str) -> None:
    for key, value in table.items():
        if key == "checkouts" and key in known:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise LlmSyncError(
                    f"{where} checkouts must be a list of folder names",
                    fix='write it as checkouts = ["verl[vllm]", "vendor/OpenRLHF"]',
                )
            continue
        if key not in known:
            raise LlmSyncError(
                f"unknown key {key!r} in {where}",
                why=f"llm-sync reads only: {', '.join(sorted(known))}",
                fix=f"remove {key!r} or correct its spelling",
            )
        if not isinstance(value, str):
            raise LlmSyncError(
                f"{where} {key} must be a string, not {type(value).__name__}",
                fix=f'write it as {key} = "..."',
            )


def validate_table(table: Mapping[str, Any], catalog: Catalog) -> None:
    """[tool.llm-sync]: known keys, strings, a valid recorded backend."""
    _check_keys(table, PROJECT_KEYS, "[tool.llm-sync]")
    if "backend" in table:
        check_backend(table["backend"], catalog, origin="[tool.llm-sync] backend")
    if "cuda-archs" in table and not parse_arch_text(table["cuda-archs"]):
        raise LlmSyncError(
            f"[tool.llm-sync] cuda-archs {table['cuda-archs']!r} is not a list of compute capabilities",
            why='llm-sync records the team\'s GPU architectures there as MAJOR.MINOR entries, e.g. "8.0;9.0"',
            fix="correct it, or delete the key and run llm-sync on each kind of GPU machine to record it again",
        )


def check_backend(value: str, catalog: Catalog, *, origin: str, allow_auto: bool = False) -> str:
    valid = ("auto", *catalog.backends) if allow_auto else catalog.backends
    if value not in valid:
        raise LlmSyncError(
            f"unknown backend {value!r} ({origin})",
            why=f"valid backends are: {', '.join(valid)}",
            fix="pick one of those, or `auto` to let llm-sync choose for this machine",
        )
    return value


def _check_url(value: str, origin: str) -> str:
    if not value.startswith(("http://", "https://", "file://")):
        raise LlmSyncError(
            f"{value!r} is not an index URL ({origin})",
            why="index URLs start with https://, http:// or file://",
            fix="give the mirror's base URL, e.g. https://mirror.example/pytorch/whl",
        )
    return value.rstrip("/")


def load_user_config(path: Path) -> dict[str, Any]:
    """The user config file's table; {} when there is none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise LlmSyncError(f"cannot read {path}: {error.strerror}", fix="check its permissions") from None
    if sys.version_info >= (3, 11):
        import tomllib  # noqa: PLC0415 - stdlib only from 3.11

        decode_error: type[Exception] = tomllib.TOMLDecodeError
        loads: Callable[[str], dict[str, Any]] = tomllib.loads
    else:  # pragma: no cover - the 3.10 fallback
        import tomlkit  # noqa: PLC0415
        import tomlkit.exceptions  # noqa: PLC0415

        decode_error = tomlkit.exceptions.ParseError

        def loads(text: str) -> dict[str, Any]:
            parsed: dict[str, Any] = tomlkit.parse(text).unwrap()
            return parsed

    try:
        table = loads(text)
    except decode_error as error:
        raise LlmSyncError(
            f"{path} is not valid TOML: {error}",
            fix=f"correct it, or delete {path} to use the defaults",
        ) from None
    _check_keys(table, USER_KEYS, str(path))
    return table


@dataclass(frozen=True)
class Resolved:
    settings: dict[str, Setting]

    def __getitem__(self, key: str) -> Setting:
        return self.settings[key]


def resolve(
    *,
    cli: Mapping[str, str | None],
    env: Mapping[str, str],
    project_table: Mapping[str, Any],
    user_table: Mapping[str, Any],
    user_path: Path,
    catalog: Catalog,
) -> Resolved:
    """Every setting from the first source that has it, validated, with its origin."""
    defaults = {
        "backend": "auto",
        "mirror": "",
        "torch-index-url": catalog.index_base,
        "torch-index-format": "",
        "default-index-url": "",
        "python-install-mirror": "",
        "log-format": "human",
        "relief": "override",
    }
    resolved = {}
    for spec in SPECS:
        candidates = [
            (cli.get(spec.key), spec.option),
            (env.get(spec.env, "").strip() or None, spec.env),
            (project_table.get(spec.key) if spec.in_project else None, "[tool.llm-sync]"),
            (user_table.get(spec.key), str(user_path)),
        ]
        value, origin = next(((v, o) for v, o in candidates if v), (defaults[spec.key], "default"))
        resolved[spec.key] = Setting(_validate(spec.key, str(value), origin, catalog), origin)
    return Resolved(resolved)


def _one_of(value: str, valid: tuple[str, ...], what: str, origin: str, fix: str) -> str:
    if value not in valid:
        raise LlmSyncError(
            f"unknown {what} {value!r} ({origin})", why=f"valid values are: {', '.join(valid)}", fix=fix
        )
    return value


def _check_mirror(value: str, origin: str, catalog: Catalog) -> str:
    if catalog.mirror(value) is not None:
        return value
    if "://" not in value:
        presets = ", ".join(m.name for m in catalog.mirrors)
        raise LlmSyncError(
            f"unknown mirror {value!r} ({origin})",
            why=f"presets are: {presets}; anything else must be a URL",
            fix="pick a preset, or give the base URL of a PyTorch wheel mirror",
        )
    return _check_url(value, origin)


def _validate(key: str, value: str, origin: str, catalog: Catalog) -> str:
    if origin == "default":
        return value
    checks: dict[str, Callable[[], str]] = {
        "backend": lambda: check_backend(value, catalog, origin=origin, allow_auto=True),
        "log-format": lambda: _one_of(value, LOG_FORMATS, "log format", origin, "use json or human"),
        "relief": lambda: _one_of(
            value,
            RELIEFS,
            "relief",
            origin,
            "override replaces the framework's pin everywhere; metadata rewrites its declared requirements",
        ),
        "torch-index-format": lambda: _one_of(
            value,
            INDEX_FORMATS,
            "index format",
            origin,
            "flat for a mirror listing all wheels on one page, else simple",
        ),
        "mirror": lambda: _check_mirror(value, origin, catalog),
    }
    return checks.get(key, lambda: _check_url(value, origin))()


@dataclass(frozen=True)
class Indexes:
    """Where packages come from, after mirrors: what the plan writes and what uv is told."""

    torch_base: Setting
    torch_format: str  # "simple", or "flat" for a plain file listing
    default_index: Setting | None
    python_install_mirror: Setting | None


def indexes(resolved: Resolved, catalog: Catalog) -> Indexes:
    """An explicit URL setting wins over the mirror preset, which wins over the default."""
    mirror_setting = resolved["mirror"]
    preset = catalog.mirror(mirror_setting.value) if mirror_setting.value else None
    torch_base, torch_format = resolved["torch-index-url"], "simple"
    if torch_base.origin == "default" and mirror_setting.value:
        if preset is None:  # a URL: the PyTorch wheel mirror's base
            torch_base = Setting(mirror_setting.value.rstrip("/"), mirror_setting.origin)
        elif preset.pytorch:
            torch_base = Setting(preset.pytorch, f"mirror {preset.name} ({mirror_setting.origin})")
            torch_format = preset.pytorch_format
    default_index: Setting | None = resolved["default-index-url"]
    if default_index is not None and not default_index.value:
        default_index = None
        if preset is not None and preset.pypi:
            default_index = Setting(preset.pypi, f"mirror {preset.name} ({mirror_setting.origin})")
    if resolved["torch-index-format"].value:
        torch_format = resolved["torch-index-format"].value
    python_mirror = resolved["python-install-mirror"]
    return Indexes(torch_base, torch_format, default_index, python_mirror if python_mirror.value else None)
