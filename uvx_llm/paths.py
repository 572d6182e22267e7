"""Every file location llm-sync uses, from one place.

Order: a test override (``override_root``), then an environment variable, then
platformdirs' user directories.
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "llm-sync"
_override_root: Path | None = None


def override_root(root: Path | None) -> None:
    """Put every llm-sync directory under ``root`` (tests); ``None`` undoes it."""
    global _override_root  # noqa: PLW0603 - one switch for the whole process, by design
    _override_root = root


def log_dir() -> Path:
    """Where detailed logs go (crash logs of unexpected errors, full build logs)."""
    if _override_root is not None:
        return _override_root / "log"
    from_env = os.environ.get("LLM_SYNC_LOG_DIR")
    if from_env:
        return Path(from_env)
    import platformdirs  # noqa: PLC0415 - only when a log is written: start-up time matters for hooks

    return Path(platformdirs.user_log_dir(APP_NAME))


def config_dir() -> Path:
    """Where the user configuration file (config.toml) lives."""
    if _override_root is not None:
        return _override_root / "config"
    from_env = os.environ.get("LLM_SYNC_CONFIG_DIR")
    if from_env:
        return Path(from_env)
    import platformdirs  # noqa: PLC0415 - start-up time, as above

    return Path(platformdirs.user_config_dir(APP_NAME))
