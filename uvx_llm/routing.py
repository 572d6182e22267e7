"""How pyproject.toml routes torch: what the project already routes, the backend to
record, and the indexes and sources that send Linux to the GPU build and every other
platform to CPU wheels. Pure, no I/O; the edits are actions that ``patch`` applies.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from packaging.utils import canonicalize_name

from uvx_llm import config, nightly_triton, prebuilt_plan, rocm_fit
from uvx_llm.actions import (
    AddRequirement,
    Builder,
    EnvSetting,
    RemoveIndex,
    Request,
    SetConfig,
    SetIndex,
    SetSource,
)
from uvx_llm.catalog import XPU
from uvx_llm.errors import LlmSyncError, NotYetPlannedError
from uvx_llm.redact import redact, split_credentials, uv_index_variable
from uvx_llm.torch_fit import CPU, TorchScope, choose_variant, evaluate, torch_scope, vllm_cuda_fit

if TYPE_CHECKING:
    from packaging.requirements import Requirement
    from packaging.version import Version

    from uvx_llm.catalog import Catalog
    from uvx_llm.machine import Machine
    from uvx_llm.project import DepList, Project

LINUX = "sys_platform == 'linux'"
NOT_LINUX = "sys_platform != 'linux'"
_VARIANTS = r"cu\d{3}|cpu|rocm\d+(?:\.\d+)+|xpu"
_VARIANT_IN_URL = re.compile(rf"/({_VARIANTS})/?$")
_VARIANT_IN_NAME = re.compile(rf"^pytorch-(?:test-|nightly-)?({_VARIANTS})$")
STABLE = "stable"


# --- what the project already routes ----------------------------------------------------------


def index_name(backend: str, channel: str = STABLE) -> str:
    """pytorch-cu128; pytorch-nightly-cu128 on PyTorch's nightly channel (test: release candidates)."""
    return f"pytorch-{backend}" if channel == STABLE else f"pytorch-{channel}-{backend}"


def index_path(backend: str, channel: str = STABLE) -> str:
    """Below the index base: cu128, or nightly/cu128."""
    return backend if channel == STABLE else f"{channel}/{backend}"


def desired_source(backend: str, channel: str = STABLE) -> Any:
    if backend == CPU:
        return {"index": index_name(CPU, channel)}
    return [
        {"index": index_name(backend, channel), "marker": LINUX},
        {"index": index_name(CPU, channel), "marker": NOT_LINUX},
    ]


def _entries(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return []


@dataclass(frozen=True)
class Routing:
    """torch-family sources already in the project."""

    sources: dict[str, Any]
    per_extra: bool
    variants: tuple[str, ...]  # PyTorch variants those sources point at
    extra_map: tuple[tuple[str, str], ...]  # (extra or group, variant) for per-extra routing


def _variant_of_index(name: str, indexes: list[dict[str, Any]]) -> str | None:
    for index in indexes:
        if index.get("name") == name:
            match = _VARIANT_IN_URL.search(str(index.get("url", "")))
            if match:
                return match.group(1)
    match = _VARIANT_IN_NAME.match(name)
    return match.group(1) if match else None


def existing_routing(project: Project, catalog: Catalog) -> Routing:
    sources = {p: v for p, v in project.uv_sources.items() if canonicalize_name(p) in catalog.family}
    entries = [e for v in sources.values() for e in _entries(v)]
    variants, extra_map = [], []
    for entry in entries:
        variant = _variant_of_index(str(entry.get("index", "")), project.uv_indexes)
        if variant and variant not in variants:
            variants.append(variant)
        selector = entry.get("extra") or entry.get("group")
        if selector and variant and (selector, variant) not in extra_map:
            extra_map.append((str(selector), variant))
    per_extra = any("extra" in e or "group" in e for e in entries)
    return Routing(sources, per_extra, tuple(variants), tuple(extra_map))


def _per_extra_plan(
    routing: Routing, machine: Machine | None, scope: TorchScope, catalog: Catalog, out: Builder
) -> None:
    shown = ", ".join(f"{extra} → {variant}" for extra, variant in routing.extra_map)
    out.decide(
        "pytorch routing",
        "kept (per extra)",
        f"the project routes torch per extra ({shown}); llm-sync keeps it and writes no routing of its own "
        "(remove those sources to let llm-sync route torch instead)",
    )
    extras = [extra for extra, variant in routing.extra_map if variant != CPU]
    if extras:
        out.decide(
            "how to sync",
            f"llm-sync -- --extra {extras[0]}",
            "pick one of the project's extras; its [tool.uv] conflicts keep incompatible ones apart",
        )
    if machine is not None and machine.has_nvidia:
        gpu_variants = [v for v in routing.variants if v != CPU and v in catalog.variants]
        fits = [
            evaluate(v, machine, scope.releases, catalog, scope.description, vllm=scope.vllm)
            for v in gpu_variants
        ]
        if fits and not any(f.ok for f in fits):
            out.warnings.append(
                "this machine cannot run the project's torch variants: "
                + "; ".join(f"{f.variant}: {f.problems[0]}" for f in fits)
            )


def _recorded_backend_error(
    *, backend: str, origin: str, problem: str, machine: Machine, scope: TorchScope, catalog: Catalog
) -> LlmSyncError:
    try:
        best, _ = _best_for(machine, scope, catalog)
        retarget = f"to retarget the project for every machine: llm-sync --backend {best}"
    except LlmSyncError:
        retarget = "use --backend cpu, or update the NVIDIA driver"
    return LlmSyncError(
        f"{origin} says backend {backend}, but {machine.who} cannot run it",
        why=f"{backend}: {problem}",
        fix=f"{retarget} (this changes pyproject.toml for the whole team); or run on a machine that can",
    )


def _best_for(machine: Machine, scope: TorchScope, catalog: Catalog) -> tuple[str, str]:
    """The backend ``machine`` runs best, without the prebuilt-wheel preference."""
    if machine.has_nvidia:
        return choose_variant(machine, scope, catalog)
    if machine.has_amd:
        variant, reason, _ = rocm_fit.choose_rocm(machine, scope, catalog)
        return variant, reason
    if any(not g.integrated for g in machine.intel):
        return rocm_fit.choose_xpu(machine, scope)
    return CPU, ""


def _non_cuda(backend: str, catalog: Catalog) -> bool:
    return catalog.is_rocm(backend) or backend == XPU


def _inferred_backend(routing: Routing) -> str | None:
    """The one variant hand-written routing points at (a GPU one beside pytorch-cpu counts)."""
    gpu_variants = [v for v in routing.variants if v != CPU]
    if len(gpu_variants) == 1:
        return gpu_variants[0]
    if not gpu_variants and routing.variants:
        return CPU
    return None


def _refuse_a_broken_driver(machine: Machine) -> None:
    """No GPU found because the NVIDIA software here fails: `cpu` would be recorded for the team."""
    if not machine.has_nvidia and machine.trouble:
        raise LlmSyncError(
            "the NVIDIA driver on this machine is not working; llm-sync will not record `cpu` for the team",
            why="; ".join(machine.trouble),
            fix=(
                "repair the driver (after a driver update: reboot, or reload the nvidia kernel modules) and run "
                "llm-sync again; or plan for the GPUs it should have with --cuda X.Y --arch X.Y, or ask for CPU "
                "wheels on purpose with --backend cpu"
            ),
        )


def _backend_without_nvidia(machine: Machine, scope: TorchScope, catalog: Catalog, out: Builder) -> str:
    """AMD (ROCm), then a discrete Intel GPU (xpu), else CPU wheels."""
    if machine.has_amd:
        variant, reason, warnings = rocm_fit.choose_rocm(machine, scope, catalog)
        out.warnings.extend(warnings)
        out.decide("backend", variant, reason)
        return variant
    _refuse_a_broken_driver(machine)
    if any(not g.integrated for g in machine.intel):
        variant, reason = rocm_fit.choose_xpu(machine, scope)
        out.decide("backend", variant, reason)
        return variant
    why = "macOS has no CUDA" if machine.system == "macos" else "no NVIDIA, AMD or discrete Intel GPU found"
    if machine.intel:
        why = "only an integrated Intel GPU found (ask for it with --backend xpu)"
    out.decide("backend", CPU, f"{why}: CPU wheels")
    return CPU


def _problem_running(
    backend: str, machine: Machine | None, scope: TorchScope, catalog: Catalog
) -> str | None:
    """Why ``machine`` cannot run ``backend`` (None: it can, or there is no machine to ask)."""
    if machine is None or backend == CPU:
        return None
    if _non_cuda(backend, catalog):
        fit = rocm_fit.evaluate(backend, machine, scope.releases, catalog, scope.description)
    elif machine.has_amd and not machine.has_nvidia:
        return "an NVIDIA build; this machine has AMD GPUs"
    else:
        fit = evaluate(backend, machine, scope.releases, catalog, scope.description, vllm=scope.vllm)
    return fit.problems[0] if fit.problems else None


def _pick_backend(
    *,
    request: Request,
    recorded: str | None,
    routing: Routing,
    machine: Machine | None,
    scope: TorchScope,
    catalog: Catalog,
    out: Builder,
    project: Project,
) -> str:
    def check_runs(backend: str) -> str | None:
        return _problem_running(backend, machine, scope, catalog)

    requested = request.backend
    if requested.value != "auto":
        problem = check_runs(requested.value)
        if problem:
            out.warnings.append(
                f"{requested.value} will not run on {machine.who if machine else 'this machine'} ({problem}); kept because {requested.origin} asks for it"
            )
        out.decide("backend", requested.value, f"requested by {requested.origin}")
        return requested.value
    for backend, origin in (
        (recorded, "[tool.llm-sync] backend"),
        (None if request.force else _inferred_backend(routing), "the project's hand-written torch routing"),
    ):
        if backend is None:
            continue
        problem = check_runs(backend)
        if problem and machine is not None:
            raise _recorded_backend_error(
                backend=backend, origin=origin, problem=problem, machine=machine, scope=scope, catalog=catalog
            )
        out.decide(
            "backend",
            backend,
            f"kept from {origin}" + ("" if machine is None else f"; {machine.who} runs it"),
        )
        return backend
    if machine is None:
        raise NotYetPlannedError(
            "llm-sync has not chosen a PyTorch backend for this project yet",
            why="no [tool.llm-sync] backend is recorded, and `check` does not look at the machine",
            fix=(
                "run `llm-sync` once on a target machine: it picks the backend that machine runs (`llm-sync plan` "
                "shows which, without writing); or record one by hand: `llm-sync check --fix --backend BACKEND` "
                f"({', '.join(catalog.backends)})"
            ),
        )
    if not machine.has_nvidia:
        return _backend_without_nvidia(machine, scope, catalog, out)
    variant, reason = prebuilt_plan.choose_preferring(
        machine, scope, catalog, project=project, request=request
    )
    out.decide("backend", variant, reason)
    return variant


def _torch_additions(lists: tuple[DepList, ...], consumers: frozenset[str], out: Builder) -> None:
    """torch beside each torch consumer, in the same file (a uv workspace member's own list when the
    member declares it): a file whose [project] dependencies name torch already has it everywhere."""
    files = dict.fromkeys(dep_list.member for dep_list in lists)
    for member in files:
        own = [dep_list for dep_list in lists if dep_list.member == member]
        if any(d.kind == "dependencies" and "torch" in d.names() for d in own):
            continue
        for dep_list in own:
            users = sorted(dep_list.names() & consumers)
            if users and "torch" not in dep_list.names():
                out.actions.append(AddRequirement(dep_list.kind, dep_list.name, "torch", member))
                out.decide(
                    "torch dependency",
                    f"add torch to {dep_list.label}",
                    f"{', '.join(users)} need torch, and uv applies [tool.uv.sources] only to direct dependencies",
                )


def _route(
    *,
    backend: str,
    recorded: str | None,
    packages: list[str],
    project: Project,
    index_base: config.Setting,
    index_format: str,
    force: bool,
    out: Builder,
    channel: str = STABLE,
    recorded_channel: str = STABLE,
) -> None:
    sources = project.uv_sources
    want = desired_source(backend, channel)
    changed = recorded is not None and (recorded, recorded_channel) != (backend, channel)
    previous = desired_source(recorded, recorded_channel) if recorded and changed else None
    kept = []
    routed_by_us = False
    by_url = direct_url_packages(project)
    for package in packages:
        if package in by_url:
            out.warnings.append(
                f"left {package} alone: {by_url[package]} is a direct-URL requirement, and a source llm-sync "
                "added would override that URL; remove the URL to let llm-sync route it"
            )
            continue
        current = sources.get(package)
        if current == want:
            routed_by_us = True
        elif current is None or current == previous or force:
            out.actions.append(SetSource(package, want))
            routed_by_us = True
            if current is not None and current != previous:
                out.decide(
                    "pytorch routing",
                    f"replace {package}'s source",
                    "--force: the hand-written source is replaced",
                )
        else:
            kept.append(package)
    cpu_name = index_name(CPU, channel)
    target = cpu_name if backend == CPU else f"{index_name(backend, channel)} on Linux, {cpu_name} elsewhere"
    if kept:
        out.warnings.append(
            f"kept the hand-written [tool.uv.sources] for {', '.join(kept)}; llm-sync would route "
            f"{'it' if len(kept) == 1 else 'them'} to {target}. Pass --force to let llm-sync rewrite it"
        )
    if routed_by_us:
        out.decide(
            "pytorch routing",
            target,
            "one uv.lock for Linux GPU servers and CPU-only laptops"
            if backend != CPU
            else "CPU wheels everywhere",
        )
        _indexes(
            backend=backend,
            project=project,
            index_base=index_base,
            index_format=index_format,
            force=force,
            out=out,
            channel=channel,
        )
    if previous is not None:
        for old in dict.fromkeys((recorded or "", CPU)):
            _drop_old_index(index_name(old, recorded_channel), backend, channel, project, kept, out)


def direct_url_packages(project: Project) -> dict[str, str]:
    """Packages a requirement names with a URL (`torch @ https://...whl`): the user's own choice."""
    return {
        canonicalize_name(requirement.name): str(requirement)
        for dep_list in project.dependency_lists()
        for requirement in dep_list.requirements
        if requirement.url
    }


def _indexes(
    *,
    backend: str,
    project: Project,
    index_base: config.Setting,
    index_format: str,
    force: bool,
    out: Builder,
    channel: str = STABLE,
) -> None:
    existing = {str(i.get("name")): i for i in project.uv_indexes if "name" in i}
    wanted_format = "flat" if index_format == "flat" else None
    for variant in dict.fromkeys((backend, CPU)):
        name = index_name(variant, channel)
        url, username, password = split_credentials(f"{index_base.value}/{index_path(variant, channel)}")
        for part, secret in (("USERNAME", username), ("PASSWORD", password)):
            if secret:  # uv reads per-index credentials from the environment: never the file
                variable = uv_index_variable(name, part)
                out.env.append(
                    EnvSetting(
                        variable, secret, f"credentials of {name}, kept out of pyproject.toml", secret=True
                    )
                )
        current = existing.get(name)
        same = current is not None and current.get("url") == url and current.get("explicit") is True
        if same and current is not None and current.get("format") == wanted_format:
            continue
        if current is None or force or index_base.origin != "default" or channel != STABLE:
            out.actions.append(SetIndex(name, url, wanted_format))
        else:
            out.warnings.append(
                f"kept the hand-written index {name} ({redact(str(current.get('url')))}); "
                f"pass --force to let llm-sync set it to {redact(url)}"
            )


def _drop_old_index(  # noqa: PLR0917 - a private helper with one caller
    old_name: str, backend: str, channel: str, project: Project, kept: list[str], out: Builder
) -> None:
    if old_name in {index_name(backend, channel), index_name(CPU, channel)}:
        return
    still_used = any(
        entry.get("index") == old_name
        for package, value in project.uv_sources.items()
        if package in kept or package not in {a.package for a in out.actions if isinstance(a, SetSource)}
        for entry in _entries(value)
    )
    if not still_used and any(i.get("name") == old_name for i in project.uv_indexes):
        out.actions.append(RemoveIndex(old_name))


def _channel_notes(channel: str, scope: TorchScope, project: Project, out: Builder) -> None:
    what = "nightly builds (.dev versions)" if channel == "nightly" else "release candidates"
    out.decide(
        "pytorch channel",
        channel,
        f"torch, torchvision and torchaudio come from PyTorch's {channel} indexes: {what}. Their sources pin "
        "them to those indexes, so PyPI's same names never compete (no index-strategy needed), and uv takes "
        "prereleases for them alone: every version there is one. Other packages stay on stable releases",
    )
    if scope.vllm or "vllm" in project.declared():
        out.warnings.append(
            f"vllm pins torch exactly (torch==X.Y.Z); a {channel} torch "
            + (
                "(a .dev version) never matches that pin"
                if channel == "nightly"
                else "matches it only for the release vllm pins"
            )
            + ": use a vllm built for that torch (vLLM's nightly wheels, or a source checkout: llm-sync checkouts), "
            "or relieve the pin (--relief override)"
        )


def torch_plan(
    *,
    machine: Machine | None,
    project: Project,
    catalog: Catalog,
    request: Request,
    out: Builder,
    theirs: list[tuple[Requirement, str]] | None = None,
) -> tuple[str | None, Version | None, TorchScope | None]:
    """``theirs``: what editable checkouts require (with the extras asked for), with its origin."""
    """PyTorch routing: (backend, minimum uv, the torch releases in play; None when nothing is routed)."""
    index_base = request.index_base or config.Setting(
        str(project.config.get("torch-index-url", catalog.index_base)).rstrip("/"), "[tool.llm-sync]"
    )
    lists = project.dependency_lists()
    declared = project.declared()
    family = [p for p in catalog.family if p in declared]
    consumers = declared & catalog.consumers
    if not family and not consumers:
        out.decide(
            "pytorch routing",
            "none",
            "the project declares no PyTorch package and no package that needs torch",
        )
        return None, None, None
    # The project's own pins narrow the releases on every machine and in `check` alike (the bounds
    # written from them must not depend on whether a machine was looked at).
    scope, scope_warnings = torch_scope(project, catalog, theirs, dict(request.unread))
    out.warnings.extend(scope_warnings)
    for choice, source in scope.learned:
        out.decide("vllm pin", choice, source)
    routing = existing_routing(project, catalog)
    if routing.per_extra:  # a design of the project's own, not a disagreement: even --force keeps it
        _per_extra_plan(routing, machine, scope, catalog, out)
        return None, catalog.uv_min_routing, scope
    recorded = project.config.get("backend")
    recorded_channel = str(project.config.get("channel", STABLE))
    channel = request.channel.value
    backend = _pick_backend(
        request=request,
        recorded=recorded,
        routing=routing,
        machine=machine,
        scope=scope,
        catalog=catalog,
        out=out,
        project=project,
    )
    _torch_additions(lists, consumers, out)
    # Also every family package the file already routes, so torch, torchvision
    # and torchaudio never end up on different variants.
    routed = [p for p in catalog.family if p in routing.sources]
    triton = nightly_triton.companion(
        backend=backend, channel=channel, lists=lists, catalog=catalog, project=project, out=out
    )
    packages = list(dict.fromkeys(["torch", *family, *routed, *([triton] if triton else [])]))
    _route(
        backend=backend,
        recorded=recorded,
        packages=packages,
        project=project,
        index_base=index_base,
        index_format=request.index_format,
        force=request.force,
        out=out,
        channel=channel,
        recorded_channel=recorded_channel,
    )
    if recorded != backend:
        out.actions.append(SetConfig("backend", backend))
    if channel != recorded_channel:
        out.actions.append(SetConfig("channel", channel))
    if channel != STABLE:
        _channel_notes(channel, scope, project, out)
    if machine is not None and _non_cuda(backend, catalog):  # the bounds keep to builds that run here
        fit = rocm_fit.evaluate(backend, machine, scope.releases, catalog, scope.description)
        scope = dataclasses.replace(scope, releases=fit.releases or scope.releases)
    elif scope.vllm and backend != CPU:  # the bounds keep to torch releases whose vllm loads here
        fitting, _ = vllm_cuda_fit(backend, scope.releases, catalog)
        scope = dataclasses.replace(scope, releases=fitting or scope.releases)
    return backend, catalog.uv_min_routing, scope
