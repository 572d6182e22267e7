"""What `llm-sync sync --ray` costs on top of uv: a real local Ray cluster, side by side.

Starts a head and two more nodes with Ray's own `ray.cluster_utils` on this machine (each node
its own uv cache and project environment, the machine facts declared as in the tests), serves
the tests' loopback package index (torch variants, a stand-in flash-attn sdist that builds in
a moment), and times, for a project with torch and flash-attn:

- the first `sync --ray` (plan, lock, one build on one node, three syncs);
- `sync --ray` again with every node in sync (the survey, the lock check, three no-op syncs),
  against `llm-sync sync` and `uv sync --locked` on this machine alone, interleaved.

    uv run --locked python benchmarks/ray_sync_overhead.py [--rounds 7] [--out FILE.json]

Needs the dev dependencies (ray, uv). No network.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from pkgindex import PackageIndex, serve  # noqa: E402 - the tests' loopback index, found above

DECLARED = [
    {"LLM_SYNC_CUDA": "13.0", "LLM_SYNC_ARCH": "9.0"},
    {"LLM_SYNC_CUDA": "13.0", "LLM_SYNC_ARCH": "8.0"},
]
BASE_PYTHON = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"


def _index(root: Path) -> PackageIndex:
    index = PackageIndex(root)
    for variant in ("cpu", "cu128", "cu130"):
        index.add(f"/whl/{variant}", "torch", f"2.9.0+{variant}")
    index.add("/simple", "torch", "2.9.0")
    for need in ("ninja", "packaging", "psutil"):
        index.add("/simple", need, "1.0")
    index.add_sdist(
        "/simple", "flash-attn", "9.9.9", backend=ROOT / "tests" / "standins" / "recording_backend.py"
    )
    return index


def _timed(argv: list[str], *, env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False, timeout=600)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return took


def main(rounds: int, out: Path | None) -> int:
    from ray.cluster_utils import Cluster  # noqa: PLC0415 - heavy: only when measuring
    from uv import find_uv_bin  # noqa: PLC0415 - the dev group's uv

    uv = find_uv_bin()
    work = Path(tempfile.mkdtemp(prefix="llmray-bench-"))
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    try:
        with contextlib.contextmanager(serve)(_index(work / "index")) as index:
            project = work / "app"
            project.mkdir()
            (project / "pyproject.toml").write_text(
                '[project]\nname = "app"\nversion = "0.1.0"\nrequires-python = ">=3.10"\n'
                'dependencies = ["torch", "flash-attn"]\n\n[tool.uv]\npackage = false\n',
                encoding="utf-8",
            )

            def node_args(number: int) -> dict[str, Any]:
                folder = work / f"node{number}"
                (folder / "bin").mkdir(parents=True)
                (folder / "bin" / "uv").symlink_to(uv)
                env = {
                    "PATH": f"{folder / 'bin'}:/usr/bin:/bin",
                    "UV_CACHE_DIR": str(folder / "uv-cache"),
                    "UV_PROJECT_ENVIRONMENT": str(folder / "venv"),
                    "XDG_CACHE_HOME": str(folder / "cache"),
                    "UV_PYTHON": str(BASE_PYTHON),
                    "UV_PYTHON_DOWNLOADS": "never",
                    **DECLARED[number % 2],
                }
                return {
                    "num_cpus": 1,
                    "include_dashboard": False,
                    "temp_dir": str(work / "ray"),
                    "env_vars": env,
                }

            cluster = Cluster(initialize_head=True, head_node_args=node_args(0))
            try:
                for number in (1, 2):
                    cluster.add_node(**node_args(number))
                cluster.wait_for_nodes()
                env = dict(
                    os.environ,
                    UV=uv,
                    UV_DEFAULT_INDEX=index.url("/simple"),
                    LLM_SYNC_TORCH_INDEX_URL=index.url("/whl"),
                    LLM_SYNC_PREFER="newest",
                    UV_PYTHON=str(BASE_PYTHON),
                    UV_CACHE_DIR=str(work / "head-cache"),
                    LLM_SYNC_CUDA="13.0",
                    LLM_SYNC_ARCH="9.0",
                )
                ray_sync = [sys.executable, "-m", "uvx_llm", "sync", "--ray", str(cluster.address)]
                ray_sync += ["--python", sys.executable, "--no-build-check"]
                first = _timed(ray_sync, env=env, cwd=project)
                local = [sys.executable, "-m", "uvx_llm", "sync", "--no-build-check"]
                _timed(local, env=env, cwd=project)  # this machine's own environment, once
                plain = [uv, "sync", "--locked"]
                times: dict[str, list[float]] = {
                    "sync --ray (3 nodes)": [],
                    "llm-sync sync": [],
                    "uv sync --locked": [],
                }
                for _ in range(rounds):  # interleaved: the machine's noise falls on all three alike
                    times["sync --ray (3 nodes)"].append(_timed(ray_sync, env=env, cwd=project))
                    times["llm-sync sync"].append(_timed(local, env=env, cwd=project))
                    times["uv sync --locked"].append(_timed(plain, env=env, cwd=project))
            finally:
                cluster.shutdown()  # type: ignore[no-untyped-call]  # ray.cluster_utils is untyped
    finally:
        shutil.rmtree(work, ignore_errors=True)
    medians = {name: statistics.median(values) for name, values in times.items()}
    result = {
        "first sync --ray (build once, 3 nodes), s": round(first, 2),
        "rounds": rounds,
        "medians, s": {name: round(value, 3) for name, value in medians.items()},
        "ratio to uv sync --locked": {
            name: round(value / medians["uv sync --locked"], 1) for name, value in medians.items()
        },
        "all, s": {name: [round(v, 3) for v in values] for name, values in times.items()},
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    text = json.dumps(result, indent=2)
    print(text)
    if out is not None:
        out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", type=Path)
    arguments = parser.parse_args()
    sys.exit(main(arguments.rounds, arguments.out))
