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
