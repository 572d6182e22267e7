from __future__ import annotations

import stat
from typing import TYPE_CHECKING

import pynvml
import pytest
from fakes import RecordedNvml, recorded, with_devices

from uvx_llm import machine, targets
from uvx_llm.errors import LlmSyncError

if TYPE_CHECKING:
    from pathlib import Path

    from uvx_llm.catalog import Catalog


@pytest.fixture
def no_proc(tmp_path: Path) -> Path:
    return tmp_path / "absent-proc-version"


def use_nvml(monkeypatch: pytest.MonkeyPatch, fake: RecordedNvml) -> None:
    monkeypatch.setattr(machine, "load_nvml", lambda: fake)


def fake_nvidia_smi(folder: Path, monkeypatch: pytest.MonkeyPatch, *, output: str, code: int = 0) -> None:
    """An nvidia-smi on PATH that prints what the real one printed on the H200 machine."""
    script = folder / "nvidia-smi"
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{output}EOF\nexit {code}\n", encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{folder}:/usr/bin:/bin")


def test_nvml_facts_of_the_recorded_h200(
    cat: Catalog, monkeypatch: pytest.MonkeyPatch, no_proc: Path
) -> None:
    use_nvml(monkeypatch, RecordedNvml(recorded()))
    found = machine.detect(cat, env={}, platform="linux", proc_version=no_proc)
    assert found.source == "NVML"
    assert found.driver_version == "580.159.04"
    assert found.cuda_max == (13, 0)
    assert found.capabilities == ((9, 0),)
    assert found.gpus[0].name == "NVIDIA H200"
    assert found.gpus[0].memory_bytes == 150754820096
    assert not found.gpus[0].mig
    assert found.notes == ()


def test_cuda_version_decoding() -> None:
    assert machine.cuda_from_nvml(12040) == (12, 4)
    assert machine.cuda_from_nvml(13000) == (13, 0)
    assert machine.cuda_from_nvml(12080) == (12, 8)


def test_real_nvml_without_a_driver_falls_back_with_a_note(
    cat: Catalog, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_proc: Path
) -> None:
    # The real nvidia-ml-py on a machine without libnvidia-ml.so (this one, CI).
    if not isinstance(machine.load_nvml(), str):
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError:
            pass
        else:
            pytest.skip("this machine has a working NVIDIA driver")
    monkeypatch.setenv("PATH", str(tmp_path))  # and no nvidia-smi
    found = machine.detect(cat, env={}, platform="linux", proc_version=no_proc)
    assert not found.has_nvidia
    assert found.source == "none"
    assert any("NVML unusable" in note for note in found.notes)
    assert any("nvidia-smi" in note for note in found.notes)


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, "not loaded"),
        (pynvml.NVML_ERROR_NO_PERMISSION, "permission"),
        (pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH, "differ in version"),
        (pynvml.NVML_ERROR_UNKNOWN, "Unknown"),
    ],
)
def test_every_nvml_failure_becomes_a_note_and_the_nvidia_smi_fallback(
    cat: Catalog, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_proc: Path, code: int, words: str
) -> None:
    use_nvml(monkeypatch, RecordedNvml(recorded(), fail_with=code))
    smi = recorded()["nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv"]
    rows = "".join(f"0, {line}\n" for line in smi.splitlines()[1:])  # the index column we also ask for
    fake_nvidia_smi(tmp_path, monkeypatch, output=rows.replace(" MiB", ""))
    found = machine.detect(cat, env={}, platform="linux", proc_version=no_proc)
    assert found.source == "nvidia-smi"
    assert words in found.notes[0]
    assert len(found.notes[0].splitlines()) == 1
    assert found.driver_version == "580.159.04"
    assert found.cuda_max == (13, 0)  # from the driver version, by the release-notes table
    assert found.capabilities == ((9, 0),)
    assert found.gpus[0].memory_bytes == 143771 * 2**20


def test_a_failing_device_query_is_a_fallback_too(
    cat: Catalog, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_proc: Path
) -> None:
    use_nvml(monkeypatch, RecordedNvml(recorded(), fail_on_device=True))
    monkeypatch.setenv("PATH", str(tmp_path))
    found = machine.detect(cat, env={}, platform="linux", proc_version=no_proc)
    assert found.source == "none"
    assert found.notes[0].startswith("NVML unusable")


def test_proc_driver_version_is_the_last_resort(
    cat: Catalog, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    use_nvml(monkeypatch, RecordedNvml(recorded(), fail_with=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND))
    fake_nvidia_smi(tmp_path, monkeypatch, output="", code=9)
    proc_file = tmp_path / "version"
    proc_file.write_text(recorded()["/proc/driver/nvidia/version"], encoding="utf-8")
    found = machine.detect(cat, env={}, platform="linux", proc_version=proc_file)
    assert found.source == str(proc_file)
    assert found.driver_version == "580.159.04"
    assert found.cuda_max == (13, 0)
    assert not found.archs_known
    assert len(found.notes) == 2


def test_proc_file_without_a_version(cat: Catalog, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    use_nvml(monkeypatch, "nvidia-ml-py is not importable: test")  # type: ignore[arg-type]
    monkeypatch.setenv("PATH", str(tmp_path))
    proc_file = tmp_path / "version"
    proc_file.write_text("garbage\n", encoding="utf-8")
    found = machine.detect(cat, env={}, platform="linux", proc_version=proc_file)
    assert found.source == "none"
    assert "no driver version" in found.notes[-1]


def test_macos_is_cpu_without_probing(cat: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom() -> None:
        raise AssertionError("NVML must not be probed on macOS")

    monkeypatch.setattr(machine, "load_nvml", boom)
    found = machine.detect(cat, env={}, platform="darwin")
    assert found.system == "macos"
    assert not found.has_nvidia


def test_conda_override_replaces_the_detected_cuda(
    cat: Catalog, monkeypatch: pytest.MonkeyPatch, no_proc: Path
) -> None:
    use_nvml(monkeypatch, RecordedNvml(recorded()))
    found = machine.detect(cat, env={"CONDA_OVERRIDE_CUDA": "12.4"}, platform="linux", proc_version=no_proc)
    assert found.cuda_max == (12, 4)
    assert found.cuda_source == "CONDA_OVERRIDE_CUDA"
    assert found.capabilities == ((9, 0),)


def test_uv_driver_override_maps_to_cuda(
    cat: Catalog, monkeypatch: pytest.MonkeyPatch, no_proc: Path
) -> None:
    use_nvml(monkeypatch, RecordedNvml(recorded()))
    found = machine.detect(
        cat, env={"UV_CUDA_DRIVER_VERSION": "550.54.14"}, platform="linux", proc_version=no_proc
    )
    assert found.cuda_max == (12, 4)
    assert found.driver_version == "550.54.14"


@pytest.mark.parametrize(
    "env",
    [
        {"UV_CUDA_DRIVER_VERSION": "banana"},
        {"UV_CUDA_DRIVER_VERSION": "400.1"},
        {"CONDA_OVERRIDE_CUDA": "twelve"},
    ],
)
def test_bad_overrides_are_clear_errors(
    cat: Catalog, monkeypatch: pytest.MonkeyPatch, no_proc: Path, env: dict[str, str]
) -> None:
    use_nvml(monkeypatch, RecordedNvml(recorded()))
    with pytest.raises(LlmSyncError) as caught:
        machine.detect(cat, env=env, platform="linux", proc_version=no_proc)
    assert caught.value.fix


def test_target_machine_from_the_command_line() -> None:
    target = machine.target(cuda=targets.parse_cuda("12.8"), archs=targets.parse_arch_list("8.0,sm_90"))
    assert target.cuda_max == (12, 8)
    assert target.capabilities == ((8, 0), (9, 0))
    only_cuda = machine.target(cuda=(12, 8), archs=None)
    assert not only_cuda.archs_known
    assert "not checked" in only_cuda.notes[0]


@pytest.mark.parametrize("bad", ["", ",", "x.y"])
def test_bad_arch_list(bad: str) -> None:
    with pytest.raises(LlmSyncError, match="compute capabilities"):
        targets.parse_arch_list(bad)


def test_bad_cuda() -> None:
    with pytest.raises(LlmSyncError, match="not a CUDA version"):
        targets.parse_cuda("new")


def test_mig_and_several_gpus(cat: Catalog, monkeypatch: pytest.MonkeyPatch, no_proc: Path) -> None:
    facts = with_devices(recorded(), ("NVIDIA A100", (8, 0)), ("NVIDIA H200", (9, 0)))
    facts["devices"][0]["nvmlDeviceGetMigMode"] = [1, 1]
    use_nvml(monkeypatch, RecordedNvml(facts))
    found = machine.detect(cat, env={}, platform="linux", proc_version=no_proc)
    assert found.capabilities == ((8, 0), (9, 0))
    assert found.gpus[0].mig
    assert "MIG enabled" in found.gpus[0].describe()
    assert found.to_json()["gpus"][1]["sm"] == "sm_90"


def test_proc_version_parsing_of_both_driver_flavours() -> None:
    assert machine.parse_proc_version(recorded()["/proc/driver/nvidia/version"]) == "580.159.04"
    proprietary = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 01:44:30 UTC 2024\n"
    assert machine.parse_proc_version(proprietary) == "550.54.14"


def test_nvidia_smi_csv_recorded_on_a_real_h100() -> None:
    facts = recorded("h100-driver580-llm-sync")
    query = "nvidia-smi --query-gpu=index,name,driver_version,compute_cap,memory.total --format=csv,noheader,nounits"
    gpus, driver = machine.parse_smi_csv(facts[query])
    assert driver == facts["llm-sync detect --json"]["driver_version"]
    expected = facts["llm-sync detect --json"]["gpus"][0]  # what NVML said on the same machine
    assert gpus[0].name == expected["name"]
    assert gpus[0].capability == (9, 0)
    assert gpus[0].memory_bytes is not None
    assert abs(gpus[0].memory_bytes - expected["memory_bytes"]) < 2**20


# --- a broken driver, odd nvidia-smi output (issue 13, items 18 and 19) ---------------------

MISMATCH = "Failed to initialize NVML: Driver/library version mismatch\nNVML library version: 580.159\n"


def test_a_broken_driver_is_trouble_not_a_machine_without_gpus(
    cat: Catalog, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    use_nvml(monkeypatch, RecordedNvml(recorded(), fail_with=pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH))
    fake_nvidia_smi(tmp_path, monkeypatch, output=MISMATCH, code=18)
    (tmp_path / "nvidia").mkdir()  # /proc/driver/nvidia is there, its version file is not readable
    found = machine.detect(cat, env={}, platform="linux", proc_version=tmp_path / "nvidia" / "version")
    assert not found.has_nvidia
    assert "differ in version" in found.trouble[0]
    assert "Driver/library version mismatch" in found.trouble[1]
    assert "kernel driver is loaded" in found.trouble[2]


def test_no_nvidia_software_at_all_is_no_trouble(
    cat: Catalog, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_proc: Path
) -> None:
    use_nvml(monkeypatch, RecordedNvml(recorded(), fail_with=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert machine.detect(cat, env={}, platform="linux", proc_version=no_proc).trouble == ()


def test_odd_nvidia_smi_output_is_handled(
    cat: Catalog, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, no_proc: Path
) -> None:
    use_nvml(monkeypatch, RecordedNvml(recorded(), fail_with=pynvml.NVML_ERROR_DRIVER_NOT_LOADED))
    script = tmp_path / "nvidia-smi"
    script.write_bytes(
        b"#!/bin/sh\n"
        b"printf 'x, NVIDIA H100 80GB HBM3, 580.95.05, 9.0, 81559\\n'\n"  # not an integer index
        b"printf '1, NVIDIA \\377\\376 H100, 580.95.05, 9.0, [N/A]\\n'\n"  # bytes that are not UTF-8
        b"printf '2, NVIDIA H100, 580.95.05, \\357\\274\\231.0, \\302\\262\\n'\n"  # full-width 9, superscript 2
        b"head -c 50000000 /dev/zero | tr '\\0' a\n"  # a 50 MB line
        b"echo\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    found = machine.detect(cat, env={}, platform="linux", proc_version=no_proc)
    assert [gpu.index for gpu in found.gpus] == [0, 1, 2]
    assert found.gpus[1].name == "NVIDIA \ufffd\ufffd H100"
    assert found.gpus[1].memory_bytes is None
    assert found.gpus[2].capability is None
    assert found.gpus[2].memory_bytes is None
    assert found.capabilities == ((9, 0),)


@pytest.mark.parametrize(
    ("text", "meant"),
    [("12", "did you mean 12.0?"), ("-12.8", ""), ("１２.８", ""), ("12.8a", ""), ("", "")],
)
def test_cuda_values_are_major_minor_in_plain_digits(text: str, meant: str) -> None:
    with pytest.raises(LlmSyncError, match="not a CUDA version") as refused:
        targets.parse_cuda(text)
    assert meant in refused.value.what


@pytest.mark.parametrize("bad", ["99.0", "9.10", "sm_990", "0.5", "-9.0", "９.０"])
def test_capabilities_no_gpu_has_are_refused(bad: str) -> None:
    with pytest.raises(LlmSyncError, match="compute capabilities"):
        targets.parse_arch_list(bad)


@pytest.mark.parametrize("spelled", ["9.0a", "sm_90a", "9.0", "sm_90", "90", "compute_90", "9.0f"])
def test_arch_specific_spellings_name_the_same_gpus(spelled: str) -> None:
    assert targets.parse_arch_list(f"8.0;{spelled}") == ((8, 0), (9, 0))
