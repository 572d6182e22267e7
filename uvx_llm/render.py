"""The commands' results as text for people and as JSON documents for programs.

Each result has one function per form; the command line prints what they return.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from uvx_llm.log import paint
from uvx_llm.redact import redact_data

if TYPE_CHECKING:
    from uvx_llm import actions
    from uvx_llm.lockfile import Resolution
    from uvx_llm.machine import Machine
    from uvx_llm.pipeline import Checked, Preview, Run, Shown

PRECEDENCE = ("command line", "LLM_SYNC_* environment", "[tool.llm-sync]", "user config file", "default")


def plan_document(preview: Preview, resolution: Resolution | None = None) -> dict[str, Any]:
    project, made, machine = preview.run.project, preview.run.plan, preview.run.machine
    resolved = {"resolved": resolution.to_json()} if resolution is not None else {}
    return resolved | {
        "project": str(project.path),
        "machine": machine.to_json() if machine else None,
        "nodes": [
            {"name": node.name, "file": node.origin, "machine": node.machine.to_json()}
            for node in preview.run.fleet.nodes
        ]
        if preview.run.fleet
        else None,
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


def coloured_diff(diff: str, *, colour: bool) -> str:
    """A unified diff with added lines green and removed lines red, as `git diff` shows it."""
    if not colour:
        return diff
    lines = []
    for line in diff.splitlines(keepends=True):
        if line.startswith(("+++", "---")):
            lines.append(paint(line.rstrip("\n"), "bold", colour=colour) + "\n" * line.endswith("\n"))
        elif line.startswith(("+", "-")):
            style = "added" if line.startswith("+") else "removed"
            lines.append(paint(line.rstrip("\n"), style, colour=colour) + "\n" * line.endswith("\n"))
        else:
            lines.append(line)
    return "".join(lines)


def plan_text(preview: Preview, *, colour: bool = False) -> str:
    made, machine = preview.run.plan, preview.run.machine
    out: list[str] = []
    sections: list[tuple[str, list[str]]] = [
        ("Machine", machine.summary() if machine else []),
        ("Decisions", [f"{d.topic}: {d.choice}\n    {d.reason}" for d in made.decisions]),
        ("Warnings", [paint(w, "warning", colour=colour) for w in made.warnings]),
    ]
    for title, lines in sections:
        if lines:
            out.append(f"{title}:")
            out.append("\n".join(f"  {line}" for line in lines))
    out.append("Changes to pyproject.toml:" + ("" if preview.diff else " none"))
    if preview.diff:
        out.append(coloured_diff(preview.diff, colour=colour).rstrip("\n"))
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


# --- what a default `llm-sync` run says of its own --------------------------------------------


def machine_facts(machine: Machine | None) -> str:
    """The facts the backend was chosen on, in a few words: ``driver 580.95, sm_90``."""
    from uvx_llm.catalog import show_pair, show_sm  # noqa: PLC0415 - small, loaded with the plan

    if machine is None:
        return ""
    if not machine.has_nvidia and machine.has_amd:
        return ", ".join([f"ROCm {machine.rocm}" if machine.rocm else "ROCm unknown", *machine.gfx_targets])
    if not machine.has_nvidia and machine.intel:
        return ", ".join(g.name for g in machine.intel)
    if not machine.has_nvidia:
        return "no NVIDIA GPU"
    facts = []
    if machine.driver_version:
        facts.append(f"driver {machine.driver_version}")
    elif machine.cuda_max:
        facts.append(f"CUDA ≤ {show_pair(machine.cuda_max)}")
    facts.extend(dict.fromkeys(show_sm(c) for c in machine.capabilities))
    return ", ".join(facts)


def _change(action: actions.Action) -> tuple[str, str] | None:
    """One edit as (topic, item); None for an index (the routing line names it)."""
    from uvx_llm import actions  # noqa: PLC0415 - `check` renders without the plan's vocabulary

    found: tuple[str, str] | None
    match action:
        case actions.AddRequirement():
            found = ("added", action.requirement)
        case actions.SetSource():
            found = ("routed", action.package)
        case actions.SetBound() | actions.AddConstraint():
            found = ("bounds", action.requirement)
        case actions.SetConfig():
            found = ("recorded", f"{action.key} {action.value}")
        case actions.AddBuildDependencies() | actions.SetBuildVariables():
            found = ("build settings for", action.package)
        case actions.SetRequirement():
            found = ("build settings for", action.new.split(";")[0].strip())
        case actions.SetPathSource():
            found = ("editable checkouts", action.package)
        case actions.SetIndex():
            found = None
        case _:
            found = ("framework relief", type(action).__name__)
    return found


def _changes(made_actions: tuple[actions.Action, ...]) -> list[str]:
    """The plan's edits in a few words each, in plan order, repeats merged."""
    from uvx_llm import actions  # noqa: PLC0415 - see _change

    groups: dict[str, list[str]] = {}
    for change in map(_change, made_actions):
        if change is not None:
            groups.setdefault(change[0], []).append(change[1])
    gpu_indexes = [
        a.name for a in made_actions if isinstance(a, actions.SetIndex) and a.name != "pytorch-cpu"
    ]
    if "routed" not in groups and gpu_indexes:
        groups["indexes"] = gpu_indexes
    routed_to = f" to {gpu_indexes[0]}" if gpu_indexes else ""
    return [
        f"{topic} {', '.join(dict.fromkeys(items))}{routed_to if topic == 'routed' else ''}"
        for topic, items in groups.items()
    ]


def sync_summary(
    run: Run, *, changed: bool, builds: tuple[str, ...] = (), jobs: str | None = None, colour: bool = False
) -> list[str]:
    """What a default `llm-sync` run says of its own before uv starts (decisions are for -v
    and `plan`): the backend and the facts it was chosen on, whether pyproject.toml changed
    and how, and what will be compiled. One line when nothing changes and nothing compiles."""
    made = run.plan
    facts = machine_facts(run.machine)
    backend = paint(made.backend or "no torch", "bold", colour=colour)
    head = f"llm-sync: {backend}" + (f" ({facts})" if facts else "")
    lines = [f"{head} — pyproject.toml {'updated' if changed else 'unchanged'}"]
    if changed:
        lines.append("  " + "; ".join(_changes(made.actions)))
    if builds:
        with_jobs = f" with MAX_JOBS={jobs}" if jobs else ""
        lines.append(
            f"  will compile {', '.join(builds)}{with_jobs} (`llm-sync plan` shows the build settings)"
        )
    return lines
