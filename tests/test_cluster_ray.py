"""`doctor --ray` and `sync --ray` against a real local Ray cluster.

ray.cluster_utils starts a head and two more nodes on this machine: each a raylet of its own,
started once for this module (2 cores: about 6 s). What a node cannot have here, a GPU, it
gets as a real cluster node would describe it:
- "h100": on its PATH an nvidia-smi that prints what nvidia-smi printed on a real H100 machine
  (tests/fixtures/gpu/h100-driver580-llm-sync.json);
- "a100" and "old-driver": LLM_SYNC_CUDA / LLM_SYNC_ARCH in the environment `ray start` runs
  with, the variables of the command line's --cuda/--arch.
Each node is a machine of its own otherwise: its own project environment (UV_PROJECT_ENVIRONMENT),
uv cache, home and log folder; the tasks run the real uv against the loopback index, and the
recording stand-in flash-attn sdist counts the compiles on every node. What a test changes
per node, it changes in the node's folder (its bin/ comes first on its PATH).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from helpers import environment, llm_sync, uv_binary, write_project

from uvx_llm import resources
from uvx_llm.errors import ExitCode

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pkgindex import PackageIndex

pytestmark = pytest.mark.uv

FIXTURES = Path(__file__).parent / "fixtures"
RECORDED_GPU = json.loads((FIXTURES / "gpu" / "h100-driver580-llm-sync.json").read_text(encoding="utf-8"))
RECORDED_SMI = RECORDED_GPU[
    "nvidia-smi --query-gpu=index,name,driver_version,compute_cap,memory.total --format=csv,noheader,nounits"
]
RECORDED_PROBE = json.loads((FIXTURES / "env" / "h100-torch-2.11-cu130.json").read_text(encoding="utf-8"))[
    "plain"
]
DECLARED = {
    "h100": {},  # the recorded nvidia-smi
    # and Ray hides every GPU from the node's tasks that ask for none, as Ray did before 2.4x
    "a100": {"LLM_SYNC_CUDA": "13.0", "LLM_SYNC_ARCH": "8.0", "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "1"},
    "old-driver": {"LLM_SYNC_CUDA": "12.8", "LLM_SYNC_ARCH": "9.0"},  # a 570 driver: CUDA 12.8 at most
}
PROBE_STANDIN = """#!{python}
import json, os, time
time.sleep({sleep})
answer = json.loads(open("{recorded}", encoding="utf-8").read())
answer["cuda_visible_devices"] = os.environ.get("CUDA_VISIBLE_DEVICES")
if answer["cuda_visible_devices"] == "":
    answer["torch"] |= {{"cuda_available": False, "device_count": 0}}
print(json.dumps(answer))
"""
BASE_PYTHON = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"


def _script(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)


@dataclass
class RayNode:
    label: str
    folder: Path
    handle: Any  # ray._private.node.Node

    @property
    def name(self) -> str:
        """As llm-sync names it: every node here has this machine's hostname, so its ID is added."""
        return f"{socket.gethostname()}/{self.handle.node_id[:8]}"

    @property
    def venv(self) -> Path:
        return self.folder / "venv"

    def reset(self) -> None:
        """The node as new: no environment, an empty uv cache, the real uv on its PATH."""
        for name in ("venv", "uv-cache", "cache", "bin"):
            shutil.rmtree(self.folder / name, ignore_errors=True)
        (self.folder / "builds.jsonl").unlink(missing_ok=True)
        (self.folder / "bin").mkdir(parents=True)
        (self.folder / "bin" / "uv").symlink_to(uv_binary())
        if self.label == "h100":
            _script(self.folder / "bin" / "nvidia-smi", f"#!/bin/sh\nprintf '%s' '{RECORDED_SMI}'\n")

    def probe_answers(self, answer: dict[str, Any] | None, *, sleep: int = 0) -> None:
        """A project environment whose interpreter answers the doctor's probe as recorded on the
        H100, with what its own environment changes: CUDA_VISIBLE_DEVICES, and torch's view of
        the GPUs under it (an empty value hides every GPU from torch)."""
        shutil.rmtree(self.venv, ignore_errors=True)
        if answer is not None:
            recorded = self.folder / "probe.json"
            recorded.write_text(json.dumps(answer), encoding="utf-8")
            _script(
                self.venv / "bin" / "python",
                PROBE_STANDIN.format(python=BASE_PYTHON, sleep=sleep, recorded=recorded),
            )

    def installed(self) -> list[str]:
        return sorted(p.name for p in self.venv.glob("lib/python*/site-packages/*.dist-info"))

    def builds(self) -> list[dict[str, Any]]:
        record = self.folder / "builds.jsonl"
        if not record.exists():
            return []
        return [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]


class RealCluster:
    def __init__(self, root: Path, index: PackageIndex) -> None:
        from ray.cluster_utils import Cluster  # noqa: PLC0415 - ray is heavy: only this module loads it

        self.root, self.index = root, index
        self.project = root / "app"  # each test writes its own (the fixture below)
        self.temp = Path(tempfile.mkdtemp(prefix="llmray-"))  # short: Ray's socket paths have a limit
        self.nodes: dict[str, RayNode] = {}
        with pytest.MonkeyPatch.context() as patch:
            # The raylets (and their workers) inherit this process's environment: a clean one.
            for name in list(os.environ):
                if name.startswith(("LLM_SYNC_", "UV_", "VIRTUAL_ENV", "CONDA")):
                    patch.delenv(name)
            patch.setenv("RAY_USAGE_STATS_ENABLED", "0")
            self.cluster = Cluster(initialize_head=True, head_node_args=self._node_args("h100"))
            self.nodes["h100"] = RayNode("h100", root / "h100", self.cluster.head_node)
            for label in ("a100", "old-driver"):
                self.add(label)
            self.cluster.wait_for_nodes()

    def _node_args(self, label: str, **extra: str) -> dict[str, Any]:
        folder = self.root / label
        env = {
            "PATH": f"{folder / 'bin'}:/usr/bin:/bin",
            "HOME": str(folder / "home"),
            "XDG_CACHE_HOME": str(folder / "cache"),
            "UV_CACHE_DIR": str(folder / "uv-cache"),
            "UV_PROJECT_ENVIRONMENT": str(folder / "venv"),
            "UV_PYTHON": str(BASE_PYTHON),
            "UV_PYTHON_DOWNLOADS": "never",
            "LLM_SYNC_TEST_RECORD": str(folder / "builds.jsonl"),
            "RAY_USAGE_STATS_ENABLED": "0",
            **DECLARED.get(label, DECLARED["a100"]),
            **extra,
        }
        return {
            "num_cpus": 1,
            "object_store_memory": 80 * 1024 * 1024,
            "include_dashboard": False,
            "temp_dir": str(self.temp),
            "env_vars": env,
        }

    def add(self, label: str, **extra: str) -> RayNode:
        node = RayNode(label, self.root / label, self.cluster.add_node(**self._node_args(label, **extra)))
        node.reset()
        self.nodes[label] = node
        return node

    def remove(self, label: str) -> None:
        node = self.nodes.pop(label)
        self.cluster.remove_node(node.handle, allow_graceful=False)
        self.cluster.wait_for_nodes()

    @property
    def address(self) -> str:
        return str(self.cluster.address)

    def reset(self) -> None:
        for node in self.nodes.values():
            node.reset()

    def shutdown(self) -> None:
        self.cluster.shutdown()  # type: ignore[no-untyped-call]  # ray.cluster_utils is untyped
        shutil.rmtree(self.temp, ignore_errors=True)

    def environment(self, **extra: str) -> dict[str, str]:
        return environment(
            self.index,
            UV_CACHE_DIR=str(self.root / "head-uv-cache"),
            RAY_USAGE_STATS_ENABLED="0",
            **extra,
        )


@pytest.fixture(scope="module")
def real_cluster(
    tmp_path_factory: pytest.TempPathFactory, package_index: PackageIndex
) -> Iterator[RealCluster]:
    started = RealCluster(tmp_path_factory.mktemp("ray-nodes"), package_index)
    try:
        yield started
    finally:
        started.shutdown()


@pytest.fixture
def ray_cluster(real_cluster: RealCluster, tmp_path: Path) -> RealCluster:
    real_cluster.reset()
    real_cluster.project = write_project(tmp_path / "shared" / "app", "flash-attn")
    return real_cluster


# --- doctor --ray ---------------------------------------------------------------------------------


def doctor(cluster: RealCluster, *args: str) -> tuple[int, dict[str, Any], str]:
    done = llm_sync(
        ["doctor", "--json", "--python", sys.executable, "--ray", cluster.address, *args],
        env=cluster.environment(),
        cwd=cluster.project,
    )
    return done.returncode, (json.loads(done.stdout) if done.stdout else {}), done.stderr


def titles(document: dict[str, Any], severity: str) -> list[str]:
    return [f["title"] for f in document["findings"] if f["severity"] == severity]


def test_doctor_names_the_node_that_differs_and_why(ray_cluster: RealCluster) -> None:
    nodes = ray_cluster.nodes
    odd = json.loads(json.dumps(RECORDED_PROBE))
    odd["torch"] |= {"version": "2.10.0+cu128", "cuda": "12.8", "nccl": "2.26.2"}
    nodes["h100"].probe_answers(RECORDED_PROBE)
    nodes["a100"].probe_answers(RECORDED_PROBE)
    nodes["old-driver"].probe_answers(odd)
    code, document, err = doctor(ray_cluster)
    assert code == ExitCode.DIFFERENCES, err
    old = nodes["old-driver"].name
    errors = titles(document, "error")
    assert f"torch differs across nodes: {old}: 2.10.0+cu128 (the other 2 have 2.11.0+cu130)" in errors
    assert f"torch's CUDA differs across nodes: {old}: 12.8 (the other 2 have 13.0)" in errors
    assert f"NCCL differs across nodes: {old}: 2.26.2 (the other 2 have unknown)" in errors
    warnings = titles(document, "warning")
    assert f"CUDA major the driver runs differs across nodes: {old}: 12 (the other 2 have 13)" in warnings
    torch_finding = next(f for f in document["findings"] if f["title"].startswith("torch differs"))
    assert f"on {old}" in torch_finding["fix"]
    # every node was asked where it runs, with what it has: its own machine and its own environment
    facts = {n["name"]: n for n in document["facts"]["nodes"]}
    assert set(facts) == {n.name for n in nodes.values()}
    h100 = facts[nodes["h100"].name]
    assert h100["machine"]["source"] == "nvidia-smi"
    assert h100["machine"]["driver_version"] == "580.159.04"
    assert h100["environment"]["interpreter"] == str(nodes["h100"].venv / "bin" / "python")
    assert facts[nodes["a100"].name]["machine"]["gpus"][0]["compute_capability"] == "8.0"
    assert facts[old]["machine"]["cuda_max"] == "12.8"
    assert (
        facts[old]["files"]["pyproject.toml"]
        == hashlib.sha256((ray_cluster.project / "pyproject.toml").read_bytes()).hexdigest()
    )
    assert facts[old]["files"]["uv.lock"] is None
    assert facts[old]["machine"]["source"] == f"LLM_SYNC_CUDA=12.8, LLM_SYNC_ARCH=9.0 on {old}"
    ok = titles(document, "ok")
    assert f"{nodes['h100'].name}: driver 580.159.04, sm_90, torch 2.11.0+cu130 (CUDA 13.0)" in ok
    import ray  # noqa: PLC0415 - see RealCluster

    assert document["facts"]["ray"] == {"address": ray_cluster.address, "version": ray.__version__}


def test_the_old_driver_cannot_run_the_others_build_and_is_named(ray_cluster: RealCluster) -> None:
    for node in ray_cluster.nodes.values():
        node.probe_answers(RECORDED_PROBE)
    code, document, err = doctor(ray_cluster)
    assert code == ExitCode.DIFFERENCES, err
    old = ray_cluster.nodes["old-driver"].name
    own = [f for f in document["findings"] if f["area"] == f"node {old}" and f["severity"] == "error"]
    assert own, document["findings"]
    assert all(f["title"].startswith(f"{old}: ") for f in own)
    [too_old] = [f for f in own if "13.0" in f["title"]]
    assert too_old["detail"] == f"LLM_SYNC_CUDA=12.8 on {old} runs CUDA ≤ 12.8"
    # nothing else: not the a100, whose tasks Ray runs with CUDA_VISIBLE_DEVICES="" (the probe
    # looks as the node's jobs do)
    others = [f for f in document["findings"] if f["severity"] == "error" and old not in f["title"]]
    assert others == []
    a100 = ray_cluster.nodes["a100"].name
    [summary] = [f for f in document["findings"] if f["area"] == f"node {a100}" and f["severity"] == "ok"]
    assert summary["detail"].endswith(
        "(without the empty CUDA_VISIBLE_DEVICES Ray gives a task that asks for no GPU)"
    )


def test_a_node_whose_gpu_the_builds_leave_out_is_named(ray_cluster: RealCluster) -> None:
    pyproject = ray_cluster.project / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text(encoding="utf-8") + '\n[tool.llm-sync]\ncuda-archs = "9.0"\n', "utf-8"
    )
    for node in ray_cluster.nodes.values():
        node.probe_answers(RECORDED_PROBE)
    code, document, err = doctor(ray_cluster)
    assert code == ExitCode.DIFFERENCES, err
    a100 = ray_cluster.nodes["a100"].name
    left_out = [f for f in document["findings"] if "CUDA builds cover" in f["title"]]
    assert [f["title"] for f in left_out] == [
        f"{a100}: sm_80 is not among the GPU architectures the project's CUDA builds cover (sm_90)"
    ]
    assert "llm-sync sync --ray" in left_out[0]["fix"]


def test_silent_nodes_and_missing_environments_are_findings_not_hangs(ray_cluster: RealCluster) -> None:
    nodes = ray_cluster.nodes
    nodes["h100"].probe_answers(RECORDED_PROBE)
    nodes["a100"].probe_answers(None)  # never synced there
    nodes["old-driver"].probe_answers(RECORDED_PROBE, sleep=60)  # an import that hangs
    started = time.monotonic()
    code, document, err = doctor(ray_cluster, "--timeout", "3")
    assert time.monotonic() - started < 45
    assert code == ExitCode.DIFFERENCES, err
    errors = titles(document, "error")
    assert (
        f"no environment on {nodes['a100'].name}: {nodes['a100'].venv / 'bin' / 'python'} does not exist"
        in errors
    )
    assert any(t.startswith(f"{nodes['old-driver'].name}: ") and "in time" in t for t in errors), errors


def test_a_head_without_the_projects_environment_drives_ray_with_llm_syncs_own(
    ray_cluster: RealCluster,
) -> None:
    """No --python and no .venv here (a head node that does not train): llm-sync's own
    interpreter drives Ray (with the `llm-sync[ray]` extra it has ray), as for sync --ray."""
    for node in ray_cluster.nodes.values():
        node.probe_answers(RECORDED_PROBE)
    assert not (ray_cluster.project / ".venv").exists()
    done = llm_sync(
        ["doctor", "--json", "--ray", ray_cluster.address],
        env=ray_cluster.environment(),
        cwd=ray_cluster.project,
    )
    assert done.returncode == ExitCode.DIFFERENCES, done.stderr  # the old driver's node, as above
    assert len(json.loads(done.stdout)["facts"]["nodes"]) == 3


def test_no_ray_and_no_cluster_are_clear_errors_at_once(ray_cluster: RealCluster) -> None:
    env = ray_cluster.environment()
    project = ray_cluster.project
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{unused.getsockname()[1]}"
    started = time.monotonic()
    done = llm_sync(["doctor", "--python", sys.executable, "--ray", closed], env=env, cwd=project)
    assert done.returncode == ExitCode.USAGE
    assert f"cannot connect to the Ray cluster at {closed}" in done.stderr
    assert time.monotonic() - started < 30  # ray.init alone waits minutes there
    done = llm_sync(
        ["doctor", "--python", str(BASE_PYTHON), "--ray", ray_cluster.address], env=env, cwd=project
    )
    assert done.returncode == ExitCode.USAGE
    assert f"ray is not installed in {BASE_PYTHON}" in done.stderr
    done = llm_sync(
        ["sync", "--python", str(BASE_PYTHON), "--ray", ray_cluster.address], env=env, cwd=project
    )
    assert done.returncode == ExitCode.USAGE
    assert "llm-sync[ray]" in done.stderr


# --- sync --ray ------------------------------------------------------------------------------------


def sync(cluster: RealCluster, *args: str) -> subprocess.CompletedProcess[str]:
    return llm_sync(
        ["sync", "--ray", cluster.address, "--python", sys.executable, *args],
        env=cluster.environment(),
        cwd=cluster.project,
    )


def test_one_build_for_every_architecture_and_identical_environments(ray_cluster: RealCluster) -> None:
    house = ray_cluster.root / "shared-wheels"
    shutil.rmtree(house, ignore_errors=True)
    done = sync(ray_cluster, "--wheelhouse", str(house))
    assert done.returncode == 0, done.stderr
    nodes = list(ray_cluster.nodes.values())
    # planned for the cluster: the lowest driver's CUDA (12.8), the union of architectures
    pyproject = (ray_cluster.project / "pyproject.toml").read_text(encoding="utf-8")
    assert "pytorch-cu128" in pyproject
    assert 'cuda-archs = "8.0;9.0"' in pyproject
    # built once, on one node; the others installed its build
    builds = [b for node in nodes for b in node.builds()]
    assert len(builds) == 1, builds
    assert builds[0]["FLASH_ATTN_CUDA_ARCHS"] == "80;90"
    # tuned for the node that compiles, from its own CPUs and memory as the survey read them there
    # (this machine's: its free memory moves between then and now, so the line says the number)
    said = re.search(r"compiles with MAX_JOBS=(\d+): the smaller of: (\d+) usable CPUs", done.stderr)
    assert said is not None, done.stderr
    assert builds[0]["MAX_JOBS"] == said.group(1)
    assert int(said.group(2)) == resources.detect().cpus
    assert 1 <= int(said.group(1)) <= max(1, int(said.group(2)) // 2)  # two nvcc threads per job
    assert builds[0]["NVCC_THREADS"] == "2"
    [shared] = [p.relative_to(house).as_posix() for p in house.glob("*/*/*/*/*")]
    assert shared.startswith("flash-attn/9.9.9/torch-2.9.0+cu128/sm_80-sm_90/py")
    assert done.stderr.count("built packages from the first node, no compile") == 2
    assert "(its build shared through the wheelhouse)" in done.stderr
    # every node has the same environment, the lock's
    installed = {node.label: node.installed() for node in nodes}
    assert installed["h100"] == installed["a100"] == installed["old-driver"]
    assert "torch-2.9.0+cu128.dist-info" in installed["h100"]
    assert "flash_attn-9.9.9.dist-info" in installed["h100"]
    for node in nodes:
        assert f"{node.name}: uv sync started" in done.stderr
        assert f"{node.name}: uv sync done" in done.stderr
    assert "every node (3) matches uv.lock" in done.stderr

    # again: every node is in sync already, and nothing is built
    again = sync(ray_cluster, "--wheelhouse", str(house))
    assert again.returncode == 0, again.stderr
    assert len([b for node in nodes for b in node.builds()]) == 1


def test_without_a_wheelhouse_the_build_goes_through_rays_object_store(ray_cluster: RealCluster) -> None:
    for node in ray_cluster.nodes.values():  # the build prints ninja's steps
        (node.folder / "bin" / "uv").unlink()
        _script(node.folder / "bin" / "uv", f'#!/bin/sh\nLLM_SYNC_TEST_MODE=steps exec {uv_binary()} "$@"\n')
    done = sync(ray_cluster)
    assert done.returncode == 0, done.stderr
    nodes = list(ray_cluster.nodes.values())
    assert len([b for node in nodes for b in node.builds()]) == 1, done.stderr
    assert "builds first and shares it through Ray's object store" in done.stderr
    assert "(its build shared through Ray's object store)" in done.stderr
    assert done.stderr.count("built packages from the first node, no compile") == 2
    installed = [node.installed() for node in nodes]
    assert installed[0] == installed[1] == installed[2]
    assert "flash_attn-9.9.9.dist-info" in installed[0]
    # this machine's toolkit and size say nothing of the node's: no word of them here
    assert "cannot build flash-attn" not in done.stderr
    assert "will compile" not in done.stderr
    # the build's progress, from the node that compiles, as it went
    [builder] = [node for node in nodes if node.builds()]
    progress = [
        line for line in done.stderr.splitlines() if line.startswith(f"{builder.name}: building flash-attn")
    ]
    assert any("[1/3] 33%" in line for line in progress), done.stderr
    assert any("[3/3] 100%" in line and "last finished: kernel3.cu" in line for line in progress), done.stderr


def test_a_failing_node_fails_the_command_with_its_log(ray_cluster: RealCluster) -> None:
    failing = ray_cluster.nodes["a100"]
    (failing.folder / "bin" / "uv").unlink()  # its uv has no network and an empty cache
    _script(failing.folder / "bin" / "uv", f'#!/bin/sh\nUV_OFFLINE=1 exec {uv_binary()} "$@"\n')
    done = sync(ray_cluster, "--wheelhouse", str(ray_cluster.root / "wheels-2"))
    assert done.returncode == ExitCode.DIFFERENCES, done.stderr
    assert f"{failing.name}: uv sync failed (uv's exit code" in done.stderr
    log = next(failing.folder.glob("cache/llm-sync/logs/ray/sync-*.log"))
    assert str(log) in done.stderr
    last = log.read_text(encoding="utf-8").strip().splitlines()[-1]
    assert last in done.stderr  # the node's last lines are shown
    assert "Ray nodes are not in sync" in done.stderr


def _pids(folder: Path) -> list[int]:
    return [int(p.read_text(encoding="utf-8")) for p in folder.glob("*.pid") if p.read_text(encoding="utf-8")]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _slow_uv(node: RayNode, pids: Path) -> None:
    """The node's uv starts and then takes its time (a long build, say): its pid is recorded."""
    (node.folder / "bin" / "uv").unlink()
    _script(node.folder / "bin" / "uv", f"#!/bin/sh\necho $$ > {pids / node.label}.pid\nexec sleep 120\n")


def _start(cluster: RealCluster, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvx_llm",
            "sync",
            "--ray",
            cluster.address,
            "--python",
            sys.executable,
            *args,
        ],
        env=cluster.environment(),
        cwd=cluster.project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(condition: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


@contextlib.contextmanager
def _no_leftovers(pids: Path) -> Iterator[None]:
    try:
        yield
    finally:
        for pid in _pids(pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def pids(ray_cluster: RealCluster, tmp_path: Path) -> Iterator[Path]:
    """Where slow uvs record their pids (killed at the end whatever happens); a project with
    nothing to build, so that every node syncs at once."""
    write_project(ray_cluster.project, "torch")
    folder = tmp_path / "pids"
    folder.mkdir()
    with _no_leftovers(folder):
        yield folder


def test_ctrl_c_stops_every_nodes_uv(ray_cluster: RealCluster, pids: Path) -> None:
    for node in ray_cluster.nodes.values():
        _slow_uv(node, pids)
    running = _start(ray_cluster)
    _wait_for(lambda: len(_pids(pids)) == 3, 120)
    running.send_signal(signal.SIGINT)
    _, err = running.communicate(timeout=60)
    assert running.returncode == ExitCode.INTERRUPTED, err
    _wait_for(lambda: not any(_alive(pid) for pid in _pids(pids)), 15)


def test_a_node_that_dies_mid_sync_fails_the_command_and_is_named(
    ray_cluster: RealCluster, pids: Path
) -> None:
    doomed = ray_cluster.add("doomed", **DECLARED["a100"])
    _slow_uv(doomed, pids)
    try:
        running = _start(ray_cluster)
        _wait_for(lambda: len(_pids(pids)) == 1, 120)
        ray_cluster.cluster.remove_node(doomed.handle, allow_graceful=False)
        _, err = running.communicate(timeout=120)
    finally:
        ray_cluster.nodes.pop("doomed")
        ray_cluster.cluster.wait_for_nodes()
    assert running.returncode == ExitCode.DIFFERENCES, err
    assert f"{doomed.name}: the node (or its Ray worker) died during its sync" in err
    assert "1 of 4 Ray nodes are not in sync" in err
    for node in ray_cluster.nodes.values():
        assert f"{node.name}: uv sync done" in err
    assert "run `llm-sync sync --ray` again" in err


def test_a_node_slower_than_the_node_timeout_is_cancelled_and_named(
    ray_cluster: RealCluster, pids: Path
) -> None:
    slow = ray_cluster.nodes["old-driver"]
    _slow_uv(slow, pids)
    done = sync(ray_cluster, "--node-timeout", "5")
    assert done.returncode == ExitCode.DIFFERENCES, done.stderr
    assert f"{slow.name}: did not answer within the timeout: its task was cancelled" in done.stderr
    assert "raise --node-timeout (now 5 s)" in done.stderr
    _wait_for(lambda: not any(_alive(pid) for pid in _pids(pids)), 15)
