"""`llm-sync doctor --ray`: the existing probe on every alive node of a running Ray cluster,
and what differs between the nodes.

Ray is driven through the project's interpreter, not llm-sync's: the project's environment
has ray (verl and OpenRLHF depend on it) at the version its cluster runs, and a Ray client
must match the cluster's version. So llm-sync never imports ray and does not depend on it:
``DRIVER`` below — ours, standard library and ray only — runs there through the one
subprocess helper, one task per alive node pinned with NodeAffinitySchedulingStrategy
(soft=False). Each task runs nvidia-smi and the probe (interpreter.PROBE) in the
interpreter of the project's environment *on that node* (the same project path,
UV_PROJECT_ENVIRONMENT as that node's environment says, else .venv). A node that does not
answer in time is a finding, not a hang.

Everything after the driver's JSON answer is pure: ``answers`` parses it, ``differences``
compares the nodes, ``report`` gathers the findings.
"""

from __future__ import annotations

import dataclasses
import json
import re
import socket
import tempfile
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from uvx_llm import cluster_files, proc, resources, sysfs_copy
from uvx_llm.catalog import show_sm
from uvx_llm.cluster_driver import DRIVER
from uvx_llm.doctor import Report, environment_findings
from uvx_llm.errors import ExitCode, LlmSyncError
from uvx_llm.findings import ERROR, OK, WARNING, Finding, ordered
from uvx_llm.interpreter import PACKAGES, PROBE, Environment
from uvx_llm.machine import Machine, parse_smi_csv
from uvx_llm.resources import Resources
from uvx_llm.toolkit import Toolkit

if TYPE_CHECKING:
    from collections.abc import Sequence

    from uvx_llm.catalog import Catalog, Pair

SMI = [
    "nvidia-smi",
    "--query-gpu=index,name,driver_version,compute_cap,memory.total",
    "--format=csv,noheader,nounits",
]
NO_TOOLKIT = Toolkit(nvcc=None, cuda_home=None, version=None, how_found="not checked on cluster nodes")
# For the drivers: when llm-sync itself runs under `uv run`, Ray (2.45 and newer) would start
# the driver's workers with `uv run` in the driver's folder (a temporary one) on every node,
# instead of the interpreter the cluster runs; llm-sync's tasks need only the standard library.
DRIVER_ENVIRONMENT = {"RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0", "PYTHONUNBUFFERED": "1"}
# A node may describe its machine as a command line does with --cuda/--rocm/--arch: these
# variables in its Ray worker's environment (`ray start` passes its own on) stand for its
# nvidia-smi: a node whose GPUs Ray's worker cannot see (a container without the driver's
# tools), or a rehearsal of a cluster that is not there yet.
TARGET_VARIABLES = ("LLM_SYNC_CUDA", "LLM_SYNC_ROCM", "LLM_SYNC_ARCH")
COMPARED = ("flash-attn", "vllm", "transformers", "ray", "deepspeed", "verl", "openrlhf")


@dataclass(frozen=True)
class NodeAnswer:
    """One node: its machine (from its nvidia-smi), its environment, or why it gave neither."""

    name: str
    node_id: str
    machine: Machine | None = None
    environment: Environment | None = None  # None: no environment at that path on the node
    interpreter: str = ""
    problem: str | None = None  # the node did not answer, or its task failed
    resources: Resources | None = None  # the CPUs and memory a build can use there
    files: dict[str, str | None] = field(default_factory=dict)  # the project's files there: SHA-256
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def facts(self) -> dict[str, Any]:
        return self.environment.facts if self.environment is not None else {}


# --- the edge: run the driver ------------------------------------------------------------------


def check_reachable(address: str, *, timeout: float = 5.0) -> None:
    """Fail at once when nothing listens at a HOST:PORT address: ray.init waits minutes there.
    `auto`, `local` and ray:// (Ray Client) addresses are left to Ray."""
    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as error:
        raise LlmSyncError(
            f"cannot connect to the Ray cluster at {address}",
            why=f"nothing answers at {host} port {port}: {error.strerror or error}",
            fix="start the cluster (`ray start --head`), or give the head node's GCS address "
            "(`--ray HOST:6379`, or RAY_ADDRESS)",
        ) from None


def run_driver(
    interpreter: Path,
    *,
    address: str,
    project_root: Path,
    timeout: float,
    files: Sequence[str] = ("pyproject.toml", "uv.lock"),
    probe: bool = True,
) -> dict[str, Any]:
    """The driver's answer; an error (what/why/fix) when Ray is missing or unreachable. ``files``:
    the project's files whose digests each node reports (cluster_files.py); ``probe``: whether
    each node's environment is probed too (`sync --ray` needs only the machines: the sync
    replaces the environments, and the probe imports torch on every node)."""
    check_reachable(address)
    args = {
        "address": address,
        "project_root": str(project_root.absolute()),
        "probe": PROBE % {"packages": PACKAGES} if probe else "",
        "smi": SMI,
        "timeout": timeout,
        "targets": list(TARGET_VARIABLES),
        "resources": resources.source(),
        "files": list(files),
        "sysfs": sysfs_copy.source(),
    }
    with tempfile.TemporaryDirectory(prefix="llm-sync-ray-") as neutral:
        result = proc.run(
            [str(interpreter), "-c", DRIVER, json.dumps(args)],
            cwd=Path(neutral),
            env=DRIVER_ENVIRONMENT,
            timeout=timeout + 120,
        )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.failure is not None or result.returncode != 0 or not lines:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or [result.failure or "no answer"]
        raise LlmSyncError(
            f"the Ray driver in {interpreter} failed: {tail[0][:300]}",
            fix="run it again with -v to see the command; check `ray status` on the head node",
            exit_code=ExitCode.DIFFERENCES,
        )
    answer: dict[str, Any] = json.loads(lines[-1])
    if answer.get("error") == "no-ray":
        raise LlmSyncError(
            f"ray is not installed in {interpreter}",
            why="llm-sync drives Ray through the project's interpreter (a Ray client must match the "
            f"cluster's Ray version, which the project's environment has): {answer.get('detail')}",
            fix="add ray to the project (`uv add ray`; verl and OpenRLHF bring it) and run `llm-sync`, "
            "or give --python an interpreter that has the cluster's ray",
        )
    if answer.get("error") == "connect":
        raise connect_error(address, str(answer.get("detail")))
    return answer


def connect_error(address: str, detail: str) -> LlmSyncError:
    """ray.init's failure, with the way out: a Ray or Python version other than the cluster's
    (Ray refuses a client whose Ray, or Python down to the patch level, differs), or no cluster."""
    versions = re.findall(r"Ray:\s*(\S+)\s*Python:\s*(\S+)", detail)
    if "version mismatch" in detail.lower() and len(versions) == 2:  # noqa: PLR2004 - the cluster's, then ours
        (cluster_ray, cluster_python), (our_ray, our_python) = versions
        if cluster_ray != our_ray:
            wanted = f"ray=={cluster_ray}"
            fix = f"install {wanted} in the project (`uv add '{wanted}'`, then `llm-sync`) or give --python one that has it"
        else:
            fix = (
                f"run the project on Python {cluster_python}, as the cluster does (`uv python pin {cluster_python}`, "
                "then `llm-sync`), or give --python such an interpreter"
            )
        return LlmSyncError(
            f"the Ray cluster at {address} runs Ray {cluster_ray} on Python {cluster_python}; "
            f"the driver's interpreter has Ray {our_ray} on Python {our_python}",
            why="Ray refuses a client whose Ray version, or Python version, differs from the cluster's",
            fix=fix,
        )
    return LlmSyncError(
        f"cannot connect to the Ray cluster at {address}",
        why=detail,
        fix="start the cluster (`ray start --head`), give its address (`--ray HOST:6379`, or RAY_ADDRESS), "
        "and use the cluster's Ray version in the project",
    )


# --- pure: answers, findings, differences ------------------------------------------------------------


def _amd_machine(files: object, *, rocm_path: object, notes: tuple[str, ...]) -> Machine | None:
    """The node's AMD GPUs and ROCm release, read by accelerators.py from its copied files
    (sysfs_copy.py); None without an AMD GPU."""
    from uvx_llm import accelerators  # noqa: PLC0415 - only for nodes without nvidia-smi

    if not isinstance(files, dict) or not files:
        return None
    with tempfile.TemporaryDirectory(prefix="llm-sync-node-") as copied:
        root = Path(copied)
        sysfs_copy.rebuild({str(k): str(v) for k, v in files.items()}, root)
        env = {"ROCM_PATH": str(rocm_path)} if rocm_path else {}
        amd = accelerators.detect_amd(
            root, env, amdsmi="amdsmi is not asked on a Ray node", use_rocm_smi=False
        )
    if not amd.gpus:
        return None
    return Machine(
        system="linux",
        source=amd.source,
        amd=amd.gpus,
        rocm=amd.rocm,
        rocm_source=amd.rocm_source,
        notes=(*notes, *(n for n in amd.notes if "amdsmi" not in n)),
    )


def _machine(raw: dict[str, Any], catalog: Catalog) -> Machine | None:
    smi = raw.get("smi")
    if not isinstance(smi, dict):
        return None
    if smi.get("rc") != 0:
        notes = (str(smi.get("stderr", ""))[:300],)
        amd = _amd_machine(raw.get("amd"), rocm_path=raw.get("rocm_path"), notes=notes)
        return amd or Machine(system="linux", source="nvidia-smi", notes=notes)
    gpus, driver = parse_smi_csv(str(smi.get("stdout", "")))
    found = Machine(
        system="linux",
        source="nvidia-smi",
        driver_version=driver,
        gpus=gpus,
        archs_known=all(g.capability for g in gpus),
    )
    driver_version = found.driver()
    limit = catalog.max_cuda_for_driver(driver_version) if driver_version else None
    return Machine(
        system=found.system,
        source=found.source,
        driver_version=driver,
        cuda_max=limit,
        cuda_source="nvidia-smi driver version" if limit else "",
        gpus=gpus,
        archs_known=found.archs_known,
    )


def _environment(interpreter: str, probe: object) -> Environment | None:
    if probe is None:
        return None
    if not isinstance(probe, dict):
        return Environment(interpreter, problem="gave no answer")
    if probe.get("timed_out"):
        return Environment(interpreter, problem="did not answer in time (hanging import?)")
    lines = [line for line in str(probe.get("stdout", "")).splitlines() if line.startswith("{")]
    if probe.get("rc") != 0 or not lines:
        tail = str(probe.get("stderr") or "").strip().splitlines()[-1:] or [f"exit code {probe.get('rc')}"]
        return Environment(interpreter, problem=f"failed: {tail[0]}")
    try:
        return Environment(interpreter, facts=json.loads(lines[-1]))
    except json.JSONDecodeError:
        return Environment(interpreter, problem="printed something that is not the probe's answer")


def _declared(raw: dict[str, Any], catalog: Catalog, name: str) -> Machine | str | None:
    """The machine a node declares with LLM_SYNC_CUDA/ROCM/ARCH, read as the command line reads
    them (machine.for_run); None when it declares none, the problem when a value is bad."""
    from uvx_llm import machine as machine_module  # noqa: PLC0415 - the planner's reader, only for such nodes

    declared = raw.get("target")
    if not isinstance(declared, dict) or not declared:
        return None
    value = {key: str(declared.get(key) or "") for key in TARGET_VARIABLES}
    try:
        found = machine_module.for_run(
            catalog,
            cuda=value["LLM_SYNC_CUDA"],
            arch=value["LLM_SYNC_ARCH"],
            rocm=value["LLM_SYNC_ROCM"],
            env={},
            cuda_origin=f"LLM_SYNC_CUDA on {name}",
            arch_origin=f"LLM_SYNC_ARCH on {name}",
            rocm_origin=f"LLM_SYNC_ROCM on {name}",
        )
    except LlmSyncError as error:
        return f"declares its machine with a value llm-sync cannot read: {error.what}"
    shown = ", ".join(f"{key}={declared[key]}" for key in TARGET_VARIABLES if declared.get(key))
    cuda_source = f"LLM_SYNC_CUDA={declared['LLM_SYNC_CUDA']} on {name}" if found.cuda_max else ""
    return replace(found, system="linux", source=f"{shown} on {name}", cuda_source=cuda_source)


def unique_names(raws: Sequence[dict[str, Any]]) -> list[str]:
    """Each node's name: its hostname, with the start of its node ID where hostnames repeat
    (several Ray nodes on one host, or containers that share one hostname)."""
    names = [str(raw.get("name")) for raw in raws]
    counts = Counter(names)
    return [
        f"{name}/{str(raw.get('node_id'))[:8]}" if counts[name] > 1 else name
        for name, raw in zip(names, raws, strict=True)
    ]


def _answer(raw: dict[str, Any], name: str, catalog: Catalog) -> NodeAnswer:
    node_id, interpreter = str(raw.get("node_id")), str(raw.get("interpreter", ""))
    if raw.get("timed_out"):
        return NodeAnswer(name, node_id, problem="did not answer in time", raw=raw)
    if raw.get("error"):
        return NodeAnswer(name, node_id, problem=f"its task failed: {raw['error']}", raw=raw)
    declared = _declared(raw, catalog, name)
    if isinstance(declared, str):
        return NodeAnswer(name, node_id, problem=declared, raw=raw)
    return NodeAnswer(
        name,
        node_id,
        machine=declared or _machine(raw, catalog),
        environment=_environment(interpreter, raw.get("probe")),
        interpreter=interpreter,
        raw=raw,
        resources=_resources(raw.get("resources")),
        files=_files(raw.get("files")),
    )


def _files(answer: object) -> dict[str, str | None]:
    if not isinstance(answer, dict):
        return {}
    return {str(k): (str(v) if v is not None else None) for k, v in answer.items()}


def _resources(answer: object) -> Resources | None:
    """A node's resources as its task found them; None when it could not tell."""
    if not isinstance(answer, dict):
        return None
    cpus, memory = answer.get("cpus"), answer.get("memory_bytes")
    if not isinstance(cpus, int) or cpus < 1 or not (memory is None or isinstance(memory, int)):
        return None
    return Resources(
        cpus=cpus,
        cpu_reason=str(answer.get("cpu_reason", "")),
        memory_bytes=memory,
        memory_reason=str(answer.get("memory_reason", "")),
    )


def answers(document: dict[str, Any], catalog: Catalog) -> tuple[NodeAnswer, ...]:
    raws = [raw for raw in document.get("nodes", []) if isinstance(raw, dict)]
    found = [_answer(raw, name, catalog) for raw, name in zip(raws, unique_names(raws), strict=True)]
    return tuple(sorted(found, key=lambda a: a.name))


def architectures(machine: Machine) -> list[str]:
    """The machine's GPU architectures, as a plan names them: sm_90, gfx942."""
    return sorted({show_sm(g.capability) for g in machine.gpus if g.capability} | set(machine.gfx_targets))


def driver_text(machine: Machine) -> str:
    """ "driver 580.159.04", or what a node that declares its machine says of its driver."""
    if machine.driver_version:
        return f"driver {machine.driver_version}"
    if machine.has_amd:
        return f"ROCm {machine.rocm} ({machine.rocm_source})" if machine.rocm else "ROCm release unknown"
    if machine.cuda_max is not None:
        return f"a driver for CUDA up to {machine.cuda_max[0]}.{machine.cuda_max[1]} ({machine.source})"
    return "driver unknown"


def problem_fix(answer: NodeAnswer, timeout: float) -> str:
    """What to do about a node that gave no usable answer."""
    if "in time" in (answer.problem or ""):
        return f"check the node (`ray status`, its raylet log); raise --timeout (now {timeout:g} s) for a slow disk"
    if (answer.problem or "").startswith("declares"):
        return (
            f"correct (or unset) {'/'.join(TARGET_VARIABLES)} in the environment Ray's worker has on "
            f"{answer.name} (the one `ray start` ran with)"
        )
    return "check the node's Ray worker log"


def node_findings(answer: NodeAnswer, catalog: Catalog, *, timeout: float) -> list[Finding]:
    """One node's own problems (and one line saying what it has)."""
    area = f"node {answer.name}"
    if answer.problem is not None:
        return [Finding(area, ERROR, f"{answer.name} {answer.problem}", fix=problem_fix(answer, timeout))]
    if answer.environment is None:
        return [
            Finding(
                area,
                ERROR,
                f"no environment on {answer.name}: {answer.interpreter} does not exist",
                "each node runs the project from the same path; its environment is missing there",
                f"run `llm-sync sync` (or `uv sync --locked`) for the same project path on {answer.name}",
            )
        ]
    machine = answer.machine or Machine(system="linux", source="unknown", archs_known=False)
    found = [
        Finding(area, f.severity, f"{answer.name}: {f.title}", f.detail, f.fix)
        for f in environment_findings(machine, NO_TOOLKIT, answer.environment, catalog)
        if f.severity != OK
    ]
    torch = answer.facts.get("torch", {})
    gpus = ", ".join(architectures(machine)) or "no GPU"
    summary = (
        f"{answer.name}: {driver_text(machine)}, {gpus}, "
        f"torch {torch.get('version', 'not importable')}"
        + (f" (CUDA {torch['cuda']})" if torch.get("cuda") else "")
    )
    probed = f"probed {answer.interpreter}" + (
        " (without the empty CUDA_VISIBLE_DEVICES Ray gives a task that asks for no GPU)"
        if answer.raw.get("ray_hid_gpus")
        else ""
    )
    return [*found, Finding(area, OK, summary, probed)]


def _values(answer: NodeAnswer) -> dict[str, str]:
    """What must be equal on every node, as text (absent: "not installed" / "unknown")."""
    machine, facts = answer.machine, answer.facts
    torch: dict[str, Any] = facts.get("torch", {})
    packages: dict[str, str] = facts.get("packages", {})
    values = {
        "Python": str(facts.get("python", "unknown")),
        "torch": str(torch.get("version", "not importable")),
        "torch's CUDA": str(torch.get("cuda") or "none"),
        "NCCL": str(torch.get("nccl") or "unknown"),
    }
    values |= {name: packages.get(name, "not installed") for name in COMPARED}
    values |= {f"the project's {path}": cluster_files.shown(value) for path, value in answer.files.items()}
    if machine is not None and machine.driver_version:
        values["driver major"] = machine.driver_version.split(".")[0]
    if machine is not None and machine.cuda_max is not None:
        values["CUDA major the driver runs"] = str(machine.cuda_max[0])
    return values


def _others(count: int) -> str:
    return "the other has" if count == 1 else f"the other {count} have"


def _number(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


_SOFT = {"driver major", "CUDA major the driver runs"}  # each node's own findings say whether torch runs


def differences(nodes: Sequence[NodeAnswer]) -> list[Finding]:
    """Cross-node differences: for each fact, the nodes that differ from the most common value."""
    probed = [
        n for n in nodes if n.problem is None and n.environment is not None and not n.environment.problem
    ]
    table = {n.name: _values(n) for n in probed}
    keys = list(dict.fromkeys(k for values in table.values() for k in values))
    found = []
    for key in keys:
        held = {name: values[key] for name, values in table.items() if key in values}
        counts = Counter(held.values())
        if len(counts) < 2:  # noqa: PLR2004 - one value: all equal
            continue
        # a driver: the nodes behind the newest are the ones to update (even one against many)
        common = (
            max(counts, key=_number) if key in _SOFT else max(sorted(counts), key=lambda value: counts[value])
        )
        odd = sorted(name for name, value in held.items() if value != common)
        shown = "; ".join(f"{name}: {held[name]}" for name in odd[:6]) + ("; ..." if len(odd) > 6 else "")  # noqa: PLR2004 - a readable line
        soft = key in _SOFT
        found.append(
            Finding(
                "cluster",
                WARNING if soft else ERROR,
                f"{key} differs across nodes: {shown} ({_others(len(held) - len(odd))} {common})",
                "one build runs everywhere only while each node's driver runs its CUDA (see each node's findings)"
                if soft
                else "a distributed job whose nodes differ here hangs or crashes in collectives or at import",
                f"update the NVIDIA driver on {', '.join(odd)}, or plan for every node: `llm-sync --machines`"
                if soft
                else f"run `llm-sync sync` (or `uv sync --locked`) with the same uv.lock and project path on {', '.join(odd)}",
            )
        )
    if probed and not found:
        found.append(
            Finding(
                "cluster",
                OK,
                f"every probed node has the same stack ({len(probed)} nodes)",
                ", ".join(
                    f"{k} {v}" for k, v in _values(probed[0]).items() if v not in {"not installed", "unknown"}
                ),
            )
        )
    return found


def ray_versions(driver: object, nodes: Sequence[NodeAnswer]) -> list[Finding]:
    """The ray that drove the doctor (the project's environment here) against the nodes' ray."""
    other = sorted({n.name for n in nodes if n.facts.get("packages", {}).get("ray", driver) != driver})
    if not driver or not other:
        return []
    return [
        Finding(
            "cluster",
            WARNING,
            f"ray {driver} here, another ray on {', '.join(other)}",
            "a Ray client and its cluster must run the same Ray version",
            "install the cluster's Ray version in the project (one uv.lock for every node)",
        )
    ]


def uncovered(nodes: Sequence[NodeAnswer], built_for: Sequence[Pair]) -> list[Finding]:
    """Nodes with a GPU architecture that the project's CUDA builds (flash-attn, ...) leave out:
    they are built for [tool.llm-sync] cuda-archs, and a kernel built for sm_90 does not run
    on sm_100 or sm_80."""
    if not built_for:
        return []
    covered = ", ".join(show_sm(a) for a in sorted(built_for))
    left_out = [
        (node.name, sm)
        for node in nodes
        for sm in sorted(
            {
                show_sm(g.capability)
                for g in (node.machine.gpus if node.machine is not None else ())
                if g.capability and g.capability not in built_for
            }
        )
    ]
    return [
        Finding(
            f"node {name}",
            ERROR,
            f"{name}: {sm} is not among the GPU architectures the project's CUDA builds cover ({covered})",
            "the builds are made for [tool.llm-sync] cuda-archs; their kernels do not run on other GPUs",
            "run `llm-sync sync --ray`: it plans for every node (the union of their architectures) "
            "and rebuilds once for all",
        )
        for name, sm in left_out
    ]


def report(
    document: dict[str, Any],
    catalog: Catalog,
    *,
    address: str,
    timeout: float,
    built_for: Sequence[Pair] = (),
) -> Report:
    """``built_for``: the architectures the project's CUDA builds cover (its recorded cuda-archs)."""
    nodes = answers(document, catalog)
    found: list[Finding] = []
    if not nodes:
        found.append(
            Finding("cluster", ERROR, f"the Ray cluster at {address} has no alive node", fix="`ray status`")
        )
    for node in nodes:
        found += node_findings(node, catalog, timeout=timeout)
    found += uncovered(nodes, built_for)
    found += differences(nodes)
    found += ray_versions(document.get("ray"), nodes)
    facts = {
        "ray": {"address": address, "version": document.get("ray")},
        "nodes": [
            {
                "name": n.name,
                "node_id": n.node_id,
                "problem": n.problem,
                "machine": n.machine.to_json() if n.machine else None,
                "resources": dataclasses.asdict(n.resources) if n.resources else None,
                "files": n.files,
                "environment": (
                    {"interpreter": n.interpreter, "problem": n.environment.problem, **n.environment.facts}
                    if n.environment is not None
                    else None
                ),
            }
            for n in nodes
        ],
    }
    return Report(tuple(ordered(found)), facts)
