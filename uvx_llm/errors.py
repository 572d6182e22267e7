"""The one error type llm-sync raises for problems a user can act on."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Exit codes of the `llm-sync` command (docs/exit-codes.md)."""

    OK = 0
    DIFFERENCES = 1  # `check` found differences; `sync`: uv failed, or locked what the plan forbids
    USAGE = 2  # usage error or bad input: nothing was written
    INTERNAL = 3  # a bug in llm-sync: a short message, details in a log file
    OUTPUT = 4  # the output could not be written (stdout closed or full)
    SIGNAL = 128  # 128 + N: a signal ended the run (llm-sync's own SIGINT/SIGTERM, or uv's)
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the program is, as Ctrl-C raises KeyboardInterrupt: every
    clean-up that runs for Ctrl-C (the uv process tree, the held-back write) runs for these too."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class LlmSyncError(Exception):
    """What happened, why, and what to do about it.

    Raised by core modules and caught once, in the command-line entry point,
    which prints the three parts and exits with ``exit_code``.
    """

    def __init__(
        self,
        what: str,
        *,
        why: str = "",
        fix: str = "",
        exit_code: int = ExitCode.USAGE,
    ) -> None:
        super().__init__(what)
        self.what = what
        self.why = why
        self.fix = fix
        self.exit_code = exit_code

    def render(self, *, colour: bool = False) -> str:
        """``error: what`` / ``why:`` / ``fix:``, labels coloured as uv colours them when ``colour``."""
        from uvx_llm.log import paint  # noqa: PLC0415 - only when an error is shown
        from uvx_llm.redact import redact  # noqa: PLC0415 - same

        lines = [f"{paint('error', 'error', colour=colour)}: {redact(self.what)}"]
        if self.why:
            lines.append(f"  {paint('why', 'bold', colour=colour)}: {redact(self.why)}")
        if self.fix:
            lines.append(f"  {paint('fix', 'hint', colour=colour)}: {redact(self.fix)}")
        return "\n".join(lines)


class NotYetPlannedError(LlmSyncError):
    """The project lacks a decision only a run on a machine can take (no backend recorded):
    `check` reports it as a difference (exit 1), not as bad input."""

    def __init__(self, what: str, *, why: str = "", fix: str = "") -> None:
        super().__init__(what, why=why, fix=fix, exit_code=ExitCode.DIFFERENCES)
