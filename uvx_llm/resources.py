"""CPUs and memory a build can really use: scheduler affinity, cgroup v1/v2 limits, MemAvailable.

Standard library only: `sync --ray` runs this text on each node (``source``).

Inside a container the host's totals lie: a 64-core host may give the container
4 CPUs and 16 GiB. flash-attn's own MAX_JOBS heuristic (os.cpu_count(),
MemAvailable) ignores that and gets OOM-killed. Every file is read under
``root`` so tests can hand in a recorded tree.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

_UNLIMITED_V1 = 1 << 60  # cgroup v1 reports "no limit" as a huge number (PAGE_COUNTER_MAX)


@dataclass(frozen=True)
class Resources:
    cpus: int
    cpu_reason: str
    memory_bytes: int | None
    memory_reason: str

    @property
    def memory_gib(self) -> float | None:
        return None if self.memory_bytes is None else self.memory_bytes / 2**30


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return None


def _cgroup_paths(root: Path) -> tuple[str | None, dict[str, str]]:
    """(the v2 path, {v1 controller: path}) of this process, from /proc/self/cgroup."""
    text = _read(root / "proc/self/cgroup") or ""
    v2: str | None = None
    v1: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:  # noqa: PLR2004 - hierarchy-ID:controllers:path
            continue
        _, controllers, path = parts
        if controllers == "":
            v2 = path
        for controller in controllers.split(","):
            if controller:
                v1[controller] = path
    return v2, v1


def _ancestors(base: Path, relative: str) -> list[Path]:
    """The cgroup folder and each parent up to the mount: limits apply from all of them."""
    parts = [p for p in relative.split("/") if p]
    folders = [base.joinpath(*parts[:depth]) for depth in range(len(parts), -1, -1)]
    return [f for f in folders if f.is_dir()] or [base]


def _v2_cpu_quota(folder: Path) -> float | None:
    text = _read(folder / "cpu.max")
    if not text:
        return None
    quota, _, period = text.partition(" ")
    if quota == "max" or not period:
        return None
    return int(quota) / int(period)


def _v1_cpu_quota(folder: Path) -> float | None:
    quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
    if not quota or not period or int(quota) <= 0:
        return None
    return int(quota) / int(period)


def _cpu_quota(root: Path) -> tuple[float, str] | None:
    v2, v1 = _cgroup_paths(root)
    quotas: list[tuple[float, str]] = []
    mount = root / "sys/fs/cgroup"
    if v2 is not None and (mount / "cgroup.controllers").exists():
        quotas += [
            (q, f"cgroup v2 cpu.max of {f.relative_to(mount) or '/'}")
            for f in _ancestors(mount, v2)
            if (q := _v2_cpu_quota(f))
        ]
    for controller in ("cpu", "cpu,cpuacct"):
        if controller.split(",")[0] in v1 and (mount / controller).is_dir():
            folders = _ancestors(mount / controller, v1[controller.split(",")[0]])
            quotas += [(q, "cgroup v1 cpu.cfs_quota_us") for f in folders if (q := _v1_cpu_quota(f))]
            break
    return min(quotas) if quotas else None


def usable_cpus(root: Path, affinity: int) -> tuple[int, str]:
    quota = _cpu_quota(root)
    if quota is not None and math.ceil(quota[0]) < affinity:
        return max(1, math.ceil(quota[0])), f"{quota[0]:g} CPUs allowed by the {quota[1]}"
    return affinity, f"{affinity} CPUs in this process's scheduler affinity"


def _mem_available(root: Path) -> int | None:
    for line in (_read(root / "proc/meminfo") or "").splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def _stat_value(folder: Path, file: str, key: str) -> int:
    """One counter of a cgroup's memory.stat (0 when absent or unreadable)."""
    for line in (_read(folder / file) or "").splitlines():
        name, _, value = line.partition(" ")
        if name == key and value.strip().isdigit():
            return int(value)
    return 0


def _number(text: str | None) -> int | None:
    return int(text) if text and text.isascii() and text.isdigit() else None


def _v2_memory_room(folder: Path) -> int | None:
    """memory.max minus what is in use; the inactive page cache (``inactive_file``) is not in use:
    the kernel reclaims it before it kills anything, as `docker stats` and the kubelet count it."""
    limit = _number(_read(folder / "memory.max"))
    if limit is None:  # "max", or unreadable
        return None
    current = _number(_read(folder / "memory.current")) or 0
    reclaimable = _stat_value(folder, "memory.stat", "inactive_file")
    return max(0, limit - max(0, current - reclaimable))


def _v1_memory_room(folder: Path) -> int | None:
    limit = _number(_read(folder / "memory.limit_in_bytes"))
    if limit is None or limit >= _UNLIMITED_V1:
        return None
    usage = _number(_read(folder / "memory.usage_in_bytes")) or 0
    reclaimable = _stat_value(folder, "memory.stat", "total_inactive_file")
    return max(0, limit - max(0, usage - reclaimable))


def usable_memory(root: Path) -> tuple[int | None, str]:
    available = _mem_available(root)
    rooms: list[tuple[int, str]] = []
    v2, v1 = _cgroup_paths(root)
    mount = root / "sys/fs/cgroup"
    if v2 is not None and (mount / "cgroup.controllers").exists():
        rooms += [
            (r, "cgroup v2 memory.max minus memory.current (less reclaimable page cache)")
            for f in _ancestors(mount, v2)
            if (r := _v2_memory_room(f)) is not None
        ]
    if "memory" in v1 and (mount / "memory").is_dir():
        rooms += [
            (r, "cgroup v1 memory limit minus usage (less reclaimable page cache)")
            for f in _ancestors(mount / "memory", v1["memory"])
            if (r := _v1_memory_room(f)) is not None
        ]
    candidates = rooms + ([(available, "MemAvailable in /proc/meminfo")] if available is not None else [])
    if not candidates:
        return None, "memory unknown"
    room, reason = min(candidates)
    return room, f"{room / 2**30:.1f} GiB free by {reason}"


def source() -> str:
    """This module's text: `sync --ray` and `doctor --ray` run it on each node, where llm-sync is
    not installed (so nothing here imports beyond the standard library)."""
    return Path(__file__).read_text(encoding="utf-8")


def detect(root: Path = Path("/"), affinity: int | None = None) -> Resources:
    if affinity is None:
        affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    cpus, cpu_reason = usable_cpus(root, affinity)
    memory, memory_reason = usable_memory(root)
    return Resources(cpus=cpus, cpu_reason=cpu_reason, memory_bytes=memory, memory_reason=memory_reason)
