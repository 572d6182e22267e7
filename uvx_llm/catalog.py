"""The compatibility knowledge in catalog.toml, loaded into values with queries."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

# (major, minor): a CUDA version such as 12.8 or a compute capability such as 9.0.
from uvx_llm import tomlread
from uvx_llm.catalog_rows import Row, bad
from uvx_llm.errors import ExitCode, LlmSyncError

Pair = tuple[int, int]
XPU = "xpu"


_VERSION_PAIR = re.compile(
    r"([0-9]{1,3})\.([0-9]{1,3})"
)  # ASCII digits only: never "-12.8" or full-width digits
# A compute capability as TORCH_CUDA_ARCH_LIST, nvcc and the docs write it: 9.0, 9.0a, sm_90, sm_90a,
# compute_90, 90. The a/f suffix (arch- or family-specific features) names the same GPUs.
_CAPABILITY = re.compile(r"(?:sm_|compute_)?(?:([0-9]{1,2})\.([0-9])|([0-9]{1,2})([0-9]))[af]?")
# Compute capabilities that exist or may: majors 1 (Tesla) to 19 (room for GPUs to come);
# the minor is one digit, else sm_XY would not say which is which.
MAX_CAPABILITY_MAJOR = 19


def parse_pair(text: str) -> Pair:
    """ "12.8" -> (12, 8); also accepts the compute-capability forms of parse_capability."""
    found = _VERSION_PAIR.fullmatch(text.strip())
    if found:
        return int(found.group(1)), int(found.group(2))
    return parse_capability(text)


def parse_version_pair(text: str) -> Pair:
    """A CUDA version, MAJOR.MINOR in ASCII digits: "12.8" -> (12, 8); "12", "-12.8" raise ValueError."""
    found = _VERSION_PAIR.fullmatch(text.strip())
    if not found:
        raise ValueError(f"not a MAJOR.MINOR version: {text!r}")
    return int(found.group(1)), int(found.group(2))


def parse_capability(text: str) -> Pair:
    """A compute capability: "9.0", "9.0a", "sm_90", "sm_90a", "90" -> (9, 0); ValueError for anything
    else, and for majors no GPU has or will soon have (99.0 would read as sm_990)."""
    found = _CAPABILITY.fullmatch(text.strip().lower())
    if not found:
        raise ValueError(f"not a compute capability: {text!r}")
    major, minor = (found.group(1), found.group(2)) if found.group(1) else (found.group(3), found.group(4))
    pair = int(major), int(minor)
    if not 1 <= pair[0] <= MAX_CAPABILITY_MAJOR:
        raise ValueError(f"no GPU has compute capability {pair[0]}.{pair[1]}")
    return pair


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
    old_abi: frozenset[str] = frozenset()  # builds with the pre-C++11 ABI; "pypi": the PyPI wheel
    pypi_cuda: Pair | None = None  # the CUDA runtime the PyPI Linux wheel requires
    python: SpecifierSet = field(default_factory=SpecifierSet)  # CPython versions with Linux wheels
    rocm: tuple[tuple[str, tuple[str, ...]], ...] = ()  # ROCm variants and their gfx targets
    xpu: bool = False  # an xpu (Intel GPU) build exists

    def archs(self, variant: str) -> tuple[Pair, ...] | None:
        """The compute capabilities of a CUDA variant; () for a ROCm or xpu build this release has
        (their GPUs are not compute capabilities: see gfx); None when the release lacks it."""
        for name, archs in self.variants:
            if name == variant:
                return archs
        if self.gfx(variant) is not None or (variant == XPU and self.xpu):
            return ()
        return None

    def gfx(self, variant: str) -> tuple[str, ...] | None:
        """The gfx targets of a ROCm variant (PYTORCH_ROCM_ARCH); None when the release lacks it."""
        return next((archs for name, archs in self.rocm if name == variant), None)

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
    requires_python: SpecifierSet = field(default_factory=SpecifierSet)
    # Where the pin comes from: "" for the catalog's rows; a release newer than the catalog
    # whose METADATA was read from the index says so here (newer.py).
    source: str = ""


def newest_vllm(pins: tuple[VllmPin, ...]) -> Version | None:
    """The newest vllm release the catalog's rows name (``==X`` or ``<=X``)."""
    named = [
        Version(s.version) for pin in pins if not pin.source for s in pin.vllm if s.operator in {"==", "<="}
    ]
    return max(named, default=None)


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
    compile_units: int | None = None  # ninja steps of a full build
    unit_seconds: float | None = None  # wall seconds of one step for one architecture on one core
    variables: tuple[tuple[str, str], ...] = ()  # build variables that shape the wheel, always written
    disable_without: tuple[
        tuple[str, int], ...
    ] = ()  # (variable, major): TRUE when no team GPU has that major
    arch_note: str | None = None  # why the package keeps its own architecture list
    mode: str = "compile"  # "jit": nothing compiles at install unless a `build_on` variable is "1"
    build_on: tuple[str, ...] = ()  # variables (a trailing * matches a prefix) that turn a jit build on
    needs_header: str | None = None  # included from CUDA_HOME/include: refused early when absent
    declared_via: tuple[str, ...] = ()  # packages whose declaration brings this build in
    known: bool = True  # False: a torch cpp_extension build the catalog has no row for


@dataclass(frozen=True)
class Mirror:
    name: str
    pypi: str | None
    pytorch: str | None
    pytorch_format: str  # "simple" or "flat"
    source: str


@dataclass(frozen=True)
class Guard:
    """A constraint for where the torch release in play is ``torch`` built with C++ ABI ``abi``."""

    torch: Pair
    abi: str  # "old": the pre-C++11 ABI
    constraint: str
    reason: str


@dataclass(frozen=True)
class Prebuilt:
    """Releases of a CUDA-extension package that publish prebuilt wheels for these torch
    series and CUDA tags (``cuda``: as in the wheel's file name)."""

    package: str
    versions: SpecifierSet
    torch: tuple[Pair, ...]
    cuda: tuple[str, ...]
    python: SpecifierSet
    unconfirmed: bool
    published: tuple[Version, ...] = ()  # the releases of ``versions`` that exist (PyPI and a GitHub release)
    cuda_tag: tuple[tuple[int, str], ...] = ()  # the {C} setup.py names for a torch of each CUDA major
    abi: tuple[str, ...] = ("TRUE", "FALSE")  # the cxx11abi values built
    missing: frozenset[str] = frozenset()  # "torch2.4-cp313": combinations the matrix excludes
    broken: frozenset[str] = frozenset()  # "cu12torch2.6cxx11abiFALSE": wheels that fail to import
    source: str = ""


@dataclass(frozen=True)
class PrebuiltAssets:
    """Where a package's release wheels live: <prefix>/<repo>/releases/download/<tag>/<asset>."""

    package: str
    repo: str
    tag: str  # "v{version}"
    asset: str  # with {version} {cuda} {torch} {abi} {py}


@dataclass(frozen=True)
class KnownBad:
    package: str
    versions: SpecifierSet
    with_torch: SpecifierSet
    problem: str
    fix: str


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
    prebuilt: tuple[Prebuilt, ...] = ()
    prebuilt_assets: tuple[PrebuiltAssets, ...] = ()
    variant_rocm: tuple[tuple[str, str], ...] = ()  # ROCm variant -> the ROCm release it bundles

    @property
    def rocm_variants(self) -> tuple[str, ...]:
        """ROCm variant names, newest ROCm first."""
        return tuple(name for name, _ in sorted(self.variant_rocm, key=lambda v: Version(v[1]), reverse=True))

    def rocm_of(self, variant: str) -> Version:
        return Version(dict(self.variant_rocm)[variant])

    @staticmethod
    def is_rocm(variant: str) -> bool:
        return variant.startswith("rocm")

    def assets(self, package: str) -> PrebuiltAssets | None:
        return next((a for a in self.prebuilt_assets if a.package == package), None)

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
        return ("cpu", *self.variants, *self.rocm_variants, XPU)

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


SCHEMA = 1  # the catalog layout this code reads
ABIS = ("old",)


def _pair_list(row: Row, key: str) -> tuple[Pair, ...]:
    return tuple(_convert_value(row, key, value, parse_pair) for value in row.strings(key))


def _convert_value(row: Row, key: str, value: str, parse: Any) -> Any:
    try:
        return parse(value)
    except (InvalidSpecifier, InvalidVersion, ValueError) as error:
        raise bad(row.where, f"{key}: {value!r}: {error}") from error


def _torch(
    rows: list[Row], pypi: list[Row], variant_names: set[str], rocm_names: set[str]
) -> tuple[TorchRelease, ...]:
    on_pypi = {row.text("release"): row for row in pypi}
    found = []
    for row in rows:
        release = row.text("release")
        _convert_value(row, "release", release, parse_pair)
        row.text("source")
        row.text("checked")
        variants_row = row.table("variants")
        variants = tuple((name, _pair_list(variants_row, name)) for name, _ in variants_row.items())
        names = {name for name, _ in variants}
        unknown = names - variant_names
        if unknown:
            raise bad(row.where, f"variants {sorted(unknown)} are not in [variants]")
        unconfirmed = frozenset(row.strings("unconfirmed", []))
        if not unconfirmed <= names:
            raise bad(row.where, f"unconfirmed = {sorted(unconfirmed)} names variants the row does not have")
        old_abi = frozenset(row.strings("old-abi", []))
        if not old_abi <= names | {"pypi"}:
            raise bad(row.where, f"old-abi = {sorted(old_abi)} names variants the row does not have")
        metadata = on_pypi.get(release)
        if metadata is None:
            raise bad(
                row.where,
                f"no [[torch-pypi]] row for torch {release}: run `python -m uvx_llm.refresh --write`",
            )
        versions = tuple(
            _convert_value(metadata, "versions", v, Version) for v in metadata.strings("versions")
        )
        if not versions:
            raise bad(metadata.where, "versions is empty")
        cuda = metadata.convert("pypi-cuda", parse_pair, None)
        python = row.convert("python", SpecifierSet, SpecifierSet())
        rocm_row = row.table("rocm", {})
        rocm = tuple((name, tuple(rocm_row.strings(name))) for name, _ in rocm_row.items())
        unknown_rocm = {name for name, _ in rocm} - rocm_names
        if unknown_rocm:
            raise bad(row.where, f"rocm variants {sorted(unknown_rocm)} are not in [rocm-variants]")
        if rocm:
            row.text("rocm-source")
            row.text("rocm-checked")
        found.append(
            TorchRelease(
                release=release,
                versions=versions,
                variants=variants,
                unconfirmed=unconfirmed,
                source=row.text("source"),
                old_abi=old_abi,
                pypi_cuda=cuda,
                python=python,
                rocm=rocm,
                xpu=row.get("xpu", bool, False),
            )
        )
    return tuple(found)


def from_data(data: dict[str, Any]) -> Catalog:
    """The catalog from parsed TOML; a malformed one is an LlmSyncError naming the row and key."""
    top = Row("catalog.toml", data)
    schema = top.get("schema", int)
    if schema != SCHEMA:
        raise LlmSyncError(
            f"the compatibility catalog has schema {schema}; this llm-sync reads schema {SCHEMA}",
            why="the catalog's layout changed between versions",
            fix="use the catalog shipped with this llm-sync, or upgrade llm-sync",
            exit_code=ExitCode.INTERNAL,
        )
    pytorch = top.table("pytorch")
    cuda = top.table("cuda")
    toolkit = cuda.table("toolkit-min-driver")
    family = cuda.table("family-min-driver")
    variants = top.table("variants")
    variant_cuda = tuple(
        (name, variants.table(name).convert("cuda", parse_pair)) for name, _ in variants.items()
    )
    rocm_variants = top.table("rocm-variants", {})
    variant_rocm = tuple(
        (name, str(rocm_variants.table(name).convert("rocm", Version))) for name, _ in rocm_variants.items()
    )
    return Catalog(
        updated=top.text("updated"),
        index_base=pytorch.text("index-base"),
        family=tuple(pytorch.strings("family")),
        consumers=frozenset(pytorch.strings("consumers")),
        uv_min_routing=top.table("uv").convert("min-version-routing", Version),
        toolkit_min_driver=tuple(
            (_convert_value(toolkit, "key", key, parse_pair), toolkit.convert(key, Version))
            for key, _ in toolkit.items()
        ),
        family_min_driver=tuple(
            (_convert_value(family, "key", key, int), family.convert(key, Version))
            for key, _ in family.items()
        ),
        variant_cuda=variant_cuda,
        torch=_torch(
            top.rows("torch"),
            top.rows("torch-pypi"),
            {name for name, _ in variant_cuda},
            {name for name, _ in variant_rocm},
        ),
        variant_rocm=variant_rocm,
        vllm=tuple(
            VllmPin(
                vllm=row.convert("vllm", SpecifierSet),
                torch=row.convert("torch", Version),
                requires_python=row.convert("requires-python", SpecifierSet, SpecifierSet()),
            )
            for row in top.rows("vllm")
        ),
        builds=tuple(
            _build(name, top.table("build").table(name)) for name, _ in top.table("build", {}).items()
        ),
        mirrors=tuple(
            _mirror(name, top.table("mirrors").table(name)) for name, _ in top.table("mirrors", {}).items()
        ),
        guards=tuple(_guard(row) for row in top.rows("guards")),
        known_bad=tuple(_knownbad(row) for row in top.rows("known-bad")),
        prebuilt=tuple(_prebuilt(row) for row in top.rows("prebuilt")),
        prebuilt_assets=tuple(
            _assets(name, top.table("prebuilt-assets").table(name))
            for name, _ in top.table("prebuilt-assets", {}).items()
        ),
    )


_ABI_VALUES = ("TRUE", "FALSE")
_ASSET_FIELDS = ("{version}", "{cuda}", "{torch}", "{abi}", "{py}")


def _prebuilt(row: Row) -> Prebuilt:
    row.text("checked")
    unconfirmed = row.get("unconfirmed", bool, False)
    versions = row.convert("versions", SpecifierSet)
    published = tuple(_convert_value(row, "published", v, Version) for v in row.strings("published", []))
    outside = [str(v) for v in published if not versions.contains(v, prereleases=True)]
    if outside:
        raise bad(row.where, f"published {outside} are outside versions = {str(versions)!r}")
    cuda = tuple(row.strings("cuda"))
    tags = row.table("cuda-tag", {})
    cuda_tag = tuple(
        (_convert_value(tags, "cuda-tag", major, int), str(tags.text(major))) for major, _ in tags.items()
    )
    abi = tuple(row.strings("abi", list(_ABI_VALUES)))
    if not set(abi) <= set(_ABI_VALUES):
        raise bad(row.where, f"abi = {list(abi)} must be among {list(_ABI_VALUES)}")
    if published and not cuda_tag:
        raise bad(row.where, "a row with published releases needs cuda-tag")
    return Prebuilt(
        canonicalize_name(row.text("package")),
        versions,
        _pair_list(row, "torch"),
        cuda,
        row.convert("python", SpecifierSet),
        unconfirmed,
        published=published,
        cuda_tag=cuda_tag,
        abi=abi,
        missing=frozenset(row.strings("missing", [])),
        broken=frozenset(row.strings("broken", [])),
        source=row.text("source"),
    )


def _assets(name: str, row: Row) -> PrebuiltAssets:
    row.text("source")
    asset = row.text("asset")
    absent = [f for f in _ASSET_FIELDS if f not in asset]
    if absent or not asset.endswith(".whl"):
        raise bad(row.where, f"asset = {asset!r} must be a .whl name with {', '.join(_ASSET_FIELDS)}")
    return PrebuiltAssets(canonicalize_name(name), row.text("repo"), row.text("tag"), asset)


def _knownbad(row: Row) -> KnownBad:
    row.text("source")
    row.text("checked")
    return KnownBad(
        canonicalize_name(row.text("package")),
        row.convert("versions", SpecifierSet),
        row.convert("with-torch", SpecifierSet),
        row.text("problem"),
        row.text("fix"),
    )


def _build(name: str, row: Row) -> BuildPackage:
    return BuildPackage(
        name=name,
        requires=tuple(row.strings("requires")),
        gib_per_nvcc_thread=float(row.get("gib-per-nvcc-thread", (int, float))),
        default_nvcc_threads=int(row.get("default-nvcc-threads", int)),
        arch_variable=row.text("arch-variable", None),
        min_capability=row.convert("min-capability", parse_pair, None),
        uv_min_version=row.convert("uv-min-version", Version),
        source=row.text("source"),
        platform_marker=row.text("platform-marker", None),
        compile_units=row.get("compile-units", int, None),
        unit_seconds=None if "unit-seconds" not in row.data else float(row.get("unit-seconds", (int, float))),
        variables=tuple((str(k), str(v)) for k, v in row.get("variables", dict, {}).items()),
        disable_without=tuple((str(k), int(v)) for k, v in row.get("disable-without", dict, {}).items()),
        arch_note=row.text("arch-note", None),
        mode=row.text("mode", "compile"),
        build_on=tuple(row.strings("build-on", [])),
        needs_header=row.text("needs-header", None),
        declared_via=tuple(canonicalize_name(n) for n in row.strings("declared-via", [])),
    )


def _mirror(name: str, row: Row) -> Mirror:
    pytorch_format = row.text("pytorch-format", "simple")
    if pytorch_format not in {"simple", "flat"}:
        raise bad(row.where, f"pytorch-format = {pytorch_format!r} is not 'simple' or 'flat'")
    return Mirror(
        name=name,
        pypi=row.text("pypi", None),
        pytorch=row.text("pytorch", None),
        pytorch_format=pytorch_format,
        source=row.text("source"),
    )


def _guard(row: Row) -> Guard:
    abi = row.text("abi")
    if abi not in ABIS:
        raise bad(row.where, f"abi = {abi!r} is not one of {list(ABIS)}")
    row.text("source")
    row.text("checked")
    constraint = row.text("constraint")
    _convert_value(row, "constraint", constraint, Requirement)
    return Guard(row.convert("torch", parse_pair), abi, constraint, row.text("reason"))


def from_text(text: str, origin: str = "catalog.toml") -> Catalog:
    try:
        data = tomlread.loads(text)
    except ValueError as error:  # tomllib.TOMLDecodeError and tomlkit's errors are ValueErrors
        raise LlmSyncError(
            f"the compatibility catalog {origin} is not valid TOML",
            why=str(error),
            fix="reinstall llm-sync, or fix the file",
            exit_code=ExitCode.INTERNAL,
        ) from error
    return from_data(data)


@cache
def load() -> Catalog:
    """The catalog shipped in the package."""
    # Next to this module (importlib.resources would cost a pre-commit hook ~10 ms of imports).
    return from_text(Path(__file__).with_name("catalog.toml").read_text(encoding="utf-8"))
