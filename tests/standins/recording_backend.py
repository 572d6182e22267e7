"""PEP 517 backend of the stand-in `flash-attn` sdist: records what its build saw.

It imports torch and ninja the way flash-attn's setup.py does (they must come
from [tool.uv.extra-build-dependencies]), appends the build environment as one
JSON line to $LLM_SYNC_TEST_RECORD, and writes a tiny wheel. Standard library only.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import os
import zipfile
from pathlib import Path

NAME, VERSION = "flash_attn", "9.9.9"
DIST_INFO = f"{NAME}-{VERSION}.dist-info"
KEYS = (
    "MAX_JOBS",
    "NVCC_THREADS",
    "FLASH_ATTN_CUDA_ARCHS",
    "TORCH_CUDA_ARCH_LIST",
    "CMAKE_BUILD_PARALLEL_LEVEL",
)
METADATA = f"Metadata-Version: 2.1\nName: flash-attn\nVersion: {VERSION}\nRequires-Dist: torch\n"


def get_requires_for_build_wheel(config_settings: dict[str, str] | None = None) -> list[str]:
    del config_settings
    return []


def prepare_metadata_for_build_wheel(
    metadata_directory: str, config_settings: dict[str, str] | None = None
) -> str:
    del config_settings
    folder = Path(metadata_directory) / DIST_INFO
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "METADATA").write_text(METADATA, encoding="utf-8")
    return DIST_INFO


def _hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(
    wheel_directory: str, config_settings: dict[str, str] | None = None, metadata_directory: str | None = None
) -> str:
    del metadata_directory
    importlib.import_module("ninja")  # a build need, as in flash-attn's setup.py
    torch = importlib.import_module("torch")
    record = os.environ.get("LLM_SYNC_TEST_RECORD")
    if record:
        seen: dict[str, object] = {key: os.environ.get(key) for key in KEYS}
        seen["torch"] = torch.__version__
        seen["config_settings"] = config_settings or {}
        with Path(record).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(seen) + "\n")
    files = {
        f"{NAME}/__init__.py": f"__version__ = {VERSION!r}\n",
        f"{DIST_INFO}/METADATA": METADATA,
        f"{DIST_INFO}/WHEEL": "Wheel-Version: 1.0\nGenerator: standin\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    lines = [f"{path},{_hash(text.encode())},{len(text.encode())}" for path, text in files.items()]
    files[f"{DIST_INFO}/RECORD"] = "\n".join([*lines, f"{DIST_INFO}/RECORD,,"]) + "\n"
    filename = f"{NAME}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(Path(wheel_directory) / filename, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return filename
