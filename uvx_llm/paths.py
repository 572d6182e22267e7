"""Every file location llm-sync uses, from one place.

Order: a test override (``override_root``), then an environment variable, then
platformdirs' user directories.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import ModuleType

APP_NAME = "llm-sync"
_override_root: Path | None = None


def override_root(root: Path | None) -> None:
    """Put every llm-sync directory under ``root`` (tests); ``None`` undoes it."""
    global _override_root  # noqa: PLW0603 - one switch for the whole process, by design
    _override_root = root


def _choose(kind: str, env_var: str, platform_dir: Callable[[str], str]) -> Path:
    """The test override, else the environment variable, else the platform's directory."""
    if _override_root is not None:
        return _override_root / kind
    from_env = os.environ.get(env_var)
    if from_env:
        return Path(from_env)
    return Path(platform_dir(APP_NAME))


def log_dir() -> Path:
    """Where detailed logs go (crash logs of unexpected errors, full build logs)."""
    return _choose("log", "LLM_SYNC_LOG_DIR", lambda app: _platformdirs().user_log_dir(app))


def config_dir() -> Path:
    """Where the user configuration file (config.toml) lives."""
    return _choose("config", "LLM_SYNC_CONFIG_DIR", lambda app: _platformdirs().user_config_dir(app))


def cache_dir() -> Path:
    """Where what llm-sync read from the network is kept (METADATA of releases the catalog lacks)."""
    return _choose("cache", "LLM_SYNC_CACHE_DIR", lambda app: _platformdirs().user_cache_dir(app))


def _platformdirs() -> ModuleType:
    import platformdirs  # noqa: PLC0415 - only when a path is needed: start-up time matters for hooks

    return platformdirs
