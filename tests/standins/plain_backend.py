"""A minimal PEP 517 backend (wheel and editable) for stand-in framework checkouts.

It builds from the [project] table of the checkout's pyproject.toml: name, version,
dependencies and optional-dependencies. Standard library only.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zipfile
from pathlib import Path

import tomllib


def _project() -> dict[str, object]:
    project: dict[str, object] = tomllib.loads(Path("pyproject.toml").read_text(encoding="utf-8"))["project"]
    return project


def _names() -> tuple[str, str, str]:
    project = _project()
    name, version = str(project["name"]), str(project["version"])
    return name, version, re.sub(r"[-.]+", "_", name).lower()


def _metadata() -> str:
    project = _project()
    lines = ["Metadata-Version: 2.1", f"Name: {project['name']}", f"Version: {project['version']}"]
    lines += [f"Requires-Dist: {r}" for r in project.get("dependencies", [])]  # type: ignore[attr-defined]
    for extra, requirements in project.get("optional-dependencies", {}).items():  # type: ignore[attr-defined]
        lines.append(f"Provides-Extra: {extra}")
        lines += [f"Requires-Dist: {r} ; extra == '{extra}'" for r in requirements]
    return "\n".join(lines) + "\n"


def _hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _wheel(directory: str, files: dict[str, str]) -> str:
    _, version, dist = _names()
    info = f"{dist}-{version}.dist-info"
    files = {
        **files,
        f"{info}/METADATA": _metadata(),
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: standin\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    lines = [f"{path},{_hash(text.encode())},{len(text.encode())}" for path, text in files.items()]
    files[f"{info}/RECORD"] = "\n".join([*lines, f"{info}/RECORD,,"]) + "\n"
    filename = f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(Path(directory) / filename, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return filename


def get_requires_for_build_wheel(config_settings: dict[str, str] | None = None) -> list[str]:
    del config_settings
    return []


get_requires_for_build_editable = get_requires_for_build_wheel


def build_wheel(
    wheel_directory: str, config_settings: dict[str, str] | None = None, metadata_directory: str | None = None
) -> str:
    del config_settings, metadata_directory
    _, version, dist = _names()
    return _wheel(wheel_directory, {f"{dist}/__init__.py": f"__version__ = {version!r}\n"})


def build_editable(
    wheel_directory: str, config_settings: dict[str, str] | None = None, metadata_directory: str | None = None
) -> str:
    del config_settings, metadata_directory
    _, _, dist = _names()
    return _wheel(wheel_directory, {f"_{dist}_editable.pth": str(Path.cwd()) + "\n"})
