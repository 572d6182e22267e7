"""The compatibility suite's stand-in PyTorch index and lock reading, offline.

The metadata below is recorded from PyPI (headers only, trimmed to the lines that
matter): torch 2.9.0's manylinux wheel, and torchvision 0.24.0's, which pins it.
"""

from __future__ import annotations

import json
import sys
import urllib.request
import zipfile
from pathlib import Path

import tomllib
from packaging.specifiers import SpecifierSet
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks" / "compat"))

import compat_index  # noqa: E402
import compat_lock  # noqa: E402

TORCH_290 = """Metadata-Version: 2.4
Name: torch
Version: 2.9.0
Requires-Python: >=3.10
Requires-Dist: filelock
Requires-Dist: typing-extensions>=4.10.0
Requires-Dist: nvidia-cuda-runtime-cu12==12.8.90; platform_system == "Linux"
Requires-Dist: triton==3.5.0; platform_system == "Linux"
Provides-Extra: opt-einsum

Long description that the stand-in does not need.
"""
TORCHVISION_0240 = """Metadata-Version: 2.1
Name: torchvision
Version: 0.24.0
Requires-Python: >=3.10
Requires-Dist: numpy
Requires-Dist: torch==2.9.0
"""
LISTING = {
    "torch": [
        "torch-2.9.0-cp312-cp312-manylinux_2_28_x86_64.whl",
        "torch-2.9.0-cp312-cp312-manylinux_2_28_aarch64.whl",
        "torch-2.9.0-cp312-cp312-win_amd64.whl",
        "torch-2.9.0-cp312-none-macosx_11_0_arm64.whl",
        "torch-2.3.1-cp312-cp312-manylinux1_x86_64.whl",  # older than the catalog: not served
        "torch-2.10.0.dev20250101-cp312-cp312-manylinux_2_28_x86_64.whl",  # pre-release: not served
    ],
    "torchvision": ["torchvision-0.24.0-cp312-cp312-manylinux_2_28_x86_64.whl"],
    "torchaudio": [],
}
RECORDED = {"torch": TORCH_290, "torchvision": TORCHVISION_0240}
CATALOG = {"2.9": ["cu126", "cu128", "cu130"]}


def files(project: str) -> list[compat_index.WheelFile]:
    return [
        compat_index.WheelFile(name, f"https://example.invalid/{name}", has_metadata=True)
        for name in LISTING[project]
    ]


def metadata(wheel: compat_index.WheelFile) -> str:
    return RECORDED[wheel.filename.split("-", 1)[0]]


def test_stand_in_serves_real_metadata_with_local_and_platform_tags(tmp_path: Path) -> None:
    index = compat_index.build_index(tmp_path, CATALOG, files, metadata)
    assert index.served["cu128"] == {"torch": ["2.9.0+cu128"], "torchvision": ["0.24.0+cu128"]}
    assert sorted(index.served["cpu"]["torch"]) == ["2.9.0", "2.9.0+cpu"]
    assert "cu118" not in index.served  # 2.3.1 is older than the catalog
    with compat_index.serve(tmp_path) as base:
        assert base.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{base}/cu130/torch/") as response:  # noqa: S310
            page = response.read().decode()
        assert "torch-2.9.0+cu130-cp312-cp312-manylinux_2_28_x86_64.whl" in page.replace("%2B", "+")
        assert 'data-requires-python="&gt;=3.10"' in page
        assert "data-core-metadata=" in page
        assert "aarch64" not in page
        with urllib.request.urlopen(f"{base}/cpu/torch/") as response:  # noqa: S310
            cpu_page = response.read().decode().replace("%2B", "+")
    assert "torch-2.9.0-cp312-none-macosx_11_0_arm64.whl" in cpu_page
    assert "torch-2.9.0+cpu-cp312-cp312-win_amd64.whl" in cpu_page

    wheel = tmp_path / "whl" / "cu130" / "torch" / "torch-2.9.0+cu130-cp312-cp312-manylinux_2_28_x86_64.whl"
    with zipfile.ZipFile(wheel) as archive:
        meta = archive.read("torch-2.9.0+cu130.dist-info/METADATA").decode()
    assert "Version: 2.9.0+cu130" in meta
    assert "Requires-Dist: nvidia-cuda-runtime-cu12==12.8.90" in meta
    assert "Long description" not in meta
    assert (wheel.parent / f"{wheel.name}.metadata").read_text() == meta
    cpu_meta = (
        tmp_path / "whl" / "cpu" / "torch" / "torch-2.9.0+cpu-cp312-cp312-win_amd64.whl.metadata"
    ).read_text()
    assert "nvidia" not in cpu_meta
    assert "triton" not in cpu_meta
    assert "Requires-Dist: filelock" in cpu_meta
    served = json.loads((tmp_path / "served.json").read_text())
    assert served["cu126"]["torchvision"] == ["0.24.0+cu126"]


def test_torchvision_floor_older_than_the_catalog_is_not_served() -> None:
    lines = ["Requires-Dist: torch>=1.1.0"]
    assert compat_index.releases_served("torchvision", Version("0.3.0"), lines, ["2.9", "2.14"]) == []
    lines = ["Requires-Dist: torch>=2.14.0"]
    assert compat_index.releases_served("torchvision", Version("0.29.1"), lines, ["2.9", "2.14", "2.15"]) == [
        "2.14",
        "2.15",
    ]


def test_plan_range_and_lock_disagreements() -> None:
    plan = {
        "backend": "cu130",
        "decisions": [
            {"topic": "backend", "choice": "cu130", "reason": "sm_100 in its arch list; torch 2.9–2.14"}
        ],
    }
    planned = compat_lock.planned_torch(plan)
    assert planned.specifier == SpecifierSet(">=2.9.0,<2.15.0")
    lock = [
        compat_lock.Locked("torch", "2.15.0+cu130", {"registry": "http://127.0.0.1:1/whl/cu130"}),
        compat_lock.Locked("torch", "2.15.0", {"registry": "http://127.0.0.1:1/whl/cpu"}),
        compat_lock.Locked("vllm", "0.2.5", {"registry": "https://pypi.org/simple"}),
        compat_lock.Locked("vllm", "0.2.5", {"registry": "https://pypi.org/simple"}),
    ]
    catalog = tomllib.loads((ROOT / "uvx_llm" / "catalog.toml").read_text(encoding="utf-8"))
    floors = compat_lock.catalog_floors(catalog)
    assert floors["vllm"] == Version("0.6.0")
    verdict = compat_lock.compare(
        planned,
        lock,
        linux={"torch": "2.15.0+cu130", "vllm": "0.2.5"},
        macos={"torch": "2.15.0"},
        floors=floors,
        checkouts=["verl"],
    )
    assert verdict.disagreements == [
        "Linux torch 2.15.0+cu130 is outside the planned torch 2.9–2.14",
        "macOS torch 2.15.0 is outside the planned torch 2.9–2.14",
        "vllm 0.2.5 is older than the catalog's oldest (0.6.0)",
        "checkout verl/ is not in the lock as an editable source",
    ]
    assert compat_lock.tree_versions("demo v0.1.0\n├── verl[vllm] v0.5.0\n│   └── torch v2.6.0+cu124\n") == {
        "demo": "0.1.0",
        "verl": "0.5.0",
        "torch": "2.6.0+cu124",
    }
