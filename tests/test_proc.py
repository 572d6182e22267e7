"""The subprocess helper: a program that cannot start or does not answer is a value."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from uvx_llm import proc

if TYPE_CHECKING:
    from pathlib import Path


def test_a_missing_program_is_a_failure_not_an_exception(tmp_path: Path) -> None:
    result = proc.run([str(tmp_path / "no-such-program"), "--version"], timeout=5)
    assert result.failure == "No such file or directory"
    assert not result.timed_out
    assert result.returncode == -1
    assert not result.ok


def test_a_program_that_does_not_answer_in_time_is_a_failure() -> None:
    result = proc.run([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert result.timed_out
    assert result.failure == "no answer within 0.5 s"


def test_a_program_that_ran_is_ok() -> None:
    result = proc.run([sys.executable, "-c", "print('hi')"], timeout=30)
    assert result.ok
    assert result.stdout == "hi\n"
    assert result.failure is None
