"""The compatibility knowledge in catalog.toml, loaded into values with queries."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import Version

# (major, minor): a CUDA version such as 12.8 or a compute capability such as 9.0.
from uvx_llm import tomlread

Pair = tuple[int, int]


def parse_pair(text: str) -> Pair:
    """ "12.8" -> (12, 8); also accepts "sm_90"/"90" forms of compute capabilities."""
    cleaned = text.strip().lower().removeprefix("sm_").removeprefix("compute_")
    if "." in cleaned:
        major, _, minor = cleaned.partition(".")
        return int(major), int(minor)
    if cleaned.isdigit() and len(cleaned) >= 2:  # noqa: PLR2004 - "90" is sm_90
        return int(cleaned[:-1]), int(cleaned[-1])
    raise ValueError(f"not a MAJOR.MINOR pair: {text!r}")


def show_pair(pair: Pair) -> str:
    return f"{pair[0]}.{pair[1]}"


def show_sm(capability: Pair) -> str:
    return f"sm_{capability[0]}{capability[1]}"


def runs_on(built: Pair, gpu: Pair) -> bool:
    """CUDA binary compatibility: code for X.Y runs on X.Z with Z >= Y."""
    return built[0] == gpu[0] and built[1] <= gpu[1]


@dataclass(frozen=True)
class TorchRelease:
    release: str
    versions: tuple[Version, ...]
    variants: tuple[tuple[str, tuple[Pair, ...]], ...]
    unconfirmed: frozenset[str]
    source: str

    def archs(self, variant: str) -> tuple[Pair, ...] | None:
        for name, archs in self.variants:
            if name == variant:
                return archs
        return None

    def series(self) -> Pair:
        return parse_pair(self.release)

    def allows(self, specifier: SpecifierSet) -> bool:
        """Whether a version of this release satisfies ``specifier``.

        Known versions are tried first; a version the specifier names in this
        series (a patch release newer than the catalog) counts too.
        """
        named = [Version(spec.version.rstrip(".*")) for spec in specifier if spec.version[0].isdigit()]
        candidates = [*self.versions, *(v for v in named if (v.major, v.minor) == self.series())]
        return any(specifier.contains(v, prereleases=True) for v in candidates)


@dataclass(frozen=True)
class VllmPin:
    vllm: SpecifierSet
    torch: Version


@dataclass(frozen=True)
class BuildPackage:
    """How to build one CUDA-extension source package."""

    name: str
    requires: tuple[str, ...]
    gib_per_nvcc_thread: float
    default_nvcc_threads: int
    arch_variable: str | None
    min_capability: Pair | None
    uv_min_version: Version
    source: str
    platform_marker: str | None = None


@dataclass(frozen=True)
class Mirror:
    name: str
    pypi: str | None
    pytorch: str | None
    pytorch_format: str  # "simple" or "flat"
    source: str


@dataclass(frozen=True)
class Guard:
    torch_at_most: Pair
    constraint: str
    reason: str


@dataclass(frozen=True)
class KnownBad:
    package: str
    versions: SpecifierSet
    with_torch: SpecifierSet
    problem: str
    fix: str


@dataclass(frozen=True)
class Stack:
    framework: str
    versions: SpecifierSet
    pins: tuple[tuple[str, SpecifierSet], ...]


@dataclass(frozen=True)
class Catalog:
    updated: str
    index_base: str
    family: tuple[str, ...]
    consumers: frozenset[str]
    uv_min_routing: Version
    toolkit_min_driver: tuple[tuple[Pair, Version], ...]
    family_min_driver: tuple[tuple[int, Version], ...]
    variant_cuda: tuple[tuple[str, Pair], ...]
    torch: tuple[TorchRelease, ...]
    vllm: tuple[VllmPin, ...]
    builds: tuple[BuildPackage, ...]
    mirrors: tuple[Mirror, ...] = ()
    guards: tuple[Guard, ...] = ()
    known_bad: tuple[KnownBad, ...] = ()
    stacks: tuple[Stack, ...] = ()

    def mirror(self, name: str) -> Mirror | None:
        return next((m for m in self.mirrors if m.name == name), None)

    def build(self, name: str) -> BuildPackage | None:
        return next((b for b in self.builds if b.name == name), None)

    @property
    def variants(self) -> tuple[str, ...]:
        """Variant names, newest CUDA first."""
        return tuple(name for name, _ in sorted(self.variant_cuda, key=lambda v: v[1], reverse=True))

    @property
    def backends(self) -> tuple[str, ...]:
        return ("cpu", *self.variants)

    def cuda_of(self, variant: str) -> Pair:
        return dict(self.variant_cuda)[variant]

    def max_cuda_for_driver(self, driver: Version) -> Pair | None:
        """Highest CUDA toolkit whose minimum driver is at most ``driver``."""
        fitting = [cuda for cuda, minimum in self.toolkit_min_driver if minimum <= driver]
        return max(fitting) if fitting else None

    def family_minimum(self, major: int) -> Version | None:
        return dict(self.family_min_driver).get(major)

    def releases_with(self, variant: str) -> tuple[TorchRelease, ...]:
        return tuple(r for r in self.torch if r.archs(variant) is not None)


def _pairs(values: list[str]) -> tuple[Pair, ...]:
    return tuple(parse_pair(v) for v in values)


def from_data(data: dict[str, Any]) -> Catalog:
    pytorch = data["pytorch"]
    return Catalog(
        updated=data["updated"],
        index_base=pytorch["index-base"],
        family=tuple(pytorch["family"]),
        consumers=frozenset(pytorch["consumers"]),
        uv_min_routing=Version(data["uv"]["min-version-routing"]),
        toolkit_min_driver=tuple(
            (parse_pair(cuda), Version(driver)) for cuda, driver in data["cuda"]["toolkit-min-driver"].items()
        ),
        family_min_driver=tuple(
            (int(major), Version(driver)) for major, driver in data["cuda"]["family-min-driver"].items()
        ),
        variant_cuda=tuple((name, parse_pair(row["cuda"])) for name, row in data["variants"].items()),
        torch=tuple(
            TorchRelease(
                release=row["release"],
                versions=tuple(Version(v) for v in row["versions"]),
                variants=tuple((name, _pairs(archs)) for name, archs in row["variants"].items()),
                unconfirmed=frozenset(row.get("unconfirmed", ())),
                source=row["source"],
            )
            for row in data["torch"]
        ),
        vllm=tuple(
            VllmPin(vllm=SpecifierSet(row["vllm"]), torch=Version(row["torch"])) for row in data["vllm"]
        ),
        builds=tuple(
            BuildPackage(
                name=name,
                requires=tuple(row["requires"]),
                gib_per_nvcc_thread=float(row["gib-per-nvcc-thread"]),
                default_nvcc_threads=int(row["default-nvcc-threads"]),
                arch_variable=row.get("arch-variable"),
                min_capability=parse_pair(row["min-capability"]) if "min-capability" in row else None,
                uv_min_version=Version(row["uv-min-version"]),
                source=row["source"],
                platform_marker=row.get("platform-marker"),
            )
            for name, row in data.get("build", {}).items()
        ),
        mirrors=tuple(
            Mirror(
                name=name,
                pypi=row.get("pypi"),
                pytorch=row.get("pytorch"),
                pytorch_format=row.get("pytorch-format", "simple"),
                source=row["source"],
            )
            for name, row in data.get("mirrors", {}).items()
        ),
        guards=tuple(
            Guard(parse_pair(row["torch-at-most"]), row["constraint"], row["reason"])
            for row in data.get("guards", [])
        ),
        known_bad=tuple(
            KnownBad(
                row["package"],
                SpecifierSet(row["versions"]),
                SpecifierSet(row["with-torch"]),
                row["problem"],
                row["fix"],
            )
            for row in data.get("known-bad", [])
        ),
        stacks=tuple(
            Stack(
                row["framework"],
                SpecifierSet(row["versions"]),
                tuple((name, SpecifierSet(spec)) for name, spec in row["pins"].items()),
            )
            for row in data.get("stacks", [])
        ),
    )


@cache
def load() -> Catalog:
    """The catalog shipped in the package."""
    # Next to this module (importlib.resources would cost a pre-commit hook ~10 ms of imports).
    text = Path(__file__).with_name("catalog.toml").read_text(encoding="utf-8")
    return from_data(tomlread.loads(text))
