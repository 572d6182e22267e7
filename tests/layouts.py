"""Framework checkouts as they look on disk, built by the tests.

Every setup.py here would write a marker file (and fail) if it were executed:
tests assert the marker never appears, proving llm-sync reads and never runs them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

REAL_WORLD = Path(__file__).parent / "fixtures" / "real-world"
TRAP = """import pathlib
pathlib.Path(__file__).with_name("EXECUTED").write_text("setup.py was run")
raise SystemExit("this setup.py must never be executed")
"""


def verl_style(root: Path, *, vllm: str = "vllm<=0.8.5", transformers: str = "transformers") -> Path:
    """verl 0.4-like: literal install_requires, extras bound to names, a version file."""
    folder = root / "verl"
    (folder / "verl" / "version").mkdir(parents=True)
    (folder / "verl" / "version" / "version").write_text("0.4.1\n", encoding="utf-8")
    (folder / "setup.py").write_text(
        TRAP
        + f"""
from setuptools import find_packages, setup

install_requires = [
    "accelerate",
    "codetiming",
    "datasets",
    "hydra-core",
    "numpy",
    "pandas",
    "ray[default]>=2.10",
    "tensordict<=0.6.2",
    "{transformers}",
    "wandb",
]
TEST_REQUIRES = ["pytest", "pre-commit", "py-spy"]
VLLM_REQUIRES = ["tensordict<=0.6.2", "{vllm}"]
SGLANG_REQUIRES = ["tensordict<=0.6.2", "sglang[srt,openai]==0.4.6.post5", "torch-memory-saver>=0.0.5", "torch==2.6.0"]

extras_require = {{
    "test": TEST_REQUIRES,
    "vllm": VLLM_REQUIRES,
    "sglang": SGLANG_REQUIRES,
}}

setup(
    name="verl",
    version=open("verl/version/version").read().strip(),
    packages=find_packages(),
    install_requires=install_requires,
    extras_require=extras_require,
)
""",
        encoding="utf-8",
    )
    return folder


def openrlhf_style(root: Path, *, transformers: str = "transformers==4.55.2") -> Path:
    """OpenRLHF 0.8-like: setup.py reads requirements.txt through a helper function."""
    folder = root / "OpenRLHF"
    folder.mkdir(parents=True)
    (folder / "requirements.txt").write_text(
        f"accelerate\nbitsandbytes\ndatasets\ndeepspeed==0.17.5\nflash-attn==2.8.3\n# comment\n"
        f"ray[default]==2.48.0\ntorch\n{transformers}\n-r requirements-extra.txt\n",
        encoding="utf-8",
    )
    (folder / "requirements-extra.txt").write_text("wandb\n", encoding="utf-8")
    (folder / "setup.py").write_text(
        TRAP
        + """
from setuptools import find_packages, setup


def _fetch_requirements(path):
    with open(path, "r") as fd:
        return [r.strip() for r in fd.readlines()]


setup(
    name="openrlhf",
    version="0.8.10",
    packages=find_packages(),
    install_requires=_fetch_requirements("requirements.txt"),
    extras_require={"vllm": ["vllm==0.10.1.1"], "ring": ["ring_flash_attn"]},
)
""",
        encoding="utf-8",
    )
    return folder


def verl_with_own_uv(root: Path) -> Path:
    """verl HEAD: its own uv integration (extras per backend, conflicts, a wheel index)."""
    folder = verl_style(root)
    shutil.copy(REAL_WORLD / "verl-1dda039__pyproject.toml", folder / "pyproject.toml")
    return folder


def executed(folder: Path) -> bool:
    return (folder / "EXECUTED").exists()


CHECKOUTS = Path(__file__).parent / "fixtures" / "checkouts"


def real_checkout(root: Path, fixture: str, folder: str | None = None) -> Path:
    """The packaging files of a real verl/OpenRLHF release (tests/fixtures/checkouts) as a
    checkout folder: `setup.py.fixture` becomes setup.py with the trap in front."""
    source = CHECKOUTS / fixture
    target = root / (folder or fixture.split("-", maxsplit=1)[0])
    for path in sorted(source.rglob("*")):
        if path.is_file():
            relative = path.relative_to(source)
            destination = target / relative.parent / relative.name.removesuffix(".fixture")
            destination.parent.mkdir(parents=True, exist_ok=True)
            text = path.read_text(encoding="utf-8")
            destination.write_text(TRAP + text if destination.name == "setup.py" else text, encoding="utf-8")
    (target / "README.md").write_text(f"# {fixture}\n", encoding="utf-8")
    return target
