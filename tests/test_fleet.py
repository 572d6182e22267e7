"""Planning for a fleet from `detect --json` documents: made by the real `detect --json` from
NVML facts recorded on real machines (fakes.py), then read back by `--machines`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fakes
import pytest
from helpers import run

from uvx_llm import fleet, machine
from uvx_llm.errors import ExitCode, LlmSyncError

A100 = ("NVIDIA A100-SXM4-80GB", (8, 0))
H100 = ("NVIDIA H100 80GB HBM3", (9, 0))
PROJECT = (
    '[project]\nname = "app"\nversion = "0.1.0"\nrequires-python = ">=3.10"\ndependencies = ["flash-attn"]\n'
)


def detect_document(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], facts: dict[str, Any] | None
) -> str:
    """What `llm-sync detect --json` prints on a machine with these NVML facts (None: no GPU)."""
    with monkeypatch.context() as patched:
        if facts is None:
            patched.setattr(machine, "load_nvml", lambda: "nvidia-ml-py is not importable: test")
            patched.setattr(machine, "from_nvidia_smi", lambda *_a, **_k: "nvidia-smi unusable: test")
            patched.setattr(machine, "PROC_VERSION", Path("/nonexistent/version"))
        else:
            patched.setattr(machine, "load_nvml", lambda: fakes.RecordedNvml(facts))
        capsys.readouterr()
        assert run(["detect", "--json"]) == 0
        return capsys.readouterr().out


@pytest.fixture
def collect(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    def write(
        name: str, *gpus: tuple[str, tuple[int, int]], cuda: int | None = None, driver: str | None = None
    ) -> Path:
        facts = fakes.with_devices(fakes.recorded(), *gpus, cuda=cuda, driver=driver) if gpus else None
        folder = tmp_path / "facts"
        folder.mkdir(exist_ok=True)
        path = folder / f"{name}.json"
        path.write_text(detect_document(monkeypatch, capsys, facts), encoding="utf-8")
        return path

    return write


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "pyproject.toml").write_text(PROJECT, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "pyproject.toml"


def plan_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    capsys.readouterr()
    assert run(["plan", "--json", *args]) == 0
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    return document


@pytest.mark.usefixtures("app")
def test_a_mixed_a100_h100_fleet_covers_both(collect: Any, capsys: pytest.CaptureFixture[str]) -> None:
    collect("gpu-01", A100, A100)
    collect("gpu-02", H100)
    collect("cpu-01")
    document = plan_json(capsys, "--machines", "facts", "--prefer", "newest")
    assert [n["name"] for n in document["nodes"]] == ["cpu-01", "gpu-01", "gpu-02"]
    assert {g["sm"] for g in document["machine"]["gpus"]} == {"sm_80", "sm_90"}
    decisions = {d["topic"]: d for d in document["decisions"]}
    assert "sm_80 (gpu-01), sm_90 (gpu-02)" in decisions["fleet"]["reason"]
    assert "no NVIDIA GPU on cpu-01" in decisions["fleet"]["reason"]
    assert decisions["gpu architectures"]["choice"] == "8.0;9.0"
    assert "widened by the fleet's sm_80 sm_90" in decisions["gpu architectures"]["reason"]
    assert "sm_80 sm_90 in its arch list" in decisions["backend"]["reason"]


@pytest.mark.usefixtures("app")
def test_one_old_driver_limits_the_fleet_and_is_named(
    collect: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    collect("gpu-01", H100)
    collect("gpu-07", H100, cuda=12080, driver="570.86.10")
    collect("gpu-08", H100)
    document = plan_json(capsys, "--machines", "facts")
    assert document["backend"] == "cu128"
    backend = next(d for d in document["decisions"] if d["topic"] == "backend")
    assert backend["reason"].startswith("node gpu-07 (driver 570.86.10) runs CUDA ≤ 12.8")
    fleet_reason = next(d for d in document["decisions"] if d["topic"] == "fleet")["reason"]
    assert "CUDA limit from gpu-07 (driver 570.86.10, CUDA ≤ 12.8); gpu-01, gpu-08 run newer" in fleet_reason
    # Alone, the newer nodes would take a newer build.
    alone = plan_json(capsys, "--machines", "facts/gpu-01.json")
    assert alone["backend"] != "cu128"


def test_sync_records_the_fleet_and_check_stays_offline(
    app: Path, collect: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_SYNC_PREFER", "newest")  # the compile route, which records cuda-archs
    collect("gpu-01", A100)
    collect("gpu-02", H100, cuda=12080, driver="570.86.10")
    assert (
        run(["sync", "--no-sync", "--machines", "facts/gpu-01.json", "--machines", "facts/gpu-02.json"]) == 0
    )
    text = app.read_text(encoding="utf-8")
    assert 'backend = "cu128"' in text
    assert 'cuda-archs = "8.0;9.0"' in text
    capsys.readouterr()
    assert run(["check"]) == 0, capsys.readouterr()  # the recorded state: no machine, no documents needed
    assert run(["check", "--machines", "facts"]) == 0  # the documents agree with it


def test_machines_from_the_project_table_are_relative_to_it(
    app: Path, collect: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    collect("gpu-07", H100, cuda=12080, driver="570.86.10")
    app.write_text(PROJECT + '\n[tool.llm-sync]\nmachines = "facts"\n', encoding="utf-8")
    monkeypatch.chdir(app.parent.parent)
    document = plan_json(capsys, "--project", str(app.parent))
    assert [n["name"] for n in document["nodes"]] == ["gpu-07"]


@pytest.mark.usefixtures("app")
def test_a_bad_document_is_exit_2_naming_file_and_key(
    collect: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    path = collect("gpu-01", H100)
    data = json.loads(path.read_text(encoding="utf-8"))
    data["gpus"][0]["compute_capability"] = "nine"
    path.write_text(json.dumps(data), encoding="utf-8")
    capsys.readouterr()
    assert run(["plan", "--machines", "facts"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "gpu-01.json: gpus[0].compute_capability 'nine' is not MAJOR.MINOR" in err
    assert "fix:" in err
    path.write_text("Traceback (most recent call last):\n", encoding="utf-8")
    assert run(["plan", "--machines", str(path)]) == ExitCode.USAGE
    assert "gpu-01.json: not a JSON document" in capsys.readouterr().err


def document(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "version": 1,
        **fakes.recorded("h100-driver580-llm-sync")["llm-sync detect --json"],
    }
    return base | changes


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"version": 2}, "f.json: version 2 is not a document version"),
        ({"version": None}, "f.json: version is null, not int"),
        ({"gpus": {}}, "f.json: gpus is {}, not list"),
        ({"cuda_max": "13"}, "f.json: cuda_max '13' is not MAJOR.MINOR"),
        ({"driver_version": "new"}, "f.json: driver_version 'new' is not a driver version"),
        ({"gpus": [{"compute_capability": "9.0"}]}, "f.json: gpus[0].name is missing"),
        ({"archs_known": "yes"}, "f.json: archs_known is not true or false"),
    ],
)
def test_document_validation(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(LlmSyncError) as raised:
        fleet.parse_document(document(**changes), origin="f.json", name="f")
    assert message in raised.value.what


def test_a_missing_version_is_refused() -> None:
    data = document()
    del data["version"]
    with pytest.raises(LlmSyncError, match=r"f\.json: version is missing"):
        fleet.parse_document(data, origin="f.json", name="f")


def test_mixed_vendors_are_refused() -> None:
    nvidia = fleet.parse_document(document(), origin="a.json", name="gpu-01")
    amd = fleet.parse_document(
        document(vendor="amd", gpus=[{"name": "AMD Instinct MI300X", "compute_capability": None}]),
        origin="b.json",
        name="mi-01",
    )
    with pytest.raises(LlmSyncError) as raised:
        fleet.combine([nvidia, amd])
    assert "mixes GPU vendors (amd: mi-01; nvidia: gpu-01)" in raised.value.what


def test_a_cpu_only_fleet_plans_cpu_and_hostnames_name_nodes() -> None:
    cpu = document(driver_version=None, cuda_max=None, gpus=[], hostname="login-1")
    combined = fleet.combine([fleet.parse_document(cpu, origin="x.json", name="x")])
    assert not combined.machine.has_nvidia
    assert combined.machine.nodes == ("login-1",)


def test_unknown_limits_and_architectures_are_warnings() -> None:
    blind = document(cuda_max=None, archs_known=False, gpus=[])
    known = fleet.parse_document(document(), origin="a.json", name="gpu-01")
    combined = fleet.combine([known, fleet.parse_document(blind, origin="b.json", name="gpu-09")])
    assert combined.machine.limited_by == "gpu-01"
    assert any("CUDA limit is unknown on gpu-09" in w for w in combined.warnings)
    assert any("GPU architectures of gpu-09 are unknown" in w for w in combined.warnings)


@pytest.mark.usefixtures("app")
def test_machines_and_a_target_are_one_too_many(collect: Any, capsys: pytest.CaptureFixture[str]) -> None:
    collect("gpu-01", H100)
    capsys.readouterr()
    assert run(["plan", "--machines", "facts", "--cuda", "12.8"]) == ExitCode.USAGE
    assert "--machines and --cuda both describe what to plan for" in capsys.readouterr().err
    assert run(["plan", "--machines", "nowhere"]) == ExitCode.USAGE
    assert "nowhere: no such file or folder" in capsys.readouterr().err
