"""The CUDA toolkit a source build would use: nvcc and CUDA_HOME, found as
torch.utils.cpp_extension finds them (CUDA_HOME or CUDA_PATH, then nvcc on PATH,
then /usr/local/cuda); the host compiler nvcc would run, and the newest GCC the
toolkit accepts, read from the toolkit's own crt/host_config.h (nvcc stops with
"unsupported GNU version!" beyond it)."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from uvx_llm import proc
from uvx_llm.catalog import Pair, show_pair
from uvx_llm.rocm_build import HipToolkit, find_hip

if TYPE_CHECKING:
    from collections.abc import Mapping

_RELEASE = re.compile(r"release (\d+)\.(\d+)")
# host_config.h's error for a too new GCC names the limit: "gcc versions later than 15 are ..."
_GCC_LIMIT = re.compile(r"gcc versions later than (\d+)(?:\.(\d+))? are not supported")
# The version after the vendor's parenthesis in `gcc --version` (Ubuntu, Debian, Red Hat, conda)
_GCC_VERSION = re.compile(r"\) (\d+)\.(\d+)")
_TOP = re.compile(r"^#\$ TOP=(.+)$", re.MULTILINE)
_CCBIN = re.compile(r"(?:-ccbin|--compiler-bindir)[= ]\s*(\S+)")
HOST_CONFIG = ("include/crt/host_config.h", "targets/x86_64-linux/include/crt/host_config.h")
DEFAULT_CUDA_HOME = Path("/usr/local/cuda")

GccLimit = tuple[int, int | None]  # (15, None): any 15.x; (12, 2): up to 12.2


@dataclass(frozen=True)
class HostCompiler:
    """The C++ compiler nvcc hands host code to, and what it says it is."""

    command: str
    chosen_by: str
    first_line: str | None  # of `--version`; None when it cannot be run
    gcc: Pair | None  # major.minor when it is GCC (clang and others are not checked)

    def describe(self) -> str:
        return f"{self.first_line or f'{self.command} cannot be run'} ({self.chosen_by})"


@dataclass(frozen=True)
class Toolkit:
    nvcc: Path | None
    cuda_home: Path | None
    version: Pair | None
    how_found: str
    gcc_limit: GccLimit | None = None
    host: HostCompiler | None = None
    headers: frozenset[str] = frozenset()  # of HEADERS, those in cuda_home/include
    hip: HipToolkit | None = None  # hipcc and the HIP headers, for builds against a ROCm torch

    def host_problem(self) -> tuple[str, str] | None:
        """(what, fix) when nvcc would refuse its host compiler before compiling anything."""
        host, limit = self.host, self.gcc_limit
        if host is None or host.gcc is None or limit is None or gcc_supported(host.gcc, limit):
            return None
        nvcc = show_pair(self.version) if self.version else "here"
        wanted = f"gcc-{limit[0]}"
        what = (
            f"gcc {show_pair(host.gcc)} ({host.command}: {host.chosen_by}) is newer than nvcc {nvcc} accepts "
            f"(gcc ≤ {show_limit(limit)}, from its host_config.h): it stops with 'unsupported GNU version!'"
        )
        fix = (
            f"install {wanted} and set CC={wanted} CXX=g++-{limit[0]} (torch passes CC to nvcc), "
            "or use a newer CUDA toolkit"
        )
        return what, fix

    def describe(self) -> str:
        if self.nvcc is None:
            return f"no nvcc ({self.how_found})"
        version = show_pair(self.version) if self.version else "unknown version"
        return f"nvcc {version} at {self.nvcc} (CUDA_HOME {self.cuda_home}, {self.how_found})"


def nvcc_version(nvcc: Path) -> Pair | None:
    result = proc.run([str(nvcc), "--version"], timeout=30)
    if result.failure is not None:
        return None
    match = _RELEASE.search(result.stdout)
    return (int(match.group(1)), int(match.group(2))) if match else None


def show_limit(limit: GccLimit) -> str:
    return f"{limit[0]}" if limit[1] is None else f"{limit[0]}.{limit[1]}"


def gcc_supported(gcc: Pair, limit: GccLimit) -> bool:
    major, minor = limit
    return gcc[0] < major or (gcc[0] == major and (minor is None or gcc[1] <= minor))


def _limit_in(root: Path) -> GccLimit | None:
    for relative in HOST_CONFIG:
        try:
            text = (root / relative).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        match = _GCC_LIMIT.search(text)
        if match:
            return int(match.group(1)), int(match.group(2)) if match.group(2) else None
    return None


def _nvcc_top(nvcc: Path) -> Path | None:
    """The toolkit nvcc really belongs to (a wrapper script on PATH hides it), from its dry run."""
    result = proc.run([str(nvcc), "--dryrun", "-x", "cu", "-c", os.devnull, "-o", os.devnull], timeout=30)
    if result.failure is not None:
        return None
    match = _TOP.search(result.stdout + result.stderr)
    return Path(match.group(1).strip()) if match else None


def gcc_limit(nvcc: Path, cuda_home: Path) -> GccLimit | None:
    """The newest GCC this toolkit's nvcc accepts, as its host_config.h says."""
    found = _limit_in(cuda_home)
    if found is None:
        top = _nvcc_top(nvcc)
        found = _limit_in(top) if top else None
    return found


def _chosen_compiler(env: Mapping[str, str]) -> tuple[str, str]:
    """(command, why): what nvcc runs for host code in a torch extension build."""
    for variable in ("NVCC_PREPEND_FLAGS", "NVCC_APPEND_FLAGS"):
        match = _CCBIN.search(env.get(variable, ""))
        if match:
            given = Path(match.group(1))
            command = str(given / "gcc") if given.is_dir() else str(given)
            return command, f"-ccbin in {variable}"
    if env.get("CC"):
        return env["CC"], "$CC, which torch passes to nvcc as -ccbin"
    return "gcc", "nvcc's default, gcc on PATH"


def host_compiler(env: Mapping[str, str]) -> HostCompiler:
    command, chosen_by = _chosen_compiler(env)
    resolved = shutil.which(command, path=env.get("PATH"))
    if resolved is None:
        return HostCompiler(command, chosen_by, None, None)
    result = proc.run([resolved, "--version"], timeout=15)
    if result.failure is not None:
        return HostCompiler(command, chosen_by, None, None)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        return HostCompiler(command, chosen_by, None, None)
    match = None if "clang" in lines[0].lower() else _GCC_VERSION.search(lines[0])
    gcc = (int(match.group(1)), int(match.group(2))) if match else None
    return HostCompiler(command, chosen_by, lines[0], gcc)


def find(env: Mapping[str, str], *, default_home: Path = DEFAULT_CUDA_HOME) -> Toolkit:
    """The toolkit, and with an nvcc also its GCC limit and the host compiler it would use."""
    found = replace(_find_nvcc(env, default_home=default_home), hip=find_hip(env))
    if found.nvcc is None or found.cuda_home is None:
        return found
    headers = frozenset(h for h in HEADERS if (found.cuda_home / "include" / h).is_file())
    return replace(
        found, gcc_limit=gcc_limit(found.nvcc, found.cuda_home), host=host_compiler(env), headers=headers
    )


# Headers a build includes from the toolkit beside CUDA's own (transformer-engine: cuDNN).
HEADERS = ("cudnn.h",)


def _find_nvcc(env: Mapping[str, str], *, default_home: Path) -> Toolkit:
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
