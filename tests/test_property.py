"""A property-based test (issue 13): pyproject files across the spellings TOML allows for the
tables llm-sync edits, with the shapes uv accepts (and a few it refuses). For each:
nothing exits 3; exit 2 leaves the file byte-identical; a second run is byte-identical; the
result parses; nothing outside llm-sync's tables changed."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
import tomllib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from uvx_llm import cli

SYNC = ["sync", "--no-sync", "--cuda", "12.8", "--arch", "9.0"]
USER_INDEX = {"name": "mine", "url": "https://m.example/simple", "explicit": True}


def inline(value: Any) -> str:
    """A TOML value on one line (strings as JSON writes them: valid TOML basic strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, str)):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(inline(v) for v in value) + "]"
    return "{ " + ", ".join(f"{json.dumps(k)} = {inline(v)}" for k, v in value.items()) + " }"


def sections(prefix: str, table: dict[str, Any]) -> str:
    """A table as sections: plain values under [prefix], sub-tables as their own sections,
    arrays of tables as [[...]]."""
    plain = {k: v for k, v in table.items() if not isinstance(v, dict) and not _tables(v)}
    text = f"\n[{prefix}]\n" + "".join(f"{json.dumps(k)} = {inline(v)}\n" for k, v in plain.items())
    for key, value in table.items():
        if isinstance(value, dict):
            text += sections(f"{prefix}.{json.dumps(key)}", value)
        elif _tables(value):
            text += "".join(
                f"\n[[{prefix}.{json.dumps(key)}]]\n"
                + "".join(f"{json.dumps(k)} = {inline(v)}\n" for k, v in entry.items())
                for entry in value
            )
    return text


def _tables(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def dotted(prefix: str, table: dict[str, Any]) -> str:
    return "".join(f"{prefix}.{json.dumps(k)} = {inline(v)}\n" for k, v in table.items())


def uv_table(draw: st.DrawFn) -> dict[str, Any]:
    """[tool.uv] with the shapes uv accepts, and now and then a source uv refuses."""
    uv: dict[str, Any] = {}
    if draw(st.booleans()):
        uv["package"] = False
    if draw(st.booleans()):
        uv["index"] = [USER_INDEX]
        if draw(st.booleans()):
            uv["sources"] = {draw(st.sampled_from(["torch", "Torch", "numpy"])): {"index": "mine"}}
    if draw(st.booleans()):
        uv.setdefault("sources", {})["foo"] = {"path": "foo", "editable": True}
    if draw(st.booleans()):
        uv["constraint-dependencies"] = ["numpy<3"]
    if draw(st.booleans()):
        uv["extra-build-dependencies"] = {"flash-attn": ["ninja"]}
    if draw(st.booleans()) and not uv.get("index"):  # invalid for uv: must be refused, untouched
        uv["sources"] = {"torch": {"index": "undeclared"}}
    return uv


def spelled(spelling: str, project: str, tables: dict[str, dict[str, Any]]) -> str:
    """The file, with [tool.uv], [tool.llm-sync] and [tool.black] in one of TOML's spellings."""
    present = {name: table for name, table in tables.items() if table}
    quoted = {name: json.dumps(name) for name in present}
    if spelling == "dotted":  # dotted keys before the first section
        return "".join(dotted(f"tool.{quoted[n]}", t) for n, t in present.items()) + "\n" + project
    if spelling == "tool-one-inline":
        return project + f"\ntool = {inline(present)}\n"
    if spelling == "tool-inline-uv":
        return project + "\n[tool]\n" + "".join(f"{quoted[n]} = {inline(t)}\n" for n, t in present.items())
    if spelling == "uv-inline-index":  # [tool.uv]'s values, the index array included, written inline
        uv = present.pop("uv", {})
        text = "\n[tool.uv]\n" + "".join(f"{json.dumps(k)} = {inline(v)}\n" for k, v in uv.items())
        return project + text + "".join(sections(f"tool.{quoted[n]}", t) for n, t in present.items())
    return project + "".join(sections(f"tool.{quoted[n]}", t) for n, t in present.items())


@st.composite
def pyprojects(draw: st.DrawFn) -> str:
    dependencies = draw(
        st.lists(
            st.sampled_from(["torch", "Torch>=2.6", "numpy", "vllm==0.10.2", "torchvision", "requests<3"]),
            unique=True,
            max_size=3,
        )
    )
    ours: dict[str, Any] = {}
    if draw(st.booleans()):
        ours["backend"] = draw(st.sampled_from(["cu128", "cpu", "cu126"]))
    tables = {"uv": uv_table(draw), "llm-sync": ours, "black": {"line-length": draw(st.integers(60, 120))}}
    spelling = draw(
        st.sampled_from(["sections", "tool-inline-uv", "tool-one-inline", "dotted", "uv-inline-index"])
    )
    project = (
        f'[project]\nname = "app"\nversion = "0.1.0"\ndependencies = {inline(dependencies)}\n'
        "# a comment of the user's\n"
    )
    return spelled(spelling, project, tables)


def outside_ours(data: dict[str, Any]) -> dict[str, Any]:
    """The file's data without what llm-sync maintains: [tool.uv], [tool.llm-sync] and the
    requirement lists (torch may be added to them)."""
    tool = {k: v for k, v in data.get("tool", {}).items() if k not in {"uv", "llm-sync"}}
    project = {k: v for k, v in data["project"].items() if k != "dependencies"}
    return {
        **{k: v for k, v in data.items() if k not in {"tool", "project"}},
        "tool": tool,
        "project": project,
    }


def run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as done:
        cli.run(argv)
    assert isinstance(done.value.code, int)
    return done.value.code


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,  # the same examples on every CI run
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
@given(pyprojects())
def test_any_spelling_is_edited_safely_or_refused_untouched(text: str) -> None:
    original = text.encode()
    assert tomllib.loads(text)  # the generator writes valid TOML
    cwd = Path.cwd()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pyproject.toml"
        path.write_bytes(original)
        os.chdir(folder)
        try:
            first = run(SYNC)
            assert first in {0, 2}, text
            if first == 2:
                assert path.read_bytes() == original
                return
            written = path.read_bytes()
            data = tomllib.loads(written.decode())
            assert outside_ours(data) == outside_ours(tomllib.loads(text))
            for index in tomllib.loads(text).get("tool", {}).get("uv", {}).get("index", []):
                assert index in data["tool"]["uv"]["index"]  # the user's own indexes stay
            assert run(SYNC) == 0
            assert path.read_bytes() == written
        finally:
            os.chdir(cwd)
