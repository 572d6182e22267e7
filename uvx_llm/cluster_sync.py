"""`llm-sync sync --ray`: every alive node of a Ray cluster made to match the lock.

The same approach as `doctor --ray` (cluster.py): Ray is driven by a script of ours run in
an interpreter that has the cluster's ray, never imported here. Three steps:

1. *survey*: cluster.py's driver asks every node for its nvidia-smi; the plan is made for
   those nodes together (fleet.combine: the union of GPU architectures, the lowest driver),
   unless `--machines` names the documents to plan for;
2. here, once: pyproject.toml written, `uv lock`, the lock checked against the plan
   (syncing.sync);
3. ``DRIVER``: one task per node, pinned (NodeAffinitySchedulingStrategy, soft=False), runs
   `uv sync --locked --project <the same path>` with that node's uv (`uv` on its PATH, else
   `python -m uv` of the interpreter Ray runs the task with). When the plan builds a
   package, one node goes first and shares its build through the `wheelhouse` folder
   (wheelcopy.py, whose text the task runs); the others then install without compiling.
   The build does not depend on the node's own GPUs: uv reads the architectures from
   pyproject.toml's [tool.uv.extra-build-variables], the plan's union, so one build serves
   every node.

The driver writes one JSON event a line on stderr (node started, finished, failed), shown as
they come; Ctrl-C stops the driver, which cancels every node's task, and the task stops its
uv's process group. Everything between the edges is pure: ``waves``, ``fleet_nodes``,
``outcome``.
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast, final

from uvx_llm import cluster_files, log, proc
from uvx_llm.cluster_sync_driver import DRIVER
from uvx_llm.errors import ExitCode, LlmSyncError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from uvx_llm import fleet, pipeline
    from uvx_llm.actions import Plan
    from uvx_llm.catalog import Catalog
    from uvx_llm.cluster import NodeAnswer
    from uvx_llm.progress import Progress
    from uvx_llm.wheelhouse import Key

logger = log.get_logger("llm-sync")

EVENT = "llm-sync-event "  # the driver's lines that are ours (Ray prints its own on stderr too)
TAIL_LINES = 30
INSTALL_HINT = (
    "add ray to the project (`uv add ray`; verl and OpenRLHF bring it), or run llm-sync with ray "
    "beside it: `uvx --from 'llm-sync[ray]' llm-sync sync --ray` (or `doctor --ray`; the extra "
    "installs ray; pin the cluster's version: `--with ray==X.Y.Z`), or give --python an interpreter "
    "that has the cluster's ray (the project's own .venv/bin/python once it has ray)"
)


@dataclass(frozen=True)
class NodeResult:
    """What one node's sync came to."""

    name: str
    status: str  # done, failed, timed-out, task-failed, died, gone, cancelled, not-started
    detail: str = ""
    log: str = ""
    tail: tuple[str, ...] = ()
    seconds: float | None = None
    restored: int = 0
    shared: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "done"


# --- pure ---------------------------------------------------------------------------------------


def fleet_nodes(nodes: Sequence[NodeAnswer]) -> tuple[fleet.Node, ...]:
    """The surveyed nodes as a fleet to plan for (fleet.combine), named by their hostnames."""
    from uvx_llm import fleet  # noqa: PLC0415 - only sync --ray plans for Ray's nodes

    return tuple(
        fleet.Node(name=n.name, origin=f"Ray node {n.name}", machine=n.machine)
        for n in nodes
        if n.machine is not None
    )


def silent(nodes: Sequence[NodeAnswer], *, timeout: float) -> LlmSyncError | None:
    """The error for nodes that did not answer the survey (then nothing is written or run)."""
    missing = [n for n in nodes if n.problem is not None]
    if not missing:
        return None
    from uvx_llm.cluster import problem_fix  # noqa: PLC0415 - see the module docstring

    shown = "; ".join(f"{n.name} {n.problem}" for n in missing)
    return LlmSyncError(
        f"{len(missing)} of {len(nodes)} Ray nodes gave no usable answer: {shown}",
        why="sync --ray plans for every alive node and syncs each; nothing was changed",
        fix=problem_fix(missing[0], timeout) + "; or take the node out of the cluster, and run again",
        exit_code=ExitCode.DIFFERENCES,
    )


def waves(nodes: Sequence[NodeAnswer], *, builds: bool) -> list[list[dict[str, Any]]]:
    """The order of the node syncs: when the plan builds a package, the first node alone (it
    compiles and shares the build), then every other node at once; otherwise all at once."""
    ordered = [{"node_id": n.node_id, "name": n.name} for n in sorted(nodes, key=lambda n: n.name)]
    if not builds or len(ordered) < 2:  # noqa: PLR2004 - one node needs no second wave
        return [ordered]
    return [ordered[:1], ordered[1:]]


def node_environment(plan: Plan, node: NodeAnswer) -> tuple[dict[str, str], str]:
    """uv's environment on ``node`` (the plan's build settings, MAX_JOBS for the node's own CPUs and
    memory: it compiles there, not here) and a line that says why."""
    from uvx_llm import build  # noqa: PLC0415 - see fleet_nodes

    env = plan.uv_environment()
    if plan.gib_per_build_thread is None or "MAX_JOBS" not in env:
        return env, ""
    if node.resources is None:
        left = {k: v for k, v in env.items() if k not in {"MAX_JOBS", "CMAKE_BUILD_PARALLEL_LEVEL"}}
        return left, "its CPUs and memory are unknown: MAX_JOBS is left to the package"
    try:
        threads = max(1, int(env.get("NVCC_THREADS", "1")))
    except ValueError:
        threads = 1
    tuned = build.job_settings(
        host=node.resources, gib_per_thread=plan.gib_per_build_thread, threads=threads, env={}
    )
    return env | {s.name: s.value for s in tuned}, f"MAX_JOBS={tuned[0].value}: {tuned[0].reason}"


# Where uv looks for packages: `uv sync --locked` on a node accepts the lock only with the
# index settings it was made with (a PyPI mirror in UV_DEFAULT_INDEX here and none on a node
# is "the lockfile needs to be updated" there). Locations only: credentials stay each node's own.
INDEX_VARIABLES = (
    "UV_DEFAULT_INDEX",
    "UV_INDEX",
    "UV_INDEX_URL",
    "UV_EXTRA_INDEX_URL",
    "UV_FIND_LINKS",
    "UV_NO_INDEX",
    "UV_INDEX_STRATEGY",
)


def index_settings(environ: Mapping[str, str]) -> dict[str, str]:
    """This machine's uv index settings, for every node's `uv sync` (the lock was made with them)."""
    return {name: environ[name] for name in INDEX_VARIABLES if environ.get(name)}


def key_arguments(keys: Sequence[Key]) -> list[dict[str, str]]:
    """The wheelhouse keys as the node task reads them: the folder per Python, name, version."""
    from packaging.utils import canonicalize_name  # noqa: PLC0415 - see fleet_nodes

    return [
        {"build": key.build.as_posix(), "name": str(canonicalize_name(key.package)), "version": key.version}
        for key in keys
    ]


def result_of(event: dict[str, Any]) -> NodeResult:
    """A driver's node event as a result."""
    tail = event.get("tail")
    detail = str(event.get("detail") or "")
    if event.get("error"):  # no-uv, differs: the task stopped before uv
        return NodeResult(str(event["name"]), str(event["error"]), detail, log=str(event.get("log", "")))
    return NodeResult(
        name=str(event["name"]),
        status=str(event.get("status")),
        detail=detail or (f"uv's exit code {event['rc']}" if event.get("rc") not in {None, 0} else ""),
        log=str(event.get("log") or ""),
        tail=tuple(str(line) for line in tail) if isinstance(tail, list) else (),
        seconds=event.get("seconds") if isinstance(event.get("seconds"), float | int) else None,
        restored=int(event.get("restored") or 0),
        shared=tuple(str(s) for s in event.get("shared") or ()),
    )


def line_of(result: NodeResult) -> str:
    """The progress line of a node's end."""
    if result.ok:
        took = f" in {result.seconds:g} s" if result.seconds is not None else ""
        through = "Ray's object store" if result.shared == ("Ray's object store",) else "the wheelhouse"
        extra = f" (its build shared through {through})" if result.shared else ""
        extra += " (built packages from the first node, no compile)" if result.restored else ""
        return f"{result.name}: uv sync done{took}{extra}"
    reasons = {
        "failed": f"uv sync failed ({result.detail})",
        "timed-out": "did not answer within the timeout: its task was cancelled",
        "task-failed": f"its task failed: {result.detail}",
        "died": f"the node (or its Ray worker) died during its sync: {result.detail.split('. ')[0]}",
        "gone": "left the cluster before its sync started",
        "cancelled": "cancelled",
        "no-uv": f"no uv: {result.detail}",
        "differs": f"its project files differ: {result.detail}",
    }
    where = f"; its log on {result.name}: {result.log}" if result.log and result.status == "failed" else ""
    return f"{result.name}: {reasons.get(result.status, result.status)}{where}"


def outcome(results: Sequence[NodeResult], planned: Sequence[str], *, timeout: float) -> LlmSyncError | None:
    """The command's error when any node did not end in sync; None when every planned node did."""
    seen = {r.name for r in results}
    failed = [r for r in results if not r.ok]
    skipped = [name for name in planned if name not in seen]
    if not failed and not skipped:
        return None
    first = failed[0] if failed else None
    tail = "\n".join(f"    {line}" for line in first.tail[-TAIL_LINES:]) if first and first.tail else ""
    fixes = {
        "timed-out": f"check the node (`ray status`, its raylet log); raise --node-timeout (now {timeout:g} s) "
        "for a long build",
        "no-uv": "install uv on the node (`pip install uv` into the interpreter Ray runs, or uv on its PATH)",
        "differs": "put the same project at that path on every node (a shared folder, or the same commit "
        "checked out), then run `llm-sync sync --ray` again",
        "died": "bring the node back (or take it out of the cluster) and run `llm-sync sync --ray` again: "
        "nodes already in sync have nothing to do",
    }
    fix = fixes.get(first.status, "") if first else ""
    if first and first.log:
        fix = f"read its log on {first.name} ({first.log}), fix the cause and run `llm-sync sync --ray` again"
    return LlmSyncError(
        f"{len(failed) + len(skipped)} of {len(planned)} Ray nodes are not in sync: "
        + "; ".join([line_of(r) for r in failed] + [f"{name}: not started" for name in skipped]),
        why=(f"the last lines of uv on {first.name}:\n{tail}" if tail and first else "")
        + (
            f"\n{', '.join(skipped)} did not start: the first node's build failed"
            if skipped and failed
            else ""
        ),
        fix=fix or "run `llm-sync sync --ray` again once the node is back",
        exit_code=ExitCode.DIFFERENCES,
    )


# --- the edges ----------------------------------------------------------------------------------


def survey(
    interpreter: Path,
    *,
    address: str,
    project_root: Path,
    catalog: Catalog,
    timeout: float,
    files: Sequence[str] = (),
) -> tuple[NodeAnswer, ...]:
    """Every alive node's machine, resources and digests of the project's ``files``, through
    doctor --ray's driver without its probe. (A driver whose Ray is not the cluster's is refused
    by ray.init itself; the nodes' environments get the lock's ray from the sync.)"""
    from uvx_llm import cluster  # noqa: PLC0415 - see the module docstring

    document = run_or_explain(
        lambda: cluster.run_driver(
            interpreter, address=address, project_root=project_root, timeout=timeout, files=files, probe=False
        )
    )
    nodes = cluster.answers(document, catalog)
    if not nodes:
        raise LlmSyncError(
            f"the Ray cluster at {address} has no alive node",
            fix="`ray status` on the head node",
            exit_code=ExitCode.DIFFERENCES,
        )
    error = silent(nodes, timeout=timeout)
    if error is not None:
        raise error
    return nodes


def run_or_explain(call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """cluster.run_driver's answer; its no-ray error with how to get ray for sync --ray."""
    try:
        return call()
    except LlmSyncError as error:
        if error.what.startswith("ray is not installed"):
            raise replace_fix(error, INSTALL_HINT) from None
        raise


def replace_fix(error: LlmSyncError, fix: str) -> LlmSyncError:
    return LlmSyncError(error.what, why=error.why, fix=fix, exit_code=error.exit_code)


def sync_nodes(
    interpreter: Path,
    *,
    address: str,
    project_root: Path,
    plan: list[list[dict[str, Any]]],
    uv_args: Sequence[str],
    keys: Sequence[Key],
    house: Path | None,
    timeout: float,
    files: dict[str, dict[str, Any]] | None = None,
) -> list[NodeResult]:
    """Run ``DRIVER``: each wave's nodes synced, progress shown as the events come."""
    from uvx_llm import wheelcopy  # noqa: PLC0415 - see the module docstring
    from uvx_llm.cluster import DRIVER_ENVIRONMENT  # noqa: PLC0415 - same

    args = {
        "address": address,
        "project_root": str(project_root.absolute()),
        "waves": plan,
        "uv_args": ["--locked", *(a for a in uv_args if a != "--locked")],
        "keys": key_arguments(keys),
        "house": str(house) if house is not None else "",
        "wheelcopy": wheelcopy.source(),
        "run_id": f"sync-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}",
        "timeout": timeout,
        "files": files or {},
    }
    results: list[NodeResult] = []
    problem: list[dict[str, Any]] = []
    builds = BuildProgress({n["name"]: n.get("env", {}) for wave in plan for n in wave})

    def on_line(line: str) -> None:
        if not line.startswith(EVENT):
            logger.debug("ray driver", line=line)
            return
        event: dict[str, Any] = json.loads(line[len(EVENT) :])
        if event["event"] == "error":
            problem.append(event)
        elif event["event"] == "ray":
            logger.debug(f"ray {event.get('version')} drives the sync")
        elif event["event"] == "line":
            builds.feed(str(event["name"]), str(event["text"]))
        elif event["event"] == "node" and event.get("status") == "started":
            logger.info(f"{event['name']}: uv sync started")
        elif event["event"] == "node":
            builds.close(str(event["name"]))
            result = result_of(event)
            results.append(result)
            (logger.info if result.ok else logger.error)(line_of(result))

    with tempfile.TemporaryDirectory(prefix="llm-sync-ray-") as neutral, builds:
        code = proc.run_streaming(
            [str(interpreter), "-c", DRIVER, json.dumps(args)],
            cwd=Path(neutral),
            env=DRIVER_ENVIRONMENT,
            on_stderr_line=on_line,
        )
    if problem:
        raise driver_error(problem[0], interpreter=interpreter, address=address)
    if code != 0 and not results:
        raise LlmSyncError(
            f"the Ray driver in {interpreter} failed (exit code {code})",
            fix="run it again with -v to see the driver's output; check `ray status` on the head node",
            exit_code=ExitCode.DIFFERENCES,
        )
    return results


class Prefixed(io.TextIOBase):
    """A text stream whose every line starts with ``prefix`` (a node's name)."""

    def __init__(self, out: TextIO, prefix: str) -> None:
        self.out, self.prefix, self.at_start = out, prefix, True

    def write(self, text: str) -> int:
        for line in text.splitlines(keepends=True):
            self.out.write((self.prefix if self.at_start else "") + line)
            self.at_start = line.endswith("\n")
        return len(text)

    def flush(self) -> None:
        self.out.flush()


@final
class BuildProgress:
    """A node's build, shown here as it goes: uv's progress lines from the node (through a Ray
    queue) read by progress.py, in plain lines that start with the node's name (a line at the
    start, every 10 % and every 30 s, with an ETA)."""

    def __init__(self, environments: dict[str, dict[str, str]]) -> None:
        self.environments = environments
        self.shown: dict[str, Progress] = {}

    def feed(self, name: str, text: str) -> None:
        from uvx_llm import progress  # noqa: PLC0415 - see the module docstring

        if name not in self.shown:
            out = cast("TextIO", Prefixed(sys.stderr, f"{name}: "))
            jobs = progress.parallel_jobs(self.environments.get(name, {}))
            self.shown[name] = progress.Progress(out=out, terminal=False, log_dir=None, jobs=jobs)
            self.shown[name].start()
        self.shown[name].feed(text)

    def close(self, name: str) -> None:
        shown = self.shown.pop(name, None)
        if shown is not None:
            shown.close()

    def __enter__(self) -> BuildProgress:
        return self

    def __exit__(self, *_: object) -> None:
        for name in list(self.shown):
            self.close(name)


def driver_error(event: dict[str, Any], *, interpreter: Path, address: str) -> LlmSyncError:
    if event.get("kind") == "no-ray":
        return LlmSyncError(
            f"ray is not installed in {interpreter}", why=str(event.get("detail")), fix=INSTALL_HINT
        )
    from uvx_llm.cluster import connect_error  # noqa: PLC0415 - see the module docstring

    return connect_error(address, str(event.get("detail")))


def driver_interpreter(project_root: Path, python: Path | None) -> Path:
    """Who drives Ray: --python; else the project's environment here; else llm-sync's own
    interpreter (with the `llm-sync[ray]` extra it has ray: a head node without the project's
    environment yet)."""
    from uvx_llm import interpreter  # noqa: PLC0415 - see the module docstring

    if python is not None:
        if not python.exists():
            raise LlmSyncError(
                f"--python {python} does not exist",
                fix="give the path of a Python interpreter that has the cluster's ray, e.g. .venv/bin/python",
            )
        return python
    return interpreter.interpreter_of(project_root, None, os.environ) or Path(sys.executable)


@dataclass(frozen=True)
class Target:
    """`sync --ray`'s command line: the cluster, the interpreter that drives it, each node's time."""

    address: str
    python: Path | None = None
    timeout: float = 7200.0


@dataclass(frozen=True)
class Surveyed:
    """The cluster as the survey found it, and the options that plan for it."""

    target: Target
    interpreter: Path
    nodes: tuple[NodeAnswer, ...]
    options: pipeline.Options
    before: dict[str, str | None] = field(default_factory=dict)  # the project's files here, as surveyed

    def finish(self, run: pipeline.Run, uv_args: Sequence[str]) -> int:
        return finish(self, run, uv_args)


def prepare(options: pipeline.Options, target: Target) -> Surveyed:
    """The survey, and the options that plan for its nodes (unless `machines` names documents)."""
    from uvx_llm import catalog as catalog_module  # noqa: PLC0415 - see the module docstring
    from uvx_llm import fleet, pipeline  # noqa: PLC0415 - same

    project = pipeline.load_project(options)
    interpreter = driver_interpreter(project.root, target.python)
    files = cluster_files.tracked(project)
    before = cluster_files.digests(project.root, files)
    nodes = survey(
        interpreter,
        address=target.address,
        project_root=project.root,
        catalog=catalog_module.load(),
        timeout=min(target.timeout, 120.0),
        files=files,
    )
    error = cluster_files.not_the_same_project(cluster_files.differing(nodes, before), project.root)
    if error is not None:
        raise error
    for node in nodes:
        logger.info(f"{node.name}: {describe(node)}")
    members = fleet_nodes(nodes)
    planned = None
    if members:
        combined = fleet.combine(members)
        source = f"Ray cluster at {target.address} ({len(members)} nodes)"
        planned = replace(combined, machine=replace(combined.machine, source=source))
    return Surveyed(target, interpreter, nodes, replace(options, fleet=planned), before)


def describe(node: NodeAnswer) -> str:
    from uvx_llm.cluster import architectures, driver_text  # noqa: PLC0415 - see the module docstring

    machine = node.machine
    if machine is None or not (machine.gpus or machine.amd):
        return "no GPU seen (nvidia-smi, the KFD topology)"
    archs = ", ".join(architectures(machine)) or "unknown"
    return f"{len(machine.gpus) + len(machine.amd)} GPU(s), {archs}, {driver_text(machine)}"


def shared_folder(run: pipeline.Run) -> Path | None:
    """The wheelhouse folder, when one is set: the build goes through it (and stays for the next
    run); without one it goes from node to node through Ray's object store, for this run only."""
    chosen = run.request.wheelhouse if run.request is not None else None
    return Path(chosen).expanduser().absolute() if chosen else None


def finish(surveyed: Surveyed, run: pipeline.Run, uv_args: Sequence[str]) -> int:
    """After the lock here: every node's `uv sync --locked`; exit 0, or the error of a node."""
    from uvx_llm import build, lockfile, wheelhouse  # noqa: PLC0415 - see the module docstring
    from uvx_llm import project as project_module  # noqa: PLC0415 - same

    house = shared_folder(run)
    keys: list[Key] = []
    if run.plan.built_packages:
        written = project_module.load(run.project.path)
        python = lockfile.lowest_python(written.table("project").get("requires-python")) or "3"
        keys = wheelhouse.keys(
            root=run.project.root,
            packages=run.plan.built_packages,
            archs=build.recorded_archs(written),
            python=python,
        )
    order = waves(surveyed.nodes, builds=bool(keys))
    by_name = {n.name: n for n in surveyed.nodes}
    shared_settings = index_settings(os.environ)
    for wave in order:
        for entry in wave:
            env, why = node_environment(run.plan, by_name[entry["name"]])
            entry["env"] = shared_settings | env
            if why and keys and wave is order[0]:  # the node that compiles
                logger.info(f"{entry['name']} compiles with {why}")
    if len(order) > 1:
        through = f"in {house}" if house is not None else "through Ray's object store"
        logger.info(f"{order[0][0]['name']} builds first and shares it {through}; then the other nodes")
    results = sync_nodes(
        surveyed.interpreter,
        address=surveyed.target.address,
        project_root=run.project.root,
        plan=order,
        uv_args=uv_args,
        keys=keys,
        house=house,
        timeout=surveyed.target.timeout,
        files=cluster_files.changes(run.project.root, surveyed.before),
    )
    error = outcome(results, [n["name"] for wave in order for n in wave], timeout=surveyed.target.timeout)
    if error is not None:
        raise error
    logger.info(f"every node ({len(results)}) matches uv.lock")
    return ExitCode.OK
