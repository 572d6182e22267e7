"""Build flash-attn from its sdist with llm-sync's tuned environment or with flash-attn's
own defaults, on the same machine, and measure: wall time, ninja progress over time,
peak memory of the build's process tree, jobs and architectures.

Needs a GPU machine with torch, nvcc, ninja, psutil, setuptools and wheel (the
device image has them) and the flash-attn sdist (PyPI: flash_attn-2.8.3.post2.tar.gz).

    python benchmarks/flash_attn_build.py build --mode tuned --sdist SDIST --out DIR
    python benchmarks/flash_attn_build.py build --mode default --sdist SDIST --out DIR --max-seconds 300
    python benchmarks/flash_attn_build.py verify --wheel DIR/dist/flash_attn-*.whl

`tuned` takes the environment from `llm-sync plan --json` for a project that declares
flash-attn (so llm-sync must be importable); `default` clears every such variable, so
flash-attn's setup.py picks its own (MAX_JOBS from CPUs and MemAvailable, NVCC_THREADS=4,
archs 80;90;100;120). Both set FLASH_ATTENTION_FORCE_BUILD=TRUE: no prebuilt-wheel download.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

TUNABLE = (
    "MAX_JOBS",
    "NVCC_THREADS",
    "FLASH_ATTN_CUDA_ARCHS",
    "TORCH_CUDA_ARCH_LIST",
    "CMAKE_BUILD_PARALLEL_LEVEL",
)
NINJA = re.compile(r"^\[(\d+)/(\d+)\]")


def tuned_environment() -> dict[str, str]:
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "pyproject.toml").write_text(
            '[project]\nname = "bench"\nversion = "0"\ndependencies = ["flash-attn"]\n', encoding="utf-8"
        )
        result = subprocess.run(
            [sys.executable, "-m", "uvx_llm", "plan", "--json", "--project", folder],
            capture_output=True,
            text=True,
            check=True,
            # The compile route: with prefer = prebuilt, llm-sync would route to a release wheel.
            env={**os.environ, "LLM_SYNC_PREFER": "newest"},
        )
    document = json.loads(result.stdout)
    environment: dict[str, str] = document["uv"]["environment"]
    print(
        "llm-sync plan:",
        json.dumps(
            {"machine": document["machine"], "environment": document["uv"]["environment_reasons"]}, indent=1
        ),
    )
    return {k: v for k, v in environment.items() if k in TUNABLE}


def tree_rss(pid: int) -> int:
    import psutil  # noqa: PLC0415 - only on the benchmark machine

    try:
        parent = psutil.Process(pid)
        processes = [parent, *parent.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            continue
    return total


CUDA_UNIT = re.compile(r'^\s+"csrc/flash_attn/src/[^"]+\.cu",\n', re.MULTILINE)


def keep_units(setup_py: Path, units: int) -> list[str]:
    """Cut setup.py's CUDA source list to its first ``units`` kernels: the same work for
    both modes, a subset that fits a machine's time. The library links with unresolved
    kernels (a benchmark build, not a usable wheel)."""
    text = setup_py.read_text(encoding="utf-8")
    found = CUDA_UNIT.findall(text)
    dropped = found[units:]
    for line in dropped:
        text = text.replace(line, "", 1)
    setup_py.write_text(text, encoding="utf-8")
    return [line.strip().strip('",') for line in found[:units]]


def build(
    sdist: Path, out: Path, mode: str, max_seconds: float, units: int | None = None
) -> dict[str, object]:
    out.mkdir(parents=True, exist_ok=True)
    source = Path(tempfile.mkdtemp(prefix=f"fa-{mode}-"))
    with tarfile.open(sdist) as archive:
        archive.extractall(source, filter="data")
    [top] = [p for p in source.iterdir() if p.is_dir()]
    kept = keep_units(top / "setup.py", units) if units else []
    env = {k: v for k, v in os.environ.items() if k not in TUNABLE}
    env["FLASH_ATTENTION_FORCE_BUILD"] = "TRUE"
    chosen = tuned_environment() if mode == "tuned" else {}
    env.update(chosen)
    name = f"{mode}-{units}units" if units else mode
    log = (out / f"{name}.log").open("w", encoding="utf-8")
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "setup.py", "bdist_wheel", "-d", str(out / "dist")],
        cwd=top,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], tree_rss(process.pid))
            stop.wait(1.0)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    timeline: list[tuple[float, int, int]] = []
    timer = threading.Timer(max_seconds, lambda: os.killpg(process.pid, signal.SIGKILL))
    timer.start()
    assert process.stdout is not None
    for line in process.stdout:
        log.write(line)
        match = NINJA.match(line)
        if match:
            elapsed = time.monotonic() - started
            timeline.append((round(elapsed, 1), int(match.group(1)), int(match.group(2))))
            print(
                f"{mode} {elapsed:7.1f}s [{match.group(1)}/{match.group(2)}] peak {peak[0] / 2**30:.1f} GiB",
                flush=True,
            )
    code = process.wait()
    timer.cancel()
    stop.set()
    sampler.join()
    log.close()
    wall = time.monotonic() - started
    done, total = (timeline[-1][1], timeline[-1][2]) if timeline else (0, 0)
    result: dict[str, object] = {
        "mode": mode,
        "units": kept or "all",
        "environment": chosen or "flash-attn defaults (no MAX_JOBS/NVCC_THREADS/arch variables)",
        "finished": code == 0,
        "returncode": code,
        "wall_seconds": round(wall, 1),
        "ninja_steps_done": done,
        "ninja_steps_total": total,
        "steps_per_minute": round(done / (wall / 60), 2) if wall else None,
        "peak_rss_gib": round(peak[0] / 2**30, 1),
        "cpus": os.cpu_count(),
        "timeline": timeline[:: max(1, len(timeline) // 20)],
        "wheels": sorted(p.name for p in (out / "dist").glob("*.whl")),
    }
    (out / f"{name}.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(json.dumps(result, indent=1))
    return result


def verify(wheel: Path) -> None:
    """Import the built wheel and compare flash_attn_func with PyTorch's reference attention."""
    target = Path(tempfile.mkdtemp(prefix="fa-verify-"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
    )
    sys.path.insert(0, str(target))
    import torch  # noqa: PLC0415
    from flash_attn import flash_attn_func  # noqa: PLC0415

    torch.manual_seed(0)
    results = {}
    for causal in (False, True):
        q, k, v = (torch.randn(2, 512, 8, 128, device="cuda", dtype=torch.bfloat16) for _ in range(3))
        ours = flash_attn_func(q, k, v, causal=causal)
        reference = torch.nn.functional.scaled_dot_product_attention(
            q.transpose(1, 2).float(), k.transpose(1, 2).float(), v.transpose(1, 2).float(), is_causal=causal
        ).transpose(1, 2)
        error = (ours.float() - reference).abs().max().item()
        results[f"causal={causal}"] = error
        assert error < 2e-2, (causal, error)
    print(
        json.dumps(
            {"flash_attn_func_vs_reference_max_abs_error": results, "gpu": torch.cuda.get_device_name()}
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("build")
    run.add_argument("--mode", choices=["tuned", "default"], required=True)
    run.add_argument("--sdist", type=Path, required=True)
    run.add_argument("--out", type=Path, required=True)
    run.add_argument("--max-seconds", type=float, default=3600)
    run.add_argument("--units", type=int, help="build only the first N CUDA kernels (a fair subset)")
    check = sub.add_parser("verify")
    check.add_argument("--wheel", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "build":
        build(args.sdist, args.out, args.mode, args.max_seconds, args.units)
    else:
        verify(args.wheel)


if __name__ == "__main__":
    main()
