"""PEP 517 backend of the stand-in vLLM checkout: plain_backend's wheel and editable builds,
recording the build environment as one JSON line in $LLM_SYNC_TEST_RECORD.

It imports torch first, as vLLM's setup.py does in every mode (it must come from
[tool.uv.extra-build-dependencies]). The checkout holds plain_backend.py beside it.
Standard library only.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

plain = importlib.import_module("plain_backend")
KEYS = (
    "VLLM_USE_PRECOMPILED",
    "VLLM_PRECOMPILED_WHEEL_COMMIT",
    "VLLM_TARGET_DEVICE",
    "MAX_JOBS",
    "NVCC_THREADS",
    "TORCH_CUDA_ARCH_LIST",
    "CMAKE_BUILD_PARALLEL_LEVEL",
    "CMAKE_C_COMPILER_LAUNCHER",
    "CMAKE_CXX_COMPILER_LAUNCHER",
    "CMAKE_CUDA_COMPILER_LAUNCHER",
)


def _record(hook: str) -> None:
    torch = importlib.import_module("torch")
    record = os.environ.get("LLM_SYNC_TEST_RECORD")
    if record:
        seen: dict[str, object] = {key: os.environ.get(key) for key in KEYS}
        seen["torch"] = torch.__version__
        seen["hook"] = hook
        with Path(record).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(seen) + "\n")


def get_requires_for_build_wheel(config_settings: dict[str, str] | None = None) -> list[str]:
    del config_settings
    return []


get_requires_for_build_editable = get_requires_for_build_wheel


def build_wheel(
    wheel_directory: str, config_settings: dict[str, str] | None = None, metadata_directory: str | None = None
) -> str:
    _record("build_wheel")
    name: str = plain.build_wheel(wheel_directory, config_settings, metadata_directory)
    return name


def build_editable(
    wheel_directory: str, config_settings: dict[str, str] | None = None, metadata_directory: str | None = None
) -> str:
    _record("build_editable")
    name: str = plain.build_editable(wheel_directory, config_settings, metadata_directory)
    return name
