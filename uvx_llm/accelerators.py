"""AMD and Intel GPUs: facts for ROCm and XPU planning, read below a root folder.

AMD, in order: the `amdsmi` bindings when importable; the KFD topology in sysfs
(`/sys/class/kfd/kfd/topology/nodes/*/properties`, whose `gfx_target_version` names the
GPU's gfx target); `rocm-smi --showproductname --json` last. The ROCm release comes from
`/opt/rocm/.info/version` (ROCM_PATH first when set). Intel: `/sys/class/drm/card*/device`
with PCI vendor 0x8086 and the `i915` or `xe` kernel driver. Every failure is a note, never
an error. ``root`` is "/" except in tests, which point it at recorded trees.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.version import InvalidVersion, Version

from uvx_llm import proc

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import ModuleType

KFD_NODES = Path("sys/class/kfd/kfd/topology/nodes")
DRM = Path("sys/class/drm")
ROCM_DEFAULT = Path("opt/rocm")
AMD_VENDOR = 0x1002  # PCI vendor id, as KFD's vendor_id says it (4098)
INTEL_VENDOR = "0x8086"
INTEL_DRIVERS = ("i915", "xe")
INTEGRATED_SLOT = "0000:00:02.0"  # where Intel platforms put their integrated GPU
_GFX = re.compile(r"gfx[0-9]{2,4}[0-9a-f]?")
_ROCM_VERSION = re.compile(r"([0-9]{1,3})\.([0-9]{1,3})(?:\.([0-9]{1,3}))?")
_PROPERTIES_LIMIT = 64 * 1024  # a real KFD properties file is about 1 KiB


@dataclass(frozen=True)
class AmdGpu:
    index: int
    name: str
    gfx: str | None  # the gfx target: gfx942, gfx90a, gfx1100
    memory_bytes: int | None = None

    def describe(self) -> str:
        memory = f", {self.memory_bytes / 2**30:.0f} GiB" if self.memory_bytes else ""
        return f"AMD GPU {self.index}: {self.name} ({self.gfx or 'gfx target unknown'}{memory})"


@dataclass(frozen=True)
class IntelGpu:
    index: int
    name: str
    driver: str
    integrated: bool

    def describe(self) -> str:
        kind = "integrated" if self.integrated else "discrete"
        return f"Intel GPU {self.index}: {self.name} ({self.driver} driver, {kind})"


@dataclass(frozen=True)
class AmdFacts:
    gpus: tuple[AmdGpu, ...]
    rocm: str | None  # the installed ROCm release, "6.3.1"
    source: str
    rocm_source: str
    notes: tuple[str, ...]


def gfx_from_target_version(value: int) -> str | None:
    """KFD's gfx_target_version (major*10000 + minor*100 + stepping) as a gfx target:
    90402 -> gfx942, 90010 -> gfx90a, 110000 -> gfx1100; 0 (a CPU node) -> None."""
    if value <= 0:
        return None
    major, minor, stepping = value // 10000, (value // 100) % 100, value % 100
    if minor > 9 or stepping > 15:  # noqa: PLR2004 - one hex digit each in the target's name
        return None
    return f"gfx{major}{minor}{stepping:x}"


def parse_properties(text: str) -> dict[str, int]:
    """KFD `properties`: one `key value` per line, values integers; other lines are skipped."""
    found: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isascii() and parts[1].isdigit():  # noqa: PLR2004 - key and value
            found[parts[0]] = int(parts[1])
    return found


def parse_rocm_version(text: str) -> str | None:
    """`/opt/rocm/.info/version`'s "6.3.1-48" -> "6.3.1"; None when there is no version in it."""
    found = _ROCM_VERSION.match(text.strip())
    if not found:
        return None
    return ".".join(part for part in found.groups() if part is not None)


def rocm_pair(version: str) -> tuple[int, int]:
    parsed = Version(version)
    return parsed.major, parsed.minor


def _read(path: Path, limit: int = _PROPERTIES_LIMIT) -> str | None:
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return handle.read(limit)
    except OSError:
        return None


def _bank_bytes(node: Path) -> int | None:
    total = 0
    for bank in sorted(node.glob("mem_banks/*/properties")):
        size = parse_properties(_read(bank) or "").get("size_in_bytes")
        total += size or 0
    return total or None


def from_kfd(root: Path) -> tuple[AmdGpu, ...] | str:
    """AMD GPUs from the KFD topology (CPU nodes have gfx_target_version 0), or why not."""
    nodes = root / KFD_NODES
    if not nodes.is_dir():
        return f"{nodes} absent: no amdgpu kernel driver (KFD) loaded"
    gpus: list[AmdGpu] = []
    folders = sorted((p for p in nodes.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    for node in folders:
        properties = parse_properties(_read(node / "properties") or "")
        gfx = gfx_from_target_version(properties.get("gfx_target_version", 0))
        if gfx is None or properties.get("vendor_id", AMD_VENDOR) != AMD_VENDOR:
            continue
        name = (_read(node / "name") or "").strip() or gfx
        gpus.append(AmdGpu(index=len(gpus), name=f"AMD {name}", gfx=gfx, memory_bytes=_bank_bytes(node)))
    if not gpus:
        return f"{nodes}: no GPU node (only CPU nodes)"
    return tuple(gpus)


def load_amdsmi() -> ModuleType | str:
    """The amdsmi module of ROCm, or why it cannot be imported."""
    try:
        import amdsmi  # type: ignore[import-not-found]  # noqa: PLC0415 - only where ROCm is installed
    except ImportError as error:
        return f"amdsmi is not importable: {error}"
    except Exception as error:  # noqa: BLE001 - a broken ROCm install raises anything at import
        return f"amdsmi failed to load: {type(error).__name__}: {error}"
    module: ModuleType = amdsmi
    return module


def from_amdsmi(amdsmi: ModuleType) -> tuple[AmdGpu, ...] | str:
    """GPUs from the amdsmi bindings (`target_graphics_version` of the ASIC info), or why not."""
    try:
        amdsmi.amdsmi_init()
    except Exception as error:  # noqa: BLE001 - AmdSmiException and whatever a broken library raises
        return f"amdsmi unusable: {type(error).__name__}: {error}"
    try:
        gpus: list[AmdGpu] = []
        for index, handle in enumerate(amdsmi.amdsmi_get_processor_handles()):
            asic: dict[str, Any] = dict(amdsmi.amdsmi_get_gpu_asic_info(handle))
            gfx = str(asic.get("target_graphics_version", "")).strip().lower()
            name = str(asic.get("market_name", "")).strip() or "AMD GPU"
            gpus.append(AmdGpu(index=index, name=name, gfx=gfx if _GFX.fullmatch(gfx) else None))
    except Exception as error:  # noqa: BLE001 - see above
        return f"amdsmi unusable: {type(error).__name__}: {error}"
    finally:
        with contextlib.suppress(Exception):  # nothing to release after a failure
            amdsmi.amdsmi_shut_down()
    if not gpus:
        return "amdsmi: no AMD GPU"
    return tuple(gpus)


def parse_rocm_smi_json(text: str) -> tuple[AmdGpu, ...]:
    """`rocm-smi --showproductname --json`: {"card0": {"Card Series": ..., "GFX Version": "gfx942"}}.
    Labels vary between releases, so any value that is a gfx target names it."""
    try:
        data = json.loads(text)
    except ValueError:
        return ()
    if not isinstance(data, dict):
        return ()
    gpus: list[AmdGpu] = []
    for card, fields in sorted(data.items()):
        if not card.startswith("card") or not isinstance(fields, dict):
            continue
        values = [str(v).strip().lower() for v in fields.values()]
        gfx = next((v for v in values if _GFX.fullmatch(v)), None)
        name = str(fields.get("Card Series") or fields.get("Card series") or "AMD GPU")
        gpus.append(AmdGpu(index=len(gpus), name=name, gfx=gfx))
    return tuple(gpus)


def from_rocm_smi() -> tuple[AmdGpu, ...] | str:
    result = proc.run(["rocm-smi", "--showproductname", "--json"], timeout=20)
    if result.failure is not None:
        return f"rocm-smi unusable: {result.failure}"
    if result.returncode != 0:
        first = (result.stderr or result.stdout).strip().splitlines()[:1]
        return f"rocm-smi failed: {first[0][:300] if first else f'exit code {result.returncode}'}"
    gpus = parse_rocm_smi_json(result.stdout)
    return gpus or "rocm-smi: no GPU in its answer"


def rocm_release(root: Path, env: Mapping[str, str]) -> tuple[str | None, str]:
    """(installed ROCm release, where it was read) or (None, why not)."""
    candidates = []
    if env.get("ROCM_PATH", "").strip():
        candidates.append(root / env["ROCM_PATH"].strip().lstrip("/"))
    candidates.append(root / ROCM_DEFAULT)
    for folder in candidates:
        path = folder / ".info" / "version"
        text = _read(path, 256)
        if text is None:
            continue
        version = parse_rocm_version(text)
        if version is not None:
            return version, f"/{path.relative_to(root)}"
    shown = ", ".join(f"/{(c / '.info' / 'version').relative_to(root)}" for c in candidates)
    return None, f"ROCm release unknown: no {shown}"


def detect_amd(
    root: Path,
    env: Mapping[str, str],
    *,
    amdsmi: ModuleType | str | None = None,
    use_rocm_smi: bool = True,
) -> AmdFacts:
    """AMD GPUs and the ROCm release; ``amdsmi``: the module (tests), a reason it is absent, or None
    to import it."""
    notes: list[str] = []
    module = load_amdsmi() if amdsmi is None else amdsmi
    found: tuple[AmdGpu, ...] | str = module if isinstance(module, str) else from_amdsmi(module)
    source = "amdsmi"
    if isinstance(found, str):
        notes.append(found)
        found, source = from_kfd(root), "KFD topology"
    if isinstance(found, str):
        notes.append(found)
        kfd_present = (root / "dev" / "kfd").exists()
        if use_rocm_smi and kfd_present:
            found, source = from_rocm_smi(), "rocm-smi"
    if isinstance(found, str):
        notes.append(found)
        found, source = (), "none"
    rocm, rocm_source = rocm_release(root, env) if found else (None, "")
    if found and rocm is None:
        notes.append(rocm_source)
    return AmdFacts(found, rocm, source, rocm_source if rocm else "", tuple(notes))


def _link_name(path: Path) -> str | None:
    try:
        return path.resolve(strict=True).name if path.is_symlink() or path.exists() else None
    except OSError:
        return None


def detect_intel(root: Path) -> tuple[tuple[IntelGpu, ...], tuple[str, ...]]:
    """Intel GPUs: DRM cards whose PCI vendor is Intel, bound to i915 or xe. (GPUs, notes)."""
    drm = root / DRM
    if not drm.is_dir():
        return (), ()
    gpus: list[IntelGpu] = []
    notes: list[str] = []
    cards = sorted(
        (p for p in drm.iterdir() if re.fullmatch(r"card[0-9]+", p.name)), key=lambda p: int(p.name[4:])
    )
    for card in cards:
        device = card / "device"
        if (_read(device / "vendor", 64) or "").strip().lower() != INTEL_VENDOR:
            continue
        driver = _link_name(device / "driver")
        if driver not in INTEL_DRIVERS:
            notes.append(f"{card.name}: an Intel device on driver {driver or 'none'}, not i915/xe")
            continue
        slot = _link_name(device) or ""
        pci_id = (_read(device / "device", 64) or "").strip()
        gpus.append(
            IntelGpu(
                index=len(gpus),
                name=f"Intel GPU {pci_id}" if pci_id else "Intel GPU",
                driver=driver,
                integrated=slot == INTEGRATED_SLOT,
            )
        )
    return tuple(gpus), tuple(notes)


def version_or_none(text: str | None) -> Version | None:
    try:
        return Version(text) if text else None
    except InvalidVersion:
        return None
