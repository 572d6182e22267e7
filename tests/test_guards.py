from __future__ import annotations

from typing import TYPE_CHECKING

from helpers import applied, gpu_machine, make, proj, simple
from layouts import verl_style

from uvx_llm import actions, checkouts, config, guards, plan

if TYPE_CHECKING:
    from pathlib import Path

    from uvx_llm.catalog import Catalog

CUDA_124 = gpu_machine((12, 4), (8, 0), driver="550.54.14")


def test_a_cuda_124_driver_caps_flash_attn_with_a_reason(cat: Catalog) -> None:
    project = simple("flash-attn", "torch")
    made = make(project, cat, CUDA_124)
    assert made.backend == "cu124"
    assert (
        actions.AddConstraint(
            "flash-attn<=2.7.4.post1",
            "llm-sync: torch is capped at 2.6 by the backend, and flash-attn 2.8.x builds poorly against torch 2.6",
        )
        in made.actions
    )
    text = applied(project, made).text
    assert (
        'constraint-dependencies = [\n    "flash-attn<=2.7.4.post1", # llm-sync: torch is capped at 2.6'
        in text
    )
    decision = next(d for d in made.decisions if d.topic == "version guard")
    assert "torch ≤ 2.6 here (cu124)" in decision.reason
    assert make(applied(project, made), cat, CUDA_124).actions == ()  # idempotent


def test_no_guard_where_metadata_or_the_project_already_say_it(cat: Catalog) -> None:
    assert not any(
        isinstance(a, actions.AddConstraint) for a in make(simple("flash-attn", "torch"), cat).actions
    )  # cu130
    pinned = simple("flash-attn==2.7.4.post1", "torch")
    assert not any(isinstance(a, actions.AddConstraint) for a in make(pinned, cat, CUDA_124).actions)


def test_old_tensordict_with_new_torch_is_a_known_bad_combination(cat: Catalog) -> None:
    made = make(simple("torch", "tensordict<=0.6.2"), cat)
    [warning] = [w for w in made.warnings if "ForkingPickler" in w]
    assert "tensordict>=0.8.0" in warning
    assert not any(
        "ForkingPickler" in w for w in make(simple("torch", "tensordict>=0.8.0,<=0.10.0"), cat).warnings
    )
    assert not any("ForkingPickler" in w for w in make(simple("torch", "tensordict"), cat).warnings)


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
    assert any("tensordict<=0.6.2" in w and "ForkingPickler" in w for w in made.warnings)
    assert any(
        "verl 0.4.1 is known to work with vllm<=0.8.5; the project asks for vllm==0.10.2" in w
        for w in made.warnings
    )


def test_torch_ceiling() -> None:
    from uvx_llm.catalog import load  # noqa: PLC0415

    assert guards.torch_ceiling("cu124", load().torch) == (2, 6)
    assert guards.torch_ceiling("cpu", load().torch) is None
