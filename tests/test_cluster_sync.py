"""`llm-sync sync --ray`, the pure part: the order of the node syncs and what their results come
to. The driver against a real local Ray cluster: tests/test_cluster_ray.py."""

from __future__ import annotations

import io
import tarfile
from typing import TYPE_CHECKING

import pytest

from uvx_llm import cluster_sync, wheelcopy
from uvx_llm.cluster import NodeAnswer

if TYPE_CHECKING:
    from pathlib import Path


def _node(name: str) -> NodeAnswer:
    return NodeAnswer(name, f"id-{name}")


def test_waves_and_outcome_are_pure() -> None:
    nodes = [_node("b"), _node("a"), _node("c")]
    assert [[n["name"] for n in wave] for wave in cluster_sync.waves(nodes, builds=True)] == [
        ["a"],
        ["b", "c"],
    ]
    assert [[n["name"] for n in wave] for wave in cluster_sync.waves(nodes, builds=False)] == [
        ["a", "b", "c"]
    ]
    done = cluster_sync.NodeResult("a", "done", seconds=3.0)
    assert cluster_sync.outcome([done], ["a"], timeout=10) is None
    failed = cluster_sync.NodeResult("a", "failed", "uv's exit code 1", log="/l", tail=("boom",))
    error = cluster_sync.outcome([failed], ["a", "b"], timeout=10)
    assert error is not None
    assert error.what.startswith("2 of 2 Ray nodes are not in sync: a: uv sync failed")
    assert "b: not started" in error.what
    assert "boom" in error.why
    assert "/l" in error.fix
    assert (
        cluster_sync.result_of({"name": "x", "error": "no-uv", "detail": "no uv on PATH"}).status == "no-uv"
    )


def test_a_node_that_died_is_named_with_what_to_do() -> None:
    died = cluster_sync.result_of(
        {
            "name": "gpu-02",
            "status": "died",
            "detail": "NodeDiedError: Task failed because the node it was running on is dead. Node IP: x",
        }
    )
    assert cluster_sync.line_of(died) == (
        "gpu-02: the node (or its Ray worker) died during its sync: NodeDiedError: Task failed because "
        "the node it was running on is dead"
    )
    error = cluster_sync.outcome([died], ["gpu-02"], timeout=10)
    assert error is not None
    assert "bring the node back" in error.fix


def test_nodes_without_a_usable_answer_stop_before_anything_is_written() -> None:
    silent = NodeAnswer("gpu-02", "b", problem="did not answer in time")
    error = cluster_sync.silent([_node("gpu-01"), silent], timeout=30)
    assert error is not None
    assert error.what == "1 of 2 Ray nodes gave no usable answer: gpu-02 did not answer in time"
    assert "raise --timeout (now 30 s)" in error.fix
    assert cluster_sync.silent([_node("gpu-01")], timeout=30) is None


def test_a_carried_build_unpacks_as_it_was_packed_and_nothing_outside(tmp_path: Path) -> None:
    folder = tmp_path / "built" / "flash-attn" / "9.9.9"
    folder.mkdir(parents=True)
    (folder / "flash_attn-9.9.9-cp311-cp311-linux_x86_64.whl").write_bytes(b"wheel")
    target = tmp_path / "carried"
    target.mkdir()
    wheelcopy.unpack(wheelcopy.pack(tmp_path / "built"), target)
    assert (
        target / "flash-attn" / "9.9.9" / "flash_attn-9.9.9-cp311-cp311-linux_x86_64.whl"
    ).read_bytes() == b"wheel"

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        member = tarfile.TarInfo("../escaped")
        member.size = 1
        archive.addfile(member, io.BytesIO(b"x"))
    with pytest.raises(ValueError, match=r"refusing '\.\./escaped'"):
        wheelcopy.unpack(buffer.getvalue(), target)
    assert not (tmp_path / "escaped").exists()


def test_each_node_compiles_with_jobs_for_its_own_cpus_and_memory() -> None:
    from uvx_llm.actions import EnvSetting, Plan  # noqa: PLC0415 - only here
    from uvx_llm.resources import Resources  # noqa: PLC0415 - same

    settings = (
        EnvSetting("NVCC_THREADS", "2", "two archs"),
        EnvSetting("MAX_JOBS", "64", "this machine: 128 CPUs"),
        EnvSetting("CMAKE_BUILD_PARALLEL_LEVEL", "64", "as MAX_JOBS"),
    )
    plan = Plan(None, (), (), (), None, settings, gib_per_build_thread=5.0)
    small = NodeAnswer("gpu-01", "a", resources=Resources(16, "16 CPUs", 40 * 2**30, "40 GiB free"))
    env, why = cluster_sync.node_environment(plan, small)
    assert env == {"NVCC_THREADS": "2", "MAX_JOBS": "4", "CMAKE_BUILD_PARALLEL_LEVEL": "4"}  # 40 GiB / 10
    assert why.startswith("MAX_JOBS=4: the smaller of: 16 usable CPUs")
    env, why = cluster_sync.node_environment(plan, _node("unknown"))
    assert env == {"NVCC_THREADS": "2"}
    assert why == "its CPUs and memory are unknown: MAX_JOBS is left to the package"
    nothing_built = Plan(None, (), (), (), None, ())
    assert cluster_sync.node_environment(nothing_built, small) == ({}, "")


@pytest.mark.parametrize("module", ["wheelcopy", "resources", "sysfs_copy"])
def test_the_modules_a_node_runs_import_only_the_standard_library(module: str) -> None:
    """`sync --ray` and `doctor --ray` run these modules' text on nodes without llm-sync installed."""
    import ast  # noqa: PLC0415 - only here
    import sys  # noqa: PLC0415 - same
    from pathlib import Path  # noqa: PLC0415 - same

    tree = ast.parse((Path(cluster_sync.__file__).parent / f"{module}.py").read_text(encoding="utf-8"))
    imported = {
        name.split(".")[0]
        for node in ast.walk(tree)
        for name in (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
    }
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


def test_every_node_gets_this_machines_index_locations_not_its_credentials() -> None:
    environ = {
        "UV_DEFAULT_INDEX": "https://mirror.example/simple",
        "UV_INDEX_STRATEGY": "unsafe-best-match",
        "UV_INDEX_INTERNAL_PASSWORD": "hunter2",
        "UV_CACHE_DIR": "/here/cache",
        "UV_FIND_LINKS": "",
    }
    assert cluster_sync.index_settings(environ) == {
        "UV_DEFAULT_INDEX": "https://mirror.example/simple",
        "UV_INDEX_STRATEGY": "unsafe-best-match",
    }
