"""`llm-sync sync --ray`: the real driver, in a real interpreter, against the stand-in `ray`
package (tests/standins/ray_cluster). Each simulated node is a machine of its own: its
nvidia-smi, its uv cache, its project environment; its task runs the real uv against the
loopback index, and the recording stand-in flash-attn sdist counts the compiles."""

from __future__ import annotations

import json
import shutil
import sys
from typing import TYPE_CHECKING, Any

import pytest
from helpers import STANDINS, environment, llm_sync, uv_binary, write_project

from uvx_llm import cluster_sync
from uvx_llm.cluster import NodeAnswer

if TYPE_CHECKING:
    from pathlib import Path

    from pkgindex import PackageIndex

pytestmark = pytest.mark.uv

H100 = "0, NVIDIA H100 80GB HBM3, 580.159.04, 9.0, 81559"
A100 = "0, NVIDIA A100-SXM4-80GB, 580.159.04, 8.0, 81920"


def _script(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)


class Cluster:
    def __init__(self, root: Path, index: PackageIndex) -> None:
        self.root, self.index = root, index
        self.nodes: list[dict[str, Any]] = []
        self.log = root / "ray.log"
        self.record = root / "builds.jsonl"
        self.project = write_project(root / "shared" / "app", "flash-attn")

    def folder(self, name: str) -> Path:
        return self.root / "nodes" / name

    def add(self, name: str, smi: str, *, hang: bool | list[str] = False, **env: str) -> None:
        folder = self.folder(name)
        _script(folder / "bin" / "nvidia-smi", f"#!/bin/sh\necho '{smi}'\n")
        (folder / "bin" / "uv").symlink_to(uv_binary())
        self.nodes.append(
            {
                "NodeID": f"{len(self.nodes):02d}" + "cd" * 27,
                "NodeManagerHostname": name,
                "NodeManagerAddress": f"10.0.0.{len(self.nodes) + 1}",
                "Alive": True,
                "hang": hang,
                "env": {
                    "PATH": f"{folder / 'bin'}:/usr/bin:/bin",
                    "UV_CACHE_DIR": str(folder / "uv-cache"),
                    "UV_PROJECT_ENVIRONMENT": str(folder / "venv"),
                    "XDG_CACHE_HOME": str(folder / "cache"),
                    **env,
                },
            }
        )

    def sync(self, *args: str) -> tuple[int, str]:
        (self.root / "cluster.json").write_text(
            json.dumps({"address": "10.0.0.1:6379", "nodes": self.nodes}), encoding="utf-8"
        )
        env = environment(
            self.index,
            UV_CACHE_DIR=str(self.root / "head-cache"),
            LLM_SYNC_TEST_RECORD=str(self.record),
            PYTHONPATH=str(STANDINS / "ray_cluster"),
            RAY_STANDIN_NODES=str(self.root / "cluster.json"),
            RAY_STANDIN_LOG=str(self.log),
        )
        done = llm_sync(["sync", "--ray", "--python", sys.executable, *args], env=env, cwd=self.project)
        return done.returncode, done.stderr

    def builds(self) -> list[dict[str, Any]]:
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text(encoding="utf-8").splitlines()]

    def events(self, kind: str) -> list[dict[str, Any]]:
        lines = self.log.read_text(encoding="utf-8").splitlines()
        return [e for e in map(json.loads, lines) if e["event"] == kind]

    def installed(self, name: str) -> bool:
        return any(self.folder(name).glob("venv/lib/python*/site-packages/flash_attn/__init__.py"))


@pytest.fixture
def ray_cluster(tmp_path: Path, package_index: PackageIndex) -> Cluster:
    return Cluster(tmp_path, package_index)


def test_three_nodes_one_build_shared_through_the_wheelhouse(ray_cluster: Cluster) -> None:
    house = ray_cluster.root / "shared" / "wheels"
    ray_cluster.add("gpu-01", H100)
    ray_cluster.add("gpu-02", H100)
    ray_cluster.add("gpu-03", A100)
    code, err = ray_cluster.sync("--wheelhouse", str(house))
    assert code == 0, err
    # planned for the cluster: the union of the nodes' architectures, built once, on gpu-01
    [built] = ray_cluster.builds()
    assert built["FLASH_ATTN_CUDA_ARCHS"] == "80;90"
    assert 'cuda-archs = "8.0;9.0"' in (ray_cluster.project / "pyproject.toml").read_text(encoding="utf-8")
    assert all(ray_cluster.installed(name) for name in ("gpu-01", "gpu-02", "gpu-03"))
    shared = [p.relative_to(house).as_posix() for p in house.glob("*/*/*/*/*")]
    assert shared == [
        f"flash-attn/9.9.9/torch-2.9.0+cu130/sm_80-sm_90/py{sys.version_info[0]}.{sys.version_info[1]}"
    ]
    for name in ("gpu-01", "gpu-02", "gpu-03"):
        assert f"{name}: uv sync started" in err
        assert f"{name}: uv sync done" in err
    assert "built packages from the wheelhouse, no compile" in err
    assert "every node (3) matches uv.lock" in err
    tasks = ray_cluster.events("task")
    assert len(tasks) == 6  # the survey's three, then the syncs: gpu-01 first, the other two after
    assert all("scheduling_strategy" in t["options"] for t in tasks)
    assert ray_cluster.events("shutdown")


def test_a_plan_that_builds_needs_a_wheelhouse(ray_cluster: Cluster) -> None:
    ray_cluster.add("gpu-01", H100)
    before = (ray_cluster.project / "pyproject.toml").read_bytes()
    code, err = ray_cluster.sync()
    assert code == 2, err
    assert "needs the `wheelhouse` setting" in err
    assert (ray_cluster.project / "pyproject.toml").read_bytes() == before
    assert ray_cluster.builds() == []


def test_a_node_that_fails_mid_sync_fails_the_command_with_its_log(ray_cluster: Cluster) -> None:
    house = ray_cluster.root / "wheels"
    ray_cluster.add("gpu-01", H100)
    ray_cluster.add("gpu-02", A100, UV_OFFLINE="1")  # an empty cache and no network: uv fails there
    code, err = ray_cluster.sync("--wheelhouse", str(house))
    assert code == 1, err
    assert "gpu-01: uv sync done" in err
    log = next(ray_cluster.folder("gpu-02").glob("cache/llm-sync/logs/ray/sync-*.log"))
    assert "gpu-02: uv sync failed (uv's exit code" in err
    assert str(log) in err
    assert "1 of 2 Ray nodes are not in sync" in err
    last = log.read_text(encoding="utf-8").strip().splitlines()[-1]
    assert last in err  # the node's last lines are shown
    assert len(ray_cluster.builds()) == 1


def test_silent_nodes_are_failures_not_hangs(ray_cluster: Cluster) -> None:
    house = ray_cluster.root / "wheels"
    ray_cluster.add("gpu-01", H100)
    ray_cluster.add("gpu-02", H100, hang=True)
    before = (ray_cluster.project / "pyproject.toml").read_bytes()
    code, err = ray_cluster.sync("--wheelhouse", str(house))
    assert code == 1, err
    assert "1 of 2 Ray nodes did not answer: gpu-02 did not answer in time" in err
    assert (ray_cluster.project / "pyproject.toml").read_bytes() == before

    # answers the survey, then goes silent in its sync: cancelled, and a failure
    shutil.rmtree(ray_cluster.folder("gpu-02"))
    ray_cluster.nodes.pop()
    ray_cluster.add("gpu-02", H100, hang=["sync_node"])
    code, err = ray_cluster.sync("--wheelhouse", str(house), "--node-timeout", "5")
    assert code == 1, err
    assert "gpu-02: did not answer within the timeout" in err
    assert "raise --node-timeout (now 5 s)" in err
    assert any(e["force"] for e in ray_cluster.events("cancel"))


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
