from __future__ import annotations

import base64
import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from helpers import STANDINS, applied, environment, installed_version, llm_sync, make, simple, write_project
from pkgindex import PackageIndex, serve

from uvx_llm import actions, config, plan
from uvx_llm.errors import LlmSyncError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from uvx_llm.catalog import Catalog


def indexes(cat: Catalog, **values: str) -> config.Indexes:
    cli = {key.replace("_", "-"): value for key, value in values.items()}
    resolved = config.resolve(
        cli=cli, env={}, project_table={}, user_table={}, user_path=Path("/u"), catalog=cat
    )
    return config.indexes(resolved, cat)


def test_presets(cat: Catalog) -> None:
    nju = indexes(cat, mirror="nju")
    assert nju.torch_base.value == "https://mirrors.nju.edu.cn/pytorch/whl"
    assert nju.torch_format == "simple"
    assert nju.default_index is None
    aliyun = indexes(cat, mirror="aliyun")
    assert aliyun.torch_format == "flat"
    assert aliyun.default_index is not None
    assert aliyun.default_index.value == "https://mirrors.aliyun.com/pypi/simple"
    tuna = indexes(cat, mirror="tuna")
    assert tuna.torch_base.value == "https://download.pytorch.org/whl"  # tuna mirrors PyPI only


def test_explicit_urls_win_over_a_preset(cat: Catalog) -> None:
    chosen = indexes(
        cat,
        mirror="aliyun",
        torch_index_url="https://own.example/whl",
        default_index_url="https://pypi.own.example/simple",
    )
    assert chosen.torch_base.value == "https://own.example/whl"
    assert chosen.torch_format == "simple"
    assert chosen.default_index is not None
    assert chosen.default_index.value == "https://pypi.own.example/simple"


def test_a_mirror_url_is_the_pytorch_base(cat: Catalog) -> None:
    assert (
        indexes(cat, mirror="https://mirror.example/pytorch/whl/").torch_base.value
        == "https://mirror.example/pytorch/whl"
    )


def test_unknown_preset(cat: Catalog) -> None:
    with pytest.raises(LlmSyncError) as caught:
        indexes(cat, mirror="tsinghua")
    assert "tuna, nju, aliyun" in caught.value.why


def test_flat_mirror_is_written_with_format_flat(cat: Catalog) -> None:
    request = actions.Request(
        index_base=config.Setting("https://mirrors.aliyun.com/pytorch-wheels", "mirror aliyun"),
        index_format="flat",
    )
    made = plan.make(machine=make.__globals__["H200"], project=simple("torch"), catalog=cat, request=request)
    after = applied(simple("torch"), made)
    assert {
        "name": "pytorch-cu130",
        "url": "https://mirrors.aliyun.com/pytorch-wheels/cu130",
        "explicit": True,
        "format": "flat",
    } in after.uv_indexes


def test_credentials_go_to_uvs_environment_not_the_file(cat: Catalog) -> None:
    request = actions.Request(
        index_base=config.Setting("https://me:s3cret@mirror.example/whl", "--torch-index-url")
    )
    made = plan.make(machine=make.__globals__["H200"], project=simple("torch"), catalog=cat, request=request)
    text = applied(simple("torch"), made).text
    assert "s3cret" not in text
    assert 'url = "https://mirror.example/whl/cu130"' in text
    env = made.uv_environment()
    assert env["UV_INDEX_PYTORCH_CU130_USERNAME"] == "me"
    assert env["UV_INDEX_PYTORCH_CU130_PASSWORD"] == "s3cret"  # noqa: S105 - the test's own stand-in
    assert all(s.shown == "***" for s in made.env if "PYTORCH" in s.name)


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    """A PyTorch wheel mirror serving flat listings behind basic auth, and a PyPI stand-in."""
    index = PackageIndex(tmp_path_factory.mktemp("mirror"))
    for variant in ("cu128", "cpu"):
        index.add(f"/pytorch-wheels/{variant}", "torch", f"2.9.0+{variant}")
        index.flat.add(f"/pytorch-wheels/{variant}")
    index.add("/simple", "vllm", "0.11.2", requires=["torch==2.9.0"])
    for need in ("ninja", "packaging", "psutil"):
        index.add("/simple", need, "1.0")
    index.add_sdist("/simple", "flash-attn", "9.9.9", backend=STANDINS / "recording_backend.py")
    index.credentials["/pytorch-wheels"] = "Basic " + base64.b64encode(b"team:hunter2").decode()
    with contextlib.contextmanager(serve)(index) as served:
        yield served


@pytest.mark.uv
def test_a_flat_mirror_with_credentials_through_the_real_uv(mirror: PackageIndex, tmp_path: Path) -> None:
    project = write_project(tmp_path / "app", "vllm==0.11.2")
    env = environment(mirror)
    env["LLM_SYNC_TORCH_INDEX_URL"] = mirror.url("/pytorch-wheels").replace("http://", "http://team:hunter2@")
    env["LLM_SYNC_TORCH_INDEX_FORMAT"] = "flat"
    shown = llm_sync(["plan", "--json", "--cuda", "12.8", "--arch", "9.0"], env=env, cwd=project)
    assert shown.returncode == 0, shown.stderr
    assert "hunter2" not in shown.stdout + shown.stderr
    hidden = json.loads(shown.stdout)["uv"]["environment"]["UV_INDEX_PYTORCH_CU128_PASSWORD"]
    assert hidden == "***"

    result = llm_sync(["--cuda", "12.8", "--arch", "9.0"], env=env, cwd=project)
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout + result.stderr
    assert installed_version(project, "torch") == "2.9.0+cu128"  # through the flat listing, authenticated
    text = (project / "pyproject.toml").read_text(encoding="utf-8")
    assert "hunter2" not in text
    assert 'format = "flat"' in text
    assert "hunter2" not in (project / "uv.lock").read_text(encoding="utf-8")


@pytest.mark.uv
def test_wrong_credentials_fail_in_uv_and_stay_hidden(mirror: PackageIndex, tmp_path: Path) -> None:
    project = write_project(tmp_path / "app", "vllm==0.11.2")
    env = environment(mirror)
    env["LLM_SYNC_TORCH_INDEX_URL"] = mirror.url("/pytorch-wheels").replace(
        "http://", "http://team:wrong-pass@"
    )
    env["LLM_SYNC_TORCH_INDEX_FORMAT"] = "flat"
    result = llm_sync(["--cuda", "12.8", "--arch", "9.0"], env=env, cwd=project)
    assert result.returncode != 0
    assert "wrong-pass" not in result.stdout + result.stderr


@pytest.mark.uv
def test_a_flat_mirror_builds_flash_attn_against_the_locked_torch(
    mirror: PackageIndex, tmp_path: Path
) -> None:
    """uv looks up a match-runtime build dependency as if every index were PEP 503 (a flat
    mirror answers 404): on a flat mirror the build's torch is pinned to the locked one."""
    project = write_project(tmp_path / "app", "flash-attn")
    record = tmp_path / "builds.jsonl"
    env = environment(mirror, LLM_SYNC_TEST_RECORD=str(record))
    env["LLM_SYNC_TORCH_INDEX_URL"] = mirror.url("/pytorch-wheels").replace("http://", "http://team:hunter2@")
    env["LLM_SYNC_TORCH_INDEX_FORMAT"] = "flat"
    result = llm_sync(["--cuda", "12.8", "--arch", "9.0", "--no-build-check"], env=env, cwd=project)
    assert result.returncode == 0, result.stderr
    [built] = [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]
    assert built["torch"] == "2.9.0+cu128"
    text = (project / "pyproject.toml").read_text(encoding="utf-8")
    assert '"torch==2.9.0+cu128"' in text
    assert "match-runtime" not in text
    again = llm_sync(["check"], env=env, cwd=project)
    assert again.returncode == 0, again.stderr
