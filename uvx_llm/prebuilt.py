"""Prebuilt wheels first, compile only when needed: pure, like plan.py.

flash-attn, mamba-ssm and causal-conv1d publish wheels on their GitHub releases,
one per (release, CUDA major, torch major.minor, C++ ABI, CPython). Their setup.py
fetches one during the build, judged by the build environment's torch, and
compiles silently on any error. llm-sync decides instead, from the catalog's
``[[prebuilt]]`` rows, before anything runs:

- ``find``: the wheels that fit a planned torch release, PyTorch variant and the
  project's Pythons, or why none does;
- ``choose``: which torch release to bound to, by the ``prefer`` policy
  ("prebuilt": the newest release that has wheels; "newest": the newest release,
  wheels only if it has them);
- ``sources``: the ``[tool.uv.sources]`` URL entries (one per Python, Linux
  x86_64 only) that let uv lock the wheels with hashes, so nothing is built;
- ``compile_minutes``: the model behind "compiles, about N min on this machine".
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

if TYPE_CHECKING:
    from packaging.version import Version

    from uvx_llm.catalog import BuildPackage, Catalog, Prebuilt, PrebuiltAssets, TorchRelease
    from uvx_llm.project import Project

PYTHONS = tuple(f"3.{minor}" for minor in range(8, 16))  # the CPython minors a plan may meet
DEFAULT_PREFIX = "https://github.com"
PLATFORM = "sys_platform == 'linux' and platform_machine == 'x86_64'"
PREFER = ("prebuilt", "newest")
_TORCH_IN_ASSET = re.compile(r"torch(\d+\.\d+)cxx11abi")


@dataclass(frozen=True)
class Wheel:
    python: str  # "3.11"
    url: str


@dataclass(frozen=True)
class Route:
    """Release wheels of ``package`` that fit the plan: one per Python."""

    package: str
    version: Version
    torch: str  # the torch series the wheels are built for, "2.8"
    wheels: tuple[Wheel, ...]
    source: str

    @property
    def assets(self) -> str:
        """The asset names without the Python tag, for a reason line."""
        return self.wheels[0].url.rsplit("/", 1)[-1] if self.wheels else ""


@dataclass(frozen=True)
class Miss:
    package: str
    reason: str


Result = Route | Miss


def torch_abi(release: TorchRelease, variant: str) -> str:
    """The cxx11abi value in asset names that matches ``variant``'s build of ``release``."""
    return "FALSE" if variant in release.old_abi else "TRUE"


def project_pythons(project: Project, release: TorchRelease) -> tuple[str, ...]:
    """The CPython minors the project allows and ``release`` has wheels for."""
    text = project.table("project").get("requires-python", "")
    wanted = SpecifierSet(text) if isinstance(text, str) else SpecifierSet()
    return tuple(
        py
        for py in PYTHONS
        if wanted.contains(f"{py}.0", prereleases=True) or wanted.contains(f"{py}.99", prereleases=True)
        if release.python.contains(f"{py}.0", prereleases=True)
    )


def wanted(project: Project, catalog: Catalog) -> list[tuple[str, SpecifierSet]]:
    """Declared packages with known release wheels, with the project's combined specifier.

    A package the project routes itself (a source that is not llm-sync's URL entries)
    is the project's business: left out.
    """
    sources = {canonicalize_name(k): v for k, v in project.uv_sources.items()}
    found: dict[str, SpecifierSet] = {}
    for dep_list in project.dependency_lists():
        for requirement in dep_list.requirements:
            name = canonicalize_name(requirement.name)
            if catalog.assets(name) is None or (name in sources and not ours(sources[name])):
                continue
            found[name] = found.get(name, SpecifierSet()) & requirement.specifier
    return list(found.items())


def _tag_major(tag: str) -> int:
    """The CUDA major of a {C} tag: "12" -> 12, "123" -> 12, "118" -> 11."""
    return int(tag[:2]) if len(tag) >= 3 else int(tag)  # noqa: PLR2004 - "118" has three digits


def asset_url(prefix: str, assets: PrebuiltAssets, version: Version, fields: dict[str, str]) -> str:
    name = assets.asset.format(version=version, **fields)
    tag = assets.tag.format(version=version)
    return f"{prefix.rstrip('/')}/{assets.repo}/releases/download/{tag}/{name}"


def _check(  # noqa: PLR0911 - one return per condition, in the order the reasons read
    row: Prebuilt, release: TorchRelease, variant: str, cuda_major: int, pythons: tuple[str, ...]
) -> tuple[dict[str, str] | None, str]:
    """(the asset name's fields, "") when ``row`` has wheels for this combination, else (None, why)."""
    series = release.series()
    if series not in row.torch:
        shown = ", ".join(f"{m}.{n}" for m, n in row.torch)
        return None, f"no wheels for torch {release.release} (only {shown})"
    tag = dict(row.cuda_tag).get(cuda_major)
    if tag is None or tag not in row.cuda:
        return None, f"no wheels for CUDA {cuda_major} (only cu{', cu'.join(row.cuda)})"
    if _tag_major(tag) != cuda_major:
        return None, (
            f"its setup.py would take the cu{tag} wheel for this CUDA {cuda_major} torch, "
            f"built for CUDA {_tag_major(tag)}: llm-sync does not pair them"
        )
    abi = torch_abi(release, variant)
    if abi not in row.abi:
        return None, f"no cxx11abi{abi} wheels (torch {release.release} +{variant})"
    broken = f"cu{tag}torch{release.release}cxx11abi{abi}"
    if broken in row.broken:
        return None, f"its {broken} wheels are built against another C++ ABI and fail to import"
    if not pythons:
        return None, f"the project allows no Python that torch {release.release} has wheels for"
    lacking = [
        py
        for py in pythons
        if not row.python.contains(f"{py}.0", prereleases=True)
        or f"torch{release.release}-cp{py.replace('.', '')}" in row.missing
    ]
    if lacking:
        return None, (
            f"no wheels for Python {', '.join(lacking)}, which requires-python allows "
            "(narrow requires-python to use them)"
        )
    return {"cuda": tag, "torch": release.release, "abi": abi}, ""


def find(
    *,
    catalog: Catalog,
    package: str,
    specifier: SpecifierSet,
    release: TorchRelease,
    variant: str,
    pythons: tuple[str, ...],
    prefix: str = DEFAULT_PREFIX,
) -> Result:
    """The newest release of ``package`` allowed by ``specifier`` with wheels for this plan, or why none."""
    assets = catalog.assets(package)
    if assets is None:
        return Miss(package, "no known release wheels")
    if variant not in catalog.variants:
        return Miss(package, f"release wheels are CUDA builds; the backend is {variant}")
    cuda_major = catalog.cuda_of(variant)[0]
    rows = [r for r in catalog.prebuilt if r.package == package]
    candidates = sorted(
        ((v, r) for r in rows for v in r.published if specifier.contains(v, prereleases=True)),
        key=lambda pair: pair[0],
        reverse=True,
    )
    if not candidates:
        unknown = [r for r in rows if r.unconfirmed and any(s.version for s in specifier)]
        allowed = f"allowed by {package}{specifier}" if str(specifier) else "known"
        why = f"no release {allowed} has known release wheels"
        if unknown:
            why += f" ({unknown[0].source})"
        return Miss(package, why)
    first_reason = ""
    for version, row in candidates:
        fields, why = _check(row, release, variant, cuda_major, pythons)
        if fields is not None:
            wheels = tuple(
                Wheel(py, asset_url(prefix, assets, version, {**fields, "py": py.replace(".", "")}))
                for py in pythons
            )
            return Route(package, version, release.release, wheels, row.source)
        first_reason = first_reason or f"{package} {version}: {why}"
    return Miss(package, first_reason)


def sources(route: Route) -> list[dict[str, str]]:
    """The [tool.uv.sources] entries: one URL per Python, on Linux x86_64 only.

    Elsewhere no entry matches and uv falls back to the package index (the sdist):
    macOS keeps the requirement's Linux-only marker, aarch64 compiles.
    """
    return [{"url": w.url, "marker": f"{PLATFORM} and python_version == '{w.python}'"} for w in route.wheels]


def ours(value: Any) -> bool:
    """Whether a [tool.uv.sources] value is llm-sync's release-wheel entries."""
    entries = value if isinstance(value, list) else [value]
    return bool(entries) and all(
        isinstance(e, dict)
        and set(e) == {"url", "marker"}
        and "/releases/download/" in str(e["url"])
        and PLATFORM in str(e["marker"])
        for e in entries
    )


def recorded_torch(project: Project) -> str | None:
    """The torch series llm-sync's release-wheel sources in the file are built for."""
    for value in project.uv_sources.values():
        if ours(value):
            entries = value if isinstance(value, list) else [value]
            match = _TORCH_IN_ASSET.search(str(entries[0]["url"]))
            if match:
                return match.group(1)
    return None


@dataclass(frozen=True)
class Choice:
    """The torch release to bound to (None: keep the range) and, per package, wheels or why not."""

    release: TorchRelease | None
    results: tuple[Result, ...]
    alternative: TorchRelease | None = None  # the newest release with wheels for all, when not chosen

    @property
    def routes(self) -> tuple[Route, ...]:
        return tuple(r for r in self.results if isinstance(r, Route))

    @property
    def misses(self) -> tuple[Miss, ...]:
        return tuple(r for r in self.results if isinstance(r, Miss))


def choose(
    *,
    catalog: Catalog,
    project: Project,
    packages: list[tuple[str, SpecifierSet]],
    releases: tuple[TorchRelease, ...],
    variant: str,
    prefer: str,
    prefix: str = DEFAULT_PREFIX,
) -> Choice:
    """Which of ``releases`` (oldest first, all built for ``variant``) to bound torch to."""
    if not packages or not releases:
        return Choice(None, ())

    def results(release: TorchRelease) -> tuple[Result, ...]:
        pythons = project_pythons(project, release)
        return tuple(
            find(
                catalog=catalog,
                package=name,
                specifier=spec,
                release=release,
                variant=variant,
                pythons=pythons,
                prefix=prefix,
            )
            for name, spec in packages
        )

    newest = releases[-1]
    at_newest = results(newest)
    complete: tuple[TorchRelease, tuple[Result, ...]] | None = None
    for release in reversed(releases):
        found = at_newest if release is newest else results(release)
        if all(isinstance(x, Route) for x in found):
            complete = (release, found)
            break
    if prefer == "prebuilt" and complete is not None:
        return Choice(complete[0], complete[1])
    chosen = newest if any(isinstance(x, Route) for x in at_newest) else None
    alternative = complete[0] if complete is not None and complete[0] is not newest else None
    return Choice(chosen, at_newest, alternative)


# --- how long a compile takes -------------------------------------------------------------


def compile_minutes(
    package: BuildPackage, *, archs: int, jobs: int, nvcc_threads: int, cpus: int
) -> float | None:
    """Minutes to compile ``package`` on this machine, from the catalog's measured unit time.

    The model (docs/decisions.md, "How long a compile takes"): ninja runs ``jobs``
    compile units at a time, so the build takes ceil(units / jobs) waves; each unit
    compiles once per architecture, ``nvcc_threads`` architectures in parallel, so a
    wave takes ceil(archs / threads) unit-times, stretched when the jobs' threads
    exceed the CPUs. The unit time is measured on one core.
    """
    if package.compile_units is None or package.unit_seconds is None:
        return None
    threads = max(1, min(nvcc_threads, archs))
    waves = math.ceil(package.compile_units / max(1, jobs))
    contention = max(1.0, jobs * threads / max(1, cpus))
    return waves * math.ceil(archs / threads) * package.unit_seconds * contention / 60
