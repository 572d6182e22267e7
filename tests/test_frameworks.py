from __future__ import annotations

import shutil
import subprocess
from typing import TYPE_CHECKING

import pytest
from helpers import H200, STANDINS, applied, environment, installed_version, llm_sync, proj, uv_binary
from layouts import executed, openrlhf_style, verl_style, verl_with_own_uv

from uvx_llm import actions, checkouts, config, frameworks, plan
from uvx_llm.errors import LlmSyncError

if TYPE_CHECKING:
    from pathlib import Path

    from pkgindex import PackageIndex

    from uvx_llm.catalog import Catalog


def project_at(root: Path, text: str) -> plan.Project:  # type: ignore[name-defined]
    (root / "pyproject.toml").write_text(text, encoding="utf-8")
    return proj(text, root / "pyproject.toml")


def make_with(
    root: Path, text: str, cat: Catalog, *, relief: str = "override", force: bool = False
) -> actions.Plan:
    project = project_at(root, text)
    listed = [frameworks.parse_entry(e)[0] for e in project.config.get("checkouts", [])]
    found = tuple(checkouts.find(root, listed))
    request = actions.Request(backend=config.Setting("cu128", "--backend"), relief=relief, force=force)
    return plan.make(machine=H200, project=project, catalog=cat, request=request, checkouts=found)


def test_verl_checkout_becomes_an_editable_path_source_with_its_extras(tmp_path: Path, cat: Catalog) -> None:
    folder = verl_style(tmp_path)
    text = '[project]\nname = "app"\nversion = "0"\ndependencies = []\n\n[tool.llm-sync]\ncheckouts = ["verl[vllm]"]\n'
    made = make_with(tmp_path, text, cat)
    assert actions.SetPathSource("verl", "verl") in made.actions
    assert actions.AddRequirement("dependencies", None, "verl[vllm]") in made.actions
    after = applied(proj(text, tmp_path / "pyproject.toml"), made)
    assert after.uv_sources["verl"] == {"path": "verl", "editable": True}
    assert after.table("project")["dependencies"] == [
        "verl[vllm]",
        "torch",
    ]  # verl needs torch: routed, so direct
    assert after.uv_sources["torch"][0]["index"] == "pytorch-cu128"
    assert not executed(folder)


def test_checkout_with_its_own_uv_configuration_is_left_to_it(tmp_path: Path, cat: Catalog) -> None:
    verl_with_own_uv(tmp_path)
    made = make_with(tmp_path, '[project]\nname = "app"\nversion = "0"\ndependencies = ["torch"]\n', cat)
    assert not any(isinstance(a, actions.SetPathSource) for a in made.actions)
    decision = next(d for d in made.decisions if d.topic == "checkout")
    assert "cd verl && uv sync --extra vllm" in decision.reason


def test_a_framework_pin_the_project_contradicts_gets_an_override_with_a_reason(
    tmp_path: Path, cat: Catalog
) -> None:
    folder = openrlhf_style(tmp_path)
    text = '[project]\nname = "app"\nversion = "0"\ndependencies = ["openrlhf", "transformers==4.56.0"]\n'
    made = make_with(tmp_path, text, cat)
    assert any(
        isinstance(a, actions.AddOverride) and a.requirement == "transformers==4.56.0" for a in made.actions
    )
    rendered = applied(proj(text, tmp_path / "pyproject.toml"), made).text
    assert (
        '"transformers==4.56.0", # llm-sync: openrlhf pins transformers==4.55.2; the project asks for ==4.56.0'
        in rendered
    )
    relief = next(d for d in made.decisions if d.topic == "conflict relief")
    assert "openrlhf pins transformers==4.55.2" in relief.reason
    assert not executed(folder)
    again = make_with(tmp_path, rendered, cat)  # idempotent: the override is there
    assert not any(isinstance(a, actions.AddOverride) for a in again.actions)


def test_metadata_relief_declares_the_framework_with_the_one_requirement_changed(
    tmp_path: Path, cat: Catalog
) -> None:
    openrlhf_style(tmp_path)
    text = '[project]\nname = "app"\nversion = "0"\ndependencies = ["openrlhf", "transformers==4.56.0"]\n'
    made = make_with(tmp_path, text, cat, relief="metadata")
    [metadata] = [a for a in made.actions if isinstance(a, actions.SetDependencyMetadata)]
    assert (metadata.name, metadata.version) == ("openrlhf", "0.8.10")
    assert "transformers==4.56.0" in metadata.requires_dist
    assert "transformers==4.55.2" not in metadata.requires_dist
    assert "vllm==0.10.1.1 ; extra == 'vllm'" in metadata.requires_dist
    after = applied(proj(text, tmp_path / "pyproject.toml"), made)
    assert after.table("tool", "uv")["dependency-metadata"][0]["name"] == "openrlhf"
    assert "# llm-sync: the project asks for transformers==4.56.0" in after.text


def test_hand_written_source_for_the_framework_is_kept(tmp_path: Path, cat: Catalog) -> None:
    verl_style(tmp_path)
    text = '[project]\nname = "app"\nversion = "0"\ndependencies = ["verl"]\n\n[tool.uv.sources]\nverl = { git = "https://example.invalid/verl" }\n'
    made = make_with(tmp_path, text, cat)
    assert not any(isinstance(a, actions.SetPathSource) for a in made.actions)
    assert any("kept the hand-written source for verl" in w for w in made.warnings)
    assert actions.SetPathSource("verl", "verl") in make_with(tmp_path, text, cat, force=True).actions


def test_entries_and_bad_config(cat: Catalog) -> None:
    assert frameworks.parse_entry("verl[vllm, gpu]") == ("verl", ("vllm", "gpu"))
    assert frameworks.parse_entry("vendor/OpenRLHF/") == ("vendor/OpenRLHF", ())
    with pytest.raises(LlmSyncError, match="checkouts must be a list"):
        config.validate_table({"checkouts": "verl"}, cat)


@pytest.fixture
def framework_index(package_index: PackageIndex) -> PackageIndex:
    for version in ("4.55.2", "4.56.0"):
        if not any(
            p.name.startswith(f"transformers-{version}") for p in package_index.prefixes.get("/simple", [])
        ):
            package_index.add("/simple", "transformers", version)
    return package_index


@pytest.mark.uv
def test_editable_framework_pinning_an_older_transformers_resolves_through_the_override(
    framework_index: PackageIndex, tmp_path: Path
) -> None:
    project = tmp_path / "app"
    checkout = project / "OpenRLHF"
    checkout.mkdir(parents=True)
    shutil.copy(STANDINS / "plain_backend.py", checkout / "backend.py")
    (checkout / "pyproject.toml").write_text(
        '[project]\nname = "openrlhf"\nversion = "0.8.10"\ndependencies = ["transformers==4.55.2", "torch"]\n\n'
        '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n',
        encoding="utf-8",
    )
    (project / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0"\nrequires-python = ">=3.10"\ndependencies = ["transformers==4.56.0"]\n\n[tool.uv]\npackage = false\n',
        encoding="utf-8",
    )
    env = environment(framework_index)
    result = llm_sync(["--cuda", "12.8", "--arch", "9.0"], env=env, cwd=project)
    assert result.returncode == 0, result.stderr
    assert installed_version(project, "transformers") == "4.56.0"
    assert list(project.glob(".venv/lib/python*/site-packages/_openrlhf_editable.pth"))
    text = (project / "pyproject.toml").read_text(encoding="utf-8")
    assert 'openrlhf = { path = "OpenRLHF", editable = true }' in text
    assert "# llm-sync: openrlhf pins transformers==4.55.2" in text

    # Without the override uv finds no solution: the conflict is real.
    (project / "pyproject.toml").write_text(
        text.replace('    "transformers==4.56.0", # llm-sync', '    # "transformers==4.56.0", # llm-sync'),
        encoding="utf-8",
    )
    plain = subprocess.run(
        [uv_binary(), "lock"], env=env, cwd=project, capture_output=True, text=True, check=False
    )
    assert plain.returncode != 0
    assert "No solution found" in plain.stderr
