"""The pre-commit hook, through the real pre-commit in a temporary git repository.

pre-commit would install a `language: python` hook from PyPI; tests may not reach
the network, so the repository's `.pre-commit-hooks.yaml` definition is run as an
equivalent local hook (same entry, files, pass_filenames), with llm-sync from this
environment.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = (
    '[project]\nname = "app"\nversion = "0.1.0"\ndependencies = [\n    "torch",\n]\n\n'
    '[tool.llm-sync]\nbackend = "cu128"\n'
)


def git(repo: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=False)


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    [hook] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    entry = hook["entry"].replace("llm-sync", f"{sys.executable} -m uvx_llm", 1)
    local = {
        "repos": [
            {
                "repo": "local",
                "hooks": [
                    {
                        "id": hook["id"],
                        "name": hook["name"],
                        "entry": entry,
                        "language": "system",
                        "files": hook["files"],
                        "pass_filenames": hook["pass_filenames"],
                    }
                ],
            }
        ]
    }
    folder = tmp_path / "repo"
    folder.mkdir()
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "LLM_SYNC_PREFER": "newest",  # flash-attn's compile settings are what the hook must add
    }
    git(folder, "init", "-q", env=env)
    (folder / ".pre-commit-config.yaml").write_text(yaml.safe_dump(local), encoding="utf-8")
    (folder / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    precommit = [sys.executable, "-m", "pre_commit", "install"]
    assert subprocess.run(precommit, cwd=folder, env=env, capture_output=True, check=False).returncode == 0
    return folder, env


def test_hook_definition_is_machine_independent() -> None:
    [hook] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    assert hook["entry"] == "llm-sync check --fix"
    assert hook["pass_filenames"] is False


def test_a_commit_adding_flash_attn_without_build_settings_is_stopped_and_fixed(
    repo: tuple[Path, dict[str, str]],
) -> None:
    folder, env = repo
    git(folder, "add", "-A", env=env)
    first = git(folder, "commit", "-m", "start", env=env)
    assert first.returncode != 0  # torch's routing is not written yet: fixed, commit stopped
    assert "pytorch-cu128" in (folder / "pyproject.toml").read_text(encoding="utf-8")
    git(folder, "add", "-A", env=env)
    assert git(folder, "commit", "-m", "start", env=env).returncode == 0

    text = (folder / "pyproject.toml").read_text(encoding="utf-8")
    (folder / "pyproject.toml").write_text(
        text.replace('    "torch",\n', '    "torch",\n    "flash-attn>=2.8",\n'), encoding="utf-8"
    )
    git(folder, "add", "-A", env=env)
    stopped = git(folder, "commit", "-m", "add flash-attn", env=env)
    assert stopped.returncode != 0
    assert "llm-sync check --fix" in stopped.stdout + stopped.stderr
    fixed = (folder / "pyproject.toml").read_text(encoding="utf-8")
    assert '{ requirement = "torch", match-runtime = true }' in fixed
    assert "flash-attn>=2.8 ; sys_platform == 'linux'" in fixed
    git(folder, "add", "-A", env=env)
    assert git(folder, "commit", "-m", "add flash-attn", env=env).returncode == 0


def test_an_up_to_date_file_passes_untouched(repo: tuple[Path, dict[str, str]]) -> None:
    folder, env = repo
    subprocess.run(
        [sys.executable, "-m", "uvx_llm", "check", "--fix"],
        cwd=folder,
        env=env,
        capture_output=True,
        check=False,
    )
    before = (folder / "pyproject.toml").read_bytes()
    git(folder, "add", "-A", env=env)
    result = git(folder, "commit", "-m", "clean", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (folder / "pyproject.toml").read_bytes() == before
