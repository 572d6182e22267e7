"""Fleets beyond NVIDIA: `detect --json` documents made by the real `detect` reading the recorded
AMD and Intel sysfs trees (tests/fixtures/amd, tests/fixtures/intel), read back by `--machines`.
An all-AMD fleet is planned for ROCm; vendors never mix; Intel fleets are refused."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import fakes
import pytest
from helpers import run

from uvx_llm import fleet, machine
from uvx_llm.errors import ExitCode, LlmSyncError

FIXTURES = Path(__file__).parent / "fixtures"
TORCH_APP = (
    '[project]\nname = "app"\nversion = "0.1.0"\nrequires-python = ">=3.10"\ndependencies = ["torch"]\n'
)


@pytest.fixture
def collect(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """Write facts/NAME.json: what `llm-sync detect --json` prints on the recorded machine ``tree``
    (None: the recorded H100 through NVML)."""
    (tmp_path / "pyproject.toml").write_text(TORCH_APP, encoding="utf-8")
    monkeypatch.chdir(tmp_path)

    def write(name: str, tree: str | None) -> Path:
        with monkeypatch.context() as patched:
            if tree is None:
                patched.setattr(machine, "load_nvml", lambda: fakes.RecordedNvml(fakes.recorded()))
            else:
                patched.setattr(machine, "load_nvml", lambda: "nvidia-ml-py is not importable: test")
                patched.setenv("PATH", str(tmp_path / "no-bin"))
                patched.setattr(
                    machine,
                    "detect",
                    functools.partial(
                        machine.detect,
                        root=FIXTURES / tree,
                        amdsmi="amdsmi is not importable: test",
                        proc_version=tmp_path / "absent",
                    ),
                )
            capsys.readouterr()
            assert run(["detect", "--json"]) == 0
            text = capsys.readouterr().out
        path = tmp_path / "facts" / f"{name}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return write


def test_detect_json_names_the_vendor_of_the_machine_and_of_each_gpu(collect: Any) -> None:
    amd = json.loads(collect("mi-01", "amd/mi300x-rocm6.3").read_text(encoding="utf-8"))
    assert amd["vendor"] == "amd"
    assert {g["vendor"] for g in amd["amd_gpus"]} == {"amd"}
    nvidia = json.loads(collect("gpu-01", None).read_text(encoding="utf-8"))
    assert nvidia["vendor"] == "nvidia"
    assert {g["vendor"] for g in nvidia["gpus"]} == {"nvidia"}
    arc = json.loads(collect("arc-01", "intel/arc-a770").read_text(encoding="utf-8"))
    assert arc["vendor"] == "intel"
    assert arc["intel_gpus"][0]["vendor"] == "intel"
    laptop = json.loads(collect("laptop", "intel/lunar-lake-igpu").read_text(encoding="utf-8"))
    assert laptop["vendor"] is None  # an integrated GPU is planned CPU wheels
    both = json.loads(collect("both", "amd/nvidia-and-amd").read_text(encoding="utf-8"))
    assert both["vendor"] == "amd"  # no NVIDIA driver answers in this test: only the AMD GPUs count


def test_an_all_amd_fleet_is_planned_for_rocm(collect: Any, capsys: pytest.CaptureFixture[str]) -> None:
    collect("mi-01", "amd/mi300x-rocm6.3")
    collect("mi-02", "amd/mi250x-rocm6.2.4")
    capsys.readouterr()
    assert run(["plan", "--json", "--machines", "facts"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["backend"] == "rocm6.2.4"
    assert [g["gfx"] for g in document["machine"]["amd_gpus"]] == ["gfx90a", "gfx942"]
    assert document["machine"]["rocm"] == "6.2.4"
    decisions = {d["topic"]: d for d in document["decisions"]}
    assert "ROCm limit from mi-02 (ROCm 6.2.4); mi-01 run newer" in decisions["fleet"]["reason"]
    assert "gfx90a (mi-02), gfx942 (mi-01)" in decisions["fleet"]["reason"]
    assert decisions["backend"]["reason"].startswith("ROCm 6.2.4 (node mi-02) runs ROCm ≤ 6.2.4 builds")
    # Alone, the MI300X node takes the newer build.
    assert run(["plan", "--json", "--machines", "facts/mi-01.json"]) == 0
    assert json.loads(capsys.readouterr().out)["backend"] == "rocm6.3"


def test_nvidia_and_amd_nodes_are_refused(collect: Any, capsys: pytest.CaptureFixture[str]) -> None:
    collect("gpu-01", None)
    collect("mi-01", "amd/mi300x-rocm6.3")
    capsys.readouterr()
    assert run(["plan", "--machines", "facts"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "mixes GPU vendors (amd: mi-01; nvidia: gpu-01)" in err
    assert "plan each vendor's nodes as their own fleet" in err


def test_an_intel_fleet_is_refused_clearly(collect: Any, capsys: pytest.CaptureFixture[str]) -> None:
    collect("arc-01", "intel/arc-a770")
    capsys.readouterr()
    assert run(["plan", "--machines", "facts"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "plans fleets of NVIDIA or AMD GPUs, not intel (arc-01)" in err
    assert "--backend xpu" in err


def test_unknown_rocm_and_gfx_are_warnings(collect: Any) -> None:
    path = collect("mi-01", "amd/mi300x-no-rocm")
    data = json.loads(path.read_text(encoding="utf-8"))
    data["amd_gpus"][0]["gfx"] = None
    combined = fleet.combine([fleet.parse_document(data, origin=str(path), name="mi-01")])
    assert combined.machine.rocm is None
    assert any("ROCm release is unknown on mi-01" in w for w in combined.warnings)
    assert any("gfx targets of mi-01 are unknown" in w for w in combined.warnings)


def test_a_document_from_before_vendor_was_written_is_read_by_its_gpu_lists(collect: Any) -> None:
    path = collect("mi-01", "amd/mi300x-rocm6.3")
    data = json.loads(path.read_text(encoding="utf-8"))
    del data["vendor"]
    node = fleet.parse_document(data, origin="old.json", name="mi-01")
    assert node.vendor == "amd"
    assert node.machine.gfx_targets == ("gfx942",)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rocm": "six"}, "rocm 'six' is not a ROCm release"),
        ({"amd_gpus": [{"name": "x", "gfx": "sm_90"}]}, "amd_gpus[0].gfx 'sm_90' is not a gfx target"),
        ({"amd_gpus": [{"gfx": "gfx942"}]}, "amd_gpus[0].name is missing"),
        ({"vendor": 3}, "vendor is 3, not str or null"),
    ],
)
def test_bad_amd_fields_name_the_key(collect: Any, change: dict[str, Any], message: str) -> None:
    data = json.loads(collect("mi-01", "amd/mi300x-rocm6.3").read_text(encoding="utf-8")) | change
    with pytest.raises(LlmSyncError) as raised:
        fleet.parse_document(data, origin="f.json", name="f")
    assert message in raised.value.what
