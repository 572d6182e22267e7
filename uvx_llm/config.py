"""Settings for one run, each with where it came from.

One precedence for every setting: command line > LLM_SYNC_* environment >
[tool.llm-sync] in pyproject.toml > the user config file > defaults.
`llm-sync config` prints the resolved values and their origins.

[tool.llm-sync] `backend` is different: it is the backend llm-sync *recorded* for
the team (written by llm-sync). The `backend` setting here is what this run asks
for (`auto` keeps the recorded one or picks for the machine).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from uvx_llm import tomlread
from uvx_llm.actions import EnvSetting
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
    """One setting, declared once: everything else (the command-line options, resolution and
    validation, the default-command lookahead, the tables in docs/) is made from these."""

    key: str  # as written in [tool.llm-sync] and the user config file
    help: str  # one line, for --help and the docs' tables
    metavar: str | None = None  # the option's value, in --help; None: choices or a plain word
    choices: tuple[str, ...] = ()  # the valid values, when they are a fixed list
    default: str = ""  # "" for no value; see default_of for the catalog's index base
    in_project: bool = True  # may be set in [tool.llm-sync]
    in_user: bool = True  # may be set in the user config file
    flag: bool = True  # has a command-line option (--<key>)
    check: str = "url"  # the validator: url, backend, mirror, choice, or at-use (parsed where it is used)
    noun: str = ""  # what a bad value is called in an error (default: the key)
    fix: str = ""  # the fix an error about a bad choice suggests
    multiple: bool = False  # the option may be repeated: its values are joined with os.pathsep

    @property
    def option(self) -> str:
        return f"--{self.key}"

    @property
    def env(self) -> str:
        return "LLM_SYNC_" + self.key.upper().replace("-", "_")

    @property
    def param(self) -> str:
        """The keyword a command receives the option as."""
        return self.key.replace("-", "_")


SPECS = (
    Spec(
        "backend",
        "PyTorch backend to ask for: auto, cpu, cu126, cu128, ..., rocm6.3, ..., xpu",
        default="auto",
        in_project=False,
        check="backend",
    ),
    Spec(
        "cuda",
        "plan for a driver that runs CUDA X.Y (e.g. 12.8) instead of this machine's; not for check",
        metavar="X.Y",
        in_project=False,
        in_user=False,
        check="at-use",
    ),
    Spec(
        "rocm",
        "plan for an AMD machine with ROCm X.Y (e.g. 6.3) installed instead of this machine; not for check",
        metavar="X.Y",
        in_project=False,
        in_user=False,
        check="at-use",
    ),
    Spec(
        "arch",
        "plan for GPUs of these compute capabilities (8.0,9.0; 9.0a and sm_90 name the same GPUs), or AMD gfx targets (gfx942,gfx90a), instead of this machine's; not for check",
        metavar="X.Y[,X.Y]|gfxN[,gfxN]",
        in_project=False,
        in_user=False,
        check="at-use",
    ),
    Spec(
        "channel",
        "PyTorch's channel: stable releases, test (release candidates) or nightly; recorded in [tool.llm-sync] like the backend",
        choices=("stable", "test", "nightly"),
        default="stable",
        check="choice",
        fix="stable for releases; test for release candidates; nightly for the nightly builds",
    ),
    Spec(
        "machines",
        "plan for every machine these `llm-sync detect --json` documents describe (files, or folders of *.json; "
        "repeat the option, or separate paths with the OS path separator) instead of this one",
        metavar="FILE|DIR",
        in_user=False,
        check="at-use",
        multiple=True,
    ),
    Spec(
        "mirror",
        "a mirror preset (tuna, nju, aliyun) or the base URL of a PyTorch wheel mirror",
        metavar="NAME|URL",
        check="mirror",
    ),
    Spec(
        "torch-index-url",
        "base URL of the PyTorch wheel indexes (a mirror): URL/BACKEND is one index",
        metavar="URL",
        default="<catalog>",
    ),
    Spec(
        "torch-index-format",
        "simple (PEP 503, the default) or flat (a mirror serving one plain file listing)",
        choices=("simple", "flat"),
        check="choice",
        noun="index format",
        fix="flat for a mirror listing all wheels on one page, else simple",
    ),
    Spec(
        "default-index-url",
        "a PyPI mirror: uv's default index for this run (UV_DEFAULT_INDEX)",
        metavar="URL",
    ),
    Spec(
        "python-install-mirror",
        "where uv downloads Python builds from (UV_PYTHON_INSTALL_MIRROR)",
        metavar="URL",
    ),
    Spec(
        "relief",
        "how to relieve a framework's hard pin the project contradicts: override or metadata",
        choices=("override", "metadata"),
        default="override",
        check="choice",
        fix="override replaces the framework's pin everywhere; metadata rewrites its declared requirements",
    ),
    Spec(
        "prefer",
        "where the project leaves torch open: prebuilt (the newest torch with prebuilt CUDA-extension wheels) or newest (the newest torch, compiling if needed)",
        choices=("prebuilt", "newest"),
        default="prebuilt",
        check="choice",
        fix="prebuilt saves the compile (flash-attn: about 23 min per GPU architecture on 16 cores); newest takes the newest torch",
    ),
    Spec(
        "prebuilt-url",
        "where release wheels are downloaded from (a GitHub mirror or proxy): URL/OWNER/REPO/releases/download/TAG/WHEEL",
        metavar="URL",
        default="https://github.com",
    ),
    Spec(
        "wheelhouse",
        "a folder the team shares (NFS, a mounted bucket): a CUDA extension built here is copied there, and a machine with the same package, version, torch, GPU architectures and Python installs it without compiling",
        metavar="PATH",
        check="at-use",
    ),
    Spec(
        "vllm-build",
        "a vLLM checkout (vllm/ or listed in checkouts): precompiled (its commit's published binaries, nothing compiles) or full (compile its CUDA kernels)",
        choices=("precompiled", "full"),
        default="precompiled",
        check="choice",
        noun="vLLM build",
        fix="precompiled fetches the binaries vLLM publishes for the checkout's commit; full compiles them (C++/CUDA changes)",
    ),
    Spec(
        "log-format",
        "human, or json (one JSON object per event)",
        choices=("human", "json"),
        default="human",
        in_project=False,
        check="choice",
        noun="log format",
        fix="use json or human",
    ),
)
SPEC_BY_KEY = {spec.key: spec for spec in SPECS}
# Keys of [tool.llm-sync]: the settings allowed there, and the recorded backend.
PROJECT_KEYS = {
    "backend": "the backend llm-sync recorded for this project (written by llm-sync)",
    "cuda-archs": 'the GPU architectures the team builds for, e.g. "8.0;9.0" (written by llm-sync, only widened)',
    "checkouts": 'framework checkouts to install editable, e.g. ["verl[vllm]", { path = "vendor/OpenRLHF", name = "openrlhf" }]',
} | {s.key: s.help for s in SPECS if s.in_project}
USER_KEYS = {s.key: s.help for s in SPECS if s.in_user}


def default_of(spec: Spec, catalog: Catalog) -> str:
    return catalog.index_base if spec.default == "<catalog>" else spec.default


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def settings_table() -> str:
    """The settings table of docs/configuration.md (a test keeps the two equal)."""
    rows = [
        "| setting | option | environment | `[tool.llm-sync]` | user config | default | meaning |",
        "|---|---|---|---|---|---|---|",
    ]
    for spec in SPECS:
        option = f"`{spec.option}`" if spec.flag else "—"
        default = {"": "—", "<catalog>": "`https://download.pytorch.org/whl`"}.get(
            spec.default, f"`{spec.default}`"
        )
        rows.append(
            f"| `{spec.key}` | {option} | `{spec.env}` | {_yes(spec.in_project)} | {_yes(spec.in_user)} "
            f"| {default} | {spec.help} |"
        )
    return "\n".join(rows) + "\n"


def environment_table() -> str:
    """The settings' rows of docs/environment.md (a test keeps the two equal)."""
    rows = ["| variable | setting |", "|---|---|"]
    rows.extend(f"| `{spec.env}` | `{spec.key}`: {spec.help} |" for spec in SPECS)
    return "\n".join(rows) + "\n"


def _checkout_entry_ok(entry: object) -> bool:
    """ "verl[vllm]", or { path = "vendor/OpenRLHF", name = "openrlhf", version = "0.11.0", extras = ["vllm"] }."""
    if isinstance(entry, str):
        return True
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
        return False
    if set(entry) - {"path", "name", "version", "extras"}:
        return False
    extras = entry.get("extras", [])
    texts = all(isinstance(entry.get(k, ""), str) for k in ("name", "version"))
    return texts and isinstance(extras, list) and all(isinstance(e, str) for e in extras)


def _check_keys(table: Mapping[str, Any], known: Mapping[str, str], where: str) -> None:
    for key, value in table.items():
        if key == "checkouts" and key in known:
            if not isinstance(value, list) or not all(_checkout_entry_ok(v) for v in value):
                raise LlmSyncError(
                    f"{where} checkouts must be a list of folder names or tables",
                    why="a table takes path (required), name, version (text) and extras (a list of text)",
                    fix='write it as checkouts = ["verl[vllm]", { path = "vendor/OpenRLHF", name = "openrlhf", extras = ["vllm"] }]',
                )
            for entry in value:
                path = entry.get("path", "") if isinstance(entry, dict) else entry.split("[", 1)[0]
                # the project itself or a folder above it: every part is "." or ".." (or nothing)
                if not set(str(path).strip().replace("\\", "/").split("/")) - {"", ".", ".."}:
                    raise LlmSyncError(
                        f"{where} checkouts names {entry!r}, which is not a checkout inside the project",
                        why="each entry is a framework checkout's folder under the project; the project itself "
                        "(or a folder above it) would make it depend on itself",
                        fix='name the checkout\'s folder, e.g. checkouts = ["verl"], or remove the entry',
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
    except UnicodeDecodeError as error:
        raise LlmSyncError(
            f"{path} is not UTF-8 text (byte {error.start})",
            why="TOML files must be UTF-8",
            fix=f"re-save it as UTF-8, or delete {path} to use the defaults",
        ) from None
    try:
        table = tomlread.loads(text)
    except ValueError as error:
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
    resolved = {}
    for spec in SPECS:
        given = cli.get(spec.key) if spec.flag else None
        if given is not None and not given.strip():
            raise LlmSyncError(
                f"{spec.option} was given an empty value",
                why="an empty value would silently mean 'not set' (an unset variable in `--cuda $CUDA`)",
                fix=f"give {spec.option} a value, or leave the option out",
            )
        candidates = [
            (cli.get(spec.key) if spec.flag else None, spec.option),
            (env.get(spec.env, "").strip() or None, spec.env),
            (project_table.get(spec.key) if spec.in_project else None, "[tool.llm-sync]"),
            (user_table.get(spec.key) if spec.in_user else None, str(user_path)),
        ]
        value, origin = next(((v, o) for v, o in candidates if v), (default_of(spec, catalog), "default"))
        resolved[spec.key] = Setting(_validate(spec, str(value), origin, catalog), origin)
    return Resolved(resolved)


def _one_of(spec: Spec, value: str, origin: str) -> str:
    if value not in spec.choices:
        raise LlmSyncError(
            f"unknown {spec.noun or spec.key} {value!r} ({origin})",
            why=f"valid values are: {', '.join(spec.choices)}",
            fix=spec.fix,
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


def _validate(spec: Spec, value: str, origin: str, catalog: Catalog) -> str:
    if origin == "default":
        return value
    checks: dict[str, Callable[[], str]] = {
        "at-use": lambda: value,
        "backend": lambda: check_backend(value, catalog, origin=origin, allow_auto=True),
        "choice": lambda: _one_of(spec, value, origin),
        "mirror": lambda: _check_mirror(value, origin, catalog),
        "url": lambda: _check_url(value, origin),
    }
    return checks[spec.check]()


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


def mirror_environment(chosen: Indexes, environ: Mapping[str, str]) -> tuple[EnvSetting, ...]:
    """Mirrors that are this machine's business: told to uv, never written to the file.
    A variable already set in ``environ`` is the user's and is kept."""
    found = []
    for variable, setting in (
        ("UV_DEFAULT_INDEX", chosen.default_index),
        ("UV_PYTHON_INSTALL_MIRROR", chosen.python_install_mirror),
    ):
        if setting is None:
            continue
        if environ.get(variable):
            found.append(
                EnvSetting(variable, environ[variable], "set in your environment: kept", from_user=True)
            )
        else:
            found.append(EnvSetting(variable, setting.value, f"from {setting.origin}"))
    return tuple(found)
