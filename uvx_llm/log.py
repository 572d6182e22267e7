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

# uv's palette: red bold `error:`, yellow bold `warning:`, cyan bold `hint:`/`fix:`/`why:`.
STYLES = {
    "error": "\x1b[1;31m",
    "warning": "\x1b[1;33m",
    "hint": "\x1b[1;36m",
    "debug": "\x1b[2m",
    "added": "\x1b[32m",
    "removed": "\x1b[31m",
    "ok": "\x1b[32m",
    "bold": "\x1b[1m",
}
_LEVEL_STYLE = {level: STYLES[level] for level in ("warning", "error", "debug")}
_RESET = "\x1b[0m"
COLOR_CHOICES = ("auto", "always", "never")
_settings: dict[str, Any] = {"verbosity": 0, "configured": False, "format": "human", "color": "auto"}
# How the human renderer writes structured events; JSON output carries the fields as they are.
_TEMPLATES = {
    "decision": "{topic}: {choice} — {reason}",
    "environment": "{name}={value} — {reason}",
}
# Timings, each decision and each environment setting: in JSON always, for people only with -v
# (and in `llm-sync plan`); a default run says what it did in a line or two (render.sync_summary).
_VERBOSE_ONLY = {"stage", "decision", "environment"}


def use_colour(stream: Any, choice: str | None = None) -> bool:
    """Whether to colour what goes to ``stream``, as uv decides: ``--color always``/``never``
    first; then NO_COLOR (no-color.org) turns colour off and FORCE_COLOR on; else colour
    only on a terminal. ``choice`` defaults to the run's ``--color``."""
    choice = str(_settings["color"]) if choice is None else choice
    if choice in {"always", "never"}:
        return choice == "always"
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def paint(text: str, style: str, *, colour: bool) -> str:
    """``text`` in one of `STYLES`, when ``colour``."""
    return f"{STYLES[style]}{text}{_RESET}" if colour and text else text


def colour_choice() -> str:
    """The run's ``--color`` (auto, always or never)."""
    return str(_settings["color"])


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
        if message == "hint":  # a suggestion after an error or a warning, as uv writes them
            return f"{paint('hint', 'hint', colour=self.colour)}: {event.get('text', '')}"
        if message in _TEMPLATES:
            text = _TEMPLATES[message].format(**event)
        else:
            extras = " ".join(f"{key}={value}" for key, value in event.items())
            text = message + (f" ({extras})" if extras else "")
        if level == "info":
            return text
        return f"{paint(level, level, colour=self.colour and level in _LEVEL_STYLE)}: {text}"


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


def configure(*, verbosity: int = 0, log_format: str = "human", color: str = "auto") -> None:
    """Remember the settings; structlog itself is set up on the first message."""
    _settings["verbosity"] = verbosity
    _settings["format"] = log_format
    _settings["color"] = color
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
