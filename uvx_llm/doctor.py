"""`llm-sync doctor`: check the machine and a project's Python environment against each
other and against the catalog, and say for every problem what to run.

The environment is inspected by running its interpreter in a subprocess (with a
timeout: a hanging interpreter is reported, never waited on forever); llm-sync
never imports torch itself. The cross-checks are pure functions over the facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from uvx_llm import doctor_gpus, proc, torch_fit
from uvx_llm.catalog import Catalog, Pair, parse_pair, runs_on, show_pair, show_sm
from uvx_llm.doctor_packages import companion_findings, known_bad_findings, torch_requirement_findings
from uvx_llm.findings import ERROR, OK, WARNING, Finding, ordered
from uvx_llm.interpreter import Environment, interpreter_of, is_in, probe, project_environment
from uvx_llm.toolkit import host_compiler, show_limit

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from uvx_llm.machine import Machine
    from uvx_llm.resources import Resources
    from uvx_llm.rocm_build import HipToolkit
    from uvx_llm.toolkit import Toolkit
    from uvx_llm.uv import LockCheck, Uv

CHANGES_SHOWN = 6  # of `uv sync --check`'s changes, in one finding


# --- the checks: facts in, findings out -----------------------------------------------------


def _cuda_pair(text: str | None) -> Pair | None:
    try:
        return parse_pair(text) if text else None
    except ValueError:
        return None


def _arch_pair(arch: str) -> Pair | None:
    """ "sm_90a" / "sm_90" -> (9, 0); "compute_90" (PTX) and others -> None."""
    if not arch.startswith("sm_"):
        return None
    return _cuda_pair(arch.removeprefix("sm_").removesuffix("a"))


def _arch_pairs(arch_list: list[str]) -> list[Pair]:
    return [p for p in map(_arch_pair, arch_list) if p is not None]


def machine_findings(
    machine: Machine, toolkit: Toolkit, host: Resources, hip: HipToolkit | None = None
) -> list[Finding]:
    """The GPUs and their driver, the CPUs and memory, and the compilers extensions are built with:
    nvcc where NVIDIA GPUs are or no GPU is, hipcc (``hip``) where AMD GPUs are."""
    found = []
    if machine.has_nvidia:
        cuda = show_pair(machine.cuda_max) if machine.cuda_max else "unknown"
        found.append(
            Finding(
                "machine",
                OK,
                f"NVIDIA driver {machine.driver_version or 'unknown'}, CUDA ≤ {cuda}",
                f"detected by {machine.source}",
            )
        )
        found += [Finding("machine", OK, gpu.describe()) for gpu in machine.gpus]
    else:
        found.append(Finding("machine", OK, "no NVIDIA GPU", "; ".join(machine.notes)))
    memory = f"{host.memory_gib:.0f} GiB" if host.memory_gib is not None else "unknown memory"
    found.append(
        Finding(
            "machine",
            OK,
            f"{host.cpus} usable CPUs, {memory} usable",
            f"{host.cpu_reason}; {host.memory_reason}",
        )
    )
    found += doctor_gpus.machine_findings(machine, hip)
    if not machine.has_nvidia and not toolkit.nvcc and (machine.has_amd or machine.intel):
        return found  # nvcc builds nothing for an AMD or Intel GPU
    found.append(
        Finding(
            "toolchain",
            OK if toolkit.nvcc else WARNING,
            toolkit.describe(),
            fix=""
            if toolkit.nvcc
            else "install the CUDA toolkit to build extensions (flash-attn), and set CUDA_HOME",
        )
    )
    return found


def _driver_findings(machine: Machine, torch_cuda: Pair, catalog: Catalog) -> list[Finding]:
    runs = torch_fit.driver_runs(torch_cuda, machine, catalog)
    if runs is None or machine.cuda_max is None:
        return []
    if runs == torch_fit.NATIVE:
        return [
            Finding(
                "environment",
                OK,
                f"the driver runs torch's CUDA {show_pair(torch_cuda)}",
                f"{machine.driver_label()} runs CUDA ≤ {show_pair(machine.cuda_max)}",
            )
        ]
    if runs == torch_fit.COMPAT:
        return [
            Finding(
                "environment",
                WARNING,
                f"torch is built for CUDA {show_pair(torch_cuda)}, the driver runs {show_pair(machine.cuda_max)}",
                "it works through CUDA minor-version compatibility, without PTX newer than the driver",
                "update the NVIDIA driver, or `llm-sync --backend` a build of CUDA ≤ the driver's",
            )
        ]
    return [
        Finding(
            "environment",
            ERROR,
            f"the driver is too old for torch's CUDA {show_pair(torch_cuda)}",
            f"{machine.driver_label()} runs CUDA ≤ {show_pair(machine.cuda_max)}",
            "update the NVIDIA driver, or run `llm-sync` to route torch to a build this driver runs",
        )
    ]


def _torch_findings(
    machine: Machine, toolkit: Toolkit, facts: dict[str, Any], catalog: Catalog
) -> list[Finding]:
    torch: dict[str, Any] = facts["torch"]
    if torch.get("hip"):
        return doctor_gpus.rocm_findings(machine, facts)
    if doctor_gpus.is_xpu_build(torch):
        return doctor_gpus.xpu_findings(machine, facts)
    wrong = doctor_gpus.wrong_build(machine, torch)
    if wrong is not None:
        return [wrong]
    visible = facts.get("cuda_visible_devices")
    version = str(torch.get("version"))
    torch_cuda = _cuda_pair(torch.get("cuda"))
    if torch_cuda is None:
        if machine.gpus:
            return [
                Finding(
                    "environment",
                    ERROR,
                    f"torch {version} is a CPU-only build on a machine with an NVIDIA GPU",
                    fix="run `llm-sync` (it routes torch to the CUDA index this driver runs), then `uv sync`",
                )
            ]
        return [Finding("environment", OK, f"torch {version} (CPU build)")]
    found = [
        Finding(
            "environment",
            OK,
            f"torch {version}, CUDA {show_pair(torch_cuda)}, C++ ABI {'CXX11' if torch.get('cxx11_abi') else 'pre-CXX11'}",
        )
    ]
    found += _driver_findings(machine, torch_cuda, catalog)
    missing, arch_found = _arch_findings(machine, torch)
    found += arch_found
    if machine.gpus and not missing:
        found.append(_availability_finding(torch, visible))
    found += _nvcc_findings(toolkit, torch_cuda)
    return found


def _arch_findings(machine: Machine, torch: dict[str, Any]) -> tuple[bool, list[Finding]]:
    """(whether a GPU is missing, the findings): every local GPU against torch's arch list."""
    arch_list = [str(a) for a in torch.get("arch_list", [])]
    built = _arch_pairs(arch_list)
    gpus = [g for g in machine.gpus if g.capability]
    if not gpus or not arch_list:  # nothing to compare (an old torch that hides its list)
        return False, []
    missing = [g for g in gpus if g.capability and not any(runs_on(b, g.capability) for b in built)]
    if missing:
        return True, [
            Finding(
                "environment",
                ERROR,
                f"{show_sm(g.capability)} ({g.name}) is not in torch's arch list",
                f"torch has: {' '.join(arch_list)}",
                "run `llm-sync`: it picks a torch build whose arch list covers every local GPU",
            )
            for g in missing
            if g.capability
        ]
    local = " ".join(sorted({show_sm(g.capability) for g in gpus if g.capability}))
    return False, [
        Finding(
            "environment",
            OK,
            f"torch's arch list covers every local GPU ({local})",
            f"torch has: {' '.join(arch_list)}",
        )
    ]


_hides_every_gpu = doctor_gpus.hides_every_gpu  # CUDA_VISIBLE_DEVICES, ROCm's and HIP's alike


def _availability_finding(torch: dict[str, Any], visible: str | None) -> Finding:
    if torch.get("cuda_available"):
        count = torch.get("device_count")
        seen = f"{count} device(s) visible" if isinstance(count, int) else "devices visible"
        shown = f"; CUDA_VISIBLE_DEVICES={visible}" if visible is not None else ""
        return Finding("environment", OK, f"torch.cuda.is_available() is True ({seen}{shown})")
    if _hides_every_gpu(visible):
        return Finding(
            "environment",
            ERROR,
            "torch.cuda.is_available() is False: CUDA_VISIBLE_DEVICES hides every GPU",
            f"CUDA_VISIBLE_DEVICES={visible!r} in this environment; the driver sees the GPUs, torch may not use them",
            "unset CUDA_VISIBLE_DEVICES, or list the GPUs to use (e.g. CUDA_VISIBLE_DEVICES=0,1)",
        )
    return Finding(
        "environment",
        ERROR,
        "torch.cuda.is_available() is False on a machine with a GPU",
        "the driver or the container's GPU access is not working for this process",
        "check `nvidia-smi` in the same environment; in containers, run with --gpus all",
    )


def _nvcc_findings(toolkit: Toolkit, torch_cuda: Pair) -> list[Finding]:
    if toolkit.version is None:
        return []
    if toolkit.version[0] == torch_cuda[0]:
        return [
            Finding(
                "toolchain",
                OK,
                f"nvcc {show_pair(toolkit.version)} and torch's CUDA {show_pair(torch_cuda)} share a major version",
                "CUDA extensions (flash-attn, ...) can be built against this torch",
            )
        ]
    return [
        Finding(
            "toolchain",
            WARNING,
            f"nvcc {show_pair(toolkit.version)} and torch's CUDA {show_pair(torch_cuda)} differ in major version",
            "CUDA extensions (flash-attn, apex, ...) built here will fail",
            f"install CUDA toolkit {torch_cuda[0]}.x and point CUDA_HOME at it",
        )
    ]


def _flash_attn_findings(machine: Machine, facts: dict[str, Any]) -> list[Finding]:
    version = facts.get("packages", {}).get("flash-attn")
    if version is None:
        return []
    found = []
    imported = facts.get("flash_attn_import", "ok")
    if imported == "ok":
        found.append(Finding("environment", OK, f"flash-attn {version} imports"))
    else:
        symbol = "undefined symbol" in imported
        found.append(
            Finding(
                "environment",
                ERROR,
                f"flash-attn {version} does not import",
                imported,
                "it was built against another torch (or C++ ABI): rebuild it against this one — "
                "`llm-sync` writes `match-runtime = true` build settings — with "
                "`uv sync --reinstall-package flash-attn`"
                if symbol
                else "reinstall it with `uv sync --reinstall-package flash-attn`",
            )
        )
    old = [g for g in machine.gpus if g.capability and g.capability < (8, 0)]
    found += [
        Finding(
            "environment",
            ERROR,
            f"flash-attn needs compute capability ≥ 8.0; {g.name} is {show_pair(g.capability)}",
            fix="use PyTorch's scaled_dot_product_attention on this GPU, or a newer GPU",
        )
        for g in old
        if g.capability
    ]
    return found


def vllm_findings(facts: dict[str, Any]) -> list[Finding]:
    """Whether vLLM's compiled ops (vllm._C) load: an editable checkout gets them from the binaries
    vLLM publishes for its commit (vllm-build = precompiled) or from its own full build."""
    version = facts.get("packages", {}).get("vllm")
    imported = facts.get("vllm_ops_import")
    if version is None or imported is None:
        return []
    where = "editable, from a checkout" if facts.get("vllm_editable") else "installed"
    if imported == "ok":
        return [Finding("environment", OK, f"vllm {version} ({where}) loads its compiled ops (vllm._C)")]
    if "+empty" in version or facts.get("markers", {}).get("sys_platform") == "darwin":
        return [
            Finding(
                "environment",
                OK,
                f"vllm {version}: a build without compiled ops (macOS, or VLLM_TARGET_DEVICE=empty)",
            )
        ]
    if facts.get("vllm_editable"):
        fix = (
            "its binaries are missing or belong to another commit or torch: run `llm-sync` (vllm-build = "
            "precompiled fetches the binaries vLLM publishes for the checkout's commit on upstream main), then "
            '`uv sync --reinstall-package vllm`; after a C++/CUDA change, set vllm-build = "full"'
        )
    else:
        fix = "reinstall it against this torch with `uv sync --reinstall-package vllm`"
    return [
        Finding(
            "environment",
            ERROR,
            f"vllm {version} ({where}) does not load its compiled ops (vllm._C)",
            imported,
            fix,
        )
    ]


def environment_findings(
    machine: Machine, toolkit: Toolkit, env: Environment, catalog: Catalog
) -> list[Finding]:
    if env.problem:
        return [
            Finding(
                "environment",
                ERROR,
                f"{env.interpreter} {env.problem}",
                fix=env.fix,
            )
        ]
    facts = env.facts
    found = [Finding("environment", OK, f"Python {facts.get('python')} at {env.interpreter}")]
    if "torch" in facts:
        found += _torch_findings(machine, toolkit, facts, catalog)
    else:
        found.append(
            Finding(
                "environment",
                WARNING,
                "torch is not importable",
                facts.get("torch_error", "not installed"),
                "run `llm-sync` to set up the project's environment",
            )
        )
    found += _flash_attn_findings(machine, facts)
    found += vllm_findings(facts)
    found += torch_requirement_findings(facts)
    found += companion_findings(facts)
    found += known_bad_findings(facts, catalog)
    versions = ", ".join(f"{k} {v}" for k, v in sorted(facts.get("packages", {}).items()))
    if versions:
        found.append(Finding("environment", OK, "installed: " + versions))
    return found


def lock_finding(check: LockCheck) -> Finding:
    if check.in_sync:
        return Finding("project", OK, "the environment holds what uv.lock says (`uv sync --check`)")
    if check.problem:
        return Finding(
            "project",
            WARNING,
            "could not compare the environment with uv.lock",
            check.problem,
            "run `uv sync --check --frozen` to see uv's own message",
        )
    more = len(check.changes) - CHANGES_SHOWN
    shown = ", ".join(check.changes[:CHANGES_SHOWN]) + (f" and {more} more" if more > 0 else "")
    return Finding(
        "project",
        WARNING,
        "the environment differs from uv.lock",
        f"`uv sync` would change: {shown}" if shown else "uv reports the environment as outdated",
        "run `llm-sync` (or `uv sync`; add the --extra/--group options you use)",
    )


def _first_line(args: list[str]) -> str | None:
    result = proc.run(args, timeout=15)
    if result.failure is not None:
        return None
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[0] if result.returncode == 0 and lines else None


def host_compiler_finding(toolkit: Toolkit, env: Mapping[str, str]) -> Finding:
    """The compiler nvcc hands host code to, and whether nvcc accepts it."""
    host = toolkit.host
    if host is None:  # no nvcc: the plain C++ compiler still matters for extensions
        gcc = host_compiler(env).first_line
        return Finding(
            "toolchain",
            OK if gcc else WARNING,
            gcc or "no gcc",
            fix="" if gcc else "install gcc/g++: CUDA extensions compile their host code with it",
        )
    if host.first_line is None:
        return Finding(
            "toolchain",
            WARNING,
            f"no host compiler: `{host.command} --version` failed ({host.chosen_by})",
            fix="install gcc/g++ (or point CC at an installed compiler): nvcc compiles host code with it",
        )
    problem = toolkit.host_problem()
    if problem:
        what, fix = problem
        return Finding("toolchain", WARNING, host.describe(), what, fix)
    accepted = (
        f"nvcc accepts gcc ≤ {show_limit(toolkit.gcc_limit)}"
        if toolkit.gcc_limit and host.gcc
        else "not checked against nvcc's limit (not GCC, or no host_config.h)"
    )
    return Finding("toolchain", OK, host.describe(), accepted)


def toolchain_findings(toolkit: Toolkit, env: Mapping[str, str]) -> tuple[list[Finding], Uv | None]:
    """The host compiler and ninja as an extension build would find them, and uv (returned for later checks)."""
    from uvx_llm import uv as uv_module  # noqa: PLC0415 - only doctor and sync need uv
    from uvx_llm.errors import LlmSyncError  # noqa: PLC0415 - same

    found = [host_compiler_finding(toolkit, env)]
    ninja = _first_line(["ninja", "--version"])
    found.append(
        Finding(
            "toolchain",
            OK,
            f"ninja {ninja}" if ninja else "no ninja on PATH",
            ""
            if ninja
            else "builds get ninja through [tool.uv.extra-build-dependencies] (llm-sync writes it)",
        )
    )
    try:
        uv = uv_module.find()
    except LlmSyncError as error:
        found.append(Finding("toolchain", WARNING, error.what, error.why, error.fix))
        return found, None
    found.append(Finding("toolchain", OK, f"uv {uv.version} at {uv.path}"))
    return found, uv


def facts_of(machine: Machine, toolkit: Toolkit, host: Resources, env: Environment | None) -> dict[str, Any]:
    """The raw facts behind the findings, for bug reports and scripts (docs/doctor.md)."""
    environment: dict[str, Any] | None = None
    if env is not None:
        environment = {"interpreter": env.interpreter, "problem": env.problem, **env.facts}
    return {
        "machine": {
            **machine.to_json(),
            "usable_cpus": host.cpus,
            "usable_memory_bytes": host.memory_bytes,
        },
        "toolkit": {
            "nvcc": str(toolkit.nvcc) if toolkit.nvcc else None,
            "nvcc_cuda": show_pair(toolkit.version) if toolkit.version else None,
            "cuda_home": str(toolkit.cuda_home) if toolkit.cuda_home else None,
            "found_by": toolkit.how_found,
            "gcc_limit": show_limit(toolkit.gcc_limit) if toolkit.gcc_limit else None,
            "host_compiler": {
                "command": toolkit.host.command,
                "chosen_by": toolkit.host.chosen_by,
                "version_line": toolkit.host.first_line,
                "gcc": show_pair(toolkit.host.gcc) if toolkit.host.gcc else None,
            }
            if toolkit.host
            else None,
        },
        "environment": environment,
    }


@dataclass(frozen=True)
class Report:
    findings: tuple[Finding, ...]
    facts: dict[str, Any]

    @property
    def has_errors(self) -> bool:
        return any(f.severity == ERROR for f in self.findings)

    def summary(self) -> dict[str, int]:
        return {
            severity: sum(1 for f in self.findings if f.severity == severity)
            for severity in (ERROR, WARNING, OK)
        }

    def render(self, *, colour: bool = False) -> str:
        """The report as text; severities and ``fix:`` coloured as uv colours its own (``colour``)."""
        from uvx_llm.log import paint  # noqa: PLC0415 - only when a report is shown as text

        styles = {ERROR: "error", WARNING: "warning", OK: "ok"}
        counts = self.summary()
        lines = [f"llm-sync doctor: {counts[ERROR]} error(s), {counts[WARNING]} warning(s)"]
        for finding in ordered(list(self.findings)):
            severity = paint(f"{finding.severity:<8}", styles.get(finding.severity, "bold"), colour=colour)
            lines.append(f"{severity}[{finding.area}] {finding.title}")
            if finding.detail:
                lines.append(f"          {finding.detail}")
            if finding.fix and finding.severity != OK:
                lines.append(f"          {paint('fix', 'hint', colour=colour)}: {finding.fix}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "findings": [
                {"area": f.area, "severity": f.severity, "title": f.title, "detail": f.detail, "fix": f.fix}
                for f in ordered(list(self.findings))
            ],
            "facts": self.facts,
        }


def _no_environment(project_root: Path | None, env: Mapping[str, str]) -> Finding:
    where = (
        f"no {project_environment(project_root, env)} in the project"
        if project_root is not None
        else "no project here"
    )
    return Finding(
        "environment",
        WARNING,
        "no environment to inspect",
        f"{where} and no --python",
        "run `llm-sync` to create it, or pass --python",
    )


def diagnose(
    *,
    machine: Machine,
    toolkit: Toolkit,
    host: Resources,
    catalog: Catalog,
    project_root: Path | None,
    project_finding: Finding | None,
    python: Path | None,
    env: Mapping[str, str],
    timeout: float,
) -> Report:
    """Every finding about this machine and environment, with the facts behind them."""
    hip = None
    if machine.has_amd:
        from uvx_llm.rocm_build import find_hip  # noqa: PLC0415 - only where AMD GPUs are

        hip = find_hip(env)
    findings = machine_findings(machine, toolkit, host, hip)
    toolchain, uv = toolchain_findings(toolkit, env)
    findings += toolchain
    interpreter = interpreter_of(project_root, python, env)
    environment = None
    if interpreter is None:
        findings.append(_no_environment(project_root, env))
    else:
        environment = probe(interpreter, timeout=timeout)
        findings += environment_findings(machine, toolkit, environment, catalog)
    if project_finding is not None:
        findings.append(project_finding)
    if project_root is not None and uv is not None and interpreter is not None:
        locked = (project_root / "uv.lock").is_file()
        if locked and is_in(interpreter, project_environment(project_root, env)):
            from uvx_llm.uv import check_environment  # noqa: PLC0415 - uv only when there is a lock

            findings.append(lock_finding(check_environment(uv, project_dir=project_root, timeout=timeout)))
    return Report(tuple(findings), facts_of(machine, toolkit, host, environment))
