"""Asking the project's interpreter about itself: a small script run in a subprocess
(standard library and torch only, one JSON line out; it reads CUDA's, ROCm's and Intel's
device-hiding variables and torch's CUDA, HIP and xpu facts; of installed packages it imports only
flash_attn and vllm._C, to see that their compiled parts load), and where that interpreter is.

The environment is never imported into llm-sync's own process: a broken torch, a
hanging import or another Python version stay on the other side of the pipe.
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from uvx_llm import proc

if TYPE_CHECKING:
    from collections.abc import Mapping

PACKAGES = (
    "flash-attn",
    "vllm",
    "verl",
    "openrlhf",
    "deepspeed",
    "transformers",
    "tensordict",
    "ray",
    "triton",
    "torchvision",
    "torchaudio",
)

# Runs inside the project's interpreter: standard library and torch only, one JSON line out.
PROBE = r"""
import json, os, sys, importlib.metadata as md
out = {
    "python": sys.version.split()[0],
    "packages": {},
    "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    # ROCm: HIP and the ROCr runtime each hide GPUs by these; Intel's Level Zero by the last.
    "hip_visible_devices": os.environ.get("HIP_VISIBLE_DEVICES"),
    "rocr_visible_devices": os.environ.get("ROCR_VISIBLE_DEVICES"),
    "ze_affinity_mask": os.environ.get("ZE_AFFINITY_MASK"),
}
for name in %(packages)r:
    try:
        out["packages"][name] = md.version(name)
    except md.PackageNotFoundError:
        pass
# What every installed distribution requires of torch (vllm, torchvision, xformers pin it
# exactly), and the values its markers are evaluated with: compared outside, with packaging.
import platform, re
wants_torch = re.compile(r"^\s*torch\s*(?:[<>=!~(\[;@]|$)", re.IGNORECASE)
out["torch_requirements"] = {}
for dist in md.distributions():
    try:  # a broken install's metadata must not cost the whole answer
        wanted = [r for r in (dist.requires or []) if wants_torch.match(r)]
        name = dist.metadata["Name"]
    except Exception:
        continue
    if wanted and name and name not in out["torch_requirements"]:  # the first on sys.path wins
        out["torch_requirements"][name] = {"version": dist.version, "requires": wanted}
out["markers"] = {
    "implementation_name": sys.implementation.name,
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_python_implementation": platform.python_implementation(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "python_full_version": platform.python_version(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}
def arch_list(torch):
    # torch.cuda.get_arch_list() answers [] whenever CUDA is unavailable (for instance
    # CUDA_VISIBLE_DEVICES=""); the flags compiled into the build answer regardless.
    # A ROCm build answers through the same calls, with gfx names (its PYTORCH_ROCM_ARCH).
    if not (torch.version.cuda or getattr(torch.version, "hip", None)):
        return []
    flags = getattr(torch._C, "_cuda_getArchFlags", None)
    built = flags() if flags else None
    return built.split() if built else list(torch.cuda.get_arch_list())
def nccl_version(torch):
    try:
        found = torch.cuda.nccl.version()
    except Exception:
        return None
    return ".".join(map(str, found)) if isinstance(found, tuple) else str(found)
def xpu_facts(torch):
    # torch.xpu exists from torch 2.4 on, in every build; is_available() is True only in an
    # xpu build that finds an Intel GPU through Level Zero.
    xpu = getattr(torch, "xpu", None)
    if xpu is None or not hasattr(xpu, "is_available"):
        return {}
    try:
        available = bool(xpu.is_available())
        return {"xpu_available": available, "xpu_device_count": xpu.device_count() if available else 0}
    except Exception as error:
        return {"xpu_available": False, "xpu_error": f"{type(error).__name__}: {error}"}
try:
    import torch
    hip = getattr(torch.version, "hip", None)
    out["torch"] = {
        "version": torch.__version__,
        "cuda": torch.version.cuda,
        "hip": hip,
        "xpu": getattr(torch.version, "xpu", None),
        "cuda_available": bool(torch.cuda.is_available()),
        "device_count": torch.cuda.device_count() if torch.version.cuda or hip else 0,
        "arch_list": arch_list(torch),
        "cxx11_abi": bool(torch._C._GLIBCXX_USE_CXX11_ABI),
        "nccl": nccl_version(torch) if torch.version.cuda else None,
        **xpu_facts(torch),
    }
except Exception as error:
    out["torch_error"] = f"{type(error).__name__}: {error}"
if "flash-attn" in out["packages"]:
    try:
        import flash_attn  # noqa
        out["flash_attn_import"] = "ok"
    except Exception as error:
        out["flash_attn_import"] = f"{type(error).__name__}: {error}"
if "vllm" in out["packages"]:
    # An editable vLLM from a checkout: are its compiled ops there, and do they load with this torch?
    try:
        direct = json.loads(md.distribution("vllm").read_text("direct_url.json") or "{}")
        out["vllm_editable"] = bool(direct.get("dir_info", {}).get("editable"))
    except Exception:
        out["vllm_editable"] = False
    try:
        import importlib
        importlib.import_module("vllm._C")
        out["vllm_ops_import"] = "ok"
    except Exception as error:
        out["vllm_ops_import"] = f"{type(error).__name__}: {error}"
print(json.dumps(out))
"""


@dataclass(frozen=True)
class Environment:
    """What the project's interpreter reported, or why it could not."""

    interpreter: str
    facts: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None
    fix: str = "check the environment with `uv sync`, or point doctor at another one with --python"


def probe(interpreter: Path, *, timeout: float) -> Environment:
    script = PROBE % {"packages": PACKAGES}
    # Never the project's code: -I keeps the current folder, PYTHON* variables and the
    # user's site-packages off sys.path, and an empty folder as cwd leaves nothing to
    # find even for an interpreter that put "" first (a json.py, a sitecustomize.py).
    with tempfile.TemporaryDirectory(prefix="llm-sync-probe-") as neutral:
        result = proc.run([str(interpreter), "-I", "-c", script], cwd=Path(neutral), timeout=timeout)
    if result.timed_out:
        return Environment(
            str(interpreter),
            problem=f"did not answer within {timeout:g} s (hanging import?)",
            fix="importing torch can take tens of seconds on a cold network disk: raise --timeout; "
            "if it still hangs, run the interpreter with `-X importtime -c 'import torch'` to find the import",
        )
    if result.failure is not None:
        return Environment(str(interpreter), problem=f"cannot be run: {result.failure}")
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or [
            f"exit code {result.returncode}"
        ]
        return Environment(str(interpreter), problem=f"failed: {tail[0]}")
    try:
        return Environment(str(interpreter), facts=json.loads(lines[-1]))
    except json.JSONDecodeError:
        return Environment(str(interpreter), problem="printed something that is not the probe's answer")


def project_environment(project_root: Path, env: Mapping[str, str]) -> Path:
    """Where `uv sync` puts the project's environment: UV_PROJECT_ENVIRONMENT, else .venv."""
    chosen = env.get("UV_PROJECT_ENVIRONMENT")
    return project_root / chosen if chosen else project_root / ".venv"


def interpreter_in(environment: Path) -> Path:
    return environment / ("Scripts" if sys.platform == "win32" else "bin") / "python"


def interpreter_of(project_root: Path | None, given: Path | None, env: Mapping[str, str]) -> Path | None:
    if given is not None:
        return given
    if project_root is None:
        return None
    candidate = interpreter_in(project_environment(project_root, env))
    return candidate if candidate.exists() else None


def is_in(interpreter: Path, environment: Path) -> bool:
    """Whether the interpreter is the environment's (by path: a venv's python is a symlink)."""
    return interpreter.absolute().parent.parent == environment.absolute()
