"""structlog set-up: concise human output on stderr, details only with -v."""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import MutableMapping

import structlog

_LEVEL_STYLE = {"warning": "\x1b[33m", "error": "\x1b[31m", "debug": "\x1b[2m"}
_RESET = "\x1b[0m"


def use_colour(stream: Any) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class HumanRenderer:
    """``warning: message (key=value)``: one short line per event."""

    def __init__(self, *, colour: bool) -> None:
        self.colour = colour

    def __call__(self, _logger: object, method: str, event: MutableMapping[str, Any]) -> str:
        message = str(event.pop("event", ""))
        event.pop("timestamp", None)
        level = str(event.pop("level", method))
        extras = " ".join(f"{key}={value}" for key, value in event.items())
        text = message + (f" ({extras})" if extras else "")
        prefix = "" if level == "info" else f"{level}: "
        if self.colour and level in _LEVEL_STYLE:
            prefix = f"{_LEVEL_STYLE[level]}{prefix}{_RESET}"
        return prefix + text


def verbosity_level(verbosity: int) -> int:
    """-q → errors only, default → info, -v → debug."""
    if verbosity < 0:
        return logging.ERROR
    if verbosity == 0:
        return logging.INFO
    return logging.DEBUG


def configure(*, verbosity: int = 0) -> None:
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            HumanRenderer(colour=use_colour(sys.stderr)),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(verbosity_level(verbosity)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
