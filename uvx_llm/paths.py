"""Every file location llm-sync uses, from one place.

Order: a test override (``override_root``), then an environment variable, then
platformdirs' user directories.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "llm-sync"
_override_root: Path | None = None


def override_root(root: Path | None) -> None:
    """Put every llm-sync directory under ``root`` (tests); ``None`` undoes it."""
    global _override_root  # noqa: PLW0603 - one switch for the whole process, by design
    _override_root = root


def _choose(kind: str, env_var: str, default: str) -> Path:
    if _override_root is not None:
        return _override_root / kind
    from_env = os.environ.get(env_var)
    if from_env:
        return Path(from_env)
    return Path(default)


def log_dir() -> Path:
    """Where detailed logs go (crash logs of unexpected errors)."""
    return _choose("log", "LLM_SYNC_LOG_DIR", platformdirs.user_log_dir(APP_NAME))
