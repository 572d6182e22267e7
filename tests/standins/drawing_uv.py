"""A stand-in for uv on a terminal: a download bar redrawn with carriage returns, colours,
and a build's lines as uv prints them with RUST_LOG=uv_build_frontend=debug. Standard library only."""

from __future__ import annotations

import os
import sys
import time

out = sys.stderr
out.write(f"stderr is a terminal: {os.isatty(2)}\n")
for done in range(0, 121, 40):  # a live byte counter, redrawn in place
    out.write(f"\r\x1b[2K\x1b[36mtorch\x1b[39m {done}MiB/120MiB")
    out.flush()
    time.sleep(0.02)
out.write("\r\x1b[2K\x1b[32m\x1b[1mDownloaded\x1b[0m torch\n")
out.write("   \x1b[36m\x1b[1mBuilding\x1b[0m flash-attn\x1b[2m==9.9.9\x1b[0m\n")
out.flush()
for line in (
    "Compiling objects...",
    "[1/2] nvcc -c kernel0.cu -o kernel0.o",
    "[2/2] nvcc -c kernel1.cu -o kernel1.o",
):
    # tracing's colour codes around the level, the line written in pieces as Rust's stderr does
    out.write("\x1b[34mDEB")
    out.flush()
    out.write(f"UG\x1b[0m {line}\n")
    out.flush()
    time.sleep(0.02)
out.write("      \x1b[32m\x1b[1mBuilt\x1b[0m flash-attn\x1b[2m==9.9.9\x1b[0m\n")
out.flush()
