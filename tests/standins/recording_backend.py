"""PEP 517 backend of the stand-in `flash-attn` sdist: records what its build saw.

It imports torch and ninja the way flash-attn's setup.py does (they must come
from [tool.uv.extra-build-dependencies]), appends the build environment as one
JSON line to $LLM_SYNC_TEST_RECORD, and writes a tiny wheel. Standard library only.

$LLM_SYNC_TEST_MODE picks what the build does besides:
- "nvcc": compile tiny CUDA kernels with the real nvcc, driven by the real ninja
  (-j MAX_JOBS, one -gencode per FLASH_ATTN_CUDA_ARCHS entry), as flash-attn does;
- "oom": with MAX_JOBS above 1, a "compiler" is killed with SIGKILL, as the OOM
  killer does, and the build fails; with MAX_JOBS=1 it succeeds;
- "steps": print what torch's extension builder and ninja print (``Compiling objects...``,
  then ``[N/3] nvcc ...`` a step at a time), without compiling.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path


def _own_name() -> tuple[str, str]:
    """The sdist's name and version from its PKG-INFO (the build runs in the unpacked sdist)."""
    fields = dict(
        line.split(": ", 1)
        for line in Path("PKG-INFO").read_text(encoding="utf-8").splitlines()
        if ": " in line
    )
    return fields.get("Name", "flash-attn"), fields.get("Version", "9.9.9")


PROJECT, VERSION = _own_name() if Path("PKG-INFO").exists() else ("flash-attn", "9.9.9")
NAME = PROJECT.replace("-", "_")
DIST_INFO = f"{NAME}-{VERSION}.dist-info"
KEYS = (
    "MAX_JOBS",
    "NVCC_THREADS",
    "FLASH_ATTN_CUDA_ARCHS",
    "TORCH_CUDA_ARCH_LIST",
    "CMAKE_BUILD_PARALLEL_LEVEL",
    "NVTE_CUDA_ARCHS",
    "NVTE_FRAMEWORK",
    "FLASH_ATTENTION_DISABLE_SM80",
    "DS_BUILD_OPS",
    "DS_ENABLE_NINJA",
)
METADATA = f"Metadata-Version: 2.1\nName: {PROJECT}\nVersion: {VERSION}\nRequires-Dist: torch\n"


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
    jit = PROJECT == "deepspeed" and not any(
        k.startswith("DS_BUILD_") and v == "1" for k, v in os.environ.items()
    )  # deepspeed's setup.py imports torch only if present, and compiles nothing by default
    if not jit:
        importlib.import_module("ninja")  # a build need, as in flash-attn's setup.py
    torch = importlib.import_module("torch") if not jit else None
    record = os.environ.get("LLM_SYNC_TEST_RECORD")
    if record:
        seen: dict[str, object] = {key: os.environ.get(key) for key in KEYS}
        seen["package"] = PROJECT
        seen["torch"] = torch.__version__ if torch is not None else None
        seen["config_settings"] = config_settings or {}
        with Path(record).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(seen) + "\n")
    mode = os.environ.get("LLM_SYNC_TEST_MODE", "")
    if mode == "nvcc":
        _compile_kernels()
    elif mode == "steps":
        print("Compiling objects...", flush=True)
        for step in range(1, 4):
            time.sleep(0.3)
            print(f"[{step}/3] nvcc -c csrc/kernel{step}.cu -o build/kernel{step}.o", flush=True)
    elif mode == "oom" and int(os.environ.get("MAX_JOBS", "1")) > 1:
        killed = subprocess.run(["sh", "-c", "kill -9 $$"], check=False)
        print(
            f"cc1plus: fatal error: Killed signal terminated program cc1plus ({killed.returncode})",
            file=sys.stderr,
        )
        print("error: command '/usr/bin/nvcc' failed with exit code 1", file=sys.stderr)
        raise SystemExit(1)
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


KERNEL = """
__global__ void scale{n}(float* x, float a, int size) {{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < size) x[i] *= a + {n};
}}
"""


def _compile_kernels(count: int = 4) -> None:
    build = Path("build-standin")
    build.mkdir(exist_ok=True)
    archs = os.environ.get("FLASH_ATTN_CUDA_ARCHS", "90").split(";")
    gencode = " ".join(f"-gencode arch=compute_{a},code=sm_{a}" for a in archs)
    threads = os.environ.get("NVCC_THREADS", "1")
    rules = [f"rule nvcc\n  command = nvcc -c $in -o $out {gencode} --threads {threads}\n"]
    for n in range(count):
        (build / f"kernel{n}.cu").write_text(KERNEL.format(n=n), encoding="utf-8")
        rules.append(f"build kernel{n}.o: nvcc kernel{n}.cu\n")
    (build / "build.ninja").write_text("\n".join(rules), encoding="utf-8")
    ninja = shutil.which("ninja") or "ninja"
    jobs = os.environ.get("MAX_JOBS", "1")
    subprocess.run([ninja, "-C", str(build), "-j", jobs], check=True)
