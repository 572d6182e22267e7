"""`llm-sync doctor --ray` on a real GPU machine: a real Ray cluster on it, three raylets.

- the head, with the machine's GPU (its real nvidia-smi);
- a node that declares an older driver (LLM_SYNC_CUDA=12.8, LLM_SYNC_ARCH=9.0);
- a node whose Ray hides every GPU from tasks that ask for none
  (RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO=1, as Ray before 2.4x did by default).

Run it with the interpreter of a project environment that has ray and the machine's torch,
from the llm-sync checkout, with the project folder as the argument:

    PROJECT/.venv/bin/python benchmarks/ray_doctor_gpu.py PROJECT OUT

It writes `doctor.json` / `doctor.txt` (and their stderr) to OUT. Expected: torch sees the GPU
on every node (the third included); the declared node is named for its driver.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path


def main(project: Path, out: Path) -> int:
    from ray.cluster_utils import Cluster  # noqa: PLC0415 - the project environment's ray

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 2, "num_gpus": 1, "include_dashboard": False}
    )
    try:
        cluster.add_node(num_cpus=1, env_vars={"LLM_SYNC_CUDA": "12.8", "LLM_SYNC_ARCH": "9.0"})
        cluster.add_node(num_cpus=1, env_vars={"RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "1"})
        cluster.wait_for_nodes()
        (out / "cluster.txt").write_text(f"up in {time.monotonic() - started:.1f} s at {cluster.address}\n")
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
        for name, extra in (("doctor.json", ["--json"]), ("doctor.txt", [])):
            begun = time.monotonic()
            done = subprocess.run(
                [sys.executable, "-m", "uvx_llm", "doctor", "--ray", str(cluster.address), *extra],
                cwd=project,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            (out / name).write_text(done.stdout)
            took = time.monotonic() - begun
            (out / f"{name}.stderr").write_text(f"{done.stderr}\nexit {done.returncode} in {took:.1f} s\n")
    finally:
        cluster.shutdown()  # type: ignore[no-untyped-call]  # ray.cluster_utils is untyped
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
