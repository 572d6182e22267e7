from __future__ import annotations

from email.parser import HeaderParser
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from helpers import applied, gpu_machine, make, proj, simple
from layouts import TRAP, executed, verl_style

from uvx_llm import actions, checkouts, config, guards, plan

if TYPE_CHECKING:
    from uvx_llm.catalog import Catalog

CUDA_124 = gpu_machine((12, 4), (8, 0), driver="550.54.14")
CUDA_126 = gpu_machine((12, 6), (8, 0), driver="560.35.03")
METADATA = Path(__file__).parent / "fixtures" / "metadata"
ABI_REASON = (
    "llm-sync: flash-attn 2.8.x's prebuilt torch2.6 wheels are built against the C++11-ABI torch 2.6 "
    "of the cu126 index and fail to import against this old-ABI build"
)


def test_a_cuda_124_driver_caps_flash_attn_with_a_reason(cat: Catalog) -> None:
    project = simple("flash-attn", "torch")
    made = make(project, cat, CUDA_124)
    assert made.backend == "cu124"
    [guard] = [a for a in made.actions if isinstance(a, actions.AddConstraint)]
    assert guard.requirement == "flash-attn<=2.7.4.post1"
    assert guard.comment.startswith(ABI_REASON)
    text = applied(project, made).text
    assert (
        'constraint-dependencies = [\n    "flash-attn<=2.7.4.post1", # llm-sync: flash-attn 2.8.x\'s prebuilt'
        in text
    )
    decision = next(d for d in made.decisions if d.topic == "version guard")
    assert "torch 2.6 here is the cu124 build (old C++ ABI)" in decision.reason
    assert make(applied(project, made), cat, CUDA_124).actions == ()  # idempotent


def test_no_guard_where_metadata_or_the_project_already_say_it(cat: Catalog) -> None:
    assert not any(
        isinstance(a, actions.AddConstraint) for a in make(simple("flash-attn", "torch"), cat).actions
    )  # cu130
    pinned = simple("flash-attn==2.7.4.post1", "torch")
    assert not any(isinstance(a, actions.AddConstraint) for a in make(pinned, cat, CUDA_124).actions)


def test_torch_26_from_the_cu126_index_has_the_cxx11_abi_so_no_guard(cat: Catalog) -> None:
    made = make(simple("flash-attn", "torch==2.6.0"), cat, CUDA_126)
    assert made.backend == "cu126"
    assert not any(isinstance(a, actions.AddConstraint) for a in made.actions)


def test_the_guard_holds_on_cu118_torch_26_too(cat: Catalog) -> None:
    made = make(simple("flash-attn", "torch==2.6.0"), cat, CUDA_124, backend="cu118")
    assert [a.requirement for a in made.actions if isinstance(a, actions.AddConstraint)] == [
        "flash-attn<=2.7.4.post1"
    ]


def test_older_torch_than_26_needs_no_flash_attn_guard(cat: Catalog) -> None:
    # cu121 ends at torch 2.5: flash-attn 2.8.x has old-ABI torch 2.5 wheels built against it.
    made = make(simple("flash-attn", "torch"), cat, CUDA_124, backend="cu121")
    assert not any(isinstance(a, actions.AddConstraint) for a in made.actions)


def test_old_tensordict_with_new_torch_is_a_known_bad_combination(cat: Catalog) -> None:
    made = make(simple("torch", "tensordict<0.6"), cat)
    [warning] = [w for w in made.warnings if "ForkingPickler" in w]
    assert "tensordict>=0.6" in warning
    assert not any(
        "ForkingPickler" in w for w in make(simple("torch", "tensordict>=0.8.0,<=0.10.0"), cat).warnings
    )
    assert not any("ForkingPickler" in w for w in make(simple("torch", "tensordict"), cat).warnings)


@pytest.mark.parametrize("tensordict", ["tensordict<=0.6.2", "tensordict==0.6.2", "tensordict==0.7.0"])
def test_verl_04s_tensordict_with_torch_26_is_fine(cat: Catalog, tensordict: str) -> None:
    # Only tensordict <= 0.5.x imports ForkingPickler (checked in the wheels on PyPI).
    made = make(simple("torch==2.6.0", tensordict), cat, CUDA_124)
    assert not any("ForkingPickler" in w for w in made.warnings)


def test_known_bad_from_a_checkouts_own_requirements(tmp_path: Path, cat: Catalog) -> None:
    verl_style(tmp_path)  # verl 0.4.1: install_requires has tensordict<=0.6.2
    text = '[project]\nname = "app"\nversion = "0"\ndependencies = ["vllm==0.10.2"]\n'
    (tmp_path / "pyproject.toml").write_text(text, encoding="utf-8")
    found = tuple(checkouts.find(tmp_path, []))
    made = plan.make(
        machine=gpu_machine((13, 0), (9, 0), driver="580.159.04"),
        project=proj(text, tmp_path / "pyproject.toml"),
        catalog=cat,
        request=actions.Request(backend=config.Setting("auto", "default")),
        checkouts=found,
    )
    assert not any("ForkingPickler" in w for w in made.warnings)  # tensordict<=0.6.2 allows 0.6.x
    assert any(
        "verl 0.4.1 is known to work with vllm<=0.8.5; the project asks for vllm==0.10.2 (its 'vllm' extra"
        in w
        for w in made.warnings
    )


def _openrlhf_from_metadata(root: Path, version: str) -> Path:
    """An OpenRLHF checkout whose files say what the release's real wheel METADATA says, with
    its setup.py's pattern: the name from a function, requirements.txt read by a helper."""
    headers = HeaderParser().parsestr((METADATA / f"openrlhf-{version}.METADATA").read_text(encoding="utf-8"))
    base: list[str] = []
    extras: dict[str, list[str]] = {}
    for line in headers.get_all("Requires-Dist") or []:
        requirement, _, marker = line.partition(";")
        if marker:
            extra = marker.split("==")[1].strip().strip("'\"")
            extras.setdefault(extra, []).append(requirement.strip())
        else:
            base.append(requirement.strip())
    folder = root / "OpenRLHF"
    folder.mkdir()
    (folder / "requirements.txt").write_text("\n".join(base) + "\n", encoding="utf-8")
    (folder / "version.txt").write_text(version + "\n", encoding="utf-8")
    (folder / "setup.py").write_text(
        TRAP
        + f"""
from setuptools import setup

def _fetch_requirements(path):
    with open(path) as fd:
        return [r.strip() for r in fd.readlines()]

def _fetch_package_name():
    return "openrlhf"

setup(
    name=_fetch_package_name(),
    version=open("version.txt").read().strip(),
    install_requires=_fetch_requirements("requirements.txt"),
    extras_require={extras!r},
)
""",
        encoding="utf-8",
    )
    return folder


@pytest.mark.parametrize(
    ("vllm", "warned"),
    [
        ("vllm==0.17.0", False),  # what openrlhf 0.9.5 pins in its vllm extra
        ("vllm>=0.17.1", False),  # its vllm-latest extra
        ("vllm==0.11.0", True),  # what the old hand-kept table said for 0.9.x
    ],
)
def test_openrlhf_095_stack_comes_from_its_own_metadata(
    tmp_path: Path, cat: Catalog, vllm: str, warned: bool
) -> None:
    folder = _openrlhf_from_metadata(tmp_path, "0.9.5")
    text = f'[project]\nname = "app"\nversion = "0"\ndependencies = ["{vllm}", "torch"]\n'
    (tmp_path / "pyproject.toml").write_text(text, encoding="utf-8")
    made = plan.make(
        machine=gpu_machine((13, 0), (9, 0), driver="580.159.04"),
        project=proj(text, tmp_path / "pyproject.toml"),
        catalog=cat,
        request=actions.Request(backend=config.Setting("auto", "default")),
        checkouts=tuple(checkouts.find(tmp_path, [])),
    )
    stack = [w for w in made.warnings if "is known to work with" in w]
    assert not executed(folder)
    if warned:
        assert any(
            w.startswith(
                "openrlhf 0.9.5 is known to work with vllm==0.17.0; the project asks for vllm==0.11.0"
            )
            for w in stack
        ), stack
        assert any("vllm>0.17.0" in w for w in stack)
    else:
        assert stack == []


def test_torch_ceiling() -> None:
    from uvx_llm.catalog import load  # noqa: PLC0415

    assert guards.torch_ceiling("cu124", load().torch) == (2, 6)
    assert guards.torch_ceiling("cpu", load().torch) is None
