"""The CUDA toolkit a source build would use: nvcc and CUDA_HOME, found as
torch.utils.cpp_extension finds them (CUDA_HOME or CUDA_PATH, then nvcc on PATH,
then /usr/local/cuda)."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from uvx_llm import proc
from uvx_llm.catalog import Pair, show_pair

if TYPE_CHECKING:
    from collections.abc import Mapping

_RELEASE = re.compile(r"release (\d+)\.(\d+)")
DEFAULT_CUDA_HOME = Path("/usr/local/cuda")


@dataclass(frozen=True)
class Toolkit:
    nvcc: Path | None
    cuda_home: Path | None
    version: Pair | None
    how_found: str

    def describe(self) -> str:
        if self.nvcc is None:
            return f"no nvcc ({self.how_found})"
        version = show_pair(self.version) if self.version else "unknown version"
        return f"nvcc {version} at {self.nvcc} (CUDA_HOME {self.cuda_home}, {self.how_found})"


def nvcc_version(nvcc: Path) -> Pair | None:
    try:
        result = proc.run([str(nvcc), "--version"], timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _RELEASE.search(result.stdout)
    return (int(match.group(1)), int(match.group(2))) if match else None


def find(env: Mapping[str, str], *, default_home: Path = DEFAULT_CUDA_HOME) -> Toolkit:
    for variable in ("CUDA_HOME", "CUDA_PATH"):
        if env.get(variable):
            home = Path(env[variable])
            nvcc = home / "bin" / "nvcc"
            if nvcc.is_file():
                return Toolkit(nvcc, home, nvcc_version(nvcc), f"from {variable}")
            return Toolkit(None, home, None, f"{variable}={home} has no bin/nvcc")
    on_path = shutil.which("nvcc", path=env.get("PATH"))
    if on_path:
        nvcc = Path(on_path).resolve()
        return Toolkit(Path(on_path), nvcc.parent.parent, nvcc_version(nvcc), "nvcc on PATH")
    nvcc = default_home / "bin" / "nvcc"
    if nvcc.is_file():
        return Toolkit(nvcc, default_home, nvcc_version(nvcc), f"{default_home}")
    return Toolkit(None, None, None, f"not on PATH, no CUDA_HOME, no {default_home}")
