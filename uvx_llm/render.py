"""The commands' results as text for people and as JSON documents for programs.

Each result has one function per form; the command line prints what they return.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from uvx_llm.redact import redact_data

if TYPE_CHECKING:
    from uvx_llm.lockfile import Resolution
    from uvx_llm.pipeline import Checked, Preview, Shown

PRECEDENCE = ("command line", "LLM_SYNC_* environment", "[tool.llm-sync]", "user config file", "default")


def plan_document(preview: Preview, resolution: Resolution | None = None) -> dict[str, Any]:
    project, made, machine = preview.run.project, preview.run.plan, preview.run.machine
    resolved = {"resolved": resolution.to_json()} if resolution is not None else {}
    return resolved | {
        "project": str(project.path),
        "machine": machine.to_json() if machine else None,
        "backend": made.backend,
        "decisions": [{"topic": d.topic, "choice": d.choice, "reason": d.reason} for d in made.decisions],
        "warnings": list(made.warnings),
        "diff": preview.diff,
        "uv": {
            "command": list(preview.command),
            "environment": {s.name: s.shown for s in made.env if not s.from_user},
            "environment_reasons": [
                {"name": s.name, "value": s.shown, "reason": s.reason, "from_user": s.from_user}
                for s in made.env
            ],
            "min_version": str(made.uv_min_version) if made.uv_min_version else None,
        },
    }


def resolution_text(resolution: Resolution) -> str:
    """The locked stack per platform beside the plan, and where they disagree."""
    from uvx_llm.lockfile import TRACKED  # noqa: PLC0415 - only plan --resolve shows a lock

    if resolution.code != 0:
        tail = "\n".join(f"  {line}" for line in resolution.output[-12:])
        return (
            f"Resolved: `uv lock` failed (exit {resolution.code}) after {resolution.seconds:.1f} s:\n{tail}"
        )
    lines = [f"Resolved (uv lock in a temporary copy, {resolution.seconds:.1f} s):"]
    for stack in resolution.stacks:
        found = [str(p) for n in TRACKED if (p := stack.get(n)) is not None]
        lines.append(
            f"  {stack.platform} (Python {stack.python}): {', '.join(found) or 'no tracked package'}"
        )
    if resolution.problems:
        lines.append("  outside the plan:")
        lines.extend(f"    {problem}" for problem in resolution.problems)
    else:
        lines.append("  the lock agrees with the plan")
    return "\n".join(lines)


def plan_text(preview: Preview) -> str:
    made, machine = preview.run.plan, preview.run.machine
    out: list[str] = []
    sections: list[tuple[str, list[str]]] = [
        ("Machine", machine.summary() if machine else []),
        ("Decisions", [f"{d.topic}: {d.choice}\n    {d.reason}" for d in made.decisions]),
        ("Warnings", list(made.warnings)),
    ]
    for title, lines in sections:
        if lines:
            out.append(f"{title}:")
            out.append("\n".join(f"  {line}" for line in lines))
    out.append("Changes to pyproject.toml:" + ("" if preview.diff else " none"))
    if preview.diff:
        out.append(preview.diff.rstrip("\n"))
    out.append("Would run:\n  " + " ".join(preview.command))
    if made.env:
        out.append("  with environment:")
        out.extend(f"    {setting.name}={setting.shown}\n        {setting.reason}" for setting in made.env)
    else:
        out.append("  environment: inherited unchanged")
    if made.uv_min_version:
        out.append(f"  (needs uv >= {made.uv_min_version})")
    return "\n".join(out)


def check_document(checked: Checked) -> dict[str, Any]:
    return {
        "project": str(checked.run.project.path),
        "up_to_date": checked.up_to_date,
        "fixed": checked.fixed,
        "backend": checked.run.plan.backend,
        "diff": checked.diff,
        "warnings": list(checked.run.plan.warnings),
    }


def settings_document(shown: Shown) -> dict[str, Any]:
    return {
        "settings": {
            k: {"value": redact_data(s.value, k), "origin": s.origin}
            for k, s in shown.settings.settings.items()
        },
        "recorded_backend": shown.recorded_backend,
        "project": str(shown.project.path) if shown.project else None,
        "user_config": str(shown.user_config),
        "precedence": list(PRECEDENCE),
    }


def settings_text(shown: Shown) -> str:
    user_path = shown.user_config
    lines = [
        "precedence: " + " > ".join(PRECEDENCE),
        f"user config file: {user_path}{'' if user_path.exists() else ' (none)'}",
        f"project: {shown.project.path if shown.project else '(none)'}",
        *(
            f"{key} = {redact_data(setting.value, key)}    ({setting.origin})"
            for key, setting in shown.settings.settings.items()
        ),
        (
            f"recorded backend = {shown.recorded_backend or '(none yet)'}"
            "    ([tool.llm-sync] backend, written by llm-sync)"
        ),
    ]
    return "\n".join(lines)
