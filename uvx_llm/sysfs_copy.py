"""The files llm-sync reads to find AMD GPUs, copied as text from a Ray node (standard library only).

`sync --ray` and `doctor --ray` run this module's text on each node (where llm-sync is not
installed): ``collect`` reads the KFD topology (each node's ``properties``, ``name`` and memory
banks), whether ``/dev/kfd`` exists, and the ROCm release file; here, ``rebuild`` writes them
under a folder, and accelerators.py reads that folder as it reads ``/`` on this machine. So a
node is read by the same code as a local machine, from the same files.
"""

from __future__ import annotations

from pathlib import Path

KFD_NODES = "sys/class/kfd/kfd/topology/nodes"
LIMIT = 64 * 1024  # a real KFD properties file is about 1 KiB
MARK = ""  # /dev/kfd is a device: its existence is what counts


def _text(path: Path) -> str | None:
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return handle.read(LIMIT)
    except OSError:
        return None


def collect(root: Path, rocm_path: str | None = None) -> dict[str, str]:
    """Relative path -> text of every file accelerators.py reads for AMD GPUs under ``root``."""
    found: dict[str, str] = {}
    nodes = root / KFD_NODES
    wanted = [*nodes.glob("*/properties"), *nodes.glob("*/name"), *nodes.glob("*/mem_banks/*/properties")]
    folders = [
        Path(rocm_path.strip().lstrip("/")) if rocm_path and rocm_path.strip() else None,
        Path("opt/rocm"),
    ]
    wanted += [root / folder / ".info" / "version" for folder in folders if folder is not None]
    for path in wanted:
        text = _text(path)
        if text is not None:
            found[path.relative_to(root).as_posix()] = text
    if (root / "dev" / "kfd").exists():
        found["dev/kfd"] = MARK
    return found


def rebuild(files: dict[str, str], target: Path) -> None:
    """``collect``'s answer as files under ``target`` (relative paths only, nothing outside it)."""
    base = target.resolve()
    for relative, text in files.items():
        path = (target / relative).resolve()
        if Path(relative).is_absolute() or not path.is_relative_to(base) or path == base:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def source() -> str:
    """This module's text, for a node task to run."""
    return Path(__file__).read_text(encoding="utf-8")
