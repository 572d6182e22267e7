"""Facts about the machine: NVIDIA driver, highest CUDA it runs, GPUs.

Order of sources: explicit target (--cuda/--arch, for image builds without a
GPU), then NVML (nvidia-ml-py), then `nvidia-smi --query-gpu` CSV (never the
human-readable table, whose labels changed), then /proc/driver/nvidia/version.
Environment overrides UV_CUDA_DRIVER_VERSION and CONDA_OVERRIDE_CUDA replace the
detected CUDA limit. Every failure becomes a note and a fallback. On Linux, AMD GPUs with
the ROCm release and Intel GPUs are read too (accelerators.py); --rocm/--arch gfx942
describe an AMD target instead.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.version import InvalidVersion, Version

from uvx_llm import accelerators, proc
from uvx_llm.accelerators import AmdGpu, IntelGpu
from uvx_llm.catalog import Catalog, Pair, parse_capability, parse_version_pair, show_pair, show_sm
from uvx_llm.errors import LlmSyncError
from uvx_llm.log import get_logger
from uvx_llm.targets import is_gfx_list, parse_arch_list, parse_cuda, parse_gfx_list, parse_rocm

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import ModuleType

log = get_logger(__name__)

PROC_VERSION = Path("/proc/driver/nvidia/version")
_PROC_DRIVER = re.compile(r"Kernel Module(?:\s+for\s+\S+)?\s+(\d+\.\d+(?:\.\d+)?)")
_SMI_FIELDS = "index,name,driver_version,compute_cap,memory.total"
_SMI_LINE_LIMIT = 4096  # a real row is ~80 characters
_SMI_NUMBER = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,6})?")
_SMI_INDEX = re.compile(r"[0-9]{1,4}")
# The `vendor` of `detect --json` (the machine's, and each GPU's): what fleet.py reads.
NVIDIA, AMD, INTEL = "nvidia", "amd", "intel"


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    capability: Pair | None
    memory_bytes: int | None = None
    mig: bool = False

    def describe(self) -> str:
        cap = (
            f"compute capability {show_pair(self.capability)}"
            if self.capability
            else "compute capability unknown"
        )
        memory = f", {self.memory_bytes / 2**30:.0f} GiB" if self.memory_bytes else ""
        mig = ", MIG enabled" if self.mig else ""
        return f"GPU {self.index}: {self.name} ({cap}{memory}{mig})"


@dataclass(frozen=True)
class Machine:
    """What llm-sync plans for. ``archs_known`` is False when the GPU list is unknown."""

    system: str
    source: str
    driver_version: str | None = None
    cuda_max: Pair | None = None
    cuda_source: str = ""
    gpus: tuple[Gpu, ...] = ()
    archs_known: bool = True
    notes: tuple[str, ...] = field(default=())
    # Notes saying NVIDIA software is here but failing (a driver/library mismatch, a driver that
    # does not load): then "no GPU" is not a fact to record for the team.
    trouble: tuple[str, ...] = field(default=())
    amd: tuple[AmdGpu, ...] = ()
    rocm: str | None = None  # the ROCm release installed (or --rocm): "6.3.1"
    rocm_source: str = ""
    intel: tuple[IntelGpu, ...] = ()
    # A fleet planned as one machine (fleet.py): its nodes' names, and the node whose driver
    # sets the CUDA limit. Empty for one machine.
    nodes: tuple[str, ...] = field(default=())
    limited_by: str = ""

    @property
    def has_nvidia(self) -> bool:
        return bool(self.gpus or self.cuda_max or self.driver_version)

    @property
    def has_amd(self) -> bool:
        return bool(self.amd or self.rocm)

    @property
    def vendor(self) -> str | None:
        """The GPU vendor llm-sync plans this machine for: NVIDIA before AMD (a machine with both is
        planned for its NVIDIA GPUs), then a discrete Intel GPU; None plans CPU wheels."""
        if self.has_nvidia:
            return NVIDIA
        if self.has_amd:
            return AMD
        return INTEL if any(not g.integrated for g in self.intel) else None

    @property
    def gfx_targets(self) -> tuple[str, ...]:
        return tuple(sorted({g.gfx for g in self.amd if g.gfx}))

    @property
    def capabilities(self) -> tuple[Pair, ...]:
        return tuple(sorted({g.capability for g in self.gpus if g.capability is not None}))

    def driver(self) -> Version | None:
        try:
            return Version(self.driver_version) if self.driver_version else None
        except InvalidVersion:
            return None

    @property
    def who(self) -> str:
        """What the planner's sentences call it: "this machine", or "the fleet"."""
        return "the fleet" if self.nodes else "this machine"

    def driver_label(self) -> str:
        """ "driver 570.86", or for a fleet "node gpu-07 (driver 570.86)": whose limit a reason names."""
        driver = f"driver {self.driver_version}" if self.driver_version else self.cuda_source
        return f"node {self.limited_by} ({driver})" if self.limited_by else driver

    def summary(self) -> list[str]:
        lines = [f"system: {self.system}", f"detected by: {self.source}"]
        if self.nodes:
            lines.append(f"nodes: {', '.join(self.nodes)}")
        if self.driver_version:
            lines.append(f"NVIDIA driver: {self.driver_version}")
        if self.cuda_max:
            lines.append(f"highest CUDA the driver runs: {show_pair(self.cuda_max)} ({self.cuda_source})")
        lines.extend(gpu.describe() for gpu in self.gpus)
        if not self.has_nvidia:
            lines.append("no NVIDIA GPU")
        elif not self.archs_known:
            lines.append("GPU architectures: unknown (not checked)")
        if self.has_amd:
            lines.append(f"ROCm: {self.rocm} ({self.rocm_source})" if self.rocm else "ROCm: unknown")
            lines.extend(gpu.describe() for gpu in self.amd)
        lines.extend(gpu.describe() for gpu in self.intel)
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "vendor": self.vendor,
            "source": self.source,
            "driver_version": self.driver_version,
            "cuda_max": show_pair(self.cuda_max) if self.cuda_max else None,
            "cuda_source": self.cuda_source or None,
            "gpus": [
                {
                    "vendor": NVIDIA,
                    "index": g.index,
                    "name": g.name,
                    "compute_capability": show_pair(g.capability) if g.capability else None,
                    "sm": show_sm(g.capability) if g.capability else None,
                    "memory_bytes": g.memory_bytes,
                    "mig": g.mig,
                }
                for g in self.gpus
            ],
            "archs_known": self.archs_known,
            "rocm": self.rocm,
            "rocm_source": self.rocm_source or None,
            "amd_gpus": [
                {
                    "vendor": AMD,
                    "index": g.index,
                    "name": g.name,
                    "gfx": g.gfx,
                    "memory_bytes": g.memory_bytes,
                }
                for g in self.amd
            ],
            "intel_gpus": [
                {
                    "vendor": INTEL,
                    "index": g.index,
                    "name": g.name,
                    "driver": g.driver,
                    "integrated": g.integrated,
                }
                for g in self.intel
            ],
            "notes": list(self.notes),
        }


def _system_name(platform: str) -> str:
    if platform.startswith("linux"):
        return "linux"
    if platform == "darwin":
        return "macos"
    if platform in {"win32", "cygwin"}:
        return "windows"
    return platform


# --- target given on the command line ----------------------------------------------


def amd_target(*, rocm: str | None, gfx: tuple[str, ...] | None, platform: str = sys.platform) -> Machine:
    """An AMD machine described by --rocm/--arch gfxNNN instead of detected."""
    gpus = tuple(AmdGpu(index=i, name="target GPU", gfx=g) for i, g in enumerate(gfx or ()))
    notes = () if gfx else ("no --arch: AMD gfx targets are not checked",)
    if rocm is None:
        notes = (*notes, "no --rocm: the ROCm release is not checked")
    return Machine(
        system=_system_name(platform),
        source="--rocm/--arch",
        archs_known=gfx is not None,
        notes=notes,
        amd=gpus,
        rocm=rocm,
        rocm_source="--rocm" if rocm else "",
    )


def target(*, cuda: Pair | None, archs: tuple[Pair, ...] | None, platform: str = sys.platform) -> Machine:
    """A machine described by --cuda/--arch instead of detected."""
    gpus = tuple(Gpu(index=i, name="target GPU", capability=cap) for i, cap in enumerate(archs or ()))
    notes = () if archs else ("no --arch: GPU architectures are not checked",)
    if cuda is None:
        notes = (*notes, "no --cuda: the driver's CUDA limit is not checked")
    return Machine(
        system=_system_name(platform),
        source="--cuda/--arch",
        cuda_max=cuda,
        cuda_source="--cuda" if cuda else "",
        gpus=gpus,
        archs_known=archs is not None,
        notes=notes,
    )


def for_run(
    catalog: Catalog,
    *,
    cuda: str,
    arch: str,
    env: Mapping[str, str],
    cuda_origin: str = "--cuda",
    arch_origin: str = "--arch",
    rocm: str = "",
    rocm_origin: str = "--rocm",
) -> Machine:
    """The machine to plan for: the target that ``cuda``/``arch`` (or ``rocm``/``arch`` with gfx
    targets) describe (any may be empty; an error names the origin), else this machine, detected."""
    if rocm or (arch and is_gfx_list(arch)):
        if cuda:
            raise LlmSyncError(
                f"{cuda_origin} and an AMD target ({rocm_origin} or gfx targets in {arch_origin}) were both given",
                why="a target machine runs either CUDA (NVIDIA) or ROCm (AMD) builds of torch",
                fix=f"drop {cuda_origin} to plan for AMD GPUs, or the AMD settings to plan for NVIDIA ones",
            )
        return amd_target(
            rocm=parse_rocm(rocm, origin=rocm_origin) if rocm else None,
            gfx=parse_gfx_list(arch, origin=arch_origin) if arch else None,
        )
    if cuda or arch:
        return target(
            cuda=parse_cuda(cuda, origin=cuda_origin) if cuda else None,
            archs=parse_arch_list(arch, origin=arch_origin) if arch else None,
        )
    return detect(catalog, env=env)


# --- NVML ---------------------------------------------------------------------------


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


_NVML_ABSENT = "NVML unusable: the NVML library"
_SMI_FAILED = "nvidia-smi failed"


def _nvml_failure(nvml: ModuleType, error: Exception) -> str:
    value = getattr(error, "value", None)
    reasons = {
        getattr(
            nvml, "NVML_ERROR_LIBRARY_NOT_FOUND", -1
        ): "the NVML library (libnvidia-ml.so) is not installed: no NVIDIA driver here",
        getattr(nvml, "NVML_ERROR_DRIVER_NOT_LOADED", -1): "the NVIDIA kernel driver is not loaded",
        getattr(nvml, "NVML_ERROR_NO_PERMISSION", -1): "no permission to talk to the NVIDIA driver",
        getattr(
            nvml, "NVML_ERROR_LIB_RM_VERSION_MISMATCH", -1
        ): "the NVIDIA driver and its user-space library differ in version (a driver update without a reboot?)",
    }
    return f"NVML unusable: {reasons.get(value, str(error) or type(error).__name__)}"


def _nvml_gpu(nvml: ModuleType, index: int) -> Gpu:
    handle = nvml.nvmlDeviceGetHandleByIndex(index)
    major, minor = nvml.nvmlDeviceGetCudaComputeCapability(handle)
    try:
        memory: int | None = int(nvml.nvmlDeviceGetMemoryInfo(handle).total)
    except nvml.NVMLError:
        memory = None
    try:
        mig = bool(nvml.nvmlDeviceGetMigMode(handle)[0])
    except nvml.NVMLError:  # not a MIG-capable GPU
        mig = False
    return Gpu(
        index=index,
        name=_text(nvml.nvmlDeviceGetName(handle)),
        capability=(int(major), int(minor)),
        memory_bytes=memory,
        mig=mig,
    )


def cuda_from_nvml(value: int) -> Pair:
    """nvmlSystemGetCudaDriverVersion's 12040 -> (12, 4)."""
    return value // 1000, (value % 1000) // 10


def from_nvml(nvml: ModuleType, *, system: str) -> Machine | str:
    """A Machine from NVML, or the reason NVML could not be used."""
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as error:
        return _nvml_failure(nvml, error)
    try:
        driver = _text(nvml.nvmlSystemGetDriverVersion())
        cuda = cuda_from_nvml(int(nvml.nvmlSystemGetCudaDriverVersion()))
        gpus = tuple(_nvml_gpu(nvml, i) for i in range(int(nvml.nvmlDeviceGetCount())))
    except nvml.NVMLError as error:
        return _nvml_failure(nvml, error)
    finally:
        try:
            nvml.nvmlShutdown()
        except nvml.NVMLError:
            log.debug("nvmlShutdown failed")
    return Machine(
        system=system, source="NVML", driver_version=driver, cuda_max=cuda, cuda_source="NVML", gpus=gpus
    )


def load_nvml() -> ModuleType | str:
    """The pynvml module of nvidia-ml-py, or why it cannot be imported."""
    try:
        import pynvml  # noqa: PLC0415 - imported only by the commands that detect
    except ImportError as error:
        return f"nvidia-ml-py is not importable: {error}"
    module: ModuleType = pynvml
    return module


# --- nvidia-smi and /proc -------------------------------------------------------------


def _smi_rows(text: str) -> list[list[str]]:
    """The CSV rows of the answer; a line no GPU would print (longer than any real one, or not
    CSV) is skipped rather than trusted or fatal."""
    rows: list[list[str]] = []
    for line in text.splitlines():
        if len(line) > _SMI_LINE_LIMIT:
            continue
        try:
            rows.extend(csv.reader(io.StringIO(line), skipinitialspace=True))
        except csv.Error:
            continue
    return rows


def parse_smi_csv(text: str) -> tuple[tuple[Gpu, ...], str | None]:
    """GPUs and driver version from `--query-gpu=index,name,driver_version,compute_cap,memory.total
    --format=csv,noheader,nounits`. Fields that are not what they should be ("[N/A]", garbage)
    become unknowns, never errors."""
    gpus: list[Gpu] = []
    drivers: list[str] = []
    for row in _smi_rows(text):
        if len(row) < len(_SMI_FIELDS.split(",")):
            continue
        index, name, driver, cap, memory = (cell.strip() for cell in row[:5])
        try:
            capability: Pair | None = parse_capability(cap)
        except ValueError:
            capability = None
        memory_bytes = int(float(memory) * 2**20) if _SMI_NUMBER.fullmatch(memory) else None
        position = int(index) if _SMI_INDEX.fullmatch(index) else len(gpus)
        gpus.append(Gpu(index=position, name=name, capability=capability, memory_bytes=memory_bytes))
        drivers.append(driver)
    return tuple(gpus), (drivers[0] if drivers else None)


def from_nvidia_smi(catalog: Catalog, *, system: str) -> Machine | str:
    args = ["nvidia-smi", f"--query-gpu={_SMI_FIELDS}", "--format=csv,noheader,nounits"]
    result = proc.run(args, timeout=20)
    if result.failure is not None:
        return f"nvidia-smi unusable: {result.failure}"
    if result.returncode != 0:
        # The first line says what failed ("Failed to initialize NVML: Driver/library version
        # mismatch"); what follows are details.
        first_line = (result.stderr or result.stdout).strip().splitlines()[:1]
        return f"nvidia-smi failed: {first_line[0][:300] if first_line else f'exit code {result.returncode}'}"
    gpus, driver = parse_smi_csv(result.stdout)
    machine = Machine(
        system=system,
        source="nvidia-smi",
        driver_version=driver,
        gpus=gpus,
        archs_known=all(g.capability for g in gpus),
    )
    return _with_cuda_from_driver(machine, catalog, source="nvidia-smi driver version")


def parse_proc_version(text: str) -> str | None:
    match = _PROC_DRIVER.search(text)
    return match.group(1) if match else None


def from_proc(catalog: Catalog, path: Path, *, system: str) -> Machine | str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"{path} absent: no NVIDIA kernel driver loaded"
    driver = parse_proc_version(text)
    if driver is None:
        return f"{path}: no driver version in it"
    machine = Machine(system=system, source=str(path), driver_version=driver, archs_known=False)
    return _with_cuda_from_driver(machine, catalog, source=f"driver {driver} (CUDA release notes)")


def _with_cuda_from_driver(machine: Machine, catalog: Catalog, *, source: str) -> Machine:
    driver = machine.driver()
    cuda = catalog.max_cuda_for_driver(driver) if driver else None
    return replace(machine, cuda_max=cuda, cuda_source=source if cuda else "")


# --- environment overrides -----------------------------------------------------------


def _apply_env_overrides(machine: Machine, catalog: Catalog, env: Mapping[str, str]) -> Machine:
    conda = env.get("CONDA_OVERRIDE_CUDA", "").strip()
    uv_driver = env.get("UV_CUDA_DRIVER_VERSION", "").strip()
    if conda:
        try:
            return replace(machine, cuda_max=parse_version_pair(conda), cuda_source="CONDA_OVERRIDE_CUDA")
        except ValueError:
            raise LlmSyncError(
                f"CONDA_OVERRIDE_CUDA={conda!r} is not a CUDA version",
                fix="set it to MAJOR.MINOR (for example 12.4) or unset it",
            ) from None
    if uv_driver:
        try:
            cuda = catalog.max_cuda_for_driver(Version(uv_driver))
        except InvalidVersion:
            cuda = None
        if cuda is None:
            raise LlmSyncError(
                f"UV_CUDA_DRIVER_VERSION={uv_driver!r} is not a driver version llm-sync knows",
                why="it must be an NVIDIA driver version such as 550.54.14 (CUDA 11.8 or newer)",
                fix="set it to the target driver's version or unset it",
            )
        return replace(machine, driver_version=uv_driver, cuda_max=cuda, cuda_source="UV_CUDA_DRIVER_VERSION")
    return machine


def detect(
    catalog: Catalog,
    *,
    env: Mapping[str, str],
    platform: str = sys.platform,
    proc_version: Path = PROC_VERSION,
    root: Path = Path("/"),
    amdsmi: ModuleType | str | None = None,
) -> Machine:
    """This machine's facts. Never raises for a detection failure, only for bad overrides.
    ``root``/``amdsmi``: where sysfs and /opt/rocm are read, and the amdsmi module (tests)."""
    machine = _detect_nvidia(catalog, env=env, platform=platform, proc_version=proc_version)
    if machine.system != "linux":
        return machine
    return _with_amd_and_intel(machine, root=root, env=env, amdsmi=amdsmi)


def _with_amd_and_intel(
    machine: Machine, *, root: Path, env: Mapping[str, str], amdsmi: ModuleType | str | None
) -> Machine:
    amd = accelerators.detect_amd(root, env, amdsmi=amdsmi)
    intel, intel_notes = accelerators.detect_intel(root)
    # Where no AMD driver is loaded, why each AMD source found nothing is noise, not a note.
    amd_notes = amd.notes if amd.gpus or (root / "dev" / "kfd").exists() else ()
    notes = [*machine.notes, *amd_notes, *intel_notes]
    if amd.gpus and machine.has_nvidia:
        notes.append(
            "AMD GPUs found next to NVIDIA ones: llm-sync plans for the NVIDIA GPUs; "
            "ask for a ROCm build with --backend rocmX.Y to plan for the AMD ones"
        )
    return replace(
        machine,
        amd=amd.gpus,
        rocm=amd.rocm,
        rocm_source=amd.rocm_source,
        intel=intel,
        notes=tuple(notes),
        source=machine.source if machine.source != "none" or not amd.gpus else amd.source,
    )


def _detect_nvidia(
    catalog: Catalog,
    *,
    env: Mapping[str, str],
    platform: str,
    proc_version: Path,
) -> Machine:
    system = _system_name(platform)
    if system == "macos":
        machine = Machine(system=system, source="platform", notes=("macOS has no CUDA",))
        return _apply_env_overrides(machine, catalog, env)
    notes: list[str] = []
    trouble: list[str] = []
    nvml = load_nvml()
    found: Machine | str = nvml if isinstance(nvml, str) else from_nvml(nvml, system=system)
    if isinstance(found, str):
        notes.append(found)
        if not isinstance(nvml, str) and not found.startswith(_NVML_ABSENT):
            trouble.append(found)
        found = from_nvidia_smi(catalog, system=system)
    if isinstance(found, str):
        notes.append(found)
        if found.startswith(_SMI_FAILED):  # it ran and failed: the driver is there, and broken
            trouble.append(found)
        found = from_proc(catalog, proc_version, system=system)
    if isinstance(found, str):
        notes.append(found)
        if proc_version.parent.name == "nvidia" and proc_version.parent.is_dir():
            trouble.append(f"{proc_version.parent} exists: the NVIDIA kernel driver is loaded")
        found = Machine(system=system, source="none")
    machine = replace(found, notes=(*found.notes, *notes), trouble=tuple(trouble) if not found.gpus else ())
    return _apply_env_overrides(machine, catalog, env)
