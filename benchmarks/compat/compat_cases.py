"""The machines and projects of the compatibility suite.

Every case is a project a user could have: synthetic pyproject files with the
dependencies named in issue 11, editable verl/OpenRLHF checkouts made from the
packaging files of real releases (tests/fixtures/checkouts), and the real-world
pyproject files of tests/fixtures/real-world.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKOUTS = ROOT / "tests" / "fixtures" / "checkouts"
REAL_WORLD = ROOT / "tests" / "fixtures" / "real-world"
# What `uv init` writes with Python 3.12: an open upper bound, as new users have it.
REQUIRES_PYTHON = ">=3.12"


@dataclass(frozen=True)
class Machine:
    name: str
    gpu: str
    cuda: str  # the highest CUDA the driver runs (what NVML reports)
    arch: str  # compute capability


MACHINES = (
    Machine("a100", "A100", "12.4", "8.0"),
    Machine("h100", "H100", "12.8", "9.0"),
    Machine("b200", "B200", "13.0", "10.0"),
)


@dataclass(frozen=True)
class Case:
    name: str
    group: str
    description: str
    dependencies: tuple[str, ...] = ()
    # folder in the project -> fixture folder under tests/fixtures/checkouts
    checkouts: dict[str, str] = field(default_factory=dict)
    # `[tool.llm-sync] checkouts` entries (with extras), when the case declares them
    declared_checkouts: tuple[str, ...] = ()
    real_world: str = ""  # a file under tests/fixtures/real-world
    # `uv tree` options for the per-platform view (a project with conflicting extras
    # can only show one of them at a time)
    tree_args: tuple[str, ...] = ()

    def write(self, folder: Path, torch_index_base: str) -> None:
        """Create the project in `folder` (empty) as the user would have it."""
        for name, fixture in self.checkouts.items():
            materialize_checkout(CHECKOUTS / fixture, folder / name)
        if self.real_world:
            text = (REAL_WORLD / self.real_world).read_text(encoding="utf-8")
            (folder / "pyproject.toml").write_text(reachable(text, torch_index_base), encoding="utf-8")
            return
        lines = [
            "[project]",
            f'name = "compat-{re.sub(r"[^A-Za-z0-9]+", "-", self.name).strip("-")}"',
            'version = "0.1.0"',
            f'requires-python = "{REQUIRES_PYTHON}"',
            "dependencies = [" + ", ".join(f'"{d}"' for d in self.dependencies) + "]",
        ]
        if self.declared_checkouts:
            entries = ", ".join(f'"{c}"' for c in self.declared_checkouts)
            lines += ["", "[tool.llm-sync]", f"checkouts = [{entries}]"]
        (folder / "pyproject.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def materialize_checkout(fixture: Path, target: Path) -> None:
    """Copy a checkout's packaging files; `*.py.fixture` become `*.py` again.

    Their setup.py reads README.md (long_description), which is not a packaging file:
    a one-line stand-in is written.
    """
    for source in sorted(fixture.rglob("*")):
        if source.is_file():
            relative = source.relative_to(fixture)
            destination = target / relative.parent / relative.name.removesuffix(".fixture")
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, destination)
    (target / "README.md").write_text(f"# {fixture.name} (packaging files only)\n", encoding="utf-8")


# The real-world templates point at hosts the suite cannot use: the PyTorch index
# (and its NJU mirror) become the stand-in, the TUNA PyPI mirror becomes PyPI itself.
_REPLACEMENTS = (
    (re.compile(r"https://download\.pytorch\.org/whl"), "{torch}"),
    (re.compile(r"https://mirrors\.nju\.edu\.cn/pytorch/whl"), "{torch}"),
    (re.compile(r"https://pypi\.tuna\.tsinghua\.edu\.cn/simple/?"), "https://pypi.org/simple"),
)


def reachable(text: str, torch_index_base: str) -> str:
    for pattern, replacement in _REPLACEMENTS:
        text = pattern.sub(replacement.replace("{torch}", torch_index_base), text)
    return text


def _checkout_cases() -> list[Case]:
    verl = [("0.4.1", "v0.4.1"), ("0.5.0", "v0.5.0"), ("0.7.0", "v0.7.0"), ("0.9.1", "0.9.1, latest")]
    openrlhf = [("0.8.11", "v0.8.11"), ("0.9.5", "v0.9.5"), ("0.11.0", "v0.11.0, latest tag")]
    cases = [
        Case(
            f"verl-checkout-{version}",
            "checkout",
            f'editable verl {label} checkout, `checkouts = ["verl[vllm]"]`',
            checkouts={"verl": f"verl-{version}"},
            declared_checkouts=("verl[vllm]",),
        )
        for version, label in verl
    ]
    cases += [
        Case(
            f"openrlhf-checkout-{version}",
            "checkout",
            f'editable OpenRLHF {label} checkout, `checkouts = ["OpenRLHF[vllm]"]`',
            checkouts={"OpenRLHF": f"OpenRLHF-{version}"},
            declared_checkouts=("OpenRLHF[vllm]",),
        )
        for version, label in openrlhf
    ]
    return cases


def _real_world_cases() -> list[Case]:
    # The templates' checkouts are at the commits their comments name.
    checkouts = {"verl": "verl-c7922f0", "OpenRLHF": "OpenRLHF-35d12c7"}
    cases = []
    for path in sorted(REAL_WORLD.glob("*.toml")):
        text = path.read_text(encoding="utf-8")
        used = {
            folder: fixture
            for folder, fixture in checkouts.items()
            if re.search(rf'path\s*=\s*"{folder}"', text)
        }
        name = path.name.removesuffix(".toml").replace("llm-env-templates__", "tpl-").replace("__", "-")
        tree_args = ("--extra", "verl") if "conflicts" in text and "openrlhf" in text else ()
        cases.append(
            Case(
                f"rw-{name}",
                "real-world",
                f"tests/fixtures/real-world/{path.name}",
                checkouts=used,
                real_world=path.name,
                tree_args=tree_args,
            )
        )
    return cases


CASES: tuple[Case, ...] = (
    Case("vllm", "pypi", "unpinned `vllm`", ("vllm",)),
    Case("vllm+flash-attn", "pypi", "unpinned `vllm` and `flash-attn`", ("vllm", "flash-attn")),
    Case("verl[vllm]", "pypi", "`verl[vllm]` from PyPI", ("verl[vllm]",)),
    Case("openrlhf", "pypi", "`openrlhf` from PyPI", ("openrlhf",)),
    Case(
        "openrlhf+transformers",
        "pypi",
        "`openrlhf` from PyPI with `transformers==4.56.0` (the seed guide's scenario)",
        ("openrlhf", "transformers==4.56.0"),
    ),
    *(
        Case(f"vllm=={v}+torch", "vllm-pin", f"`vllm=={v}` and `torch`", (f"vllm=={v}", "torch"))
        for v in ("0.8.5", "0.10.1.1", "0.11.1", "0.33.0")
    ),
    *_checkout_cases(),
    *_real_world_cases(),
)
