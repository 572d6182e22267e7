"""Odd-but-valid and invalid-for-uv pyproject files (issue 13, items 12-15, 17, 21, 22): every
spelling TOML allows for the tables llm-sync edits is read and edited; a shape uv refuses is
exit 2 naming the key, with the file byte-identical; nothing is exit 3."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import tomllib
from helpers import run

from uvx_llm import paths
from uvx_llm.errors import ExitCode

if TYPE_CHECKING:
    from pathlib import Path

BASE = '[project]\nname = "app"\nversion = "0.1.0"\ndependencies = ["torch"]\n'
MINE = '{ name = "mine", url = "https://m.example/simple" }'
SYNC = ["sync", "--no-sync", "--cuda", "12.8", "--arch", "9.0"]

EDITED = {
    "index as an array of inline tables": BASE + f"\n[tool.uv]\nindex = [{MINE}]\n",
    "index as a dotted top-level key": f"tool.uv.index = [{MINE}]\n" + BASE,
    "[tool.uv] as dotted keys at the top": "tool.uv.package = false\n" + BASE,
    "[tool] with uv inline": BASE + "\n[tool]\nuv = { package = false }\n",
    "tool as one inline table": BASE + "tool = { uv = { package = false } }\n",
    "[tool.llm-sync] inline": BASE + 'tool = { llm-sync = { backend = "cu128" } }\n',
    "sources inline": BASE + '\n[tool.uv]\nsources = { foo = { path = "x" } }\n',
    "sub-tables of [tool.uv] around": BASE
    + '\n[tool.uv]\npackage = false\n[tool.uv.sources]\nfoo = { path = "x" }\n[tool.uv.pip]\nx = 1\n',
}

REFUSED = {
    "[tool] llm-sync a string": (BASE + '\n[tool]\nllm-sync = "x"\n', "[tool] llm-sync must be a table"),
    "sources a number": (BASE + "\n[tool.uv]\nsources = 5\n", "[tool.uv] sources must be a table"),
    "index as a table": (
        BASE + '\n[tool.uv.index]\nname = "x"\nurl = "https://x/simple"\n',
        "[tool.uv] index must be an array of tables",
    ),
    "extra-build-dependencies entry a string": (
        BASE + '\n[tool.uv]\nextra-build-dependencies.flash-attn = "ninja"\n',
        "[tool.uv.extra-build-dependencies] flash-attn must be an array",
    ),
    "constraint-dependencies a string": (
        BASE + '\n[tool.uv]\nconstraint-dependencies = "x"\n',
        "[tool.uv] constraint-dependencies must be an array of requirement strings",
    ),
    "a dependency that is not a string": (
        BASE.replace('["torch"]', '["torch", 5]'),
        "[project] dependencies entry must be a requirement string, not 5",
    ),
    "an index without url": (
        BASE + '\n[[tool.uv.index]]\nname = "x"\n',
        "the [[tool.uv.index]] x has no url",
    ),
    "a source naming an undeclared index": (
        BASE + '\n[tool.uv.sources]\ntorch = { index = "nope" }\n',
        "[tool.uv.sources] torch names the index 'nope', which no [[tool.uv.index]] declares",
    ),
    "two sources for one package": (
        BASE
        + f'\n[tool.uv.sources]\nTorch = {{ index = "mine" }}\ntorch = {{ index = "mine" }}\n\n[tool.uv]\nindex = [{MINE}]\n',
        "names 'Torch' and 'torch', the same package",
    ),
    "values nested past the editor's limit": (
        BASE + "x = " + "[" * 200 + "]" * 200 + "\n",
        "llm-sync cannot edit",
    ),
    "checkouts naming the project itself": (
        BASE + '\n[tool.llm-sync]\ncheckouts = ["."]\n',
        "checkouts names '.', which is not a checkout inside the project",
    ),
    "checkouts naming nothing": (BASE + '\n[tool.llm-sync]\ncheckouts = [""]\n', "checkouts names ''"),
    "checkouts naming the folder above": (
        BASE + '\n[tool.llm-sync]\ncheckouts = [{ path = "./.." }]\n',
        "which is not a checkout inside the project",
    ),
    "UTF-16 without a byte-order mark": (None, "it looks like UTF-16"),
    "a syntax error at the end": (BASE + "x = [1,\n", "the file ends before the value is complete"),
}


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("name", list(EDITED))
def test_every_spelling_is_read_and_edited(folder: Path, name: str) -> None:
    path = folder / "pyproject.toml"
    path.write_text(EDITED[name], encoding="utf-8")
    assert run(SYNC) == ExitCode.OK
    first = path.read_bytes()
    data = tomllib.loads(first.decode())
    assert data["tool"]["llm-sync"]["backend"] == "cu128"
    assert data["tool"]["uv"]["sources"]["torch"][0]["index"] == "pytorch-cu128"
    if "mine" in EDITED[name]:  # the user's own index is kept
        assert {"name": "mine", "url": "https://m.example/simple"} in data["tool"]["uv"]["index"]
    assert run(SYNC) == ExitCode.OK
    assert path.read_bytes() == first
    assert run(["check"]) == ExitCode.OK


@pytest.mark.parametrize("name", list(REFUSED))
def test_a_shape_uv_refuses_is_exit_2_naming_the_key(
    folder: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    text, said = REFUSED[name]
    path = folder / "pyproject.toml"
    raw = BASE.encode("utf-16-le") if text is None else text.encode()
    path.write_bytes(raw)
    editing_only = name == "values nested past the editor's limit"  # check without a backend edits nothing
    commands = [SYNC, ["plan", "--cuda", "12.8", "--arch", "9.0"], *([] if editing_only else [["check"]])]
    for command in commands:
        assert run(command) == ExitCode.USAGE, command
        err = capsys.readouterr().err
        assert said in err, err
        assert "plan -v" not in err
        assert path.read_bytes() == raw


def test_a_differently_spelled_source_is_the_users_routing(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = folder / "pyproject.toml"
    path.write_text(
        BASE + f'\n[tool.uv.sources]\nTorch = {{ index = "mine" }}\n\n[tool.uv]\nindex = [{MINE}]\n',
        encoding="utf-8",
    )
    assert run([*SYNC, "--backend", "cu128"]) == ExitCode.OK
    assert "kept the hand-written [tool.uv.sources] for torch" in capsys.readouterr().err
    assert run([*SYNC, "--backend", "cu128", "--force"]) == ExitCode.OK
    sources = tomllib.loads(path.read_text(encoding="utf-8"))["tool"]["uv"]["sources"]
    assert list(sources) == ["Torch"]  # replaced under its own spelling, never a second entry
    assert sources["Torch"][0]["index"] == "pytorch-cu128"


def test_a_direct_url_requirement_is_left_alone(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = folder / "pyproject.toml"
    path.write_text(
        BASE.replace('"torch"', '"torch @ https://example.com/torch-2.8.0-cp311-cp311-linux_x86_64.whl"'),
        encoding="utf-8",
    )
    assert run(SYNC) == ExitCode.OK
    assert "left torch alone" in capsys.readouterr().err
    assert "sources" not in tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {}).get("uv", {})


def test_a_user_config_that_is_not_utf8_is_exit_2(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (folder / "pyproject.toml").write_text(BASE, encoding="utf-8")
    config = paths.config_dir() / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_bytes(b'mirror = "tuna\xff"\n')
    assert run(["check"]) == ExitCode.USAGE
    assert "is not UTF-8 text" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("file", "text"),
    [
        ("setup.cfg", "[options\ninstall_requires = torch\n"),
        ("setup.cfg", "[options]\ninstall_requires = torch\n[options]\nx = 1\n"),
        (
            "setup.py",
            "from setuptools import setup\nsetup(install_requires=" + "[" * 5000 + "]" * 5000 + ")\n",
        ),
        ("setup.py", "setup(name='x')\x00\n"),
    ],
)
def test_a_broken_checkout_is_a_warning(
    folder: Path, capsys: pytest.CaptureFixture[str], file: str, text: str
) -> None:
    (folder / "pyproject.toml").write_text(BASE, encoding="utf-8")
    (folder / "verl").mkdir()
    (folder / "verl" / file).write_text(text, encoding="utf-8")
    assert run(SYNC) == ExitCode.OK
    err = capsys.readouterr().err
    assert "unexpected" not in err
    assert "cannot read the checkout" in err or "nothing readable" in err
