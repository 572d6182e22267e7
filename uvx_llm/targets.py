"""A target machine given by hand (`--cuda`, `--rocm`, `--arch`, their LLM_SYNC_* variables):
each value parsed, or refused with the spelling it needs, naming where it came from."""

from __future__ import annotations

import re

from uvx_llm import accelerators
from uvx_llm.catalog import Pair, parse_capability, parse_version_pair
from uvx_llm.errors import LlmSyncError


def _example(origin: str, value: str) -> str:
    return f"{origin} {value}" if origin.startswith("--") else f"{origin}={value}"


def parse_cuda(text: str, *, origin: str = "--cuda") -> Pair:
    try:
        cuda = parse_version_pair(text)
    except ValueError:
        whole = text.strip()
        meant = f" (did you mean {whole}.0?)" if whole.isascii() and whole.isdigit() else ""
        raise LlmSyncError(
            f"{origin} {text!r} is not a CUDA version{meant}",
            why="it must be MAJOR.MINOR in plain digits, with the minor spelled out: 12 could be any 12.x",
            fix=f"give the highest CUDA the target driver runs, e.g. {_example(origin, '12.8')}",
        ) from None
    return cuda


def parse_arch_list(text: str, *, origin: str = "--arch") -> tuple[Pair, ...]:
    try:
        archs = tuple(sorted({parse_capability(part) for part in re.split(r"[,;\s]+", text) if part}))
        problem = ""
    except ValueError as error:
        archs, problem = (), str(error)
    if not archs:
        raise LlmSyncError(
            f"{origin} {text!r} is not a list of compute capabilities" + (f": {problem}" if problem else ""),
            why="each entry must look like MAJOR.MINOR (8.0, 9.0a) or sm_80 (sm_90a), with a one-digit minor; "
            "an a/f suffix names the same GPUs",
            fix=f"give the target GPUs' compute capabilities, e.g. {_example(origin, '8.0,9.0')}",
        )
    return archs


_GFX_TARGET = re.compile(r"gfx[0-9]{2,4}[0-9a-f]?")


def parse_rocm(text: str, *, origin: str = "--rocm") -> str:
    version = accelerators.parse_rocm_version(text) if _VERSION_ONLY.fullmatch(text.strip()) else None
    if version is None:
        raise LlmSyncError(
            f"{origin} {text!r} is not a ROCm release",
            why="it must be MAJOR.MINOR or MAJOR.MINOR.PATCH in plain digits",
            fix=f"give the ROCm release the target machine has installed, e.g. {_example(origin, '6.3')}",
        )
    return version


_VERSION_ONLY = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}(?:\.[0-9]{1,3})?")


def is_gfx_list(text: str) -> bool:
    return "gfx" in text.lower()


def parse_gfx_list(text: str, *, origin: str = "--arch") -> tuple[str, ...]:
    parts = [p.lower() for p in re.split(r"[,;\s]+", text) if p]
    bad = [p for p in parts if not _GFX_TARGET.fullmatch(p)]
    if bad or not parts:
        raise LlmSyncError(
            f"{origin} {text!r} is not a list of AMD gfx targets" + (f": {bad[0]!r}" if bad else ""),
            why="each entry must be a gfx target such as gfx942 (MI300X), gfx90a (MI250X) or gfx1100 (RX 7900)",
            fix=f"give the target GPUs' gfx targets, e.g. {_example(origin, 'gfx942,gfx90a')}",
        )
    return tuple(sorted(set(parts)))
