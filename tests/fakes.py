"""The one fake in the test suite: NVML, answered from facts recorded on a real GPU machine.

It stands in for the `pynvml` module at the boundary machine.load_nvml(), and
raises nvidia-ml-py's own exception classes, so the code under test handles
exactly what the real binding raises.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pynvml

FIXTURES = Path(__file__).parent / "fixtures"


def recorded(name: str = "h200-driver580") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "gpu" / f"{name}.json").read_text(encoding="utf-8"))
    return data


@dataclass
class RecordedNvml:
    """Answers NVML calls from a recording; ``fail_with`` makes nvmlInit fail with an NVML error code."""

    facts: dict[str, Any]
    fail_with: int | None = None
    fail_on_device: bool = False

    NVMLError = pynvml.NVMLError
    NVML_ERROR_LIBRARY_NOT_FOUND = pynvml.NVML_ERROR_LIBRARY_NOT_FOUND
    NVML_ERROR_DRIVER_NOT_LOADED = pynvml.NVML_ERROR_DRIVER_NOT_LOADED
    NVML_ERROR_NO_PERMISSION = pynvml.NVML_ERROR_NO_PERMISSION
    NVML_ERROR_LIB_RM_VERSION_MISMATCH = pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH

    def nvmlInit(self) -> None:  # noqa: N802 - NVML's names
        if self.fail_with is not None:
            raise pynvml.NVMLError(self.fail_with)

    def nvmlShutdown(self) -> None:  # noqa: N802
        """Nothing to release."""

    def nvmlSystemGetDriverVersion(self) -> str:  # noqa: N802
        return str(self.facts["nvmlSystemGetDriverVersion"])

    def nvmlSystemGetCudaDriverVersion(self) -> int:  # noqa: N802
        return int(self.facts["nvmlSystemGetCudaDriverVersion"])

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        return len(self.facts["devices"])

    def nvmlDeviceGetHandleByIndex(self, index: int) -> dict[str, Any]:  # noqa: N802
        if self.fail_on_device:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_UNKNOWN)
        device: dict[str, Any] = self.facts["devices"][index]
        return device

    def nvmlDeviceGetName(self, handle: dict[str, Any]) -> str:  # noqa: N802
        return str(handle["nvmlDeviceGetName"])

    def nvmlDeviceGetCudaComputeCapability(self, handle: dict[str, Any]) -> tuple[int, int]:  # noqa: N802
        major, minor = handle["nvmlDeviceGetCudaComputeCapability"]
        return int(major), int(minor)

    def nvmlDeviceGetMemoryInfo(self, handle: dict[str, Any]) -> SimpleNamespace:  # noqa: N802
        return SimpleNamespace(total=handle["nvmlDeviceGetMemoryInfo.total"])

    def nvmlDeviceGetMigMode(self, handle: dict[str, Any]) -> tuple[int, int]:  # noqa: N802
        current, pending = handle["nvmlDeviceGetMigMode"]
        return int(current), int(pending)


def with_devices(
    facts: dict[str, Any],
    *devices: tuple[str, tuple[int, int]],
    cuda: int | None = None,
    driver: str | None = None,
) -> dict[str, Any]:
    """The recording with other GPUs/driver: for machines the team does not own (a P100, a B200)."""
    changed = dict(facts)
    changed["devices"] = [
        {
            "index": i,
            "nvmlDeviceGetName": name,
            "nvmlDeviceGetCudaComputeCapability": list(cap),
            "nvmlDeviceGetMemoryInfo.total": facts["devices"][0]["nvmlDeviceGetMemoryInfo.total"],
            "nvmlDeviceGetMigMode": [0, 0],
        }
        for i, (name, cap) in enumerate(devices)
    ] or facts["devices"]
    if cuda is not None:
        changed["nvmlSystemGetCudaDriverVersion"] = cuda
    if driver is not None:
        changed["nvmlSystemGetDriverVersion"] = driver
    return changed
