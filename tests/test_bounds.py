"""The bounds a plan writes: torch and vllm ranges, the Python range, and their ownership."""

from __future__ import annotations

from typing import TYPE_CHECKING

from helpers import applied, make, proj

from uvx_llm import actions

if TYPE_CHECKING:
    from uvx_llm.catalog import Catalog


def vllm_project(requires_python: str, extra: str = "") -> str:
    return (
        f'[project]\nname = "a"\nversion = "0"\nrequires-python = "{requires_python}"\n'
        f'dependencies = ["vllm"]\n{extra}'
    )


def test_unpinned_vllm_gets_a_torch_range_and_a_vllm_floor(cat: Catalog) -> None:
    made = make(proj(vllm_project(">=3.10,<3.13")), cat)
    written = [a.requirement for a in made.actions if isinstance(a, actions.SetBound)]
    assert written == ["torch>=2.11,<2.15", "vllm>=0.20.0"]  # vllm from 0.20 is a CUDA 13 build, like cu130
    assert made.expectation.variant == "cu130"


def test_an_open_python_range_needs_no_environments_of_llm_syncs(cat: Catalog) -> None:
    """uv ignores upper Requires-Python bounds without [tool.uv] environments: nothing to add."""
    made = make(proj(vllm_project(">=3.10")), cat)
    assert not made.warnings
    assert "environments" not in applied(proj(vllm_project(">=3.10")), made).text


def test_the_projects_own_environments_get_the_python_cap_the_torch_wheels_need(cat: Catalog) -> None:
    own = "\n[tool.uv]\nenvironments = [\"sys_platform == 'linux'\"]\n"
    pinned = vllm_project(">=3.10", own).replace('["vllm"]', '["vllm==0.10.1.1"]')  # torch 2.7: cp39-cp313
    made = make(proj(pinned), cat)
    [warning] = [w for w in made.warnings if "environments" in w]
    assert "python_full_version < '3.14'" in warning
    assert "torch 2.7 has wheels for Python 3.9–3.13 only" in warning
    capped = make(proj(pinned.replace('">=3.10"', '">=3.10,<3.14"')), cat)
    assert not [w for w in capped.warnings if "environments" in w]


def test_a_users_own_constraint_for_a_bounded_package_is_theirs(cat: Catalog) -> None:
    own = '\n[tool.uv]\nconstraint-dependencies = ["vllm>=0.20"]\n'
    made = make(proj(vllm_project(">=3.10,<3.13", own)), cat)
    written = [a.requirement for a in made.actions if isinstance(a, actions.SetBound)]
    assert written == ["torch>=2.11,<2.15"]
    assert [b.package for b in made.expectation.bounds] == ["torch", "vllm"]  # still checked in the lock


def test_a_moved_plan_replaces_llm_syncs_own_bound(cat: Catalog) -> None:
    first = applied(proj(vllm_project(">=3.10,<3.13")), make(proj(vllm_project(">=3.10,<3.13")), cat))
    moved = make(first, cat, backend="cu126")
    [torch] = [
        a for a in moved.actions if isinstance(a, actions.SetBound) and a.requirement.startswith("torch")
    ]
    assert torch.old == "torch>=2.11,<2.15"
    text = applied(first, moved).text
    assert text.count('"torch>=') == 1
    assert '"vllm>=0.8.0"' in text  # the floor follows the wider torch range
