"""`llm-sync doctor` on AMD and Intel machines: the machine is the real detection reading the
recorded sysfs trees (tests/fixtures/amd, tests/fixtures/intel); the environment is a stand-in
interpreter answering the probe as a ROCm, xpu, CUDA or CPU torch would, and the real probe
script against torch-shaped modules in a real virtual environment."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from helpers import GOOD, run
from test_doctor import HEALTHY_TORCH, environment_with, standin, titles

from uvx_llm import doctor_gpus, machine
from uvx_llm import interpreter as interp
from uvx_llm.errors import ExitCode

if TYPE_CHECKING:
    from collections.abc import Callable

FIXTURES = Path(__file__).parent / "fixtures"
NO_AMDSMI = "amdsmi is not importable: No module named 'amdsmi'"

# torch 2.9.0+rocm6.3 as its probe answer looks (the shape of torch.version.hip and of the arch
# list follow the PYTORCH_ROCM_ARCH of PyTorch's release builds, catalog.toml [torch-rocm]).
ROCM_TORCH: dict[str, Any] = {
    "version": "2.9.0+rocm6.3",
    "cuda": None,
    "hip": "6.3.42131-fa1d09cbd",
    "xpu": None,
    "cuda_available": True,
    "device_count": 8,
    "arch_list": ["gfx900", "gfx906", "gfx908", "gfx90a", "gfx942", "gfx1030", "gfx1100", "gfx1101"],
    "cxx11_abi": True,
    "nccl": None,
    "xpu_available": False,
}
XPU_TORCH: dict[str, Any] = {
    "version": "2.9.0+xpu",
    "cuda": None,
    "hip": None,
    "xpu": "20250101",
    "cuda_available": False,
    "device_count": 0,
    "arch_list": [],
    "cxx11_abi": True,
    "xpu_available": True,
    "xpu_device_count": 1,
}
CPU_TORCH: dict[str, Any] = {**XPU_TORCH, "version": "2.9.0+cpu", "xpu": None, "xpu_available": False}


@pytest.fixture
def on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[[str], None]:
    """Detection as on the recorded machine ``tree`` (amd/… or intel/…), with no NVIDIA driver."""

    def use(tree: str) -> None:
        monkeypatch.setattr(machine, "load_nvml", lambda: "nvidia-ml-py is not importable: test")
        monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # no nvidia-smi, rocm-smi, nvcc, hipcc
        monkeypatch.setattr(
            machine,
            "detect",
            functools.partial(
                machine.detect, root=FIXTURES / tree, amdsmi=NO_AMDSMI, proc_version=tmp_path / "absent"
            ),
        )

    return use


def doctor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], answer: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    (tmp_path / "pyproject.toml").write_text(GOOD, encoding="utf-8")
    python = standin(tmp_path / "env", {"python": "3.12.3", "packages": {}, **answer})
    code = run(["doctor", "--json", "--project", str(tmp_path), "--python", str(python)])
    return code, json.loads(capsys.readouterr().out)


def finding(document: dict[str, Any], text: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [f for f in document["findings"] if text in f["title"]]
    assert len(found) == 1, found
    return found[0]


# --- AMD ------------------------------------------------------------------------------------------


def test_a_rocm_torch_on_an_mi300x_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], on: Callable[[str], None]
) -> None:
    on("amd/mi300x-rocm6.3")
    code, document = doctor(tmp_path, capsys, {"torch": ROCM_TORCH})
    assert titles(document, "error") == []
    assert code == ExitCode.OK
    ok = titles(document, "ok")
    assert "torch 2.9.0+rocm6.3, a ROCm build (torch.version.hip 6.3.42131-fa1d09cbd)" in ok
    assert "ROCm 6.3.1 runs torch's ROCm 6.3" in ok
    assert "torch's arch list covers every local GPU (gfx942)" in ok
    assert "torch.cuda.is_available() is True (8 device(s) visible)" in ok
    assert "AMD GPU(s), ROCm 6.3.1" in ok
    # hipcc builds for AMD GPUs (this test machine has none); nvcc is not asked for
    assert not [f for f in document["findings"] if "install the CUDA toolkit" in f["fix"]]
    assert "no hipcc (/opt/rocm)" in titles(document, "warning")


@pytest.mark.parametrize("variable", ["HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES"])
@pytest.mark.parametrize("value", ["", "-1"])
def test_a_visibility_variable_hiding_every_amd_gpu_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], on: Callable[[str], None], variable: str, value: str
) -> None:
    on("amd/mi300x-rocm6.3")
    hidden = {**ROCM_TORCH, "cuda_available": False, "device_count": 0}
    code, document = doctor(tmp_path, capsys, {"torch": hidden, variable.lower(): value})
    assert code == ExitCode.DIFFERENCES
    error = finding(document, "is_available() is False")
    assert error["title"] == f"torch.cuda.is_available() is False: {variable} hides every GPU"
    assert f"unset {variable}" in error["fix"]


def test_an_amd_gpu_that_sees_nothing_for_another_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], on: Callable[[str], None]
) -> None:
    on("amd/mi300x-rocm6.3")
    hidden = {**ROCM_TORCH, "cuda_available": False, "device_count": 0}
    _, document = doctor(tmp_path, capsys, {"torch": hidden, "hip_visible_devices": "0,1"})
    error = finding(document, "is_available() is False")
    assert error["title"] == "torch.cuda.is_available() is False on a machine with an AMD GPU"
    assert "HIP_VISIBLE_DEVICES=0,1" in error["detail"]
    assert "/dev/kfd" in error["fix"]


def test_a_gfx_target_missing_from_the_rocm_build(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], on: Callable[[str], None]
) -> None:
    """torch 2.4's rocm6.0 build has no gfx942 (MI300X); the arch list can carry feature flags."""
    on("amd/mi300x-rocm6.3")
    old = {
        **ROCM_TORCH,
        "version": "2.4.0+rocm6.0",
        "hip": "6.0.32830-d62f6a171",
        "arch_list": ["gfx900", "gfx906:xnack-", "gfx908:xnack-", "gfx90a:xnack-", "gfx1030", "gfx1100"],
    }
    code, document = doctor(tmp_path, capsys, {"torch": old})
    assert code == ExitCode.DIFFERENCES
    error = finding(document, "not in torch's arch list")
    assert error["title"] == "gfx942 (AMD gfx942) is not in torch's arch list"
    assert "gfx906 gfx908 gfx90a" in error["detail"]
    assert "is_available" not in " ".join(titles(document, "ok"))  # the cause is named, not its effect


def test_a_rocm_runtime_older_than_torchs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], on: Callable[[str], None]
) -> None:
    on("amd/mi250x-rocm6.2.4")
    code, document = doctor(tmp_path, capsys, {"torch": ROCM_TORCH})
    assert code == ExitCode.DIFFERENCES
    error = finding(document, "is older than torch's")
    assert error["title"] == "ROCm 6.2.4 is older than torch's ROCm 6.3"
    assert "install ROCm ≥ 6.3" in error["fix"]
    assert "pytorch-rocm6.2" in error["fix"]


@pytest.mark.parametrize(
    ("torch", "kind"),
    [({**HEALTHY_TORCH, "version": "2.11.0+cu130"}, "a CUDA 13.0 build"), (CPU_TORCH, "a CPU-only build")],
)
def test_a_cuda_or_cpu_torch_on_an_amd_machine(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    on: Callable[[str], None],
    torch: dict[str, Any],
    kind: str,
) -> None:
    on("amd/rx7900-rocm6.3")
    code, document = doctor(tmp_path, capsys, {"torch": torch})
    assert code == ExitCode.DIFFERENCES
    [error] = [f for f in document["findings"] if f["severity"] == "error"]
    assert error["title"].endswith(f"is {kind} on a machine with AMD GPUs")
    assert "pytorch-rocm6.3 index" in error["fix"]


# --- Intel ----------------------------------------------------------------------------------------


def test_an_xpu_torch_on_an_arc_gpu(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], on: Callable[[str], None]
) -> None:
    on("intel/arc-a770")
    code, document = doctor(tmp_path, capsys, {"torch": XPU_TORCH})
    assert code == ExitCode.OK, titles(document, "error")
    assert "torch.xpu.is_available() is True (1 device(s) visible)" in titles(document, "ok")
    assert "Intel GPU 0: Intel GPU 0x56a0 (i915 driver, discrete)" in titles(document, "ok")


def test_an_xpu_torch_that_finds_no_intel_gpu(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], on: Callable[[str], None]
) -> None:
    on("intel/lunar-lake-igpu")  # asked for on purpose (--backend xpu): integrated GPUs count
    unavailable = {**XPU_TORCH, "xpu_available": False}
    code, document = doctor(tmp_path, capsys, {"torch": unavailable, "ze_affinity_mask": ""})
    assert code == ExitCode.DIFFERENCES
    error = finding(document, "torch.xpu.is_available() is False")
    assert "ZE_AFFINITY_MASK=''" in error["detail"]
    assert "Level Zero" in error["fix"]
    assert "unset ZE_AFFINITY_MASK" in error["fix"]


def test_a_cpu_torch_on_an_xpu_machine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], on: Callable[[str], None]
) -> None:
    on("intel/arc-a770")
    code, document = doctor(tmp_path, capsys, {"torch": CPU_TORCH})
    assert code == ExitCode.DIFFERENCES
    error = finding(document, "is a CPU-only build on a machine with an Intel GPU")
    assert "pytorch-xpu" in error["fix"]


def test_a_cpu_torch_beside_an_integrated_intel_gpu_is_what_llm_sync_plans(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], on: Callable[[str], None]
) -> None:
    on("intel/lunar-lake-igpu")
    code, document = doctor(tmp_path, capsys, {"torch": CPU_TORCH})
    assert code == ExitCode.OK, titles(document, "error")
    assert "torch 2.9.0+cpu (CPU build)" in titles(document, "ok")


# --- the real probe, against torch-shaped modules --------------------------------------------------

ROCM_STANDIN = """
import os, types
__version__ = "2.9.0+rocm6.3"
version = types.SimpleNamespace(cuda=None, hip="6.3.42131-fa1d09cbd")
_C = types.SimpleNamespace(_GLIBCXX_USE_CXX11_ABI=True, _cuda_getArchFlags=lambda: "gfx90a gfx942 gfx1100")
def _available():
    return os.environ.get("HIP_VISIBLE_DEVICES") != "" and os.environ.get("ROCR_VISIBLE_DEVICES") != ""
cuda = types.SimpleNamespace(
    is_available=_available,
    device_count=lambda: 8 if _available() else 0,
    get_arch_list=lambda: _C._cuda_getArchFlags().split() if _available() else [],
)
xpu = types.SimpleNamespace(is_available=lambda: False, device_count=lambda: 0)
"""

XPU_STANDIN = """
import types
__version__ = "2.9.0+xpu"
version = types.SimpleNamespace(cuda=None, hip=None, xpu="20250101")
_C = types.SimpleNamespace(_GLIBCXX_USE_CXX11_ABI=True)
cuda = types.SimpleNamespace(is_available=lambda: False, device_count=lambda: 0, get_arch_list=lambda: [])
def _broken():
    raise RuntimeError("level_zero backend failed with error: 2147483646 (UR_RESULT_ERROR_UNKNOWN)")
xpu = types.SimpleNamespace(is_available=_broken, device_count=lambda: 0)
"""


def test_the_probe_reads_a_rocm_torch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    python, site = environment_with(tmp_path)
    (site / "torch.py").write_text(ROCM_STANDIN, encoding="utf-8")
    monkeypatch.setenv("ROCR_VISIBLE_DEVICES", "")
    monkeypatch.delenv("HIP_VISIBLE_DEVICES", raising=False)
    environment = interp.probe(python, timeout=30)
    assert environment.problem is None
    torch = environment.facts["torch"]
    assert torch["hip"] == "6.3.42131-fa1d09cbd"
    assert torch["arch_list"] == ["gfx90a", "gfx942", "gfx1100"]  # from the build, though nothing is visible
    assert torch["cuda_available"] is False
    assert torch["device_count"] == 0
    assert environment.facts["rocr_visible_devices"] == ""
    assert environment.facts["hip_visible_devices"] is None


def test_the_probe_reports_a_failing_torch_xpu(tmp_path: Path) -> None:
    python, site = environment_with(tmp_path)
    (site / "torch.py").write_text(XPU_STANDIN, encoding="utf-8")
    environment = interp.probe(python, timeout=30)
    torch = environment.facts["torch"]
    assert torch["xpu"] == "20250101"
    assert torch["xpu_available"] is False
    assert torch["xpu_error"].startswith("RuntimeError: level_zero backend failed")


# --- the pure rules -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "pair"),
    [("6.3.42131-fa1d09cbd", (6, 3)), ("6.2.4", (6, 2)), ("7.0", (7, 0)), ("", None), (None, None)],
)
def test_rocm_releases(text: str | None, pair: tuple[int, int] | None) -> None:
    assert doctor_gpus.release_of(text) == pair


def test_gfx_names_drop_feature_flags() -> None:
    assert doctor_gpus.gfx_names(["gfx90a:xnack-", "gfx90a:xnack+", "gfx942;gfx1100", "sm_90"]) == [
        "gfx90a",
        "gfx942",
        "gfx1100",
    ]
