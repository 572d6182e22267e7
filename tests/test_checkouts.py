from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from layouts import TRAP, executed, openrlhf_style, real_checkout, verl_style, verl_with_own_uv

from uvx_llm import checkouts

if TYPE_CHECKING:
    from pathlib import Path


def test_verl_style_setup_py_is_read_not_run(tmp_path: Path) -> None:
    folder = verl_style(tmp_path)
    found = checkouts.read(folder, "verl")
    assert found.name == "verl"
    assert "tensordict<=0.6.2" in found.requires
    assert "ray[default]>=2.10" in found.requires
    assert found.extras["vllm"] == ("tensordict<=0.6.2", "vllm<=0.8.5")
    assert "torch==2.6.0" in found.extras["sglang"]
    assert found.read_from.startswith("setup.py")
    assert not executed(folder)


def test_openrlhf_style_requirements_read_through_setup_py(tmp_path: Path) -> None:
    folder = openrlhf_style(tmp_path)
    found = checkouts.read(folder, "OpenRLHF")
    assert found.name == "openrlhf"
    assert "transformers==4.55.2" in found.requires
    assert "wandb" in found.requires  # through -r requirements-extra.txt
    assert "# comment" not in found.requires
    assert found.extras["vllm"] == ("vllm==0.10.1.1",)
    assert not executed(folder)


def test_checkout_with_its_own_uv_configuration(tmp_path: Path) -> None:
    folder = verl_with_own_uv(tmp_path)
    found = checkouts.read(folder, "verl")
    assert found.own_uv_config
    assert found.name == "verl"
    assert "vllm==0.24.0" in found.extras["vllm"]
    assert not executed(folder)


def test_pep621_and_setup_cfg(tmp_path: Path) -> None:
    pep621 = tmp_path / "a"
    pep621.mkdir()
    (pep621 / "pyproject.toml").write_text(
        '[project]\nname = "a"\nversion = "1"\ndependencies = ["x>=1"]\n[project.optional-dependencies]\ne = ["y"]\n',
        encoding="utf-8",
    )
    assert checkouts.read(pep621, "a").requires == ("x>=1",)
    cfg = tmp_path / "b"
    cfg.mkdir()
    (cfg / "setup.cfg").write_text(
        "[metadata]\nname = b\n[options]\ninstall_requires =\n    x\n    y>=2\n[options.extras_require]\nfast = z\n",
        encoding="utf-8",
    )
    found = checkouts.read(cfg, "b")
    assert (found.name, found.requires, found.extras) == ("b", ("x", "y>=2"), {"fast": ("z",)})


def test_requirements_files_alone(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "requirements.txt").write_text(
        "torch\n--extra-index-url https://x\nnumpy  # pinned later\n", encoding="utf-8"
    )
    assert checkouts.read(folder, "c").requires == ("torch", "numpy")


def test_unreadable_setup_py_falls_back(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "setup.py").write_text("def broken(:\n", encoding="utf-8")
    (folder / "requirements.txt").write_text("x\n", encoding="utf-8")
    assert checkouts.read(folder, "d").requires == ("x",)


def test_find_known_folders_and_configured_paths(tmp_path: Path) -> None:
    verl_style(tmp_path)
    other = tmp_path / "vendor" / "trainer"
    other.mkdir(parents=True)
    (other / "requirements.txt").write_text("x\n", encoding="utf-8")
    found = checkouts.find(tmp_path, checkouts.declared(["vendor/trainer", "missing"]))
    assert [(c.folder, c.missing) for c in found] == [
        ("verl", False),
        ("vendor/trainer", False),
        ("missing", True),
    ]


@pytest.mark.parametrize(
    ("fixture", "name", "version", "vllm_extra"),
    [
        ("OpenRLHF-0.8.11", "openrlhf", "0.8.11", ("vllm==0.10.2",)),
        ("OpenRLHF-0.9.5", "openrlhf", "0.9.5", ("vllm==0.17.0",)),
        ("OpenRLHF-0.11.0", "openrlhf", "0.11.0", ("vllm==0.27.1",)),
        ("OpenRLHF-35d12c7", "openrlhf", "0.8.11", ("vllm==0.10.2",)),
        ("verl-0.4.1", "verl", "0.4.1", ("tensordict<=0.6.2", "vllm<=0.8.5")),
        ("verl-0.5.0", "verl", "0.5.0", ("tensordict>=0.8.0,<=0.9.1,!=0.9.0", "vllm>=0.7.3,<=0.8.5")),
        ("verl-0.7.0", "verl", "0.7.0.dev", ("tensordict>=0.8.0,<=0.10.0,!=0.9.0", "vllm>=0.8.5,<=0.12.0")),
    ],
)
def test_real_releases_are_read_as_they_write_themselves(
    tmp_path: Path, fixture: str, name: str, version: str, vllm_extra: tuple[str, ...]
) -> None:
    """OpenRLHF's `name=_fetch_package_name()` ("openrlhf-nightly" if nightly else "openrlhf": the
    default branch) and `version=_fetch_version()` (reads version.txt), its tool-only
    pyproject.toml; verl's version file read in a `with` block: all without running setup.py."""
    folder = real_checkout(tmp_path, fixture)
    found = checkouts.read(folder, folder.name)
    assert (found.name, found.version, found.unread) == (name, version, ())
    assert found.extras["vllm"] == vllm_extra
    assert any(r.startswith("transformers") for r in found.requires)
    assert not executed(folder)


def test_verl_091_sdist_is_read_and_its_own_uv_configuration_seen(tmp_path: Path) -> None:
    folder = real_checkout(tmp_path, "verl-0.9.1")
    found = checkouts.read(folder, "verl")
    assert (found.name, found.version, found.own_uv_config) == ("verl", "0.9.1", True)
    assert "vllm==0.24.0" in found.extras["vllm"]
    assert "flash-attn" in found.own_sources
    assert not executed(folder)


def test_helpers_returning_literals_and_conditionals(tmp_path: Path) -> None:
    folder = tmp_path / "trainer"
    folder.mkdir()
    (folder / "VERSION").write_text("1.2.3\n", encoding="utf-8")
    (folder / "setup.py").write_text(
        TRAP
        + """
from setuptools import setup
PKG = "trainer-core"

def _name():
    if os.environ.get("NIGHTLY"):
        return "trainer-nightly"
    else:
        return PKG

def _version():
    with open("VERSION") as f:
        version = f.read().strip()
    if os.environ.get("NIGHTLY"):
        version += ".dev0"
    return version

setup(name=_name(), version=_version(), install_requires=["torch"])
""",
        encoding="utf-8",
    )
    found = checkouts.read(folder, "trainer")
    assert (found.name, found.version, found.requires) == ("trainer-core", "1.2.3", ("torch",))
    assert not executed(folder)


def test_files_outside_the_checkout_are_never_read(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("1.0\n", encoding="utf-8")
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / "setup.py").write_text(
        'from setuptools import setup\nsetup(name="x", version=open("../secret").read())\n', encoding="utf-8"
    )
    assert checkouts.read(folder, "x").version is None


def test_what_cannot_be_read_is_said_and_can_be_declared(tmp_path: Path) -> None:
    folder = tmp_path / "vendor" / "trainer"
    folder.mkdir(parents=True)
    (folder / "setup.py").write_text(
        TRAP
        + 'from setuptools import setup\nimport json\nsetup(name=json.load(open("meta.json"))["name"])\n',
        encoding="utf-8",
    )
    found = checkouts.read(folder, "vendor/trainer")
    assert found.name is None
    assert found.unread == ("its package name (setup.py (read as a syntax tree, not run))",)
    entry = {"path": "vendor/trainer", "name": "trainer", "version": "2.0", "extras": ["vllm"]}
    [declared] = checkouts.declared([entry, "verl[vllm, gpu]"])[:1]
    assert declared == checkouts.Declared("vendor/trainer", ("vllm",), "trainer", "2.0")
    again = checkouts.read(folder, "vendor/trainer", declared)
    assert (again.name, again.version, again.unread) == ("trainer", "2.0", ())
    assert not executed(folder)
