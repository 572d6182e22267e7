"""The planner's side of the prebuilt route: decisions and actions from ``prebuilt``'s answers. Pure.

Two hooks in ``plan.make``:
- ``releases_with_wheels``, before the backend is chosen: under ``prefer = "prebuilt"``
  the newest-first variant choice looks only at torch releases with release wheels
  for every declared package (when there are any this machine runs);
- ``plan``, once the backend is known: the ``[tool.uv.sources]`` URL entries, torch
  bounded to the one release the wheels are built for, and for each package either
  "prebuilt from …" or "compiles, about N min, because …".
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from uvx_llm import bounds, build, prebuilt
from uvx_llm.actions import SetSource
from uvx_llm.errors import LlmSyncError
from uvx_llm.redact import redact, split_credentials
from uvx_llm.torch_fit import TorchScope, choose_variant, evaluate

if TYPE_CHECKING:
    from collections.abc import Callable

    from uvx_llm.actions import Builder, Request
    from uvx_llm.catalog import Catalog, Pair, TorchRelease
    from uvx_llm.machine import Machine
    from uvx_llm.project import Project
    from uvx_llm.resources import Resources

CPU = "cpu"


def releases_with_wheels(
    *,
    project: Project,
    catalog: Catalog,
    request: Request,
    releases: tuple[TorchRelease, ...],
    runs: Callable[[str, TorchRelease], bool],
) -> tuple[tuple[TorchRelease, ...], str] | None:
    """(releases, description) with wheels for every declared package on a variant that ``runs``."""
    packages = prebuilt.wanted(project, catalog)
    if request.prefer != "prebuilt" or not packages:
        return None
    found = tuple(
        release
        for release in releases
        if any(
            runs(variant, release)
            and all(
                isinstance(
                    prebuilt.find(
                        catalog=catalog,
                        package=name,
                        specifier=spec,
                        release=release,
                        variant=variant,
                        pythons=prebuilt.project_pythons(project, release),
                    ),
                    prebuilt.Route,
                )
                for name, spec in packages
            )
            for variant, _ in release.variants
        )
    )
    if not found:
        return None
    names = ", ".join(name for name, _ in packages)
    return (
        found,
        f"the torch releases with prebuilt {names} wheels",
    )


DEFAULT_ARCHS = 4  # flash-attn's own default list, 80;90;100;120, when no set is recorded


def choose_preferring(
    machine: Machine, scope: TorchScope, catalog: Catalog, *, project: Project, request: Request
) -> tuple[str, str]:
    """choose_variant, looking first (prefer = prebuilt) at the releases with release wheels for a
    variant this machine runs; the whole scope when none fits."""
    found = releases_with_wheels(
        project=project,
        catalog=catalog,
        request=request,
        releases=scope.releases,
        runs=lambda variant, release: evaluate(variant, machine, (release,), catalog, "").ok,
    )
    if found is not None:
        with contextlib.suppress(LlmSyncError):
            variant, reason = choose_variant(machine, TorchScope(*found), catalog)
            return variant, f"{reason} (prefer = prebuilt)"
    return choose_variant(machine, scope, catalog)


def newest_fit(machine: Machine | None, scope: TorchScope | None, catalog: Catalog) -> tuple[str, str] | None:
    """(variant, torch series) the newest-first choice takes on this machine: the trade-off's other side."""
    if machine is None or scope is None or not machine.has_nvidia:
        return None
    try:
        variant, _ = choose_variant(machine, scope, catalog)
    except LlmSyncError:
        return None
    fit = evaluate(variant, machine, scope.releases, catalog, scope.description)
    return (variant, fit.releases[-1].release) if fit.releases else None


def _estimate(
    *, package: str, catalog: Catalog, team: tuple[Pair, ...], host: Resources | None, request: Request
) -> str:
    """ "about N min on this machine (…)", or what is unknown."""
    known = catalog.build(package)
    if known is None:
        return "compile time unknown"
    if host is None:
        return "compile time depends on the machine"
    archs = len(team) or DEFAULT_ARCHS
    env = {
        s.name: s.value
        for s in build.tuning(host=host, packages=[known], env=request.environment, archs=team)
    }
    jobs, threads = int(env.get("MAX_JOBS", "1")), int(env.get("NVCC_THREADS", "1"))
    minutes = prebuilt.compile_minutes(known, archs=archs, jobs=jobs, nvcc_threads=threads, cpus=host.cpus)
    if minutes is None:
        return "compile time not measured"
    return (
        f"about {max(1, round(minutes))} min on this machine "
        f"({archs} GPU architecture(s), MAX_JOBS={jobs}, NVCC_THREADS={threads}, {host.cpus} CPUs)"
    )


def plan(
    *,
    machine: Machine | None,
    project: Project,
    catalog: Catalog,
    request: Request,
    backend: str | None,
    releases: tuple[TorchRelease, ...],
    newest: tuple[str, str] | None,
    host: Resources | None,
    out: Builder,
) -> tuple[frozenset[str], tuple[tuple[TorchRelease, ...], str] | None]:
    """(packages routed to release wheels, the torch scope narrowed to their release or None)."""
    packages = prebuilt.wanted(project, catalog)
    if not packages or backend is None:
        return frozenset(), None
    if backend == CPU:
        _withdraw(project, [n for n, _ in packages], "the backend is cpu", out)
        return frozenset(), None
    prefix, username, password = split_credentials(request.prebuilt_url)
    team = build.team_archs(project=project, machine=machine, all_archs=request.all_archs)
    candidates = bounds.torch_releases(
        backend, tuple(r for r in releases if r.archs(backend) is not None), team
    )
    recorded = prebuilt.recorded_torch(project)
    if machine is None and recorded is not None:  # `check`: the file records the release the wheels are for
        candidates = tuple(r for r in candidates if r.release == recorded) or candidates
    choice = prebuilt.choose(
        catalog=catalog,
        project=project,
        packages=packages,
        releases=candidates,
        variant=backend,
        prefer=request.prefer,
        prefix=prefix,
    )
    for route in choice.routes:
        wanted = prebuilt.sources(route)
        if project.uv_sources.get(route.package) != wanted:
            out.actions.append(SetSource(route.package, wanted))
        pythons = ", ".join(w.python for w in route.wheels)
        out.decide(
            "prebuilt",
            f"{route.package} {route.version} from {redact(prefix)}",
            f"release wheels for torch {route.torch} +{backend} (Python {pythons}; {route.assets}): "
            "uv locks them with hashes, nothing compiles, no nvcc needed; Linux x86_64 only "
            f"(macOS keeps the Linux-only marker, aarch64 builds from source). Source: {route.source}",
        )
    if choice.routes:
        _credentials(username, password, out)
        _markers(project, catalog, [r.package for r in choice.routes], out)
    for miss in choice.misses:
        estimate = _estimate(package=miss.package, catalog=catalog, team=team, host=host, request=request)
        out.decide("prebuilt", f"none for {miss.package}: compiles, {estimate}", miss.reason)
    _withdraw(project, [m.package for m in choice.misses], "no release wheel fits any more", out)
    _trade_off(
        choice=choice,
        newest=newest,
        backend=backend,
        catalog=catalog,
        team=team,
        host=host,
        request=request,
        out=out,
    )
    if choice.release is None or not choice.routes:
        return frozenset(), None
    series = choice.release.release
    if len(candidates) > 1:
        out.decide(
            "torch for prebuilt wheels",
            f"torch {series}",
            f"release wheels exist per torch minor: torch is bounded to {series} "
            f"(the project allows {candidates[0].release}–{candidates[-1].release} with {backend})",
        )
    return frozenset(r.package for r in choice.routes), (
        (choice.release,),
        f"torch {series}, the release the prebuilt wheels are built for",
    )


def _credentials(username: str | None, password: str | None, out: Builder) -> None:
    """A prefix with credentials: they go to uv's environment, never to pyproject.toml."""
    if username is None and password is None:
        return
    out.warnings.append(
        "the prebuilt-url carries credentials: they are not written to pyproject.toml; uv reads "
        "credentials for direct URLs from ~/.netrc (or NETRC) and its keyring: add the mirror's host there"
    )


def _markers(project: Project, catalog: Catalog, names: list[str], out: Builder) -> None:
    """The Linux-only marker on routed packages, as for built ones: a Mac resolves no CUDA wheel."""
    known = [b for b in (catalog.build(n) for n in names) if b is not None]
    for marked in build.platform_markers(project, known):
        out.actions.append(marked)
        out.decide(
            "platform marker", marked.new, "release wheels are Linux CUDA builds: a Mac skips the package"
        )


def _withdraw(project: Project, names: list[str], why: str, out: Builder) -> None:
    """Remove llm-sync's own release-wheel entries for ``names`` (the package builds again)."""
    for name in names:
        value = next((v for k, v in project.uv_sources.items() if k == name), None)
        if value is not None and prebuilt.ours(value):
            out.actions.append(SetSource(name, None))
            out.decide("prebuilt", f"remove {name}'s release-wheel sources", why)


def _trade_off(
    *,
    choice: prebuilt.Choice,
    newest: tuple[str, str] | None,
    backend: str,
    catalog: Catalog,
    team: tuple[Pair, ...],
    host: Resources | None,
    request: Request,
    out: Builder,
) -> None:
    """When torch is open: what the other policy would cost ("seconds" against "about N min")."""
    names = [r.package for r in choice.results]
    compiled = next(iter(names), "")
    if choice.routes and choice.release is not None and newest is not None:
        variant, series = newest
        if series == choice.release.release:
            return
        estimate = _estimate(package=compiled, catalog=catalog, team=team, host=host, request=request)
        out.decide(
            "trade-off",
            f'prefer = "{request.prefer}"',
            f"torch {choice.release.release} (+{backend}) → prebuilt {', '.join(names)}, seconds; "
            f"torch {series} (+{variant}) → compile, {estimate}. "
            'Set prefer = "newest" for the newest torch',
        )
    elif choice.alternative is not None:
        estimate = _estimate(package=compiled, catalog=catalog, team=team, host=host, request=request)
        out.decide(
            "trade-off",
            f'prefer = "{request.prefer}"',
            f"torch {choice.alternative.release} (+{backend}) → prebuilt {', '.join(names)}, seconds; "
            f"the newest torch → compile, {estimate}. "
            'Set prefer = "prebuilt" to take the prebuilt wheels',
        )
