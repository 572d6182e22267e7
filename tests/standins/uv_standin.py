"""A stand-in for the uv binary in the process tests: `--version` answers as uv does, and `sync`
behaves as the test asks (LLM_SYNC_TEST_UV): start a grandchild that would outlive uv and wait,
exit with a code, or be killed by a signal. It never touches the network or the project."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# A grandchild that shrugs off SIGINT (as a detached compiler daemon or a `nohup` job would)
# and lives ten minutes unless something stops it.
GRANDCHILD = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(600)"


def main() -> int:
    args = sys.argv[1:]
    if args[:1] == ["--version"]:
        print("uv 0.13.8")
        return 0
    mode = os.environ.get("LLM_SYNC_TEST_UV", "")
    record = Path(os.environ.get("LLM_SYNC_TEST_UV_PIDS", os.devnull))
    if mode.startswith("exit-"):
        return int(mode.removeprefix("exit-"))
    if mode.startswith("signal-"):
        os.kill(os.getpid(), getattr(signal, mode.removeprefix("signal-")))
        return 1
    grandchild = subprocess.Popen([sys.executable, "-c", GRANDCHILD])
    with record.open("a", encoding="utf-8") as handle:
        handle.write(f"{os.getpid()} {grandchild.pid}\n")
    if mode == "leave-behind":  # uv exits, its grandchild lives on
        print("Installed 1 package", file=sys.stderr)
        return 0
    print("Resolved 1 package", file=sys.stderr, flush=True)
    time.sleep(600)
    return 0


if __name__ == "__main__":
    sys.exit(main())
