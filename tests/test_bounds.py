"""The bounds a plan writes: torch and vllm ranges, the Python range, and their ownership."""

from __future__ import annotations

from typing import TYPE_CHECKING

from helpers import applied, make, proj

from uvx_llm import actions, bounds

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
    assert written == ["torch>=2.9,<2.15", "vllm>=0.11.1"]
    assert made.expectation.variant == "cu130"


def test_an_open_python_range_is_limited_to_what_the_stack_has_releases_for(cat: Catalog) -> None:
    made = make(proj(vllm_project(">=3.10")), cat)
    [environments] = [a for a in made.actions if isinstance(a, actions.SetEnvironments)]
    assert environments.markers == ("python_full_version < '3.15'",)
    assert environments.comment.startswith(bounds.PYTHON_MARK)
    again = applied(proj(vllm_project(">=3.10")), made)
    assert make(again, cat).actions == ()  # its own entry is recognised


def test_a_capped_python_range_needs_no_environments(cat: Catalog) -> None:
    made = make(proj(vllm_project(">=3.10,<3.14")), cat)
    assert not [a for a in made.actions if isinstance(a, actions.SetEnvironments)]


def test_the_projects_own_environments_are_kept_with_a_warning(cat: Catalog) -> None:
    own = "\n[tool.uv]\nenvironments = [\"sys_platform == 'linux'\"]\n"
    made = make(proj(vllm_project(">=3.10", own)), cat)
    assert not [a for a in made.actions if isinstance(a, actions.SetEnvironments)]
    assert any("python_full_version < '3.15'" in w for w in made.warnings)


def test_a_users_own_constraint_for_a_bounded_package_is_theirs(cat: Catalog) -> None:
    own = '\n[tool.uv]\nconstraint-dependencies = ["vllm>=0.20"]\n'
    made = make(proj(vllm_project(">=3.10,<3.13", own)), cat)
    written = [a.requirement for a in made.actions if isinstance(a, actions.SetBound)]
    assert written == ["torch>=2.9,<2.15"]
    assert [b.package for b in made.expectation.bounds] == ["torch", "vllm"]  # still checked in the lock


def test_a_moved_plan_replaces_llm_syncs_own_bound(cat: Catalog) -> None:
    first = applied(proj(vllm_project(">=3.10,<3.13")), make(proj(vllm_project(">=3.10,<3.13")), cat))
    moved = make(first, cat, backend="cu126")
    [torch] = [
        a for a in moved.actions if isinstance(a, actions.SetBound) and a.requirement.startswith("torch")
    ]
    assert torch.old == "torch>=2.9,<2.15"
    text = applied(first, moved).text
    assert text.count('"torch>=') == 1
    assert '"vllm>=0.8.0"' in text  # the floor follows the wider torch range
