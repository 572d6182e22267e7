"""doctor's checks for AMD (ROCm) and Intel (xpu) machines and the torch build beside them.

Pure: the machine (accelerators.py detected it), the probe's facts (interpreter.py) and where
hipcc is in, findings out. A ROCm torch answers through torch.cuda (HIP stands in for CUDA) and
names its ROCm release in torch.version.hip; its arch list holds gfx targets. An xpu torch
answers through torch.xpu. docs/doctor.md#amd-and-intel lists every finding.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from uvx_llm.findings import ERROR, OK, WARNING, Finding

if TYPE_CHECKING:
    from uvx_llm.machine import Machine
    from uvx_llm.rocm_build import HipToolkit

# The variables that hide GPUs from a ROCm torch, from the lowest layer up: the ROCr runtime
# first, then HIP (which also honours CUDA_VISIBLE_DEVICES). Probe keys and names.
ROCM_VISIBILITY = (
    ("rocr_visible_devices", "ROCR_VISIBLE_DEVICES"),
    ("hip_visible_devices", "HIP_VISIBLE_DEVICES"),
    ("cuda_visible_devices", "CUDA_VISIBLE_DEVICES"),
)
_RELEASE = re.compile(r"([0-9]{1,3})\.([0-9]{1,3})")
_ROCM_TAG = re.compile(r"\+rocm([0-9]{1,3}\.[0-9]{1,3})")
ROUTE = "run `llm-sync` (on this machine it routes torch to a pytorch-{index} index), then `uv sync`"


def hides_every_gpu(visible: str | None) -> bool:
    """Values with which the runtime sees no device: an invalid first entry ("", "-1", a
    scheduler's "NoDevFiles") ends the list before any GPU. Indices and UUIDs (GPU-…, MIG-…) are valid."""
    if visible is None:
        return False
    first = visible.split(",")[0].strip()
    return not (first.isdigit() or first.startswith(("GPU-", "MIG-")))


def release_of(text: str | None) -> tuple[int, int] | None:
    """ "6.3.42131-fa1d09cbd" (torch.version.hip) or "6.2.4" (/opt/rocm) -> (6, 3)."""
    found = _RELEASE.match(text.strip()) if text else None
    return (int(found[1]), int(found[2])) if found else None


def _show(pair: tuple[int, int]) -> str:
    return f"{pair[0]}.{pair[1]}"


def is_xpu_build(torch: dict[str, Any]) -> bool:
    return bool(torch.get("xpu")) or "+xpu" in str(torch.get("version", ""))


def discrete_intel(machine: Machine) -> bool:
    """What llm-sync routes to the xpu index on its own (an integrated GPU only when asked)."""
    return any(not g.integrated for g in machine.intel)


# --- the machine ----------------------------------------------------------------------------------


def machine_findings(machine: Machine, hip: HipToolkit | None) -> list[Finding]:
    """The AMD GPUs with the ROCm release, the Intel GPUs, and hipcc where there are AMD GPUs."""
    found: list[Finding] = []
    if machine.has_amd:
        rocm = f"ROCm {machine.rocm}" if machine.rocm else "ROCm release unknown"
        where = f"detected by {machine.source}" + (f"; {machine.rocm_source}" if machine.rocm else "")
        found.append(Finding("machine", OK, f"AMD GPU(s), {rocm}", where))
        found += [Finding("machine", OK, gpu.describe()) for gpu in machine.amd]
    found += [Finding("machine", OK, gpu.describe()) for gpu in machine.intel]
    if machine.has_amd and hip is not None:
        found.append(hip_finding(hip))
    return found


def hip_finding(hip: HipToolkit) -> Finding:
    if hip.hipcc is not None and hip.headers:
        return Finding("toolchain", OK, f"hipcc {hip.hipcc} ({hip.how_found})", "with the HIP headers")
    missing = "hipcc" if hip.hipcc is None else "the HIP headers (include/hip/hip_runtime.h)"
    return Finding(
        "toolchain",
        WARNING,
        f"no {missing} ({hip.how_found})",
        "ROCm extensions (flash-attn's CK backend, cpp_extension packages) cannot be built here",
        "install ROCm's HIP SDK (the rocm-hip-sdk package), or set ROCM_PATH to where it is installed",
    )


# --- a torch that is not built for this machine's GPUs -----------------------------------------------


def wrong_build(machine: Machine, torch: dict[str, Any]) -> Finding | None:
    """A CUDA or CPU torch on a machine whose only GPUs are AMD ones, or on one with a discrete
    Intel GPU and no other: the error that stands in for every other torch finding."""
    version = str(torch.get("version"))
    kind = f"a CUDA {torch['cuda']} build" if torch.get("cuda") else "a CPU-only build"
    if machine.has_amd and not machine.has_nvidia:
        rocm = release_of(machine.rocm)
        return Finding(
            "environment",
            ERROR,
            f"torch {version} is {kind} on a machine with AMD GPUs",
            "torch.cuda runs NVIDIA GPUs only in a CUDA build, and no GPU at all in a CPU build",
            ROUTE.format(index=f"rocm{_show(rocm)}" if rocm else "rocmX.Y"),
        )
    if discrete_intel(machine) and not machine.has_nvidia:
        return Finding(
            "environment",
            ERROR,
            f"torch {version} is {kind} on a machine with an Intel GPU",
            "only an xpu build of torch runs on Intel GPUs (torch.xpu)",
            ROUTE.format(index="xpu"),
        )
    return None


# --- a ROCm torch -----------------------------------------------------------------------------------


def rocm_findings(machine: Machine, facts: dict[str, Any]) -> list[Finding]:
    """A ROCm torch: what it is, the ROCm release beside it, its gfx list, and whether it sees a GPU."""
    torch: dict[str, Any] = facts["torch"]
    version, hip = str(torch.get("version")), str(torch.get("hip"))
    built = release_of(hip)
    tagged = _ROCM_TAG.search(version)
    if tagged:  # the wheel's tag names the release as the catalog and the index do (rocm6.3)
        built = release_of(tagged[1])
    found = [Finding("environment", OK, f"torch {version}, a ROCm build (torch.version.hip {hip})")]
    if machine.has_nvidia and not machine.has_amd:
        return [
            Finding(
                "environment",
                ERROR,
                f"torch {version} is a ROCm build on a machine with NVIDIA GPUs",
                f"torch.version.hip is {hip}: it runs AMD GPUs only",
                "run `llm-sync` (it routes torch to the CUDA index this driver runs), then `uv sync`",
            )
        ]
    if not machine.has_amd:
        return [*found, Finding("environment", WARNING, "no AMD GPU found: this ROCm torch runs on the CPU")]
    found += _runtime_findings(machine, built)
    missing, arch_found = _gfx_findings(machine, torch)
    found += arch_found
    if machine.amd and not missing:
        found.append(_rocm_availability(torch, facts))
    return found


def _runtime_findings(machine: Machine, built: tuple[int, int] | None) -> list[Finding]:
    installed = release_of(machine.rocm)
    if built is None or installed is None:
        return []
    if installed >= built:
        return [
            Finding(
                "environment",
                OK,
                f"ROCm {machine.rocm} runs torch's ROCm {_show(built)}",
                machine.rocm_source,
            )
        ]
    return [
        Finding(
            "environment",
            ERROR,
            f"ROCm {machine.rocm} is older than torch's ROCm {_show(built)}",
            f"{machine.rocm_source}; a ROCm build of torch needs the ROCm release it was built with or newer",
            f"install ROCm ≥ {_show(built)}, or run `llm-sync` to route torch to a build of ROCm ≤ "
            f"{_show(installed)} (pytorch-rocm{_show(installed)} where PyTorch publishes one)",
        )
    ]


def gfx_names(arch_list: list[Any]) -> list[str]:
    """The build's targets without their feature flags: "gfx90a:xnack-" -> "gfx90a"."""
    names = (part.split(":")[0].lower() for entry in arch_list for part in re.split(r"[;\s]+", str(entry)))
    return list(dict.fromkeys(name for name in names if name.startswith("gfx")))


def _gfx_findings(machine: Machine, torch: dict[str, Any]) -> tuple[bool, list[Finding]]:
    built = gfx_names(list(torch.get("arch_list", [])))
    targets = machine.gfx_targets
    if not built or not targets:  # nothing to compare: the list is empty when no GPU is visible
        return False, []
    missing = [g for g in machine.amd if g.gfx and g.gfx not in built]
    if missing:
        return True, [
            Finding(
                "environment",
                ERROR,
                f"{gpu.gfx} ({gpu.name}) is not in torch's arch list",
                f"torch has: {' '.join(built)}; gfx code does not run on another gfx target",
                "run `llm-sync`: it picks a ROCm build whose arch list covers every local GPU",
            )
            for gpu in {g.gfx: g for g in missing}.values()
        ]
    return False, [
        Finding(
            "environment",
            OK,
            f"torch's arch list covers every local GPU ({' '.join(targets)})",
            f"torch has: {' '.join(built)}",
        )
    ]


def _rocm_availability(torch: dict[str, Any], facts: dict[str, Any]) -> Finding:
    settings = [(name, facts.get(key)) for key, name in ROCM_VISIBILITY if facts.get(key) is not None]
    shown = "; ".join(f"{name}={value}" for name, value in settings)
    if torch.get("cuda_available"):
        count = torch.get("device_count")
        seen = f"{count} device(s) visible" if isinstance(count, int) else "devices visible"
        return Finding(
            "environment", OK, f"torch.cuda.is_available() is True ({seen}{'; ' + shown if shown else ''})"
        )
    hiding = next((name for name, value in settings if hides_every_gpu(value)), None)
    if hiding is not None:
        value = dict(settings)[hiding]
        return Finding(
            "environment",
            ERROR,
            f"torch.cuda.is_available() is False: {hiding} hides every GPU",
            f"{hiding}={value!r} in this environment; the amdgpu driver sees the GPUs, torch may not use them",
            f"unset {hiding}, or list the GPUs to use (e.g. {hiding}=0,1)",
        )
    return Finding(
        "environment",
        ERROR,
        "torch.cuda.is_available() is False on a machine with an AMD GPU",
        "the ROCm runtime cannot open the GPUs for this process" + (f" ({shown})" if shown else ""),
        "check `rocm-smi` in the same environment; the user needs the video and render groups, and "
        "containers need --device /dev/kfd --device /dev/dri",
    )


# --- an xpu torch -----------------------------------------------------------------------------------


def xpu_findings(machine: Machine, facts: dict[str, Any]) -> list[Finding]:
    """An xpu torch: whether torch.xpu finds the Intel GPU."""
    torch: dict[str, Any] = facts["torch"]
    version = str(torch.get("version"))
    if (machine.has_nvidia or machine.has_amd) and not machine.intel:
        vendor = "NVIDIA" if machine.has_nvidia else "AMD"
        return [
            Finding(
                "environment",
                ERROR,
                f"torch {version} is an xpu build on a machine with {vendor} GPUs",
                "an xpu build runs Intel GPUs only",
                "run `llm-sync` (it routes torch to the index this machine's GPUs run), then `uv sync`",
            )
        ]
    found = [Finding("environment", OK, f"torch {version}, an xpu build")]
    if not machine.intel:
        return [*found, Finding("environment", WARNING, "no Intel GPU found: this xpu torch runs on the CPU")]
    if torch.get("xpu_available"):
        count = torch.get("xpu_device_count")
        seen = f"{count} device(s) visible" if isinstance(count, int) else "devices visible"
        return [*found, Finding("environment", OK, f"torch.xpu.is_available() is True ({seen})")]
    mask = facts.get("ze_affinity_mask")
    why = str(torch.get("xpu_error") or "torch finds no Intel GPU through Level Zero")
    if mask is not None:
        why += f"; ZE_AFFINITY_MASK={mask!r} limits the devices Level Zero shows"
    return [
        *found,
        Finding(
            "environment",
            ERROR,
            "torch.xpu.is_available() is False on a machine with an Intel GPU",
            why,
            "install Intel's GPU runtime (Level Zero and compute runtime: intel-level-zero-gpu / "
            "intel-opencl-icd, or the client GPU driver packages) and add the user to the render group; "
            "`sycl-ls` or `xpu-smi discovery` should list the GPU"
            + ("; unset ZE_AFFINITY_MASK" if mask is not None else ""),
        ),
    ]
