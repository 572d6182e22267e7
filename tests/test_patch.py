from __future__ import annotations

import codecs
import difflib
import typing
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from helpers import H200, NO_GPU, REAL_WORLD, applied, gpu_machine, make, proj, simple

from uvx_llm import actions, patch, project
from uvx_llm.errors import LlmSyncError
from uvx_llm.machine import Machine

if TYPE_CHECKING:
    from uvx_llm.catalog import Catalog

FIXTURES = sorted(REAL_WORLD.glob("*.toml"))
MACHINES = {
    "h200-580": H200,
    "a100-cuda124": gpu_machine((12, 4), (8, 0), driver="550.54.14"),
    "no-gpu": NO_GPU,
}


def comment_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith("#")]


def removed_lines(old: str, new: str) -> list[str]:
    return [
        line[1:]
        for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0)
        if line.startswith("-") and not line.startswith("---")
    ]


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.name)
@pytest.mark.parametrize("machine_name", list(MACHINES))
@pytest.mark.parametrize("force", [False, True], ids=["keep", "force"])
def test_real_world_files_round_trip_without_damage(
    cat: Catalog, fixture: Path, machine_name: str, force: bool
) -> None:
    original = project.load(fixture)
    try:
        made = make(original, cat, MACHINES[machine_name], force=force)
    except LlmSyncError as error:
        # A file that pins a torch this machine cannot run may refuse, never crash.
        assert error.fix  # noqa: PT017 - the refusal itself is the expected outcome here
        return
    new_text = patch.render(original, made.actions)
    # Comments and every line outside the edit survive; without --force nothing is
    # taken away (an array's last element may only gain its trailing comma).
    removed = removed_lines(original.text, new_text)
    kept_comments = [c for c in comment_lines(original.text) if c not in [r.strip() for r in removed]]
    assert kept_comments == [c for c in comment_lines(new_text) if c in kept_comments]
    if not force:  # a line only grows: a trailing comma, items appended to a one-line array, a marker
        for line in removed_lines(original.text, new_text):
            assert any(new.startswith(line.rstrip('],"} ')) for new in new_text.splitlines()), line
    # Idempotent: a second run on the result changes nothing.
    after = project.parse(patch.encode(original, new_text), fixture)
    assert make(after, cat, MACHINES[machine_name]).actions == ()


@pytest.mark.parametrize("machine_name", list(MACHINES))
def test_verl_uv_integration_is_recognised_and_left_alone(cat: Catalog, machine_name: str) -> None:
    verl = project.load(REAL_WORLD / "verl-1dda039__pyproject.toml")
    made = make(verl, cat, MACHINES[machine_name])
    assert made.actions == ()
    routing = next(d for d in made.decisions if d.topic == "pytorch routing")
    assert routing.choice == "kept (per extra)"
    assert "vllm → cu130" in routing.reason
    if machine_name == "a100-cuda124":
        assert any("cannot run the project's torch variants" in w for w in made.warnings)


def test_template_keeps_hand_written_routing_and_takes_prebuilt_flash_attn(cat: Catalog) -> None:
    # The template pins flash-attn==2.8.3 and, through vllm, torch 2.8: flash-attn
    # publishes wheels for exactly that, so they are locked instead of compiled.
    template = project.load(REAL_WORLD / "llm-env-templates__verl__pyproject.toml")
    made = make(template, cat)
    assert made.backend == "cu128"
    assert actions.SetConfig("backend", "cu128") in made.actions
    assert made.built_packages == ()
    [source] = [a for a in made.actions if isinstance(a, actions.SetSource)]
    assert source.package == "flash-attn"
    added = [
        line
        for line in patch.diff(template, patch.render(template, made.actions)).splitlines()
        if line.startswith("+") and not line.startswith("+++")
    ]
    wheel = "https://github.com/Dao-AILab/flash-attention/releases/download/v2.8.3/flash_attn-2.8.3+cu12torch2.8cxx11abiTRUE"
    assert added == [
        "+    \"flash-attn==2.8.3 ; sys_platform == 'linux'\",",
        "+constraint-dependencies = [",
        '+    "torch>=2.8,<2.9", # llm-sync: bound: the cu128 builds of torch 2.8 that the project\'s pins allow',
        '+    "vllm>=0.10.2", # llm-sync: bound: releases that pin a torch inside torch>=2.8,<2.9; older ones pin none',
        "+]",
        "+flash-attn = [",
        *(
            f'+    {{ url = "{wheel}-cp{py}-cp{py}-linux_x86_64.whl", marker = "sys_platform == \'linux\' and '
            f"platform_machine == 'x86_64' and python_version == '3.{py[1:]}'\" }},"
            for py in ("311", "312", "313")
        ),
        "+]",
        "+",
        "+[tool.llm-sync]",
        '+backend = "cu128"',
    ]
    assert any("FLASH_ATTENTION_SKIP_CUDA_BUILD" in w for w in made.warnings)


def test_new_routing_reads_like_uvs_docs(cat: Catalog) -> None:
    made = make(simple("torch"), cat)
    text = patch.render(simple("torch"), made.actions)
    assert text.endswith(
        "[tool.uv.sources]\ntorch = [\n"
        '    { index = "pytorch-cu130", marker = "sys_platform == \'linux\'" },\n'
        '    { index = "pytorch-cpu", marker = "sys_platform != \'linux\'" },\n]\n\n'
        '[[tool.uv.index]]\nname = "pytorch-cu130"\nurl = "https://download.pytorch.org/whl/cu130"\nexplicit = true\n\n'
        '[[tool.uv.index]]\nname = "pytorch-cpu"\nurl = "https://download.pytorch.org/whl/cpu"\nexplicit = true\n\n'
        '[tool.llm-sync]\nbackend = "cu130"\n'
    )


def test_crlf_files_stay_crlf(cat: Catalog) -> None:
    raw = (REAL_WORLD / "llm-env-templates__dev__pyproject.toml").read_bytes().replace(b"\n", b"\r\n")
    raw = raw.replace(b"dependencies = []", b'dependencies = ["vllm"]')
    original = project.parse(raw, Path("pyproject.toml"))
    assert original.newline == "\r\n"
    new = patch.encode(original, patch.render(original, make(original, cat).actions))
    assert new.count(b"\n") == new.count(b"\r\n")
    assert new.startswith(raw.split(b"\r\n\r\n")[0].replace(b'["vllm"]', b'["vllm", "torch"]'))


def test_byte_order_mark_is_kept(cat: Catalog) -> None:
    raw = codecs.BOM_UTF8 + simple("torch").raw
    original = project.parse(raw, Path("pyproject.toml"))
    new = patch.encode(original, patch.render(original, make(original, cat).actions))
    assert new.startswith(codecs.BOM_UTF8 + simple("torch").raw)
    assert new.count(codecs.BOM_UTF8) == 1


def test_mixed_line_endings_are_not_normalised(cat: Catalog) -> None:
    raw = b'[project]\r\nname = "d"\nversion = "0"\r\ndependencies = ["torch"]\n'
    original = project.parse(raw, Path("pyproject.toml"))
    new = patch.encode(original, patch.render(original, make(original, cat).actions))
    assert new.startswith(raw)


def test_a_read_back_mismatch_writes_nothing(cat: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    original = simple("torch")
    made = make(original, cat)
    monkeypatch.setattr(patch, "apply_to_data", lambda data, _actions: data)
    with pytest.raises(LlmSyncError, match="cannot edit"):
        patch.render(original, made.actions)


def test_dependencies_array_created_when_absent(cat: Catalog) -> None:
    original = proj('[project]\nname = "d"\nversion = "0"\n[project.optional-dependencies]\nx = ["torch"]\n')
    made = make(original, cat, Machine(system="linux", source="none"))
    assert applied(original, made).uv_sources["torch"] == {"index": "pytorch-cpu"}


def test_every_action_has_one_row() -> None:
    assert set(patch.STEPS) == set(typing.get_args(actions.Action))
