"""Planning for a fleet: several machines, described by their `llm-sync detect --json` documents.

Scheduler-agnostic: the documents are collected however the cluster runs jobs (one per node
with `srun`, a Kubernetes Job, ssh), then `plan`/`sync`/`check --machines FILE|DIR` plans for
all of them together. ``read`` is the edge (files in, documents validated); ``combine`` is
pure: the nodes become one ``Machine`` the planner already understands — the union of GPU
architectures and the lowest CUDA limit, so the variant chosen runs on every node — plus the
decisions that say which node limits what.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from packaging.version import InvalidVersion, Version

from uvx_llm import accelerators
from uvx_llm.accelerators import AmdGpu
from uvx_llm.actions import Decision
from uvx_llm.catalog import Pair, parse_capability, parse_version_pair, show_pair, show_sm
from uvx_llm.errors import LlmSyncError
from uvx_llm.machine import AMD, NVIDIA, Gpu, Machine
from uvx_llm.targets import parse_gfx_list

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

DOCUMENT_VERSION = 1  # the "version" of `detect --json` documents this reader understands
_COLLECT = (
    "collect one per node with `llm-sync detect --json > facts/$(hostname).json` (docs/usage.md#fleets)"
)


@dataclass(frozen=True)
class Node:
    """One machine of the fleet: its name (the document's `hostname`, else the file's stem)."""

    name: str
    origin: str  # the file it was read from
    machine: Machine
    vendor: str = ""  # the GPU vendor it is planned for ("nvidia", "amd", "intel"); "" for none


@dataclass(frozen=True)
class Fleet:
    """The nodes as one machine to plan for, with the decisions and warnings that explain it."""

    machine: Machine
    nodes: tuple[Node, ...]
    decisions: tuple[Decision, ...]
    warnings: tuple[str, ...]


# --- reading: files in, nodes out ---------------------------------------------------------------


def paths_of(value: str, *, base: Path) -> tuple[Path, ...]:
    """The setting's value: paths separated by the OS path separator (`:`), relative to ``base``."""
    return tuple(base / part.strip() for part in value.split(os.pathsep) if part.strip())


def _files(paths: Sequence[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            documents = sorted(path.glob("*.json"))
            if not documents:
                raise LlmSyncError(
                    f"--machines {path}: no *.json documents in this folder",
                    fix=_COLLECT,
                )
            found += documents
        elif path.is_file():
            found.append(path)
        else:
            raise LlmSyncError(f"--machines {path}: no such file or folder", fix=_COLLECT)
    return found


def read(paths: Sequence[Path]) -> tuple[Node, ...]:
    """The nodes the documents at ``paths`` (files, or folders of *.json) describe; exit 2 for a bad one."""
    nodes: list[Node] = []
    for path in _files(paths):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
            raise LlmSyncError(f"{path}: cannot be read ({reason})", fix=_COLLECT) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise LlmSyncError(
                f"{path}: not a JSON document (line {error.lineno}: {error.msg})",
                why="each file must hold exactly what `llm-sync detect --json` prints (warnings go to stderr)",
                fix=_COLLECT,
            ) from None
        nodes.append(parse_document(data, origin=str(path), name=path.stem))
    names = [n.name for n in nodes]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise LlmSyncError(
            f"--machines: more than one document describes {', '.join(twice)}",
            why="a node's name is the document's hostname, else its file name; two documents for one "
            "node are most often a copy",
            fix="keep one document per node",
        )
    return tuple(nodes)


def _bad(origin: str, key: str, problem: str) -> LlmSyncError:
    return LlmSyncError(
        f"{origin}: {key} {problem}",
        why="a machine document is what `llm-sync detect --json` prints (docs/json.md)",
        fix=f"collect it again on that node, or correct {key}; {_COLLECT}",
    )


def _field(data: dict[str, Any], key: str, kinds: tuple[type, ...], origin: str, *, where: str = "") -> Any:
    name = f"{where}{key}"
    if key not in data:
        raise _bad(origin, name, "is missing")
    value = data[key]
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        wanted = " or ".join("null" if k is type(None) else k.__name__ for k in kinds)
        raise _bad(origin, name, f"is {json.dumps(value)[:60]}, not {wanted}")
    return value


def _pair(text: str | None, origin: str, key: str, parse: Any) -> Pair | None:
    if text is None:
        return None
    try:
        pair: Pair = parse(text)
    except ValueError:
        raise _bad(origin, key, f"{text!r} is not MAJOR.MINOR") from None
    return pair


def _gpu(data: object, position: int, origin: str, vendor: str) -> tuple[Gpu, str]:
    where = f"gpus[{position}]."
    if not isinstance(data, dict):
        raise _bad(origin, f"gpus[{position}]", "is not an object")
    name = _field(data, "name", (str,), origin, where=where)
    capability = _pair(
        _field(data, "compute_capability", (str, type(None)), origin, where=where),
        origin,
        f"{where}compute_capability",
        parse_capability,
    )
    memory = data.get("memory_bytes")
    return (
        Gpu(
            index=data["index"] if isinstance(data.get("index"), int) else position,
            name=name,
            capability=capability,
            memory_bytes=memory if isinstance(memory, int) and not isinstance(memory, bool) else None,
            mig=data.get("mig") is True,
        ),
        str(data.get("vendor", vendor)).lower(),
    )


def parse_document(data: object, *, origin: str, name: str) -> Node:
    """One `detect --json` document, validated; an error names ``origin`` and the key."""
    if not isinstance(data, dict):
        raise _bad(origin, "the document", "is not a JSON object")
    version = _field(data, "version", (int,), origin)
    if version != DOCUMENT_VERSION:
        raise LlmSyncError(
            f"{origin}: version {version} is not a document version this llm-sync reads ({DOCUMENT_VERSION})",
            why="a newer llm-sync wrote it, with fields whose meaning changed",
            fix="collect the documents and plan with the same llm-sync version (`uvx llm-sync@X.Y`)",
        )
    system = _field(data, "system", (str,), origin)
    driver = _field(data, "driver_version", (str, type(None)), origin)
    if driver is not None:
        try:
            Version(driver)
        except InvalidVersion:
            raise _bad(origin, "driver_version", f"{driver!r} is not a driver version") from None
    cuda = _pair(_field(data, "cuda_max", (str, type(None)), origin), origin, "cuda_max", parse_version_pair)
    listed = _field(data, "gpus", (list,), origin)
    amd_listed = _field(data, "amd_gpus", (list,), origin) if "amd_gpus" in data else []
    vendor = _vendor(data, origin, has_nvidia=bool(listed or driver or cuda), has_amd=bool(amd_listed))
    gpus = [_gpu(entry, i, origin, vendor or NVIDIA) for i, entry in enumerate(listed)]
    archs_known = data.get("archs_known", True)
    if not isinstance(archs_known, bool):
        raise _bad(origin, "archs_known", "is not true or false")
    vendors = {vendor or NVIDIA} | {gpu_vendor for _, gpu_vendor in gpus} if gpus else {vendor}
    if len(vendors) > 1:
        raise _bad(origin, "vendor", f"names more than one GPU vendor ({', '.join(sorted(vendors))})")
    hostname = data.get("hostname")
    machine = Machine(
        system=system,
        source=str(data.get("source", "")),
        driver_version=driver,
        cuda_max=cuda,
        cuda_source=str(data.get("cuda_source") or ""),
        gpus=tuple(gpu for gpu, _ in gpus),
        archs_known=archs_known,
    )
    if vendor == AMD:  # a machine with NVIDIA GPUs too is planned for those, as on the machine itself
        machine = _with_amd(machine, data, amd_listed, origin)
    return Node(
        name=hostname if isinstance(hostname, str) and hostname else name,
        origin=origin,
        machine=machine,
        vendor=vendor,
    )


def _vendor(data: dict[str, Any], origin: str, *, has_nvidia: bool, has_amd: bool) -> str:
    """The document's `vendor` (null: no GPU planned for); a document from before llm-sync wrote
    it names its vendor by its GPU lists."""
    if "vendor" not in data:
        return NVIDIA if has_nvidia else AMD if has_amd else ""
    value = _field(data, "vendor", (str, type(None)), origin)
    return str(value).lower() if value else ""


def _with_amd(machine: Machine, data: dict[str, Any], listed: list[Any], origin: str) -> Machine:
    """An AMD node: its GPUs with their gfx targets, and the ROCm release installed."""
    rocm_text = _field(data, "rocm", (str, type(None)), origin) if "rocm" in data else None
    rocm = accelerators.parse_rocm_version(rocm_text) if rocm_text else None
    if rocm_text and rocm is None:
        raise _bad(origin, "rocm", f"{rocm_text!r} is not a ROCm release")
    gpus = []
    for position, entry in enumerate(listed):
        where = f"amd_gpus[{position}]."
        if not isinstance(entry, dict):
            raise _bad(origin, f"amd_gpus[{position}]", "is not an object")
        gfx = _field(entry, "gfx", (str, type(None)), origin, where=where)
        if gfx is not None:
            try:
                (gfx,) = parse_gfx_list(gfx)
            except (LlmSyncError, ValueError):
                raise _bad(origin, f"{where}gfx", f"{gfx!r} is not a gfx target") from None
        memory = entry.get("memory_bytes")
        gpus.append(
            AmdGpu(
                index=position,
                name=_field(entry, "name", (str,), origin, where=where),
                gfx=gfx,
                memory_bytes=memory if isinstance(memory, int) and not isinstance(memory, bool) else None,
            )
        )
    return dataclasses.replace(
        machine,
        amd=tuple(gpus),
        rocm=rocm,
        rocm_source=str(data.get("rocm_source") or "") if rocm else "",
        archs_known=all(g.gfx for g in gpus) if gpus else machine.archs_known,
    )


# --- combining: pure --------------------------------------------------------------------------------


def _refuse_mixtures(nodes: Sequence[Node]) -> str:
    """The fleet's one GPU vendor ("" when no node has a GPU), or why it cannot be planned."""
    by_vendor: dict[str, list[str]] = {}
    for node in nodes:
        if node.vendor:
            by_vendor.setdefault(node.vendor, []).append(node.name)
    if len(by_vendor) > 1:
        shown = "; ".join(f"{vendor}: {', '.join(names)}" for vendor, names in sorted(by_vendor.items()))
        raise LlmSyncError(
            f"--machines mixes GPU vendors ({shown})",
            why="one environment holds one PyTorch build, and a CUDA build does not run on another vendor's GPUs",
            fix="plan each vendor's nodes as their own fleet (their own project or environment)",
        )
    others = sorted(set(by_vendor) - {NVIDIA, AMD})
    if others:
        raise LlmSyncError(
            f"--machines: llm-sync plans fleets of NVIDIA or AMD GPUs, not {', '.join(others)} "
            f"({_names(by_vendor[others[0]])})",
            why="fleet documents of Intel GPUs are not read yet",
            fix="plan those nodes on one of them with `llm-sync plan` (or `--backend xpu`), without --machines",
        )
    systems: dict[str, list[str]] = {}
    for node in nodes:
        systems.setdefault(node.machine.system, []).append(node.name)
    if len(systems) > 1:
        shown = "; ".join(f"{system}: {', '.join(names)}" for system, names in sorted(systems.items()))
        raise LlmSyncError(
            f"--machines mixes operating systems ({shown})",
            why="a fleet runs one environment; a teammate's laptop is planned by the lock's other platforms",
            fix="give only the cluster's nodes to --machines",
        )
    return next(iter(by_vendor), "")


def _names(names: Sequence[str], shown: int = 4) -> str:
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def _limit(nodes: Sequence[Node]) -> Node | None:
    """The node whose driver runs the lowest CUDA (the lowest driver among equals)."""
    limited = [n for n in nodes if n.machine.cuda_max is not None]
    if not limited:
        return None
    return min(limited, key=lambda n: (n.machine.cuda_max, n.machine.driver() or Version("0")))


def combine(nodes: Sequence[Node]) -> Fleet:
    """The fleet as one machine: union of GPUs and architectures, the lowest CUDA limit."""
    if not nodes:
        raise LlmSyncError("--machines named no machine documents", fix=_COLLECT)
    if _refuse_mixtures(nodes) == AMD:
        return _combine_amd(nodes)
    gpu_nodes = [n for n in nodes if n.machine.has_nvidia]
    limit = _limit(gpu_nodes)
    warnings: list[str] = []
    unlimited = [n.name for n in gpu_nodes if n.machine.cuda_max is None]
    if unlimited:
        warnings.append(
            f"the driver's CUDA limit is unknown on {_names(unlimited)}: the plan does not check that "
            "those nodes run the chosen build; collect their documents with a working nvidia-smi"
        )
    unknown_archs = [n.name for n in gpu_nodes if not n.machine.archs_known]
    if unknown_archs:
        warnings.append(
            f"the GPU architectures of {_names(unknown_archs)} are unknown: builds may not cover them; "
            "collect their documents where NVML or nvidia-smi works, or record them in [tool.llm-sync] cuda-archs"
        )
    where = _who_has(gpu_nodes, lambda n: [(g.name, g.capability) for g in n.machine.gpus])
    gpus = tuple(
        Gpu(index=i, name=f"{name} on {_names(holders)}", capability=capability)
        for i, ((name, capability), holders) in enumerate(
            sorted(where.items(), key=lambda kv: kv[0][1] or (0, 0))
        )
    )
    machine = Machine(
        system=nodes[0].machine.system,
        source=f"--machines ({len(nodes)} documents)",
        driver_version=limit.machine.driver_version if limit else None,
        cuda_max=limit.machine.cuda_max if limit else None,
        cuda_source=f"node {limit.name}" if limit else "",
        gpus=gpus,
        archs_known=any(n.machine.archs_known for n in gpu_nodes) if gpu_nodes else True,
        nodes=tuple(n.name for n in nodes),
        limited_by=limit.name if limit else "",
    )
    return Fleet(machine, tuple(nodes), _decisions(nodes, limit, gpus), tuple(warnings))


def _decisions(nodes: Sequence[Node], limit: Node | None, gpus: tuple[Gpu, ...]) -> tuple[Decision, ...]:
    gpu_nodes = [n for n in nodes if n.machine.has_nvidia]
    cpu_nodes = [n.name for n in nodes if not n.machine.has_nvidia]
    parts = []
    if limit is not None and limit.machine.cuda_max is not None:
        newer = [n.name for n in gpu_nodes if n is not limit and n.machine.cuda_max != limit.machine.cuda_max]
        parts.append(
            f"CUDA limit from {limit.name} (driver {limit.machine.driver_version or 'unknown'}, "
            f"CUDA ≤ {show_pair(limit.machine.cuda_max)})" + (f"; {_names(newer)} run newer" if newer else "")
        )
    by_arch: dict[Pair, list[str]] = {}
    for node in gpu_nodes:
        for capability in node.machine.capabilities:
            by_arch.setdefault(capability, []).append(node.name)
    if by_arch:
        parts.append(
            "GPU architectures "
            + ", ".join(f"{show_sm(arch)} ({_names(names)})" for arch, names in sorted(by_arch.items()))
        )
    if cpu_nodes:
        parts.append(f"no NVIDIA GPU on {_names(cpu_nodes)} (a CUDA build of torch runs there on the CPU)")
    choice = f"{len(nodes)} node(s), {len(gpus)} GPU model(s)"
    return (Decision("fleet", choice, "planned for every node together: " + "; ".join(parts)),)


# --- an AMD fleet: the union of gfx targets, the oldest ROCm release -----------------------------


def _rocm_limit(nodes: Sequence[Node]) -> Node | None:
    """The node with the oldest ROCm release (rocm_fit plans for ROCm ≤ it)."""
    known = [(accelerators.version_or_none(n.machine.rocm), n) for n in nodes]
    limited = [(version, n) for version, n in known if version is not None]
    return min(limited, key=lambda pair: pair[0])[1] if limited else None


_Kind = TypeVar("_Kind")


def _who_has(
    nodes: Sequence[Node], kinds_of: Callable[[Node], list[tuple[str, _Kind]]]
) -> dict[tuple[str, _Kind], list[str]]:
    """Each kind of GPU (name and architecture) and the nodes that have it, in node order."""
    where: dict[tuple[str, _Kind], list[str]] = {}
    for node in nodes:
        for kind in kinds_of(node):
            holders = where.setdefault(kind, [])
            if node.name not in holders:
                holders.append(node.name)
    return where


def _combine_amd(nodes: Sequence[Node]) -> Fleet:
    gpu_nodes = [n for n in nodes if n.machine.has_amd]
    limit = _rocm_limit(gpu_nodes)
    warnings: list[str] = []
    unlimited = [n.name for n in gpu_nodes if n.machine.rocm is None]
    if unlimited:
        warnings.append(
            f"the ROCm release is unknown on {_names(unlimited)}: the plan does not check that those nodes "
            "run the chosen build; collect their documents where /opt/rocm/.info/version is readable"
        )
    unknown_archs = [n.name for n in gpu_nodes if not n.machine.archs_known]
    if unknown_archs:
        warnings.append(
            f"the gfx targets of {_names(unknown_archs)} are unknown: builds may not cover them; "
            "collect their documents where the KFD topology or amdsmi is readable"
        )
    where = _who_has(gpu_nodes, lambda n: [(g.name, g.gfx) for g in n.machine.amd])
    gpus = tuple(
        AmdGpu(index=i, name=f"{name} on {_names(holders)}", gfx=gfx)
        for i, ((name, gfx), holders) in enumerate(sorted(where.items(), key=lambda kv: kv[0][1] or ""))
    )
    machine = Machine(
        system=nodes[0].machine.system,
        source=f"--machines ({len(nodes)} documents)",
        archs_known=all(n.machine.archs_known for n in gpu_nodes),
        amd=gpus,
        rocm=limit.machine.rocm if limit else None,
        rocm_source=f"node {limit.name}" if limit else "",
        nodes=tuple(n.name for n in nodes),
        limited_by=limit.name if limit else "",
    )
    return Fleet(machine, tuple(nodes), (_amd_decision(nodes, limit, len(gpus)),), tuple(warnings))


def _amd_decision(nodes: Sequence[Node], limit: Node | None, models: int) -> Decision:
    gpu_nodes = [n for n in nodes if n.machine.has_amd]
    by_gfx: dict[str, list[str]] = {}
    for node in gpu_nodes:
        for gfx in node.machine.gfx_targets:
            by_gfx.setdefault(gfx, []).append(node.name)
    parts = []
    if limit is not None:
        newer = [n.name for n in gpu_nodes if n is not limit and n.machine.rocm != limit.machine.rocm]
        parts.append(
            f"ROCm limit from {limit.name} (ROCm {limit.machine.rocm})"
            + (f"; {_names(newer)} run newer" if newer else "")
        )
    if by_gfx:
        parts.append(
            "gfx targets " + ", ".join(f"{gfx} ({_names(names)})" for gfx, names in sorted(by_gfx.items()))
        )
    cpu_nodes = [n.name for n in nodes if not n.machine.has_amd]
    if cpu_nodes:
        parts.append(f"no AMD GPU on {_names(cpu_nodes)} (a ROCm build of torch runs there on the CPU)")
    return Decision(
        "fleet",
        f"{len(nodes)} node(s), {models} AMD GPU model(s)",
        "planned for every node together: " + "; ".join(parts),
    )
