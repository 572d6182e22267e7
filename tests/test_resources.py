"""cgroup parsing from recorded-layout trees: v1 and v2, limited and unlimited, nested quotas."""

from __future__ import annotations

from typing import TYPE_CHECKING

from uvx_llm import resources

if TYPE_CHECKING:
    from pathlib import Path

GIB = 2**30
MEMINFO = "MemTotal:       131072000 kB\nMemFree:         1000000 kB\nMemAvailable:   104857600 kB\n"  # 100 GiB available


def tree(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def v2(root: Path, group: str, **files: str) -> Path:
    layout = {
        "proc/self/cgroup": f"0::{group}\n",
        "proc/meminfo": MEMINFO,
        "sys/fs/cgroup/cgroup.controllers": "cpu memory\n",
    }
    layout.update({f"sys/fs/cgroup{group}/{name.replace('_', '.')}": text for name, text in files.items()})
    return tree(root, layout)


def test_v2_container_with_cpu_and_memory_limits(tmp_path: Path) -> None:
    root = v2(
        tmp_path,
        "/docker/abc",
        cpu_max="400000 100000\n",
        memory_max=f"{16 * GIB}\n",
        memory_current=f"{4 * GIB}\n",
    )
    found = resources.detect(root, affinity=64)
    assert found.cpus == 4
    assert "cpu.max" in found.cpu_reason
    assert found.memory_bytes == 12 * GIB
    assert "memory.max" in found.memory_reason


def test_v2_unlimited_falls_back_to_affinity_and_memavailable(tmp_path: Path) -> None:
    root = v2(tmp_path, "/user.slice", cpu_max="max 100000\n", memory_max="max\n")
    found = resources.detect(root, affinity=16)
    assert found.cpus == 16
    assert "affinity" in found.cpu_reason
    assert found.memory_bytes == 100 * GIB
    assert "MemAvailable" in found.memory_reason


def test_v2_fractional_quota_rounds_up_and_parent_limits_count(tmp_path: Path) -> None:
    root = v2(tmp_path, "/kubepods/pod1/ctr", cpu_max="max 100000\n")
    tree(
        root,
        {
            "sys/fs/cgroup/kubepods/pod1/cpu.max": "150000 100000\n",
            "sys/fs/cgroup/kubepods/memory.max": f"{8 * GIB}\n",
        },
    )
    found = resources.detect(root, affinity=32)
    assert found.cpus == 2  # 1.5 CPUs of the pod
    assert found.memory_bytes == 8 * GIB  # the parent's limit binds


def test_memavailable_binds_when_below_the_cgroup_room(tmp_path: Path) -> None:
    root = v2(tmp_path, "/docker/abc", memory_max=f"{500 * GIB}\n", memory_current="0\n")
    assert resources.detect(root, affinity=8).memory_bytes == 100 * GIB


def test_v1_limits(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "proc/self/cgroup": "4:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n",
            "proc/meminfo": MEMINFO,
            "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "300000\n",
            "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n",
            "sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": f"{24 * GIB}\n",
            "sys/fs/cgroup/memory/docker/abc/memory.usage_in_bytes": f"{6 * GIB}\n",
        },
    )
    found = resources.detect(root, affinity=64)
    assert found.cpus == 3
    assert found.memory_bytes == 18 * GIB
    assert "v1" in found.memory_reason


def test_v1_unlimited(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "proc/self/cgroup": "4:memory:/\n1:cpu:/\n",
            "proc/meminfo": MEMINFO,
            "sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n",
            "sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
            "sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
            "sys/fs/cgroup/memory/memory.usage_in_bytes": f"{6 * GIB}\n",
        },
    )
    found = resources.detect(root, affinity=12)
    assert found.cpus == 12
    assert found.memory_bytes == 100 * GIB


def test_cgroup_namespace_path_missing_uses_the_mount(tmp_path: Path) -> None:
    # Inside a cgroup namespace /proc/self/cgroup may name a path that the mount does not show.
    root = tree(
        tmp_path,
        {
            "proc/self/cgroup": "4:memory:/process_api/abcdef\n",
            "proc/meminfo": MEMINFO,
            "sys/fs/cgroup/memory/memory.limit_in_bytes": f"{10 * GIB}\n",
            "sys/fs/cgroup/memory/memory.usage_in_bytes": f"{1 * GIB}\n",
        },
    )
    assert resources.detect(root, affinity=4).memory_bytes == 9 * GIB


def test_nothing_readable(tmp_path: Path) -> None:
    found = resources.detect(tmp_path, affinity=2)
    assert found.cpus == 2
    assert found.memory_bytes is None
    assert found.memory_gib is None


def test_this_machine() -> None:
    found = resources.detect()
    assert found.cpus >= 1
    assert found.memory_bytes is None or found.memory_bytes > 0


# memory.stat as the H100 machine's cgroup showed it after a 56 GiB file was written
# (issue 13, item 23): most of memory.current was inactive page cache.
V2_STAT = (
    "anon 6442450944\nfile 62277025792\nkernel 402653184\nshmem 0\n"
    "active_anon 6039797760\ninactive_anon 0\nactive_file 2147483648\ninactive_file 60129542144\n"
    "unevictable 0\nslab_reclaimable 268435456\n"
)


def test_v2_reclaimable_page_cache_counts_as_free(tmp_path: Path) -> None:
    root = v2(
        tmp_path,
        "/docker/abc",
        memory_max=f"{128 * GIB}\n",
        memory_current=f"{(6 + 58 + 1) * GIB}\n",
        memory_stat=V2_STAT,
    )
    found = resources.detect(root, affinity=16)
    # 128 GiB - (65 GiB in use - 56 GiB inactive file cache) = 119 GiB, then MemAvailable's 100 binds
    assert found.memory_bytes == 100 * GIB
    assert resources._v2_memory_room(root / "sys/fs/cgroup/docker/abc") == 119 * GIB


def test_v1_reclaimable_page_cache_counts_as_free(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "proc/self/cgroup": "4:memory:/docker/abc\n",
            "proc/meminfo": MEMINFO,
            "sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": f"{24 * GIB}\n",
            "sys/fs/cgroup/memory/docker/abc/memory.usage_in_bytes": f"{20 * GIB}\n",
            "sys/fs/cgroup/memory/docker/abc/memory.stat": (
                f"cache {15 * GIB}\nrss {5 * GIB}\ninactive_file {GIB}\n"
                f"total_cache {15 * GIB}\ntotal_rss {5 * GIB}\ntotal_inactive_file {12 * GIB}\n"
            ),
        },
    )
    assert resources.detect(root, affinity=16).memory_bytes == 16 * GIB  # 24 - (20 - 12)


def test_garbage_in_cgroup_files_is_no_limit(tmp_path: Path) -> None:
    root = v2(
        tmp_path, "/docker/abc", memory_max="lots\n", memory_current="x\n", memory_stat="inactive_file y\n"
    )
    assert resources.detect(root, affinity=16).memory_bytes == 100 * GIB
