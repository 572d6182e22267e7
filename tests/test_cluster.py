"""`llm-sync doctor --ray`, the pure part: the nodes' answers, their findings and the cross-node
comparison. The driver against a real local Ray cluster: tests/test_cluster_ray.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from uvx_llm import catalog, cluster
from uvx_llm.errors import LlmSyncError
from uvx_llm.interpreter import Environment
from uvx_llm.machine import Gpu, Machine

RECORDED = json.loads(
    (Path(__file__).parent / "fixtures" / "env" / "h100-torch-2.11-cu130.json").read_text(encoding="utf-8")
)["plain"]
H100_SMI = "0, NVIDIA H100 80GB HBM3, {driver}, 9.0, 81559"


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


def test_an_older_driver_is_the_one_named_even_one_against_one() -> None:
    titles = [f.title for f in cluster.differences([_answer("a", driver="570.86.10"), _answer("b")])]
    assert titles == ["driver major differs across nodes: a: 570 (the other has 580)"]
    titles = [
        f.title
        for f in cluster.differences(
            [_answer("a"), _answer("b", driver="570.86.10"), _answer("c", driver="570.1")]
        )
    ]
    assert titles == ["driver major differs across nodes: b: 570; c: 570 (the other has 580)"]


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


def _raw(name: str, node_id: str, **fields: object) -> dict[str, object]:
    return {"name": name, "node_id": node_id, "interpreter": "/p/.venv/bin/python", "probe": None, **fields}


def test_nodes_that_share_a_hostname_are_told_apart_by_their_ids() -> None:
    raws = [_raw("vm", "3e87aa5bff"), _raw("vm", "ab75e70c00"), _raw("gpu-07", "0011")]
    assert cluster.unique_names(raws) == ["vm/3e87aa5b", "vm/ab75e70c", "gpu-07"]


def test_a_node_declares_its_machine_as_the_command_line_does() -> None:
    document = {
        "nodes": [
            _raw("a100", "1", target={"LLM_SYNC_CUDA": "12.8", "LLM_SYNC_ARCH": "8.0"}, smi={"rc": -1}),
            _raw("bad", "2", target={"LLM_SYNC_CUDA": "thirteen"}),
        ]
    }
    declared, bad = cluster.answers(document, catalog.load())
    assert declared.machine is not None
    assert declared.machine.cuda_max == (12, 8)
    assert [g.capability for g in declared.machine.gpus] == [(8, 0)]
    assert declared.machine.source == "LLM_SYNC_CUDA=12.8, LLM_SYNC_ARCH=8.0 on a100"
    assert cluster.driver_text(declared.machine) == (
        "a driver for CUDA up to 12.8 (LLM_SYNC_CUDA=12.8, LLM_SYNC_ARCH=8.0 on a100)"
    )
    assert bad.problem is not None
    assert "LLM_SYNC_CUDA on bad" in bad.problem
    [finding] = cluster.node_findings(bad, catalog.load(), timeout=5)
    assert "LLM_SYNC_CUDA/LLM_SYNC_ROCM/LLM_SYNC_ARCH" in finding.fix


def test_an_address_where_nothing_listens_fails_at_once() -> None:
    import socket  # noqa: PLC0415 - only here

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{unused.getsockname()[1]}"
    with pytest.raises(LlmSyncError, match=f"cannot connect to the Ray cluster at {address}"):
        cluster.check_reachable(address, timeout=2)
    for left_to_ray in ("auto", "ray://10.0.0.1:10001", "local"):
        cluster.check_reachable(left_to_ray)  # nothing raised: Ray resolves these itself


def test_a_ray_version_other_than_the_clusters_names_the_version_to_install() -> None:
    detail = (
        "RuntimeError: Version mismatch: The cluster was started with:\n    Ray: 2.60.0\n    Python: 3.11.7\n"
        "This process on node 10.0.0.2 was started with:\n    Ray: 2.49.0\n    Python: 3.11.7\n"
    )
    error = cluster.connect_error("10.0.0.1:6379", detail)
    assert error.what == (
        "the Ray cluster at 10.0.0.1:6379 runs Ray 2.60.0 on Python 3.11.7; "
        "the driver's interpreter has Ray 2.49.0 on Python 3.11.7"
    )
    assert "uv add 'ray==2.60.0'" in error.fix
    other_python = detail.replace("2.49.0", "2.60.0").replace("3.11.7\nThis", "3.11.9\nThis")
    assert "uv python pin 3.11.9" in cluster.connect_error("h:1", other_python).fix  # the cluster's
    plain = cluster.connect_error("10.0.0.1:6379", "ConnectionError: no GCS")
    assert plain.what == "cannot connect to the Ray cluster at 10.0.0.1:6379"
    assert "ray start --head" in plain.fix


AMD = Path(__file__).parent / "fixtures" / "amd"


def test_an_amd_node_is_read_from_its_copied_sysfs_as_a_local_machine_is(tmp_path: Path) -> None:
    from uvx_llm import accelerators, sysfs_copy  # noqa: PLC0415 - only here

    copied = sysfs_copy.collect(AMD / "mi300x-rocm6.3")
    assert "dev/kfd" in copied
    assert "opt/rocm/.info/version" in copied
    raw = _raw("mi300x-01", "1", smi={"rc": 127, "stderr": "nvidia-smi: not found"}, amd=copied)
    [node] = cluster.answers({"nodes": [raw]}, catalog.load())
    assert node.machine is not None
    local = accelerators.detect_amd(AMD / "mi300x-rocm6.3", {}, amdsmi="absent", use_rocm_smi=False)
    assert node.machine.amd == local.gpus
    assert node.machine.rocm == local.rocm == "6.3.1"
    assert cluster.architectures(node.machine) == ["gfx942"]
    assert cluster.driver_text(node.machine) == "ROCm 6.3.1 (/opt/rocm/.info/version)"
    # no AMD GPU there either: a node without GPUs, nvidia-smi's complaint kept
    [bare] = cluster.answers(
        {"nodes": [_raw("cpu-01", "2", smi={"rc": 127, "stderr": "not found"})]}, catalog.load()
    )
    assert bare.machine is not None
    assert not bare.machine.amd
    assert not bare.machine.gpus
    assert bare.machine.notes == ("not found",)

    # nothing outside the folder is written, whatever a node answers
    sysfs_copy.rebuild({"../escaped": "x", "/etc/escaped": "x", "ok/file": "y"}, tmp_path / "copy")
    assert (tmp_path / "copy" / "ok" / "file").read_text(encoding="utf-8") == "y"
    assert not (tmp_path / "escaped").exists()
