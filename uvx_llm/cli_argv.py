"""What argv means before click parses it, and what an unknown option most likely was: part of
the command line's front door (cli.py), kept apart so cli.py stays declarations and dispatch.
"""

from __future__ import annotations

import click


def _value_options(group: click.Group) -> set[str]:
    """Every option that takes a value, of every command (the word after one is not a command)."""
    return {
        name
        for command in group.commands.values()
        for param in command.params
        if isinstance(param, click.Option) and not param.is_flag and not param.count
        for name in param.opts
    }


def _optional_values(group: click.Group) -> set[str]:
    """The options whose value may be left out (`--ray [ADDRESS]`): an option after one is not its value."""
    return {
        name
        for command in group.commands.values()
        for param in command.params
        if isinstance(param, click.Option) and getattr(param, "_flag_needs_value", False)
        for name in param.opts
    }


def _no_such_command(word: str, group: click.Group) -> click.UsageError:
    import difflib  # noqa: PLC0415 - only for this message

    close = difflib.get_close_matches(word, list(group.commands), n=1)
    hint = f" — did you mean {close[0]!r}?" if close else ""
    return click.UsageError(
        f"no such command {word!r}{hint}\n"
        f"  commands: {', '.join(sorted(group.commands))}; uv arguments go after `--` "
        f"(llm-sync -- {word}); nothing was written"
    )


def default_command(argv: list[str], group: click.Group) -> list[str]:
    """`llm-sync [options] [-- uv args]` means `llm-sync sync ...`; a command may follow options.

    A bare word before `--` that is neither a command nor an option's value is a usage error
    (`llm-sync chek`), found before anything is read or written: uv's arguments go after `--`.
    """
    previous = ""
    command: tuple[int, str] | None = None
    for position, word in enumerate(argv):
        if word == "--":
            break
        takes_value = previous in _value_options(group) and not (
            word.startswith("-") and previous in _optional_values(group)
        )
        previous = "" if takes_value else word
        if takes_value or word.startswith("-"):
            continue
        if command is None and word in group.commands:
            command = (position, word)
            continue
        raise _no_such_command(word, group)
    if command is not None:
        position, word = command
        return [word, *argv[:position], *argv[position + 1 :]]
    if any(token in {"--help", "-h", "--version"} for token in argv[:1]):
        return argv
    return ["sync", *argv]


def explain_unknown_option(error: click.NoSuchOption) -> click.UsageError:
    """An unknown option is most often uv's (`sync --frozen`): say where uv's options go, and
    suggest one of ours only when it is a near miss (not --force for --frozen)."""
    import difflib  # noqa: PLC0415 - only for this message

    name, ctx = error.option_name, error.ctx
    command = ctx.info_name if ctx is not None else None
    if command == "check" and name in {"--cuda", "--rocm", "--arch"}:
        return click.UsageError(
            "check is machine-independent: --cuda/--rocm/--arch do not apply (use `llm-sync plan`)", ctx
        )
    ours = sorted({opt for param in (ctx.command.params if ctx else []) for opt in param.opts})
    close = difflib.get_close_matches(name, ours, n=1, cutoff=0.8)
    message = f"No such option: {name}" + (f" — did you mean {close[0]}?" if close else "")
    if command in {"sync", "plan"}:
        message += f"\n  uv options go after `--` (llm-sync {command} -- {name})"
    return click.UsageError(message + "; nothing was written", ctx)
