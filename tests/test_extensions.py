"""The catalog's other CUDA extensions (issue 17, item 5): each row's settings reach the build
through the real uv (the recording stand-in sdist records its environment), jit and unknown lines."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from helpers import environment, llm_sync, make_compiler, make_toolkit, write_project

if TYPE_CHECKING:
    from pathlib import Path

    from pkgindex import PackageIndex

pytestmark = pytest.mark.uv


def records(path: Path) -> dict[str, dict[str, object]]:
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return {str(r["package"]): r for r in map(json.loads, lines)}


def add_table(project: Path, text: str) -> None:
    with (project / "pyproject.toml").open("a", encoding="utf-8") as handle:
        handle.write(text)


def sync(project: Path, index: PackageIndex, record: Path, *args: str) -> str:
    env = environment(index, LLM_SYNC_TEST_RECORD=str(record))
    result = llm_sync(["-v", "--cuda", "12.8", "--no-build-check", *args], env=env, cwd=project)
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_transformer_engine_gets_its_framework_and_architectures(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "app", "transformer-engine-torch")
    record = tmp_path / "builds.jsonl"
    sync(project, package_index, record, "--arch", "9.0")
    seen = records(record)["transformer-engine-torch"]
    assert seen["NVTE_CUDA_ARCHS"] == "90"
    assert seen["NVTE_FRAMEWORK"] == "pytorch"
    assert seen["TORCH_CUDA_ARCH_LIST"] == "9.0"
    assert seen["MAX_JOBS"] is not None
    text = (project / "pyproject.toml").read_text(encoding="utf-8")
    assert "nvidia-cudnn-frontend>=1.29.0" in text  # a build need its setup.py reads


def test_flash_attention_3_drops_sm80_kernels_for_a_hopper_only_team(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "app", "flash-attn-3")
    record = tmp_path / "builds.jsonl"
    said = sync(project, package_index, record, "--arch", "9.0")
    seen = records(record)["flash-attn-3"]
    assert seen["FLASH_ATTENTION_DISABLE_SM80"] == "TRUE"
    assert seen["NVCC_THREADS"] == "1"
    assert "flash-attn-3: its own architecture list" in said


def test_mamba_keeps_its_hard_coded_architectures_and_gets_max_jobs(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "app", "mamba-ssm")
    record = tmp_path / "builds.jsonl"
    said = sync(project, package_index, record, "--arch", "9.0")
    assert records(record)["mamba-ssm"]["MAX_JOBS"] is not None
    assert "mamba-ssm: its own architecture list" in said
    assert "hard-codes -gencode" in said


def test_deepspeed_is_jit_unless_the_project_builds_ops_ahead(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "app", "deepspeed")
    record = tmp_path / "builds.jsonl"
    said = sync(project, package_index, record, "--arch", "9.0")
    assert "none for deepspeed: JIT" in said
    assert "extra-build-variables" not in (project / "pyproject.toml").read_text(encoding="utf-8")
    assert "DS_BUILD_OPS" not in json.dumps(records(record).get("deepspeed", {}).get("DS_BUILD_OPS"))

    ahead = write_project(tmp_path / "ahead", "deepspeed")
    add_table(ahead, '\n[tool.uv.extra-build-variables]\ndeepspeed = { DS_BUILD_FUSED_ADAM = "1" }\n')
    record = tmp_path / "ahead.jsonl"
    sync(ahead, package_index, record, "--arch", "8.0")
    seen = records(record)["deepspeed"]
    assert seen["DS_ENABLE_NINJA"] == "1"  # pre-built ops use ninja (and MAX_JOBS) only with it
    assert seen["TORCH_CUDA_ARCH_LIST"] == "8.0"
    assert seen["MAX_JOBS"] is not None


def test_an_unknown_cpp_extension_gets_max_jobs_and_the_arch_list(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "app", "my-cuda-ext", "torch")
    add_table(
        project,
        '\n[tool.uv.extra-build-dependencies]\nmy-cuda-ext = [{ requirement = "torch", match-runtime = true }, "ninja"]\n',
    )
    record = tmp_path / "builds.jsonl"
    said = sync(project, package_index, record, "--arch", "9.0")
    assert "my-cuda-ext: unknown: defaults kept" in said
    seen = records(record)["my-cuda-ext"]
    assert seen["TORCH_CUDA_ARCH_LIST"] == "9.0"
    assert seen["MAX_JOBS"] is not None


def test_transformer_engine_without_cudnn_headers_is_refused_before_building(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "app", "transformer-engine-torch")
    before = (project / "pyproject.toml").read_bytes()
    home = make_toolkit(tmp_path / "cuda", release="12.8", header_line=None)
    gcc = make_compiler(tmp_path / "gcc", "gcc", "gcc (GCC) 11.4.0")
    env = environment(package_index, CUDA_HOME=str(home), CC=str(gcc))
    refused = llm_sync(["--cuda", "12.8", "--arch", "9.0"], env=env, cwd=project)
    assert refused.returncode == 2, refused.stderr
    assert "cudnn.h" in refused.stderr
    assert (project / "pyproject.toml").read_bytes() == before

    (home / "include").mkdir(exist_ok=True)
    (home / "include" / "cudnn.h").write_text("/* cuDNN */\n", encoding="utf-8")
    plan = llm_sync(["plan", "--cuda", "12.8", "--arch", "9.0"], env=env, cwd=project)
    assert "cudnn.h" not in plan.stdout + plan.stderr
