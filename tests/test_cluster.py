"""`llm-sync doctor --ray`: the real driver script, run in a real interpreter, against a stand-in
`ray` package (tests/standins/ray_cluster) that simulates the nodes — each with its own
nvidia-smi and project environment answering with a probe answer recorded on a real H100
machine. Installing the real ray (a large wheel, from the network) is not done in tests.
The cross-node comparison is pure and tested directly too."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import GOOD, STANDINS, run

from uvx_llm import catalog, cluster
from uvx_llm.errors import ExitCode
from uvx_llm.interpreter import Environment
from uvx_llm.machine import Gpu, Machine

RECORDED = json.loads(
    (Path(__file__).parent / "fixtures" / "env" / "h100-torch-2.11-cu130.json").read_text(encoding="utf-8")
)["plain"]
H100_SMI = "0, NVIDIA H100 80GB HBM3, {driver}, 9.0, 81559"


def _script(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)


class Cluster:
    """Simulated nodes: each a folder with its nvidia-smi and its project environment."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.nodes: list[dict[str, Any]] = []
        self.log = root / "ray.log"

    def add(
        self,
        name: str,
        *,
        probe: dict[str, Any] | None = None,
        driver: str = "580.159.04",
        hang: bool = False,
    ) -> None:
        folder = self.root / "nodes" / name
        answer = folder / "probe.json"
        if probe is not None:
            answer.parent.mkdir(parents=True, exist_ok=True)
            answer.write_text(json.dumps(probe), encoding="utf-8")
            _script(folder / "env" / "bin" / "python", f"#!/bin/sh\ncat {answer}\n")
        _script(folder / "bin" / "nvidia-smi", f"#!/bin/sh\necho '{H100_SMI.format(driver=driver)}'\n")
        self.nodes.append(
            {
                "NodeID": f"{len(self.nodes):02d}" + "ab" * 27,
                "NodeManagerHostname": name,
                "NodeManagerAddress": f"10.0.0.{len(self.nodes) + 1}",
                "Alive": True,
                "hang": hang,
                "env": {
                    "UV_PROJECT_ENVIRONMENT": str(folder / "env"),
                    "PATH": f"{folder / 'bin'}:/usr/bin:/bin",
                },
            }
        )

    def write(self) -> Path:
        dead = {"NodeID": "ff" * 28, "NodeManagerHostname": "gone", "Alive": False}
        path = self.root / "cluster.json"
        path.write_text(
            json.dumps({"address": "10.0.0.1:6379", "nodes": [*self.nodes, dead]}), encoding="utf-8"
        )
        return path

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def ray_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cluster:
    project = tmp_path / "app"
    project.mkdir()
    (project / "pyproject.toml").write_text(GOOD, encoding="utf-8")
    monkeypatch.chdir(project)
    simulated = Cluster(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(STANDINS / "ray_cluster"))
    monkeypatch.setenv("RAY_STANDIN_NODES", str(tmp_path / "cluster.json"))
    monkeypatch.setenv("RAY_STANDIN_LOG", str(simulated.log))
    return simulated


def doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = run(["doctor", "--json", "--python", sys.executable, "--timeout", "20", "--ray", *args])
    out = capsys.readouterr().out
    return code, (json.loads(out) if out else {})


def titles(document: dict[str, Any], severity: str) -> list[str]:
    return [f["title"] for f in document["findings"] if f["severity"] == severity]


def test_doctor_names_the_node_that_differs_and_why(
    ray_cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    odd = copy.deepcopy(RECORDED)
    odd["torch"] |= {"version": "2.10.0+cu128", "cuda": "12.8", "nccl": "2.26.2"}
    odd["packages"]["transformers"] = "4.57.1"
    ray_cluster.add("gpu-01", probe=RECORDED)
    ray_cluster.add("gpu-02", probe=RECORDED)
    ray_cluster.add("gpu-03", probe=odd, driver="570.86.10")
    ray_cluster.write()
    code, document = doctor(capsys)
    assert code == ExitCode.DIFFERENCES
    errors = titles(document, "error")
    assert "torch differs across nodes: gpu-03: 2.10.0+cu128 (the other 2 have 2.11.0+cu130)" in errors
    assert "torch's CUDA differs across nodes: gpu-03: 12.8 (the other 2 have 13.0)" in errors
    assert "transformers differs across nodes: gpu-03: 4.57.1 (the other 2 have 5.17.0)" in errors
    assert "driver major differs across nodes: gpu-03: 570 (the other 2 have 580)" in titles(
        document, "warning"
    )
    torch_finding = next(f for f in document["findings"] if f["title"].startswith("torch differs"))
    assert "on gpu-03" in torch_finding["fix"]
    assert [n["name"] for n in document["facts"]["nodes"]] == ["gpu-01", "gpu-02", "gpu-03"]
    assert document["facts"]["ray"] == {"address": "auto", "version": "2.49.0"}
    tasks = [e for e in ray_cluster.events() if e["event"] == "task"]
    assert len(tasks) == 3  # one per alive node, each pinned (the stand-in refuses soft pins)
    assert all("scheduling_strategy" in e["options"] for e in tasks)
    assert ray_cluster.events()[-1]["event"] == "shutdown"


def test_a_silent_node_and_a_missing_environment_are_findings(
    ray_cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    ray_cluster.add("gpu-01", probe=RECORDED)
    ray_cluster.add("gpu-02", hang=True)
    ray_cluster.add("gpu-03", probe=None)
    ray_cluster.write()
    code, document = doctor(capsys, "10.0.0.1:6379")
    assert code == ExitCode.DIFFERENCES
    errors = titles(document, "error")
    assert "gpu-02 did not answer in time" in errors
    assert any(t.startswith("no environment on gpu-03:") for t in errors)
    assert any(e["event"] == "cancel" and e["force"] for e in ray_cluster.events())


def test_a_healthy_cluster_exits_0_and_renders_text(
    ray_cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    ray_cluster.add("gpu-01", probe=RECORDED)
    ray_cluster.add("gpu-02", probe=RECORDED)
    ray_cluster.write()
    capsys.readouterr()
    assert run(["doctor", "--python", sys.executable, "--ray"]) == 0
    out = capsys.readouterr().out
    assert "every probed node has the same stack (2 nodes)" in out
    assert "gpu-02: driver 580.159.04, sm_90, torch 2.11.0+cu130 (CUDA 13.0)" in out


def test_no_ray_and_no_cluster_are_clear_errors(
    ray_cluster: Cluster, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ray_cluster.write()
    capsys.readouterr()
    assert run(["doctor", "--python", sys.executable, "--ray", "10.9.9.9:6379"]) == ExitCode.USAGE
    assert "cannot connect to the Ray cluster at 10.9.9.9:6379" in capsys.readouterr().err
    monkeypatch.delenv("PYTHONPATH")
    assert run(["doctor", "--python", sys.executable, "--ray"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert f"ray is not installed in {sys.executable}" in err
    assert "uv add ray" in err


def _answer(
    name: str, *, torch: str = "2.11.0+cu130", nccl: str = "2.27.3", driver: str = "580.159.04"
) -> cluster.NodeAnswer:
    facts = {
        "python": "3.12.3",
        "packages": {"vllm": "0.11.2"},
        "torch": {"version": torch, "cuda": "13.0", "nccl": nccl},
    }
    gpus = (Gpu(0, "NVIDIA H100 80GB HBM3", (9, 0)),)
    return cluster.NodeAnswer(
        name,
        name,
        machine=Machine(
            system="linux", source="nvidia-smi", driver_version=driver, cuda_max=(13, 0), gpus=gpus
        ),
        environment=Environment("/p/.venv/bin/python", facts=facts),
    )


def test_differences_are_pure() -> None:
    same = cluster.differences([_answer("a"), _answer("b")])
    assert [f.severity for f in same] == ["ok"]
    [nccl] = cluster.differences([_answer("a"), _answer("b"), _answer("c", nccl="2.21.5")])
    assert nccl.title == "NCCL differs across nodes: c: 2.21.5 (the other 2 have 2.27.3)"
    assert nccl.severity == "error"
    silent = cluster.NodeAnswer("d", "d", problem="did not answer in time")
    assert [f.severity for f in cluster.differences([_answer("a"), silent])] == ["ok"]


def test_a_node_with_a_gpu_outside_the_arch_list_is_named(tmp_path: Path) -> None:
    document = {
        "ray": "2.49.0",
        "nodes": [
            {
                "name": "b200-01",
                "node_id": "x",
                "interpreter": str(tmp_path / "python"),
                "smi": {"rc": 0, "stdout": "0, NVIDIA B200, 580.159.04, 10.0, 183359\n"},
                "probe": {
                    "rc": 0,
                    "stdout": json.dumps(
                        RECORDED | {"torch": RECORDED["torch"] | {"arch_list": ["sm_80", "sm_90"]}}
                    ),
                },
            }
        ],
    }
    report = cluster.report(document, catalog.load(), address="auto", timeout=5)
    assert any(
        f.title == "b200-01: sm_100 (NVIDIA B200) is not in torch's arch list" for f in report.findings
    )
    assert report.has_errors
