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
    assert log.use_colour(io.StringIO(), "always")
    assert not log.use_colour(Terminal(), "never")
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert log.use_colour(io.StringIO())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not log.use_colour(Terminal())
    assert log.use_colour(Terminal(), "always")  # --color always beats NO_COLOR, as in uv


def test_human_renderer() -> None:
    plain = log.HumanRenderer(colour=False)
    assert plain(None, "warning", {"event": "careful", "level": "warning"}) == "warning: careful"
    decision = {"event": "decision", "level": "info", "topic": "backend", "choice": "cu128", "reason": "why"}
    assert (
        log.HumanRenderer(colour=False, verbose=True)(None, "info", dict(decision)) == "backend: cu128 — why"
    )
    import structlog  # noqa: PLC0415 - the renderer raises its DropEvent

    with pytest.raises(structlog.DropEvent):  # decisions are for -v (and `plan`)
        plain(None, "info", dict(decision))
    assert plain(None, "info", {"event": "note", "level": "info", "key": 1}) == "note (key=1)"
    coloured = log.HumanRenderer(colour=True)
    assert coloured(None, "error", {"event": "bad", "level": "error"}) == "\x1b[1;31merror\x1b[0m: bad"
    assert coloured(None, "warning", {"event": "hm", "level": "warning"}) == "\x1b[1;33mwarning\x1b[0m: hm"
    assert (
        coloured(None, "info", {"event": "hint", "level": "info", "text": "try"})
        == "\x1b[1;36mhint\x1b[0m: try"
    )
    assert plain(None, "info", {"event": "hint", "level": "info", "text": "try"}) == "hint: try"


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
