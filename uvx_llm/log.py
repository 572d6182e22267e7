"""structlog set-up: concise human output on stderr, details only with -v.

structlog (and the asyncio it imports) costs more start-up time than the whole of
`llm-sync check` on an up-to-date file, which runs on every commit as a
pre-commit hook; so loggers are created lazily, and structlog is imported and
configured when the first message is actually emitted.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import MutableMapping

_LEVEL_STYLE = {"warning": "\x1b[33m", "error": "\x1b[31m", "debug": "\x1b[2m"}
_RESET = "\x1b[0m"
_settings: dict[str, Any] = {"verbosity": 0, "configured": False, "format": "human"}
# How the human renderer writes structured events; JSON output carries the fields as they are.
_TEMPLATES = {
    "decision": "{topic}: {choice} — {reason}",
    "environment": "{name}={value} — {reason}",
}
_VERBOSE_ONLY = {"stage"}  # timings: in JSON always, for people only with -v


def use_colour(stream: Any) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class HumanRenderer:
    """``warning: message (key=value)``: one short line per event."""

    def __init__(self, *, colour: bool, verbose: bool = False) -> None:
        self.colour = colour
        self.verbose = verbose

    def __call__(self, _logger: object, method: str, event: MutableMapping[str, Any]) -> str:
        message = str(event.pop("event", ""))
        event.pop("timestamp", None)
        level = str(event.pop("level", method))
        if message in _VERBOSE_ONLY and not self.verbose:
            raise _drop()
        if message in _TEMPLATES:
            text = _TEMPLATES[message].format(**event)
        else:
            extras = " ".join(f"{key}={value}" for key, value in event.items())
            text = message + (f" ({extras})" if extras else "")
        prefix = "" if level == "info" else f"{level}: "
        if self.colour and level in _LEVEL_STYLE:
            prefix = f"{_LEVEL_STYLE[level]}{prefix}{_RESET}"
        return prefix + text


# The standard logging levels, without importing logging (start-up time).
DEBUG, INFO, ERROR = 10, 20, 40


def verbosity_level(verbosity: int) -> int:
    """-q → errors only, default → info, -v → debug."""
    if verbosity < 0:
        return ERROR
    if verbosity == 0:
        return INFO
    return DEBUG


def wants_timings() -> bool:
    """Stage timings are emitted only where they are shown: JSON output, or -v."""
    return _settings["format"] == "json" or int(_settings["verbosity"]) > 0


def _drop() -> BaseException:
    import structlog  # noqa: PLC0415 - already imported when a message is rendered

    return structlog.DropEvent()


def configure(*, verbosity: int = 0, log_format: str = "human") -> None:
    """Remember the settings; structlog itself is set up on the first message."""
    _settings["verbosity"] = verbosity
    _settings["format"] = log_format
    _settings["configured"] = False


def _redacted(_logger: object, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Every event, in every format, goes through the one redaction (redact.py)."""
    from uvx_llm.redact import redact_data  # noqa: PLC0415 - small, loaded with structlog

    shown: MutableMapping[str, Any] = redact_data(dict(event))
    return shown


def _structlog_configured() -> Any:
    import structlog  # noqa: PLC0415 - deferred: see the module docstring

    if not _settings["configured"]:
        renderer: Any
        if _settings["format"] == "json":
            renderer = structlog.processors.JSONRenderer()
            stamp = [structlog.processors.TimeStamper(fmt="iso", utc=True)]
        else:
            renderer = HumanRenderer(colour=use_colour(sys.stderr), verbose=int(_settings["verbosity"]) > 0)
            stamp = []
        structlog.configure(
            processors=[structlog.processors.add_log_level, *stamp, _redacted, renderer],
            wrapper_class=structlog.make_filtering_bound_logger(verbosity_level(int(_settings["verbosity"]))),
            logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
            cache_logger_on_first_use=False,
        )
        _settings["configured"] = True
    return structlog


class LazyLogger:
    """A structlog logger created on first use."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, method: str) -> Any:
        return getattr(_structlog_configured().get_logger(self._name), method)


def get_logger(name: str) -> Any:
    return LazyLogger(name)
