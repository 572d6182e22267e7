"""How long `llm-sync check` takes as a pre-commit hook, next to the floor (`python -c pass`)
and a no-op `uv sync`, measured in the same run on the same machine.

    python benchmarks/check_speed.py [--runs 30]

Projects: the bundled example (after `check --fix`, so the check finds it up to date, as on
most commits) and verl's own 17 kB uv-integrated pyproject (tests/fixtures/real-world).
The first run of each command is a warm-up (bytecode, page cache) and is not counted.
Prints a Markdown table of medians; numbers are wall time of the whole process.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def median_ms(command: list[str], cwd: Path, runs: int, env: dict[str, str]) -> float:
    subprocess.run(command, cwd=cwd, env=env, capture_output=True, check=False)  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, cwd=cwd, env=env, capture_output=True, check=False)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # a user's Python caches bytecode; measure that case
    python = sys.executable
    uv = shutil.which("uv", path=str(Path(python).parent) + os.pathsep + env.get("PATH", "")) or "uv"
    work = Path(tempfile.mkdtemp(prefix="llm-sync-bench-"))
    typical = work / "typical"
    typical.mkdir()
    shutil.copy(ROOT / "examples" / "llm-project" / "pyproject.toml", typical / "pyproject.toml")
    subprocess.run(
        [python, "-m", "uvx_llm", "check", "--fix", "--backend", "cu128"],
        cwd=typical,
        env=env,
        capture_output=True,
        check=False,
    )
    verl = work / "verl"
    verl.mkdir()
    shutil.copy(
        ROOT / "tests" / "fixtures" / "real-world" / "verl-1dda039__pyproject.toml", verl / "pyproject.toml"
    )
    empty = work / "empty"
    empty.mkdir()
    (empty / "pyproject.toml").write_text(
        '[project]\nname = "empty"\nversion = "0"\ndependencies = []\n[tool.uv]\npackage = false\n',
        encoding="utf-8",
    )
    subprocess.run([uv, "sync", "--offline"], cwd=empty, env=env, capture_output=True, check=True)
    rows = [
        ("`python -c pass` (the floor)", [python, "-c", "pass"], work),
        ("`llm-sync check`, typical project (up to date)", [python, "-m", "uvx_llm", "check"], typical),
        ("`llm-sync check`, verl's pyproject (17 kB)", [python, "-m", "uvx_llm", "check"], verl),
        ("`uv sync` with nothing to do (empty project)", [uv, "sync", "--offline"], empty),
    ]
    results = [(label, median_ms(command, cwd, args.runs, env)) for label, command, cwd in rows]
    floor = results[0][1]
    print(f"| command | median of {args.runs} (ms) | × `python -c pass` |")
    print("|---|---|---|")
    for label, value in results:
        print(f"| {label} | {value:.0f} | {value / floor:.1f} |")


if __name__ == "__main__":
    main()
