from __future__ import annotations

import sys
from pathlib import Path

import pytest
from packaging.version import Version

from uvx_llm import uv
from uvx_llm.errors import LlmSyncError


def real_uv() -> str:
    from uv import find_uv_bin  # noqa: PLC0415 - the uv wheel of the dev group

    return find_uv_bin()


def test_uv_from_the_environment_variable_comes_first(tmp_path: Path) -> None:
    found = uv.find({"UV": real_uv(), "PATH": str(tmp_path)})
    assert found.found_by == "$UV"
    assert found.version >= Version("0.13")


def test_unusable_uv_variable_falls_back_to_path(tmp_path: Path) -> None:
    link = tmp_path / "uv"
    link.symlink_to(real_uv())
    found = uv.find({"UV": str(tmp_path / "missing"), "PATH": str(tmp_path)})
    assert found.found_by == "PATH"
    assert found.path == link


def test_the_uv_package_is_the_last_resort(tmp_path: Path) -> None:
    found = uv.find({"PATH": str(tmp_path)})
    assert found.found_by == "the uv package"


def test_not_found_says_what_was_tried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uv", None)
    fake = tmp_path / "uv"
    fake.write_text("#!/bin/sh\necho 'not uv'\n", encoding="utf-8")
    fake.chmod(0o755)
    with pytest.raises(LlmSyncError) as caught:
        uv.find({"PATH": str(tmp_path)})
    assert "uv not found" in caught.value.what
    assert str(fake) in caught.value.why


def test_too_old_uv_names_the_update(tmp_path: Path) -> None:
    old = uv.Uv(tmp_path / "uv", Version("0.4.30"), "PATH")
    with pytest.raises(LlmSyncError) as caught:
        uv.require(old, Version("0.5.0"))
    assert "uv self update" in caught.value.fix
    uv.require(uv.Uv(tmp_path / "uv", Version("0.13.8"), "PATH"), Version("0.5.0"))
    uv.require(old, None)


def test_sync_command_passes_arguments_through(tmp_path: Path) -> None:
    command = uv.sync_command(
        uv.Uv(Path("/bin/uv"), Version("0.13.8"), "PATH"), project_dir=tmp_path, uv_args=["--frozen"]
    )
    assert command == ["/bin/uv", "sync", "--project", str(tmp_path), "--frozen"]
