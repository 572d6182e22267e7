"""AMD (ROCm) and Intel (xpu): detection from recorded sysfs trees, planning, routing, real uv."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest
from fakes import RecordedNvml, recorded
from helpers import H200, environment, installed_version, llm_sync, make, simple, write_project

from uvx_llm import accelerators, machine, render
from uvx_llm.actions import SetIndex, SetSource
from uvx_llm.errors import LlmSyncError

if TYPE_CHECKING:
    from pkgindex import PackageIndex

    from uvx_llm.catalog import Catalog

AMD = Path(__file__).parent / "fixtures" / "amd"
INTEL = Path(__file__).parent / "fixtures" / "intel"
NO_AMDSMI = "amdsmi is not importable: No module named 'amdsmi'"


def detected(
    cat: Catalog, root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **kw: Any
) -> machine.Machine:
    """This machine as detect() sees it with no NVIDIA driver, sysfs and /opt/rocm read below ``root``."""
    monkeypatch.setattr(machine, "load_nvml", lambda: "nvidia-ml-py is not importable: test")
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi, no rocm-smi
    return machine.detect(
        cat,
        env={},
        platform="linux",
        proc_version=tmp_path / "absent",
        root=root,
        amdsmi=kw.get("amdsmi", NO_AMDSMI),
    )


@pytest.mark.parametrize(
    ("value", "gfx"),
    [
        (90402, "gfx942"),
        (90010, "gfx90a"),
        (110000, "gfx1100"),
        (120001, "gfx1201"),
        (90500, "gfx950"),
        (0, None),
    ],
)
def test_gfx_target_version_names_the_target(value: int, gfx: str | None) -> None:
    assert accelerators.gfx_from_target_version(value) == gfx


def test_mi300x_from_the_kfd_topology(cat: Catalog, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    found = detected(cat, AMD / "mi300x-rocm6.3", monkeypatch, tmp_path)
    assert found.source == "KFD topology"
    assert found.rocm == "6.3.1"
    assert found.rocm_source == "/opt/rocm/.info/version"
    assert len(found.amd) == 8  # the CPU node (gfx_target_version 0) is not a GPU
    assert found.gfx_targets == ("gfx942",)
    assert found.amd[0].memory_bytes == 192 * 2**30
    assert "AMD GPU 0: AMD gfx942 (gfx942, 192 GiB)" in found.summary()
    assert "ROCm: 6.3.1 (/opt/rocm/.info/version)" in found.summary()
    data = found.to_json()
    assert data["rocm"] == "6.3.1"
    assert data["amd_gpus"][0]["gfx"] == "gfx942"
    assert not found.has_nvidia


def test_mi250x_and_rx7900(cat: Catalog, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert detected(cat, AMD / "mi250x-rocm6.2.4", monkeypatch, tmp_path).gfx_targets == ("gfx90a",)
    radeon = detected(cat, AMD / "rx7900-rocm6.3", monkeypatch, tmp_path)
    assert radeon.gfx_targets == ("gfx1100",)
    assert radeon.rocm == "6.3.0"


def test_rocm_path_is_read_first(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "opt/rocm-7.1.1/.info").mkdir(parents=True)
    (root / "opt/rocm-7.1.1/.info/version").write_text("7.1.1-38\n")
    assert accelerators.rocm_release(root, {"ROCM_PATH": "/opt/rocm-7.1.1"}) == (
        "7.1.1",
        "/opt/rocm-7.1.1/.info/version",
    )
    assert accelerators.rocm_release(root, {})[0] is None


def test_no_rocm_install_is_a_note(cat: Catalog, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    found = detected(cat, AMD / "mi300x-no-rocm", monkeypatch, tmp_path)
    assert found.gfx_targets == ("gfx942",)
    assert found.rocm is None
    assert any(n.startswith("ROCm release unknown") for n in found.notes)


def test_a_broken_amdsmi_falls_back_to_sysfs(
    cat: Catalog, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def fail() -> None:
        raise RuntimeError("AMDSMI_STATUS_DRIVER_NOT_LOADED")

    broken = SimpleNamespace(amdsmi_init=fail, amdsmi_shut_down=lambda: None)
    found = detected(cat, AMD / "mi300x-rocm6.3", monkeypatch, tmp_path, amdsmi=broken)
    assert found.source == "KFD topology"
    assert "amdsmi unusable: RuntimeError: AMDSMI_STATUS_DRIVER_NOT_LOADED" in found.notes


def test_a_working_amdsmi_is_asked_first(
    cat: Catalog, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    working = SimpleNamespace(
        amdsmi_init=lambda: None,
        amdsmi_shut_down=lambda: None,
        amdsmi_get_processor_handles=lambda: ["h0"],
        amdsmi_get_gpu_asic_info=lambda _h: {
            "market_name": "AMD Instinct MI300X",
            "target_graphics_version": "gfx942",
        },
    )
    found = detected(cat, AMD / "mi300x-rocm6.3", monkeypatch, tmp_path, amdsmi=working)
    assert found.source == "amdsmi"
    assert found.amd[0].name == "AMD Instinct MI300X"


def test_rocm_smi_json_names_the_gfx_target() -> None:
    text = '{"card0": {"Card Series": "AMD Instinct MI250X", "GFX Version": "gfx90a"}, "system": {}}'
    assert accelerators.parse_rocm_smi_json(text) == (
        accelerators.AmdGpu(0, "AMD Instinct MI250X", "gfx90a"),
    )
    assert accelerators.parse_rocm_smi_json("not json") == ()


def test_nvidia_and_amd_in_one_machine_plans_for_nvidia(
    cat: Catalog, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(machine, "load_nvml", lambda: RecordedNvml(recorded()))
    found = machine.detect(
        cat,
        env={},
        platform="linux",
        proc_version=tmp_path / "absent",
        root=AMD / "nvidia-and-amd",
        amdsmi=NO_AMDSMI,
    )
    assert found.has_nvidia
    assert found.gfx_targets == ("gfx1100",)
    assert any("plans for the NVIDIA GPUs" in n for n in found.notes)
    assert make(simple("torch"), cat, found).backend == "cu130"


def test_intel_discrete_and_integrated(cat: Catalog, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    arc = detected(cat, INTEL / "arc-a770", monkeypatch, tmp_path)
    assert [(g.driver, g.integrated) for g in arc.intel] == [("i915", False)]
    assert "Intel GPU 0: Intel GPU 0x56a0 (i915 driver, discrete)" in arc.summary()
    laptop = detected(cat, INTEL / "lunar-lake-igpu", monkeypatch, tmp_path)
    assert [(g.driver, g.integrated) for g in laptop.intel] == [("xe", True)]
    made = make(simple("torch"), cat, laptop)
    assert made.backend == "cpu"
    assert "only an integrated Intel GPU" in {d.topic: d.reason for d in made.decisions}["backend"]
    assert make(simple("torch"), cat, arc).backend == "xpu"


# --- planning -----------------------------------------------------------------------------------


def _target(rocm: str | None, *gfx: str) -> machine.Machine:
    return machine.amd_target(rocm=rocm, gfx=gfx or None, platform="linux")


def test_mi300x_with_rocm_63_gets_the_rocm63_index(cat: Catalog) -> None:
    made = make(simple("torch"), cat, _target("6.3.1", "gfx942"))
    assert made.backend == "rocm6.3"
    reason = {d.topic: d.reason for d in made.decisions}["backend"]
    assert "ROCm 6.3.1" in reason
    assert "gfx942 in its arch list" in reason
    assert "not rocm6.4: needs ROCm 6.4, this machine has ROCm 6.3.1" in reason
    indexes = {a.name: a.url for a in made.actions if isinstance(a, SetIndex)}
    assert indexes == {
        "pytorch-rocm6.3": "https://download.pytorch.org/whl/rocm6.3",
        "pytorch-cpu": "https://download.pytorch.org/whl/cpu",
    }
    source = next(a for a in made.actions if isinstance(a, SetSource) and a.package == "torch")
    assert source.value == [
        {"index": "pytorch-rocm6.3", "marker": "sys_platform == 'linux'"},
        {"index": "pytorch-cpu", "marker": "sys_platform != 'linux'"},
    ]
    assert "torch>=2.7,<2.10" in [d.choice for d in made.decisions if d.topic == "bound"]
    assert render.machine_facts(_target("6.3.1", "gfx942")) == "ROCm 6.3.1, gfx942"


def test_mi250x_with_rocm_624(cat: Catalog) -> None:
    made = make(simple("torch"), cat, _target("6.2.4", "gfx90a"))
    assert made.backend == "rocm6.2.4"


def test_a_gfx_target_missing_from_every_build_is_refused(cat: Catalog) -> None:
    with pytest.raises(LlmSyncError) as raised:
        make(simple("torch<2.9"), cat, _target("6.4", "gfx950"))
    assert "gfx950 not in its arch list" in raised.value.why
    assert "--backend cpu" in raised.value.fix


def test_an_old_rocm_runtime_is_refused_with_the_fix(cat: Catalog) -> None:
    with pytest.raises(LlmSyncError) as raised:
        make(simple("torch>=2.7"), cat, _target("5.7.1", "gfx942"))
    assert raised.value.what == "no PyTorch ROCm build fits this machine and project"
    assert "needs ROCm 7.2, this machine has ROCm 5.7.1" in raised.value.why
    assert "install ROCm ≥ 6.2.4 for rocm6.2.4 (torch 2.7)" in raised.value.fix


def test_vllm_on_rocm_is_warned_about(cat: Catalog) -> None:
    made = make(simple("vllm==0.11.2"), cat, _target("6.4", "gfx942"))
    assert made.backend == "rocm6.4"
    assert any("vllm's PyPI wheels are CUDA builds" in w for w in made.warnings)


def test_a_recorded_rocm_backend_is_kept_and_checked_on_another_machine(cat: Catalog) -> None:
    extra = '[tool.llm-sync]\nbackend = "rocm6.3"\n'
    kept = make(simple("torch", extra=extra), cat, _target("6.4", "gfx942"))
    assert kept.backend == "rocm6.3"
    with pytest.raises(LlmSyncError) as raised:
        make(simple("torch", extra=extra), cat, H200)
    assert "says backend rocm6.3, but this machine cannot run it" in raised.value.what
    assert "llm-sync --backend cu130" in raised.value.fix
    with pytest.raises(LlmSyncError) as old:
        make(simple("torch", extra=extra), cat, _target("6.2", "gfx942"))
    assert "needs ROCm 6.3, this machine has ROCm 6.2" in old.value.why


def test_rocm_and_cuda_targets_do_not_mix(cat: Catalog) -> None:
    with pytest.raises(LlmSyncError, match="both given"):
        machine.for_run(cat, cuda="12.8", arch="gfx942", env={})
    with pytest.raises(LlmSyncError, match="not a list of AMD gfx targets"):
        machine.for_run(cat, cuda="", arch="gfx942,9.0", env={})
    with pytest.raises(LlmSyncError, match="not a ROCm release"):
        machine.for_run(cat, cuda="", rocm="six", arch="", env={})
    assert machine.for_run(cat, cuda="", rocm="6.3", arch="gfx90a;gfx942", env={}).gfx_targets == (
        "gfx90a",
        "gfx942",
    )


# --- the real uv ----------------------------------------------------------------------------------


@pytest.mark.uv
def test_sync_routes_torch_to_the_rocm_build(package_index: PackageIndex, tmp_path: Path) -> None:
    project = write_project(tmp_path / "app", "torch")
    result = llm_sync(["--rocm", "6.3", "--arch", "gfx942"], env=environment(package_index), cwd=project)
    assert result.returncode == 0, result.stderr
    assert installed_version(project, "torch") == "2.9.0+rocm6.3"
    lock = (project / "uv.lock").read_text(encoding="utf-8")
    assert 'version = "2.9.0+cpu"' in lock
    assert "llm-sync: rocm6.3 (ROCm 6.3, gfx942) — pyproject.toml updated" in result.stderr
    assert 'backend = "rocm6.3"' in (project / "pyproject.toml").read_text(encoding="utf-8")


@pytest.mark.uv
def test_sync_routes_torch_to_the_xpu_build(package_index: PackageIndex, tmp_path: Path) -> None:
    project = write_project(tmp_path / "app", "torch")
    result = llm_sync(["--backend", "xpu"], env=environment(package_index), cwd=project)
    assert result.returncode == 0, result.stderr
    assert installed_version(project, "torch") == "2.9.0+xpu"


# --- PyTorch's test and nightly channels ----------------------------------------------------------


def test_the_nightly_channel_routes_to_the_nightly_indexes(cat: Catalog) -> None:
    from uvx_llm import config  # noqa: PLC0415 - only this test builds a request by hand
    from uvx_llm import plan as plan_module  # noqa: PLC0415
    from uvx_llm.actions import Request, SetConfig  # noqa: PLC0415

    request = Request(channel=config.Setting("nightly", "--channel"))
    made = plan_module.make(machine=H200, project=simple("vllm==0.11.2"), catalog=cat, request=request)
    indexes = {a.name: a.url for a in made.actions if isinstance(a, SetIndex)}
    assert indexes == {
        "pytorch-nightly-cu128": "https://download.pytorch.org/whl/nightly/cu128",
        "pytorch-nightly-cpu": "https://download.pytorch.org/whl/nightly/cpu",
    }
    assert SetConfig("channel", "nightly") in made.actions
    assert not [d for d in made.decisions if d.topic == "bound" and d.choice != "none"]
    assert any("a .dev version) never matches that pin" in w for w in made.warnings)


@pytest.mark.uv
def test_a_nightly_project_locks_a_dev_torch_without_opening_prereleases_elsewhere(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    package_index.add("/whl/nightly/cu128", "torch", "2.16.0.dev20261120+cu128", requires=["helper"])
    package_index.add("/whl/nightly/cpu", "torch", "2.16.0.dev20261120+cpu", requires=["helper"])
    package_index.add("/simple", "helper", "1.0")
    package_index.add("/simple", "helper", "2.0rc1")  # a prerelease elsewhere stays out
    project = write_project(tmp_path / "app", "torch")
    env = environment(package_index)
    result = llm_sync(["--channel", "nightly", "--cuda", "12.8", "--arch", "9.0"], env=env, cwd=project)
    assert result.returncode == 0, result.stderr
    assert installed_version(project, "torch") == "2.16.0.dev20261120+cu128"
    lock = (project / "uv.lock").read_text(encoding="utf-8")
    assert 'name = "helper"\nversion = "1.0"' in lock
    text = (project / "pyproject.toml").read_text(encoding="utf-8")
    assert 'channel = "nightly"' in text
    assert "/whl/nightly/cu128" in text


# --- builds against a ROCm torch ------------------------------------------------------------------


def _rocm_build_plan(cat: Catalog, tmp_path: Path, *, with_hip: bool) -> Any:
    from uvx_llm import config, rocm_build, toolkit  # noqa: PLC0415 - only these tests
    from uvx_llm import plan as plan_module  # noqa: PLC0415
    from uvx_llm.actions import Request  # noqa: PLC0415
    from uvx_llm.resources import Resources  # noqa: PLC0415

    rocm = tmp_path / "rocm"
    if with_hip:
        (rocm / "bin").mkdir(parents=True)
        (rocm / "bin" / "hipcc").write_text("#!/bin/sh\n")
        (rocm / "include" / "hip").mkdir(parents=True)
        (rocm / "include" / "hip" / "hip_runtime.h").write_text("")
    kit = toolkit.Toolkit(None, None, None, "test", hip=rocm_build.find_hip({"ROCM_PATH": str(rocm)}))
    host = Resources(cpus=64, cpu_reason="64", memory_bytes=256 * 2**30, memory_reason="256 GiB")
    return plan_module.make(
        machine=_target("6.3", "gfx942", "gfx1100"),
        project=simple("torch", "flash-attn"),
        catalog=cat,
        request=Request(backend=config.Setting("auto", "default"), prefer="newest", environment={}),
        host=host,
        toolkit=kit,
    )


def test_a_rocm_build_gets_its_arch_lists_and_jobs(cat: Catalog, tmp_path: Path) -> None:
    made = _rocm_build_plan(cat, tmp_path, with_hip=True)
    assert made.backend == "rocm6.3"
    env = made.uv_environment()
    assert env["PYTORCH_ROCM_ARCH"] == "gfx1100;gfx942"
    assert env["GPU_ARCHS"] == "gfx942"  # flash-attn's CK kernels exist for gfx90a/gfx942/gfx950 only
    assert env["MAX_JOBS"] == "51"  # 256 GiB / 5 GiB per job, fewer than 64 CPUs
    assert not made.build_blockers
    assert any("no kernels for gfx1100" in w for w in made.warnings)


def test_a_rocm_build_without_hipcc_is_refused_early(cat: Catalog, tmp_path: Path) -> None:
    made = _rocm_build_plan(cat, tmp_path, with_hip=False)
    assert made.build_blockers
    assert "needs hipcc, and there is none (from ROCM_PATH)" in made.build_blockers[0]
