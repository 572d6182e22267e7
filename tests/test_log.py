from __future__ import annotations

import io

import pytest

from uvx_llm import log


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    assert log.use_colour(Terminal())
    assert not log.use_colour(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not log.use_colour(Terminal())


def test_human_renderer() -> None:
    plain = log.HumanRenderer(colour=False)
    assert plain(None, "warning", {"event": "careful", "level": "warning"}) == "warning: careful"
    assert (
        plain(
            None,
            "info",
            {"event": "decision", "level": "info", "topic": "backend", "choice": "cu128", "reason": "why"},
        )
        == "backend: cu128 — why"
    )
    assert plain(None, "info", {"event": "note", "level": "info", "key": 1}) == "note (key=1)"
    coloured = log.HumanRenderer(colour=True)
    assert coloured(None, "error", {"event": "bad", "level": "error"}).startswith("\x1b[31m")


def test_timings_are_for_json_or_verbose_only() -> None:
    import structlog  # noqa: PLC0415 - the renderer raises its DropEvent

    with pytest.raises(structlog.DropEvent):
        log.HumanRenderer(colour=False)(
            None, "info", {"event": "stage", "level": "info", "stage": "plan", "seconds": 0.1}
        )
    verbose = log.HumanRenderer(colour=False, verbose=True)
    assert (
        verbose(None, "info", {"event": "stage", "level": "info", "stage": "plan", "seconds": 0.1})
        == "stage (stage=plan seconds=0.1)"
    )
    log.configure(verbosity=0, log_format="human")
    assert not log.wants_timings()
    log.configure(verbosity=0, log_format="json")
    assert log.wants_timings()
    log.configure(verbosity=0)


def test_verbosity_levels() -> None:
    assert log.verbosity_level(-1) == log.ERROR
    assert log.verbosity_level(0) == log.INFO
    assert log.verbosity_level(2) == log.DEBUG
