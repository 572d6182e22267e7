"""vLLM from a checkout: precompiled binaries for its commit by default, a tuned full build on
request, VLLM_TARGET_DEVICE=empty on macOS, doctor's check of the compiled ops."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import TYPE_CHECKING

import pytest
from helpers import H200, STANDINS, environment, llm_sync, write_project
from layouts import executed, real_checkout

from uvx_llm import actions, checkouts, config, doctor, gitread, machine, plan, project, resources, vllm_plan
from uvx_llm.actions import AddBuildDependencies, EnvSetting, SetBuildVariables, SetPathSource
from uvx_llm.findings import ERROR, OK

if TYPE_CHECKING:
    from pathlib import Path

    from pkgindex import PackageIndex

    from uvx_llm.catalog import Catalog

HEAD = "e0e14a824238524d8336232de49190be22796a54"
MAIN = "40ca516fc83dbc89485d5444e9c7e4095fc22194"
HOST = resources.Resources(cpus=16, cpu_reason="test", memory_bytes=125 * 2**30, memory_reason="test")


def fake_git(folder: Path, *, head: str = HEAD, main: str | None = HEAD, packed: bool = True) -> None:
    """A .git as a clone on main writes it: HEAD -> refs/heads/main; origin/main loose or packed."""
    git = folder / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n", encoding="utf-8")
    (git / "refs" / "heads" / "main").write_text(head + "\n", encoding="utf-8")
    if main is not None and packed:
        (git / "packed-refs").write_text(
            f"# pack-refs with: peeled fully-peeled sorted\n{main} refs/remotes/origin/main\n",
            encoding="utf-8",
        )
    elif main is not None:
        (git / "refs" / "remotes" / "origin").mkdir(parents=True)
        (git / "refs" / "remotes" / "origin" / "main").write_text(main + "\n", encoding="utf-8")


def vllm_project(tmp_path: Path, **git: str | None) -> tuple[project.Project, tuple[checkouts.Checkout, ...]]:
    root = write_project(tmp_path / "app")
    folder = real_checkout(root, "vllm-style", "vllm")
    fake_git(folder, **git)  # type: ignore[arg-type]
    found = tuple(checkouts.find(root, []))
    return project.load(root / "pyproject.toml"), found


def planned(
    loaded: project.Project,
    found: tuple[checkouts.Checkout, ...],
    cat: Catalog,
    *,
    mode: str = "precompiled",
    target: object = H200,
    launcher: str | None = None,
) -> actions.Plan:
    request = actions.Request(
        backend=config.Setting("auto", "default"),
        prefer="newest",
        vllm_build=mode,
        compiler_launcher=launcher,
    )
    return plan.make(
        machine=target,  # type: ignore[arg-type]
        project=loaded,
        catalog=cat,
        request=request,
        host=HOST,
        checkouts=found,
    )


def variables(made: actions.Plan) -> dict[str, str]:
    found: dict[str, str] = {}
    for action in made.actions:
        if isinstance(action, SetBuildVariables) and action.package == "vllm":
            found.update(action.variables)
    return found


def env_of(made: actions.Plan) -> dict[str, EnvSetting]:
    return {s.name: s for s in made.env}


def test_a_vllm_folder_is_read_without_running_it_and_its_commit_from_git_files(tmp_path: Path) -> None:
    _, found = vllm_project(tmp_path)
    [vllm] = found
    assert (vllm.name, vllm.folder, vllm.is_vllm) == ("vllm", "vllm", True)
    assert vllm.extras["tensorizer"] == ("tensorizer==2.10.1",)
    assert vllm.commit == gitread.Commit(HEAD, HEAD, "HEAD is refs/remotes/origin/main, read from vllm/.git")
    assert not executed(tmp_path / "app" / "vllm")


def test_precompiled_by_default_for_the_checkouts_commit(tmp_path: Path, cat: Catalog) -> None:
    loaded, found = vllm_project(tmp_path)
    made = planned(loaded, found, cat)
    assert SetPathSource("vllm", "vllm") in made.actions
    assert variables(made) == {"VLLM_USE_PRECOMPILED": "1", "VLLM_PRECOMPILED_WHEEL_COMMIT": HEAD}
    [deps] = [a for a in made.actions if isinstance(a, AddBuildDependencies) and a.package == "vllm"]
    assert deps.entries == ({"requirement": "torch", "match-runtime": True},)
    assert "MAX_JOBS" not in env_of(made)  # nothing compiles
    assert "vllm" not in made.built_packages


def test_without_an_upstream_main_ref_vllm_chooses_and_the_plan_says_how_to_fix_it(
    tmp_path: Path, cat: Catalog
) -> None:
    loaded, found = vllm_project(tmp_path, main=None)
    made = planned(loaded, found, cat)
    assert variables(made) == {"VLLM_USE_PRECOMPILED": "1"}
    [decision] = [d for d in made.decisions if d.topic == "vllm build"]
    assert "git fetch origin main" in decision.reason


@pytest.mark.skipif(shutil.which("git") is None, reason="the merge-base fallback runs git")
def test_a_branch_ahead_of_main_takes_the_merge_base_from_git(tmp_path: Path) -> None:
    folder = tmp_path / "vllm"
    folder.mkdir()
    git = ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "upstream"], check=True)
    base = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()
    subprocess.run([*git, "update-ref", "refs/remotes/origin/main", base], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "mine"], check=True)
    found = gitread.commit(folder)
    assert found.base == base != found.head
    assert "merge base" in found.how


def test_a_worktree_git_file_and_loose_refs_are_followed(tmp_path: Path) -> None:
    main = tmp_path / "clone"
    fake_git(main, packed=False)
    linked = main / ".git" / "worktrees" / "vllm"
    linked.mkdir(parents=True)
    (linked / "HEAD").write_text(HEAD + "\n", encoding="utf-8")
    (linked / "commondir").write_text("../..\n", encoding="utf-8")
    folder = tmp_path / "vllm"
    folder.mkdir()
    (folder / ".git").write_text(f"gitdir: {linked}\n", encoding="utf-8")
    assert gitread.commit(folder).base == HEAD


def test_full_build_gets_tuning_launcher_archs_and_the_runtime_torch(tmp_path: Path, cat: Catalog) -> None:
    loaded, found = vllm_project(tmp_path)
    made = planned(loaded, found, cat, mode="full", launcher="ccache")
    assert variables(made) == {"VLLM_USE_PRECOMPILED": "", "TORCH_CUDA_ARCH_LIST": "9.0"}
    env = env_of(made)
    assert env["NVCC_THREADS"].value == "1"  # vLLM's own default; one architecture
    assert env["MAX_JOBS"].value == "16"  # 16 CPUs / 1 thread; 125 GiB / 5 GiB = 25
    assert {env[name].value for name in vllm_plan.LAUNCHER_VARIABLES} == {"ccache"}
    assert "vllm" in made.built_packages
    assert any(isinstance(a, AddBuildDependencies) and a.package == "vllm" for a in made.actions)


def test_full_build_refused_before_it_starts_without_nvcc(tmp_path: Path, cat: Catalog) -> None:
    from uvx_llm.toolkit import Toolkit  # noqa: PLC0415 - only this test

    loaded, found = vllm_project(tmp_path)
    request = actions.Request(backend=config.Setting("auto", "default"), prefer="newest", vllm_build="full")
    made = plan.make(
        machine=H200,
        project=loaded,
        catalog=cat,
        request=request,
        host=HOST,
        toolkit=Toolkit(None, None, None, "not on PATH"),
        checkouts=found,
    )
    assert any("building vllm needs nvcc" in b for b in made.build_blockers)


def test_macos_builds_with_target_device_empty(tmp_path: Path, cat: Catalog) -> None:
    loaded, found = vllm_project(tmp_path)
    mac = machine.Machine(system="macos", source="test")
    made = planned(loaded, found, cat, target=mac)
    assert env_of(made)["VLLM_TARGET_DEVICE"].value == "empty"
    assert any("Linux only" in w for w in made.warnings)
    linux = planned(loaded, found, cat)
    assert "VLLM_TARGET_DEVICE" not in env_of(linux)


def test_doctor_finds_missing_compiled_ops_of_an_editable_vllm() -> None:
    broken = {
        "packages": {"vllm": "0.11.2.dev278+gdbc3d9991.precompiled"},
        "vllm_editable": True,
        "vllm_ops_import": "ImportError: vllm/_C.abi3.so: undefined symbol: _ZN3c104cuda9SetDevice",
    }
    [finding] = doctor.vllm_findings(broken)
    assert finding.severity == ERROR
    assert "editable, from a checkout" in finding.title
    assert "reinstall-package vllm" in finding.fix
    assert "vllm-build" in finding.fix
    [good] = doctor.vllm_findings({**broken, "vllm_ops_import": "ok"})
    assert good.severity == OK
    assert doctor.vllm_findings({"packages": {}}) == []


def test_doctor_probe_reports_the_compiled_ops_of_an_editable_vllm(tmp_path: Path) -> None:
    """The real probe script, in a real environment whose vllm is an editable stand-in without vllm._C."""
    import sys  # noqa: PLC0415 - only this test
    import venv  # noqa: PLC0415 - only this test

    from uvx_llm import interpreter  # noqa: PLC0415 - only this test

    venv.EnvBuilder(with_pip=False).create(tmp_path / "env")
    python = interpreter.interpreter_in(tmp_path / "env")
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    site = tmp_path / "env" / "lib" / version / "site-packages"
    checkout = tmp_path / "checkout"
    (checkout / "vllm").mkdir(parents=True)
    (checkout / "vllm" / "__init__.py").write_text("", encoding="utf-8")
    (site / "_vllm_editable.pth").write_text(f"{checkout}\n", encoding="utf-8")
    info = site / "vllm-0.99.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vllm\nVersion: 0.99.0\n", encoding="utf-8")
    (info / "direct_url.json").write_text(
        json.dumps({"url": f"file://{checkout}", "dir_info": {"editable": True}}), encoding="utf-8"
    )
    found = interpreter.probe(python, timeout=60)
    assert found.facts["vllm_editable"] is True
    assert found.facts["vllm_ops_import"].startswith("ModuleNotFoundError")
    [finding] = doctor.vllm_findings(found.facts)
    assert (finding.severity, finding.title) == (
        ERROR,
        "vllm 0.99.0 (editable, from a checkout) does not load its compiled ops (vllm._C)",
    )


# --- through the real uv: what reaches the checkout's build --------------------------------------


def standin_checkout(root: Path) -> Path:
    """vllm/ as a stand-in checkout: [project] metadata, the recording editable backend, a .git."""
    folder = root / "vllm"
    folder.mkdir()
    (folder / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "vllm_backend"\nbackend-path = ["."]\n\n'
        '[project]\nname = "vllm"\nversion = "0.99.0"\ndependencies = ["torch"]\n',
        encoding="utf-8",
    )
    for backend in ("plain_backend.py", "vllm_backend.py"):
        shutil.copy(STANDINS / backend, folder / backend)
    (folder / "vllm").mkdir()
    (folder / "vllm" / "__init__.py").write_text("", encoding="utf-8")
    fake_git(folder)
    return folder


def records(path: Path) -> list[dict[str, object]]:
    return (
        [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []
    )


def test_precompiled_settings_reach_the_checkouts_build_through_uv(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    root = write_project(tmp_path / "app")
    standin_checkout(root)
    record = tmp_path / "builds.jsonl"
    env = environment(package_index, LLM_SYNC_TEST_RECORD=str(record))
    result = llm_sync(["--cuda", "12.8", "--arch", "9.0"], env=env, cwd=root)
    assert result.returncode == 0, result.stderr
    seen = records(record)
    assert seen
    assert {(r["VLLM_USE_PRECOMPILED"], r["VLLM_PRECOMPILED_WHEEL_COMMIT"]) for r in seen} == {("1", HEAD)}
    assert {r["torch"] for r in seen} == {"2.9.0+cu128"}  # the runtime torch, not its [build-system]'s
    assert {r["MAX_JOBS"] for r in seen} == {None}  # nothing compiles: no tuning
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    assert 'vllm = { path = "vllm", editable = true }' in text
    # Plain uv sees the same settings in the file: nothing to rebuild.
    check = subprocess.run(
        [env["UV"], "sync", "--locked", "--check"],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr


def test_full_build_settings_and_the_launcher_reach_the_checkouts_build_through_uv(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    root = write_project(tmp_path / "app")
    standin_checkout(root)
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "ccache").write_text('#!/bin/sh\nexec "$@"\n', encoding="utf-8")
    (tools / "ccache").chmod(0o755)
    record = tmp_path / "builds.jsonl"
    env = environment(package_index, LLM_SYNC_TEST_RECORD=str(record), LLM_SYNC_VLLM_BUILD="full")
    env["PATH"] = f"{tools}:{env['PATH']}"
    result = llm_sync(["--cuda", "12.8", "--arch", "9.0", "--no-build-check"], env=env, cwd=root)
    assert result.returncode == 0, result.stderr
    [seen, *_] = records(record)
    assert seen["VLLM_USE_PRECOMPILED"] == ""
    assert seen["TORCH_CUDA_ARCH_LIST"] == "9.0"
    assert seen["NVCC_THREADS"] == "1"
    assert seen["MAX_JOBS"] == seen["CMAKE_BUILD_PARALLEL_LEVEL"]
    assert int(str(seen["MAX_JOBS"])) >= 1
    assert {seen[name] for name in vllm_plan.LAUNCHER_VARIABLES} == {"ccache"}
    assert seen["torch"] == "2.9.0+cu128"
