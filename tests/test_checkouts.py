from __future__ import annotations

from typing import TYPE_CHECKING

from layouts import executed, openrlhf_style, verl_style, verl_with_own_uv

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
    found = checkouts.find(tmp_path, ["vendor/trainer", "missing"])
    assert [c.folder for c in found] == ["verl", "vendor/trainer"]
