"""Compatibility suite: llm-sync + a real `uv lock` on real PyPI metadata: issue 11, item 9.

    python3 -m uv run --locked python benchmarks/compat/run.py [--case GLOB] [--machine NAME]

Needs PyPI (not run in CI). The PyTorch index is a loopback stand-in built from the
real torch/torchvision/torchaudio metadata (compat_index.py). For each case and machine:
make the project in a temporary folder, ask `llm-sync plan --json` what it intends,
let `llm-sync sync --no-sync` edit pyproject.toml, let `llm-sync sync -- --dry-run` lock
(its own lock step: uv lock, the check, relief, floors, fences), read uv.lock and compare
it with the plan (compat_lock.py). Writes docs/compatibility.md and
docs/compatibility.json; with --case/--machine, the other rows of the JSON are kept.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import compat_cases
import compat_index
import compat_lock
import compat_report
import tomllib
from packaging.utils import parse_wheel_filename

ROOT = compat_cases.ROOT
CATALOG = ROOT / "uvx_llm" / "catalog.toml"
DEFAULT_CACHE = Path.home() / ".cache" / "llm-sync-compat"
PYTHON = "3.12"  # the interpreter uv locks with and the Python the per-platform views use


def tool(name: str) -> str:
    """A tool of this checkout's environment (uv is pinned in the dev group), else PATH."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else (shutil.which(name) or name)


def child_env(uv_cache: Path) -> dict[str, str]:
    """The user's environment minus llm-sync/uv settings and the suite's own virtualenv."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("UV_", "LLM_SYNC_")) and k not in {"UV", "VIRTUAL_ENV", "CONDA_PREFIX"}
    }
    env["UV_CACHE_DIR"] = str(uv_cache)
    # Not UV_NO_CONFIG: uv then ignores [tool.uv] extra-build-dependencies (llm-sync says so).
    env["UV_PYTHON"] = PYTHON
    # pyenv keeps interpreters outside PATH (its shims answer for one version only).
    pyenv = sorted(Path.home().glob(".pyenv/versions/3.1[0-9]*/bin"))
    env["PATH"] = os.pathsep.join([*map(str, pyenv), env.get("PATH", "")])
    return env


def run(command: list[str], cwd: Path, env: dict[str, str], timeout: float) -> tuple[int, str, str, float]:
    started = time.perf_counter()
    try:
        done = subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as expired:
        out = expired.stdout.decode() if isinstance(expired.stdout, bytes) else (expired.stdout or "")
        err = expired.stderr.decode() if isinstance(expired.stderr, bytes) else (expired.stderr or "")
        return 124, out, err, time.perf_counter() - started
    return done.returncode, done.stdout, done.stderr, time.perf_counter() - started


def failure_summary(stderr: str) -> str:
    """One line saying why uv lock failed."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", stderr)
    if "No solution found" in text:
        match = re.search(r"(Because .*?unsatisfiable\.)", text, re.DOTALL)
        reason = " ".join(match.group(1).split()) if match else text.strip().splitlines()[-1]
        return f"no solution: {reason}"
    for marker in ("Failed to build", "Failed to download", "Failed to fetch", "error:"):
        for line in text.splitlines():
            if marker in line:
                causes = [
                    c.strip()
                    for c in text.splitlines()
                    if c.strip().startswith("Caused by:") or "cause:" in c
                ]
                return " ".join([line.strip(), *causes[-1:]])
    return text.strip().splitlines()[-1] if text.strip() else "no output"


RELEASES = "/releases"  # the stand-in release host, beside /whl on the same loopback server


def release_host(base: str) -> str:
    """The prebuilt-url for llm-sync: github.com is not reachable here, and `uv lock` downloads
    a URL source to hash it, so release assets are stood in for on loopback."""
    return base.rsplit("/whl", 1)[0] + RELEASES


def stand_in_release_assets(project: Path, prefix: str, root: Path) -> list[str]:
    """For every release-wheel URL llm-sync wrote, a tiny wheel under that very name whose
    METADATA is the real sdist's (flash-attn 2.8.x: torch, einops; Requires-Python >=3.9)."""
    data = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    sources = data.get("tool", {}).get("uv", {}).get("sources", {})
    written = []
    for entries in sources.values():
        for entry in entries if isinstance(entries, list) else [entries]:
            url = str(entry.get("url", "")) if isinstance(entry, dict) else ""
            if not url.startswith(prefix):
                continue
            name, version, _, tags = parse_wheel_filename(url.rsplit("/", 1)[1])
            metadata = (
                f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nRequires-Python: >=3.9\n"
                "Requires-Dist: torch\nRequires-Dist: einops\n\n"
            )
            tag = "-".join(sorted({f"{t.interpreter}-{t.abi}-{t.platform}" for t in tags}))
            filename, blob = compat_index.tiny_wheel(str(name), str(version), tag, metadata)
            target = root / url.removeprefix(base_of(prefix)).lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.with_name(url.rsplit("/", 1)[1]).write_bytes(blob)
            written.append(filename)
    return written


def base_of(prefix: str) -> str:
    return prefix.rsplit(RELEASES, 1)[0]


def sync_warnings(result: dict[str, Any]) -> list[str]:
    return [*result.get("plan_warnings", []), *result.get("sync_says", [])]


def run_one(
    case: compat_cases.Case,
    machine: compat_cases.Machine,
    *,
    base: str,
    work: Path,
    env: dict[str, str],
    timeout: float,
    floors: dict[str, Any],
    index_root: Path,
) -> dict[str, Any]:
    folder = work / re.sub(r"[^A-Za-z0-9._-]+", "_", f"{case.name}-{machine.name}")
    folder.mkdir(parents=True)
    env = {**env, "LLM_SYNC_PREBUILT_URL": release_host(base)}
    case.write(folder, base)
    result: dict[str, Any] = {"case": case.name, "group": case.group, "machine": machine.name}
    target = [
        "--project",
        str(folder),
        "--cuda",
        machine.cuda,
        "--arch",
        machine.arch,
        "--torch-index-url",
        base,
    ]
    llm_sync = tool("llm-sync")
    rc, out, err, _ = run([llm_sync, "plan", *target, "--json"], ROOT, env, 120)
    try:
        plan: dict[str, Any] = json.loads(out)
    except json.JSONDecodeError:
        plan = {}
    planned = compat_lock.planned_torch(plan)
    result["plan_exit"] = rc
    result["backend"] = planned.backend
    result["planned_torch"] = planned.text
    result["backend_reason"] = next(
        (d.get("reason", "") for d in plan.get("decisions", []) if d.get("topic") == "backend"), ""
    )
    result["plan_warnings"] = [
        str(w.get("message", w)) if isinstance(w, dict) else str(w) for w in plan.get("warnings", [])
    ]
    rc, out, err, _ = run([llm_sync, "sync", *target, "--no-sync"], ROOT, env, 120)
    result["sync_exit"] = rc
    if rc != 0:
        result["status"] = "llm-sync refused"
        result["detail"] = " ".join((err or out).strip().splitlines()[-3:])
        return result
    result["sync_says"] = [line for line in err.splitlines() if line.startswith(("warning", "error"))]
    result["release_assets"] = stand_in_release_assets(folder, release_host(base), index_root)
    # llm-sync's own lock step: `uv lock`, the check against the plan, relief for a framework's
    # pin, a floor for a pin-less release, the fence for CUDA builds; `--dry-run` installs nothing.
    locking = [llm_sync, "sync", *target, "--no-build-check", "--", "--dry-run"]
    rc, out, err, seconds = run(locking, folder, {**env, "UV": tool("uv")}, timeout)
    result["lock_seconds"] = round(seconds, 1)
    result["sync_says"] += [line for line in err.splitlines() if line.startswith("warning")]
    if rc != 0:
        result["status"] = "timeout" if rc == 124 else "lock failed"
        result["detail"] = f"llm-sync ran past {timeout:.0f} s" if rc == 124 else failure_summary(err)
        return result
    lock = compat_lock.read_lock(folder / "uv.lock")
    views = {}
    for platform in ("linux", "macos"):
        command = [tool("uv"), "tree", "--frozen", "--project", str(folder), "--python-version", PYTHON]
        rc, out, err, _ = run([*command, "--python-platform", platform, *case.tree_args], folder, env, 120)
        views[platform] = compat_lock.tree_versions(out) if rc == 0 else {}
    linux, macos = views["linux"], views["macos"]
    result["linux"] = {name: linux[name] for name in compat_lock.TRACKED if name in linux}
    result["macos"] = {name: macos[name] for name in compat_lock.TRACKED if name in macos}
    result["locked"] = sorted(
        {f"{e.name} {e.version}" for e in lock if e.name in compat_lock.TRACKED and e.editable is None}
    )
    result["editable"] = sorted(f"{e.name} ({e.editable})" for e in lock if e.editable is not None)
    # The plan's claim: a checkout llm-sync declined with a warning ("verl/ ... not added: its
    # pyproject.toml has its own [tool.uv]") is not one it promised to install editable.
    declined = [
        c for c in case.checkouts if any(f"{c}/" in w and "not added" in w for w in sync_warnings(result))
    ]
    result["declined_checkouts"] = declined
    verdict = compat_lock.compare(
        planned,
        lock,
        linux=linux,
        macos=macos,
        floors=floors,
        checkouts=[c for c in case.checkouts if c not in declined],
    )
    result["status"] = "locked"
    result["matches"] = verdict.matches
    result["disagreements"] = verdict.disagreements
    return result


def select(patterns: list[str], names: list[str]) -> list[str]:
    if not patterns:
        return names
    return [n for n in names if any(fnmatch.fnmatchcase(n, p) or p == n for p in patterns)]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--case", action="append", default=[], help="case name or glob (repeatable)")
    parser.add_argument("--machine", action="append", default=[], help="a100, h100, b200 (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the cases and machines, run nothing")
    parser.add_argument("--jobs", type=int, default=2, choices=(1, 2), help="cases locked at once")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per uv lock")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="PyPI metadata cache")
    parser.add_argument("--refresh", action="store_true", help="download PyPI's torch listings again")
    parser.add_argument("--uv-cache", type=Path, help="uv cache to reuse (default: a fresh one per run)")
    parser.add_argument(
        "--keep", action="store_true", help="keep the case projects (their paths are printed)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "compatibility.md")
    return parser.parse_args()


def run_jobs(
    jobs: list[tuple[compat_cases.Case, compat_cases.Machine]],
    index_root: Path,
    args: argparse.Namespace,
    **kw: Any,
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with compat_index.serve(index_root) as base, concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = {
            pool.submit(
                run_one, case, machine, base=base, timeout=args.timeout, index_root=index_root, **kw
            ): (case, machine)
            for case, machine in jobs
        }
        for n, future in enumerate(concurrent.futures.as_completed(futures), 1):
            case, machine = futures[future]
            try:
                result = future.result()
            except Exception as error:  # noqa: BLE001 - one broken case must not end the run
                result = {"case": case.name, "group": case.group, "machine": machine.name}
                result |= {"status": "suite error", "detail": repr(error)}
            results.append(result)
            verdict = (
                {True: "matches the plan", False: "DISAGREES"}.get(bool(result["matches"]), "")
                if "matches" in result
                else ""
            )
            seconds = result.get("lock_seconds", "")
            print(
                f"[{n}/{len(jobs)}] {case.name} @ {machine.name}: {result['status']} {seconds} s {verdict}",
                flush=True,
            )
    return results


def main() -> None:
    args = parse_args()
    machines = {m.name: m for m in compat_cases.MACHINES}
    cases = {c.name: c for c in compat_cases.CASES}
    chosen_cases = select(args.case, list(cases))
    chosen_machines = select(args.machine, list(machines))
    if args.list:
        for case in compat_cases.CASES:
            print(f"{case.name:40} {case.group:11} {case.description}")
        print("machines:", ", ".join(f"{m.name} (CUDA {m.cuda}, sm {m.arch})" for m in machines.values()))
        return
    if not chosen_cases or not chosen_machines:
        sys.exit("no case/machine matches the filters (see --list)")

    catalog = tomllib.loads(CATALOG.read_text(encoding="utf-8"))
    floors = compat_lock.catalog_floors(catalog)
    work = Path(tempfile.mkdtemp(prefix="llm-sync-compat-"))
    env = child_env(args.uv_cache or work / "uv-cache")
    started = time.perf_counter()
    source = compat_index.PyPIMetadata(args.cache, refresh=args.refresh)
    index = compat_index.build_index(
        work / "index", compat_index.catalog_variants(catalog), source.files, source.metadata
    )
    builds = sum(len(v) for p in index.served.values() for v in p.values())
    print(f"stand-in index: {builds} builds ({time.perf_counter() - started:.0f} s)", flush=True)
    jobs = [(cases[c], machines[m]) for c in chosen_cases for m in chosen_machines]
    results = run_jobs(jobs, work / "index", args, work=work / "projects", env=env, floors=floors)
    elapsed = time.perf_counter() - started
    git = shutil.which("git") or "git"
    meta = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "uv": subprocess.run(
            [tool("uv"), "--version"], capture_output=True, text=True, check=True
        ).stdout.strip(),
        "llm_sync_commit": subprocess.run(
            [git, "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip(),
        "python": PYTHON,
        "seconds": round(elapsed),
        "cases": chosen_cases,
        "machines": chosen_machines,
        "command": " ".join(["python3 -m uv run --locked python benchmarks/compat/run.py", *sys.argv[1:]]),
        "catalog_floors": {k: str(v) for k, v in floors.items()},
        "cpu_count": os.cpu_count(),
    }
    compat_report.write(
        args.out,
        meta,
        results,
        case_order=[c.name for c in compat_cases.CASES],
        machine_order=[m.name for m in compat_cases.MACHINES],
        descriptions={c.name: c.description for c in compat_cases.CASES},
    )
    print(f"{len(jobs)} locks in {elapsed:.0f} s; wrote {args.out} and {args.out.with_suffix('.json')}")
    if args.keep:
        print(f"projects kept in {work / 'projects'}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
