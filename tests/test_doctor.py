"""`llm-sync doctor` against stand-in interpreters: small scripts that answer the probe
the way a given torch install would (and one that hangs), on the recorded H200."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fakes import FIXTURES, RecordedNvml, recorded, with_devices
from helpers import GOOD, environment, make_compiler, make_toolkit, run, write_project

from uvx_llm import doctor, doctor_packages, machine
from uvx_llm import interpreter as interp
from uvx_llm.errors import ExitCode
from uvx_llm.uv import LockCheck

if TYPE_CHECKING:
    from pkgindex import PackageIndex

# The probe's real answers on an H100 (driver 580, CUDA 13.0) from its torch 2.11+cu130 env.
H100_PROBE: dict[str, dict[str, Any]] = json.loads(
    (FIXTURES / "env" / "h100-torch-2.11-cu130.json").read_text(encoding="utf-8")
)
HEALTHY_TORCH: dict[str, Any] = H100_PROBE["plain"]["torch"]


def executable(folder: Path, body: str, name: str = "python") -> Path:
    """A Python script that stands where an interpreter would."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / name
    script.write_text(f"#!{sys.executable}\n{body}", encoding="utf-8")
    script.chmod(0o755)
    return script


def standin(folder: Path, answer: dict[str, Any] | None, *, hang: bool = False) -> Path:
    """An executable that answers `python -c <probe>` like a given environment would."""
    body = "import time\ntime.sleep(3600)\n" if hang else f"print({json.dumps(json.dumps(answer))})\n"
    return executable(folder, body)


@pytest.fixture
def h200(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(machine, "load_nvml", lambda: RecordedNvml(recorded()))


def diagnose(
    tmp_path: Path,
    answer: dict[str, Any] | None,
    capsys: pytest.CaptureFixture[str],
    *extra: str,
    hang: bool = False,
) -> tuple[int, dict[str, Any]]:
    (tmp_path / "pyproject.toml").write_text(GOOD, encoding="utf-8")
    interpreter = standin(tmp_path, answer, hang=hang)
    code = run(["doctor", "--json", "--project", str(tmp_path), "--python", str(interpreter), *extra])
    return code, json.loads(capsys.readouterr().out)


def titles(document: dict[str, Any], severity: str) -> list[str]:
    return [f["title"] for f in document["findings"] if f["severity"] == severity]


@pytest.mark.usefixtures("h200")
def test_healthy_environment_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, document = diagnose(
        tmp_path, {"python": "3.12.3", "packages": {"transformers": "5.17.0"}, "torch": HEALTHY_TORCH}, capsys
    )
    assert titles(document, "error") == []
    assert code == 0
    assert any("torch 2.11.0+cu130, CUDA 13.0" in t for t in titles(document, "ok"))
    assert (
        document["findings"][0]["severity"] != "ok" or document["summary"]["warning"] == 0
    )  # problems first


@pytest.mark.usefixtures("h200")
def test_cpu_only_torch_on_a_gpu_machine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cpu_torch: dict[str, Any] = {
        "version": "2.11.0+cpu",
        "cuda": None,
        "cuda_available": False,
        "arch_list": [],
        "cxx11_abi": True,
    }
    code, document = diagnose(tmp_path, {"python": "3.12.3", "packages": {}, "torch": cpu_torch}, capsys)
    assert code == ExitCode.DIFFERENCES
    [error] = [f for f in document["findings"] if f["severity"] == "error"]
    assert "CPU-only build" in error["title"]
    assert "llm-sync" in error["fix"]
    assert document["findings"][0] == error  # problems first


def test_gpu_missing_from_the_arch_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        machine, "load_nvml", lambda: RecordedNvml(with_devices(recorded(), ("NVIDIA B200", (10, 0))))
    )
    cu126 = {
        **HEALTHY_TORCH,
        "version": "2.11.0+cu126",
        "cuda": "12.6",
        "arch_list": ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"],
    }
    code, document = diagnose(tmp_path, {"python": "3.12.3", "packages": {}, "torch": cu126}, capsys)
    assert code == ExitCode.DIFFERENCES
    assert any("sm_100 (NVIDIA B200) is not in torch's arch list" in t for t in titles(document, "error"))


def test_driver_too_old_for_torchs_cuda(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    old_driver = with_devices(recorded(), cuda=12040, driver="550.54.14")
    monkeypatch.setattr(machine, "load_nvml", lambda: RecordedNvml(old_driver))
    code, document = diagnose(tmp_path, {"python": "3.12.3", "packages": {}, "torch": HEALTHY_TORCH}, capsys)
    assert code == ExitCode.DIFFERENCES
    assert "the driver is too old for torch's CUDA 13.0" in titles(document, "error")


@pytest.mark.usefixtures("h200")
def test_nvcc_and_torch_of_different_majors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(doctor, "toolchain_findings", lambda _toolkit, _env: ([], None))
    from uvx_llm import toolkit  # noqa: PLC0415

    monkeypatch.setattr(
        toolkit,
        "find",
        lambda _env: toolkit.Toolkit(Path("/cuda/bin/nvcc"), Path("/cuda"), (13, 0), "test"),
    )
    cu128 = {**HEALTHY_TORCH, "version": "2.9.0+cu128", "cuda": "12.8"}
    _, document = diagnose(tmp_path, {"python": "3.12.3", "packages": {}, "torch": cu128}, capsys)
    assert any(
        "nvcc 13.0 and torch's CUDA 12.8 differ in major version" in t for t in titles(document, "warning")
    )


@pytest.mark.usefixtures("h200")
def test_flash_attn_with_an_undefined_symbol(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    answer = {
        "python": "3.12.3",
        "packages": {"flash-attn": "2.8.3"},
        "torch": HEALTHY_TORCH,
        "flash_attn_import": "ImportError: flash_attn_2_cuda.so: undefined symbol: _ZN3c105ErrorC2ENS_14SourceLocationENSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEEE",
    }
    code, document = diagnose(tmp_path, answer, capsys)
    assert code == ExitCode.DIFFERENCES
    [error] = [f for f in document["findings"] if f["severity"] == "error"]
    assert error["title"] == "flash-attn 2.8.3 does not import"
    assert "match-runtime" in error["fix"]
    assert "--reinstall-package flash-attn" in error["fix"]


@pytest.mark.usefixtures("h200")
def test_known_bad_combinations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    torch_29 = {**HEALTHY_TORCH, "version": "2.9.0+cu130"}
    answer = {"python": "3.12.3", "packages": {"tensordict": "0.5.0", "vllm": "0.10.2"}, "torch": torch_29}
    _, document = diagnose(tmp_path, answer, capsys)
    errors = titles(document, "error")
    assert "tensordict 0.5.0 with torch 2.9.0" in errors
    assert "vllm 0.10.2 pins torch==2.8.0, but torch 2.9.0 is installed" in errors


@pytest.mark.usefixtures("h200")
def test_a_hanging_interpreter_is_bounded_and_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, document = diagnose(tmp_path, None, capsys, "--timeout", "1", hang=True)
    assert code == ExitCode.DIFFERENCES
    assert any("did not answer within 1 s" in t for t in titles(document, "error"))


@pytest.mark.usefixtures("h200")
def test_text_report_and_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pyproject.toml").write_text(GOOD, encoding="utf-8")
    interpreter = standin(tmp_path, {"python": "3.12.3", "packages": {}, "torch": HEALTHY_TORCH})
    assert run(["doctor", "--project", str(tmp_path), "--python", str(interpreter)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("llm-sync doctor: 0 error(s)")
    assert "[project]" in out
    assert run(["doctor", "--python", str(tmp_path / "nope")]) == ExitCode.USAGE
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.usefixtures("h200")
def test_the_recorded_h100_environment_passes_every_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, document = diagnose(tmp_path, H100_PROBE["plain"], capsys)
    assert code == 0
    assert titles(document, "error") == []
    passed = titles(document, "ok")
    assert "the driver runs torch's CUDA 13.0" in passed
    assert "torch's arch list covers every local GPU (sm_90)" in passed
    assert "torch.cuda.is_available() is True (1 device(s) visible)" in passed
    assert "installed: torchaudio 2.11.0, torchvision 0.26.0, transformers 5.17.0, triton 3.6.0" in passed
    # 20 of its 205 distributions name torch; 13 require it outside extras, all satisfied
    assert "torch 2.11.0+cu130 satisfies what 13 installed package(s) require of it" in passed
    assert document["facts"]["environment"]["torch"] == HEALTHY_TORCH
    assert document["facts"]["machine"]["gpus"][0]["sm"] == "sm_90"


@pytest.mark.parametrize(
    "recording",
    [key for key in H100_PROBE if key.startswith("CUDA_VISIBLE_DEVICES=")],
)
@pytest.mark.usefixtures("h200")
def test_cuda_visible_devices_hiding_every_gpu_is_named_as_the_cause(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], recording: str
) -> None:
    # On the real H100 torch.cuda.get_arch_list() answered [] here: that must not read as
    # "sm_90 missing from the arch list" (the first real run said so).
    code, document = diagnose(tmp_path, H100_PROBE[recording], capsys)
    assert code == ExitCode.DIFFERENCES
    [error] = [f for f in document["findings"] if f["severity"] == "error"]
    assert error["title"] == "torch.cuda.is_available() is False: CUDA_VISIBLE_DEVICES hides every GPU"
    assert "unset CUDA_VISIBLE_DEVICES" in error["fix"]


@pytest.mark.parametrize(
    ("visible", "hides"),
    [
        (None, False),
        ("0", False),
        ("1,0", False),
        ("GPU-5e8b6c1a-1f0e-4bd6-9d3c-2a1b0c9d8e7f", False),
        ("MIG-1a2b3c4d-0000-1111-2222-333344445555", False),
        ("0,-1", False),
        ("", True),
        ("-1", True),
        ("NoDevFiles", True),
    ],
)
def test_which_cuda_visible_devices_values_hide_every_gpu(visible: str | None, hides: bool) -> None:
    torch = {**HEALTHY_TORCH, "cuda_available": False, "device_count": 0}
    finding = doctor._availability_finding(torch, visible)
    assert ("CUDA_VISIBLE_DEVICES hides every GPU" in finding.title) is hides
    assert finding.severity == "error"


@pytest.mark.usefixtures("h200")
def test_a_slow_interpreter_is_told_to_raise_the_timeout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, document = diagnose(tmp_path, None, capsys, "--timeout", "0.5", hang=True)
    [error] = [f for f in document["findings"] if f["severity"] == "error"]
    assert "--timeout" in error["fix"]
    assert document["facts"]["environment"]["problem"].startswith("did not answer within 0.5 s")


STANDIN_TORCH = """
import types
__version__ = "2.11.0+cu130"
version = types.SimpleNamespace(cuda="13.0")
_C = types.SimpleNamespace(_GLIBCXX_USE_CXX11_ABI=True, _cuda_getArchFlags=lambda: "sm_80 sm_90 sm_100")
def _available():
    return __import__("os").environ.get("CUDA_VISIBLE_DEVICES") != ""
# As torch does: get_arch_list() is [] whenever CUDA is unavailable.
cuda = types.SimpleNamespace(
    is_available=_available,
    device_count=lambda: 1 if _available() else 0,
    get_arch_list=lambda: _C._cuda_getArchFlags().split() if _available() else [],
)
"""


def environment_with(tmp_path: Path) -> tuple[Path, Path]:
    """A real virtual environment (no pip): its interpreter and its site-packages."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    version = subprocess.run(
        [python, "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    return python, venv / "lib" / f"python{version}" / "site-packages"


HOSTILE = """import pathlib
pathlib.Path({marker!r}).write_text("project code ran: {name}")
"""


def test_the_probe_never_runs_project_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """json.py, sitecustomize.py, usercustomize.py in the project (the current folder) or named by
    PYTHONPATH/PYTHONSTARTUP/PYTHONHOME-style variables: none of them runs."""
    python, site = environment_with(tmp_path)
    (site / "torch.py").write_text(STANDIN_TORCH, encoding="utf-8")
    project = tmp_path / "project"
    project.mkdir()
    marker = tmp_path / "ran"
    for name in ("json", "os", "sitecustomize", "usercustomize", "importlib", "platform", "re"):
        (project / f"{name}.py").write_text(HOSTILE.format(marker=str(marker), name=name), encoding="utf-8")
    monkeypatch.chdir(project)
    monkeypatch.setenv("PYTHONPATH", ".")
    monkeypatch.setenv("PYTHONSTARTUP", str(project / "json.py"))
    environment = interp.probe(python, timeout=30)
    assert not marker.exists(), marker.read_text(encoding="utf-8")
    assert environment.problem is None
    assert environment.facts["torch"]["arch_list"]


@pytest.mark.parametrize(("visible", "available"), [(None, True), ("", False)])
def test_the_probe_reads_the_arch_list_the_build_carries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, visible: str | None, available: bool
) -> None:
    """The real probe script in a real interpreter, against a torch-shaped module."""
    python, site = environment_with(tmp_path)
    (site / "torch.py").write_text(STANDIN_TORCH, encoding="utf-8")
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    environment = interp.probe(python, timeout=30)
    assert environment.problem is None
    torch = environment.facts["torch"]
    assert torch["arch_list"] == ["sm_80", "sm_90", "sm_100"]
    assert torch["cuda_available"] is available
    assert environment.facts["cuda_visible_devices"] == visible


@pytest.mark.usefixtures("h200")
def test_flash_attn_that_imports_is_reported_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    answer = {**H100_PROBE["plain"], "packages": {"flash-attn": "2.8.3"}, "flash_attn_import": "ok"}
    code, document = diagnose(tmp_path, answer, capsys)
    assert code == 0
    assert "flash-attn 2.8.3 imports" in titles(document, "ok")


@pytest.mark.uv
@pytest.mark.usefixtures("h200")
def test_an_environment_that_drifted_from_uv_lock(
    package_index: PackageIndex,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The project's real .venv, made by the real uv, then changed behind uv's back."""
    project = write_project(tmp_path / "app", "psutil", "ninja")
    env = environment(package_index)
    uv = [env["UV"]]
    subprocess.run([*uv, "sync", "-q"], cwd=project, env=env, check=True, timeout=300)
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)

    def findings() -> dict[str, Any]:
        code = run(["doctor", "--json", "--project", str(project)])
        assert code == 0  # drift is a warning: the environment may still work
        by_title: dict[str, Any] = {f["title"]: f for f in json.loads(capsys.readouterr().out)["findings"]}
        return by_title

    assert "the environment holds what uv.lock says (`uv sync --check`)" in findings()

    python = project / ".venv" / "bin" / "python"
    subprocess.run(
        [*uv, "pip", "uninstall", "-q", "--python", str(python), "psutil"], env=env, check=True, timeout=60
    )
    drifted = findings()["the environment differs from uv.lock"]
    assert drifted["severity"] == "warning"
    assert drifted["detail"] == "`uv sync` would change: + psutil==1.0"
    assert "llm-sync" in drifted["fix"]

    # A package added on purpose is not a difference (--inexact); a missing one still is.
    subprocess.run([*uv, "sync", "-q"], cwd=project, env=env, check=True, timeout=300)
    subprocess.run(
        [*uv, "pip", "install", "-q", "--python", str(python), "packaging"], env=env, check=True, timeout=60
    )
    assert "the environment holds what uv.lock says (`uv sync --check`)" in findings()

    # --python elsewhere: another environment is not compared with this project's lock.
    elsewhere = standin(tmp_path, {"python": "3.12.3", "packages": {}, "torch": HEALTHY_TORCH})
    run(["doctor", "--json", "--project", str(project), "--python", str(elsewhere)])
    titles_elsewhere = [f["title"] for f in json.loads(capsys.readouterr().out)["findings"]]
    assert not any("uv.lock" in t for t in titles_elsewhere)


def test_uv_project_environment_is_where_doctor_looks(tmp_path: Path) -> None:
    env = {"UV_PROJECT_ENVIRONMENT": "envs/gpu"}
    assert interp.project_environment(tmp_path, env) == tmp_path / "envs" / "gpu"
    assert interp.project_environment(tmp_path, {}) == tmp_path / ".venv"
    assert interp.interpreter_of(tmp_path, None, env) is None  # not created yet
    python = interp.interpreter_in(tmp_path / "envs" / "gpu")
    python.parent.mkdir(parents=True)
    python.touch()
    assert interp.interpreter_of(tmp_path, None, env) == python
    assert interp.is_in(python, tmp_path / "envs" / "gpu")
    assert not interp.is_in(python, tmp_path / ".venv")


def test_a_lock_uv_cannot_read_is_reported_not_raised() -> None:
    finding = doctor.lock_finding(LockCheck(in_sync=False, problem="error: Failed to parse `uv.lock`"))
    assert finding.severity == "warning"
    assert finding.detail == "error: Failed to parse `uv.lock`"
    many = doctor.lock_finding(LockCheck(in_sync=False, changes=tuple(f"+ p{i}==1" for i in range(8))))
    assert many.detail.endswith("+ p5==1 and 2 more")


@pytest.mark.usefixtures("h200")
def test_a_host_compiler_nvcc_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home = make_toolkit(
        tmp_path / "cuda",
        release="13.0",
        header_line="unsupported GNU version! gcc versions later than 15 are not supported!",
    )
    gcc16 = make_compiler(tmp_path / "gcc16", "gcc", "gcc (GCC) 16.1.1 20260501")
    monkeypatch.setenv("CUDA_HOME", str(home))
    monkeypatch.setenv("CC", str(gcc16))
    code, document = diagnose(tmp_path, H100_PROBE["plain"], capsys)
    assert code == 0  # a warning: only source builds need it
    [warning] = [f for f in document["findings"] if f["severity"] == "warning" and f["area"] == "toolchain"]
    assert warning["title"] == "gcc (GCC) 16.1.1 20260501 ($CC, which torch passes to nvcc as -ccbin)"
    assert "is newer than nvcc 13.0 accepts (gcc ≤ 15" in warning["detail"]
    assert warning["fix"].startswith("install gcc-15 and set CC=gcc-15 CXX=g++-15")
    host = document["facts"]["toolkit"]["host_compiler"]
    assert (host["gcc"], document["facts"]["toolkit"]["gcc_limit"]) == ("16.1", "15")

    monkeypatch.delenv("CC")
    make_compiler(tmp_path / "bin", "gcc", "gcc (Ubuntu 13.3.0-6ubuntu2~24.04.1) 13.3.0")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    _, document = diagnose(tmp_path, H100_PROBE["plain"], capsys)
    accepted = next(f for f in document["findings"] if f["title"].startswith("gcc (Ubuntu 13.3.0"))
    assert (accepted["severity"], accepted["detail"]) == ("ok", "nvcc accepts gcc ≤ 15")


@pytest.mark.usefixtures("h200")
def test_without_an_environment_doctor_says_where_it_looked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text(GOOD, encoding="utf-8")
    monkeypatch.setenv("UV_PROJECT_ENVIRONMENT", "envs/gpu")
    code = run(["doctor", "--json", "--project", str(tmp_path)])
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    [missing] = [f for f in document["findings"] if f["title"] == "no environment to inspect"]
    assert missing["detail"] == f"no {tmp_path / 'envs' / 'gpu'} in the project and no --python"
    assert document["facts"]["environment"] is None

    outside = tmp_path / "outside"  # no pyproject.toml here or above: the machine is still reported
    outside.mkdir()
    monkeypatch.chdir(outside)
    (tmp_path / "pyproject.toml").unlink()
    assert run(["doctor", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    [missing] = [f for f in document["findings"] if f["title"] == "no environment to inspect"]
    assert missing["detail"] == "no project here and no --python"
    assert document["facts"]["machine"]["gpus"][0]["sm"] == "sm_90"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            (
                "import sys\nsys.stderr.write('Traceback ...\\nImportError: libpython3.12.so.1.0: cannot open\\n')\n"
                "sys.exit(1)\n"
            ),
            "failed: ImportError: libpython3.12.so.1.0: cannot open",
        ),
        ("import sys\nsys.exit(3)\n", "failed: exit code 3"),
        ("print('{not json')\n", "printed something that is not the probe's answer"),
    ],
)
def test_an_interpreter_that_does_not_answer_the_probe(tmp_path: Path, body: str, problem: str) -> None:
    environment = interp.probe(executable(tmp_path, body), timeout=30)
    assert environment.problem == problem
    assert environment.facts == {}


def test_an_interpreter_that_cannot_be_run(tmp_path: Path) -> None:
    not_executable = tmp_path / "python"
    not_executable.write_text("", encoding="utf-8")
    environment = interp.probe(not_executable, timeout=30)
    assert environment.problem is not None
    assert environment.problem.startswith("cannot be run: ")


@pytest.mark.uv
@pytest.mark.usefixtures("h200")
def test_a_lock_uv_cannot_read_is_reported_by_the_real_uv(
    package_index: PackageIndex,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project = write_project(tmp_path / "app", "psutil")
    env = environment(package_index)
    subprocess.run([env["UV"], "venv", "-q"], cwd=project, env=env, check=True, timeout=120)
    (project / "uv.lock").write_text("version = 1\n[[package]\n", encoding="utf-8")
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    run(["doctor", "--json", "--project", str(project)])
    by_title = {f["title"]: f for f in json.loads(capsys.readouterr().out)["findings"]}
    unreadable = by_title["could not compare the environment with uv.lock"]
    assert unreadable["severity"] == "warning"
    assert unreadable["detail"].startswith("error:")
    assert "uv.lock" in unreadable["detail"]


@pytest.mark.usefixtures("h200")
def test_packages_whose_metadata_rules_out_the_installed_torch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = {
        **H100_PROBE["plain"],
        "packages": {"vllm": "0.10.2", "torchvision": "0.26.0+cu130"},
        "torch_requirements": {
            "vllm": {"version": "0.10.2", "requires": ["torch==2.8.0"]},
            "torchvision": {"version": "0.26.0+cu130", "requires": ["torch==2.11.0"]},
            "xformers": {"version": "0.0.32", "requires": ["torch==2.8.0; sys_platform == 'win32'"]},
            "peft": {"version": "0.17.0", "requires": ["torch>=1.13.0", "torch<3; extra == 'test'"]},
        },
        "markers": {"sys_platform": "linux", "platform_system": "Linux", "python_version": "3.12"},
    }
    code, document = diagnose(tmp_path, answer, capsys)
    assert code == ExitCode.DIFFERENCES
    # vllm once, from its own metadata (the catalog's pin table is not asked as well)
    assert titles(document, "error") == [
        "vllm 0.10.2 requires torch==2.8.0, but torch 2.11.0+cu130 is installed"
    ]

    fine = {
        **answer,
        "packages": {},
        "torch_requirements": {k: answer["torch_requirements"][k] for k in ("torchvision", "peft")},
    }
    code, document = diagnose(tmp_path, fine, capsys)
    assert code == 0
    assert "torch 2.11.0+cu130 satisfies what 2 installed package(s) require of it" in titles(document, "ok")


@pytest.mark.parametrize(
    ("torchvision", "severity"),
    [("0.26.0+cu128", "error"), ("0.26.0+cpu", "error"), ("0.26.0+cu132", "warning"), ("0.26.0+cu130", None)],
)
@pytest.mark.usefixtures("h200")
def test_torchvision_from_another_pytorch_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], torchvision: str, severity: str | None
) -> None:
    answer = {**H100_PROBE["plain"], "packages": {"torchvision": torchvision}}
    _, document = diagnose(tmp_path, answer, capsys)
    flagged = [f for f in document["findings"] if f["title"].startswith("torchvision ")]
    assert [f["severity"] for f in flagged] == ([severity] if severity else [])
    if severity:
        assert "llm-sync" in flagged[0]["fix"]


def test_the_probe_reads_what_installed_packages_require_of_torch(tmp_path: Path) -> None:
    """Real dist-info metadata read by the real probe in a real interpreter."""
    python, site = environment_with(tmp_path)
    (site / "torch.py").write_text(STANDIN_TORCH, encoding="utf-8")
    for name, version, requires in [
        ("vllm", "0.10.2", ["torch==2.8.0", "torchvision==0.23.0"]),
        ("torchvision", "0.26.0", ["numpy", "torch==2.11.0"]),
        ("torchmetrics", "1.9.0", ["torch (>=2.0.0)"]),
        ("numpy", "2.3.0", []),
    ]:
        info = site / f"{name}-{version}.dist-info"
        info.mkdir()
        lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
        lines += [f"Requires-Dist: {r}" for r in requires]
        (info / "METADATA").write_text("\n".join(lines) + "\n", encoding="utf-8")
    environment = interp.probe(python, timeout=30)
    wanted = environment.facts["torch_requirements"]
    assert wanted["vllm"] == {"version": "0.10.2", "requires": ["torch==2.8.0"]}
    assert wanted["torchvision"]["requires"] == ["torch==2.11.0"]
    assert wanted["torchmetrics"]["requires"] == ["torch (>=2.0.0)"]
    assert "numpy" not in wanted
    findings = doctor_packages.torch_requirement_findings(environment.facts)
    assert [f.title for f in findings if f.severity == "error"] == [
        "vllm 0.10.2 requires torch==2.8.0, but torch 2.11.0+cu130 is installed"
    ]


@pytest.mark.usefixtures("h200")
def test_the_recorded_environment_with_an_older_torch_names_torchvision(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The H100's real requirements (torchvision pins torch (==2.11.0)) against torch 2.9."""
    older = {**H100_PROBE["plain"], "torch": {**HEALTHY_TORCH, "version": "2.9.0+cu130"}}
    code, document = diagnose(tmp_path, older, capsys)
    assert code == ExitCode.DIFFERENCES
    assert titles(document, "error") == [
        "torchvision 0.26.0 requires torch==2.11.0, but torch 2.9.0+cu130 is installed"
    ]
