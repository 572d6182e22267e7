from __future__ import annotations

import shutil
import subprocess
from typing import TYPE_CHECKING

import pytest
from helpers import (
    H200,
    STANDINS,
    applied,
    environment,
    gpu_machine,
    installed_version,
    llm_sync,
    proj,
    uv_binary,
    write_project,
)
from layouts import TRAP, executed, openrlhf_style, real_checkout, verl_style, verl_with_own_uv

from uvx_llm import actions, checkouts, config, frameworks, plan, torch_fit
from uvx_llm.errors import LlmSyncError

if TYPE_CHECKING:
    from pathlib import Path

    from pkgindex import PackageIndex

    from uvx_llm.catalog import Catalog


def proj_at(folder: Path) -> plan.Project:  # type: ignore[name-defined]
    return proj((folder / "pyproject.toml").read_text(encoding="utf-8"), folder / "pyproject.toml")


def project_at(root: Path, text: str) -> plan.Project:  # type: ignore[name-defined]
    (root / "pyproject.toml").write_text(text, encoding="utf-8")
    return proj(text, root / "pyproject.toml")


def make_with(
    root: Path, text: str, cat: Catalog, *, relief: str = "override", force: bool = False
) -> actions.Plan:
    project = project_at(root, text)
    found = tuple(checkouts.find(root, checkouts.declared(project.config.get("checkouts"))))
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
    assert any(d.topic == "checkout" for d in made.decisions)
    warning = next(w for w in made.warnings if w.startswith("verl/"))  # never in silence
    assert "its own [tool.uv]" in warning
    assert "cd verl && uv sync --extra vllm" in warning


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
    assert checkouts.parse_entry("verl[vllm, gpu]") == ("verl", ("vllm", "gpu"))
    assert checkouts.parse_entry("vendor/OpenRLHF/") == ("vendor/OpenRLHF", ())
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


@pytest.mark.uv
def test_a_framework_from_the_index_pinning_against_the_project_gets_the_same_relief(
    framework_index: PackageIndex, tmp_path: Path
) -> None:
    """The seed guide's scenario: openrlhf from the index pins transformers==4.55.2, the project
    4.56.0. uv's own explanation names the pin (its metadata is never fetched at plan time);
    llm-sync writes the override with its reason and locks again."""
    if not any(p.name.startswith("openrlhf-") for p in framework_index.prefixes.get("/simple", [])):
        framework_index.add("/simple", "openrlhf", "0.11.2", requires=["transformers==4.55.2", "torch"])
    project = write_project(tmp_path / "app", "openrlhf", "transformers==4.56.0")
    env = environment(framework_index)
    plain = subprocess.run(
        [uv_binary(), "lock"], env=env, cwd=project, capture_output=True, text=True, check=False
    )
    assert "No solution found" in plain.stderr  # the real uv's explanation, which llm-sync reads
    assert frameworks.index_conflicts(proj_at(project), plain.stderr.splitlines())
    result = llm_sync(["--cuda", "12.8", "--arch", "9.0"], env=env, cwd=project)
    assert result.returncode == 0, result.stderr
    assert installed_version(project, "transformers") == "4.56.0"
    text = (project / "pyproject.toml").read_text(encoding="utf-8")
    assert '"transformers==4.56.0", # llm-sync: openrlhf pins transformers==4.55.2' in text
    assert "conflict relief: override transformers==4.56.0" in result.stderr


def test_index_conflicts_read_from_uv_explanations() -> None:
    project = proj(
        '[project]\nname = "app"\nversion = "0"\ndependencies = ["openrlhf", "transformers==4.56.0", "torch"]\n'
    )
    wrapped = [  # uv 0.13.8's wording, wrapped as it prints it
        "  × No solution found when resolving dependencies:",
        "  ╰─▶ Because openrlhf==0.11.2 depends on transformers==4.55.2 and only openrlhf==0.11.2 is",
        "      available, we can conclude that all versions of openrlhf depend on transformers==4.55.2.",
        "      And because your project depends on transformers==4.56.0, we can conclude that your",
        "      project's requirements are unsatisfiable.",
    ]
    [found] = frameworks.index_conflicts(project, wrapped)
    assert (found.framework, str(found.ours), str(found.theirs)) == (
        "openrlhf 0.11.2",
        "transformers==4.56.0",
        "transformers==4.55.2",
    )
    torch_only = ["Because vllm==0.10.2 depends on torch==2.8.0 and your project depends on torch==2.9.0"]
    assert frameworks.index_conflicts(project, torch_only) == []  # vllm is not declared here


def test_a_real_openrlhf_checkout_is_added_not_ignored(tmp_path: Path, cat: Catalog) -> None:
    """OpenRLHF's setup.py says `name=_fetch_package_name()`: it used to be skipped in silence."""
    folder = real_checkout(tmp_path, "OpenRLHF-0.11.0", "OpenRLHF")
    text = '[project]\nname = "app"\nversion = "0"\ndependencies = []\n[tool.llm-sync]\ncheckouts = ["OpenRLHF[vllm]"]\n'
    made = make_with(tmp_path, text, cat)
    assert actions.SetPathSource("openrlhf", "OpenRLHF") in made.actions
    assert actions.AddRequirement("dependencies", None, "openrlhf[vllm]") in made.actions
    assert not [w for w in made.warnings if w.startswith("OpenRLHF/")]
    assert not executed(folder)


def test_a_checkout_that_cannot_be_read_is_never_skipped_in_silence(tmp_path: Path, cat: Catalog) -> None:
    folder = tmp_path / "vendor" / "trainer"
    folder.mkdir(parents=True)
    (folder / "setup.py").write_text(
        TRAP + 'from setuptools import setup\nimport json\nsetup(name=json.load(open("m.json"))["n"])\n',
        encoding="utf-8",
    )
    text = (
        '[project]\nname = "app"\nversion = "0"\ndependencies = ["torch"]\n'
        '[tool.llm-sync]\ncheckouts = ["vendor/trainer", "vendor/gone[vllm]"]\n'
    )
    made = make_with(tmp_path, text, cat)
    unread = next(w for w in made.warnings if w.startswith("vendor/trainer/"))
    assert "could not read its package name" in unread
    assert 'checkouts = [{ path = "vendor/trainer", name = "<its package name>"' in unread
    assert any("lists vendor/gone/, but there is no such folder" in w for w in made.warnings)
    assert not any(isinstance(a, actions.SetPathSource) for a in made.actions)
    declared = text.replace('"vendor/trainer"', '{ path = "vendor/trainer", name = "trainer" }')
    made = make_with(tmp_path, declared, cat)
    assert actions.SetPathSource("trainer", "vendor/trainer") in made.actions
    assert not executed(folder)


def test_checkout_tables_are_validated(tmp_path: Path, cat: Catalog) -> None:
    text = '[project]\nname = "app"\nversion = "0"\n[tool.llm-sync]\ncheckouts = [{ name = "x" }]\n'
    with pytest.raises(LlmSyncError, match="checkouts must be a list of folder names or tables"):
        make_with(tmp_path, text, cat)


def test_an_editable_verl_050_checkout_decides_the_backend(tmp_path: Path, cat: Catalog) -> None:
    """verl v0.5.0's vllm extra says vllm>=0.7.3,<=0.8.5 (torch 2.5/2.6): on a CUDA 12.8 driver
    the backend is cu126, not cu128 (which has no torch 2.6, so no solution)."""
    folder = real_checkout(tmp_path, "verl-0.5.0")
    text = '[project]\nname = "app"\nversion = "0"\ndependencies = []\n[tool.llm-sync]\ncheckouts = ["verl[vllm]"]\n'
    made = plan.make(
        machine=gpu_machine((12, 8), (9, 0), driver="570.26"),
        project=project_at(tmp_path, text),
        catalog=cat,
        request=actions.Request(),
        checkouts=tuple(checkouts.find(tmp_path, checkouts.declared(["verl[vllm]"]))),
    )
    assert made.backend == "cu126"
    reason = next(d.reason for d in made.decisions if d.topic == "backend")
    assert "torch 2.6" in reason
    bounds = [a.requirement for a in made.actions if isinstance(a, actions.SetBound)]
    assert "torch>=2.6,<2.7" in bounds
    scope = torch_fit.torch_scope(
        project_at(tmp_path, text),
        cat,
        frameworks.checkout_requirements(tuple(checkouts.find(tmp_path, [])), {"verl": ("vllm",)}),
    )[0]
    assert (
        "pinned by vllm<=0.8.5,>=0.7.3 (verl 0.5.0, its 'vllm' extra, read from verl/)" in scope.description
    )
    assert not executed(folder)


def test_a_checkouts_own_extra_references_are_followed(tmp_path: Path) -> None:
    folder = tmp_path / "trainer"
    folder.mkdir()
    (folder / "pyproject.toml").write_text(
        '[project]\nname = "trainer"\nversion = "1"\ndependencies = []\n'
        '[project.optional-dependencies]\ncore = ["vllm==0.10.2"]\nserve = ["trainer[core]"]\n',
        encoding="utf-8",
    )
    found = tuple(checkouts.find(tmp_path, checkouts.declared(["trainer[serve]"])))
    theirs = frameworks.checkout_requirements(found, {"trainer": ("serve",)})
    assert [str(r) for r, _ in theirs] == ["vllm==0.10.2"]


@pytest.mark.uv
def test_a_checkouts_cuda_only_package_never_reaches_the_mac_side(
    package_index: PackageIndex, tmp_path: Path
) -> None:
    """The checkout requires flash-attn (source-only on the index): in the universal lock a
    macOS `uv sync` would compile it. llm-sync's override keeps the checkout's versions on
    Linux and drops it elsewhere; the real uv locks, and the lock read for macOS has none."""
    project = tmp_path / "app"
    checkout = project / "trainer"
    checkout.mkdir(parents=True)
    shutil.copy(STANDINS / "plain_backend.py", checkout / "backend.py")
    (checkout / "pyproject.toml").write_text(
        '[project]\nname = "trainer"\nversion = "1.0"\ndependencies = ["flash-attn>=9", "torch"]\n\n'
        '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n',
        encoding="utf-8",
    )
    write_project(project)
    text = (project / "pyproject.toml").read_text(encoding="utf-8")
    (project / "pyproject.toml").write_text(
        text + '\n[tool.llm-sync]\ncheckouts = ["trainer"]\n', encoding="utf-8"
    )
    env = environment(package_index)
    result = llm_sync(["--cuda", "12.8", "--arch", "9.0", "--no-sync"], env=env, cwd=project)
    assert result.returncode == 0, result.stderr
    written = (project / "pyproject.toml").read_text(encoding="utf-8")
    assert "\"flash-attn>=9 ; sys_platform == 'linux'\", # llm-sync: CUDA-only" in written
    locked = subprocess.run(
        [uv_binary(), "lock"], env=env, cwd=project, capture_output=True, text=True, check=False
    )
    assert locked.returncode == 0, locked.stderr
    mac = subprocess.run(  # what a Mac teammate's `uv sync` would install from this lock
        [uv_binary(), "sync", "--frozen", "--dry-run", "--python-platform", "aarch64-apple-darwin"],
        env=env,
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert mac.returncode == 0, mac.stderr
    assert "trainer" in mac.stderr
    assert "flash-attn" not in mac.stderr
    exported = subprocess.run(
        [uv_binary(), "export", "--frozen", "--no-hashes"],
        env=env,
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "flash-attn==9.9.9 ; sys_platform == 'linux'" in exported
    again = llm_sync(["--cuda", "12.8", "--arch", "9.0", "--no-sync"], env=env, cwd=project)
    assert again.returncode == 0, again.stderr
    assert (project / "pyproject.toml").read_text(encoding="utf-8").count("flash-attn>=9 ;") == 1
