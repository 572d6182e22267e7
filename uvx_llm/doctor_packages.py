"""doctor's checks of installed packages, from their own metadata: what each one requires of
torch against the installed torch, torchvision/torchaudio built for another CUDA, and
combinations the catalog knows to break. Pure: facts in, findings out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from uvx_llm.findings import ERROR, OK, WARNING, Finding

if TYPE_CHECKING:
    from uvx_llm.catalog import Catalog


def _torch_wanted(requires: list[str], markers: dict[str, str]) -> SpecifierSet | None:
    """The torch specifier a distribution's metadata asks for here (extras and other
    platforms' requirements left out); None when it asks nothing of torch here."""
    specifier = SpecifierSet()
    asked = False
    for text in requires:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        if requirement.name.lower() != "torch" or requirement.url:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate({**markers, "extra": ""}):
            continue
        specifier &= requirement.specifier
        asked = True
    return specifier if asked else None


def torch_requirement_findings(facts: dict[str, Any]) -> list[Finding]:
    """Every installed package whose own metadata rules out the installed torch."""
    torch_text = str(facts.get("torch", {}).get("version", ""))
    try:
        torch_version = Version(torch_text)
    except InvalidVersion:
        return []
    markers = facts.get("markers", {})
    found, checked = [], 0
    for name, entry in sorted(facts.get("torch_requirements", {}).items()):
        wanted = _torch_wanted(list(entry.get("requires", [])), markers)
        if wanted is None:
            continue
        checked += 1
        if wanted.contains(torch_version, prereleases=True):
            continue
        found.append(
            Finding(
                "environment",
                ERROR,
                f"{name} {entry.get('version')} requires torch{wanted}, but torch {torch_text} is installed",
                "its compiled parts are built against that torch and fail to load (undefined symbols, "
                "missing operators) with another",
                "run `uv sync` (uv.lock keeps them in step), or install a release of it built for this torch",
            )
        )
    if checked and not found:
        found.append(
            Finding(
                "environment",
                OK,
                f"torch {torch_text} satisfies what {checked} installed package(s) require of it",
            )
        )
    return found


def _cuda_label(version: str) -> str | None:
    """ "2.11.0+cu130" -> "cu130"; "0.26.0+cpu" -> "cpu"; no label -> None."""
    label = version.partition("+")[2]
    return label if label == "cpu" or label.startswith("cu") else None


def companion_findings(facts: dict[str, Any]) -> list[Finding]:
    """torchvision/torchaudio built for another CUDA than torch (torchvision refuses a
    different CUDA major at import; a +cpu build has no CUDA kernels)."""
    torch_text = str(facts.get("torch", {}).get("version", ""))
    torch_label = _cuda_label(torch_text)
    found = []
    for name in ("torchvision", "torchaudio"):
        version = facts.get("packages", {}).get(name)
        label = _cuda_label(version) if version else None
        if torch_label is None or label is None or label == torch_label:
            continue
        both_cuda = label.startswith("cu") and torch_label.startswith("cu")
        same_major = both_cuda and label[2:-1] == torch_label[2:-1]
        found.append(
            Finding(
                "environment",
                WARNING if same_major else ERROR,
                f"{name} {version} is built for {label}, torch {torch_text} for {torch_label}",
                "torch, torchvision and torchaudio must come from the same PyTorch index",
                "run `llm-sync`: it routes the whole torch family to one index",
            )
        )
    return found


def known_bad_findings(facts: dict[str, Any], catalog: Catalog) -> list[Finding]:
    torch_text = str(facts.get("torch", {}).get("version", "")).split("+")[0]
    try:
        torch_version = Version(torch_text)
    except InvalidVersion:
        return []
    found = []
    packages = facts.get("packages", {})
    for bad in catalog.known_bad:
        installed = packages.get(bad.package)
        if installed and bad.versions.contains(installed) and bad.with_torch.contains(torch_version):
            found.append(
                Finding(
                    "environment",
                    ERROR,
                    f"{bad.package} {installed} with torch {torch_text}",
                    bad.problem,
                    bad.fix,
                )
            )
    vllm = packages.get("vllm")
    if vllm and "vllm" not in {name.lower() for name in facts.get("torch_requirements", {})}:
        pins = [row.torch for row in catalog.vllm if row.vllm.contains(vllm, prereleases=True)]
        if pins and torch_version not in pins:
            found.append(
                Finding(
                    "environment",
                    ERROR,
                    f"vllm {vllm} pins torch=={pins[0]}, but torch {torch_text} is installed",
                    "vllm's compiled kernels fail against another torch",
                    "run `uv sync` (the lock keeps them in step), or pin vllm to a release built for this torch",
                )
            )
    return found
