"""A loopback stand-in for the PyTorch wheel index (download.pytorch.org/whl/<variant>).

The real index cannot be reached from the development machines; PyPI can. For every
torch release the catalog knows (uvx_llm/catalog.toml `[[torch]]`), every version of it
on PyPI, and every CUDA variant the catalog lists for it (plus `cpu`), this serves tiny
wheels whose METADATA is the real PyPI wheel's (Requires-Dist, Requires-Python,
Provides-Extra), read from PyPI's PEP 658 `.metadata` files, or from the wheel's zip
with HTTP range requests where PyPI has no `.metadata`:

- CUDA variants: `X+cuXYZ`, with the Linux x86_64 and Windows tags PyPI has for X. Their nvidia-*
  requirements are those of PyPI's default build of X (an approximation for the
  other cuXYZ builds; all are PyPI packages, so the resolution is unaffected).
- `cpu`: `X+cpu` for Linux x86_64 and Windows (the CUDA-only requirements dropped, as
  the real +cpu wheels carry none) and the macOS arm64 wheels as plain `X`, as
  download.pytorch.org/whl/cpu serves them.

torchvision and torchaudio follow the torch release their metadata pins (`torch==X`);
one with a floor (`torch>=X`) is served with every catalog release from X on, one with
no torch requirement (torchaudio 2.11.0) with the release of its own version.

Downloaded listings and metadata are cached on disk (default ~/.cache/llm-sync-compat),
so only the first build needs the network.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import html
import http.server
import io
import json
import re
import threading
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

FAMILY = ("torch", "torchvision", "torchaudio")
# Requirements the real +cpu wheels do not carry.
CPU_DROP = re.compile(r"^(nvidia-.*|triton|pytorch-triton.*|cuda-toolkit|cuda-bindings)$")
USER_AGENT = {"User-Agent": "llm-sync-compat/1 (loopback stand-in for the PyTorch index)"}
PYPI_SIMPLE = "https://pypi.org/simple"


def http_get(url: str, headers: dict[str, str] | None = None) -> bytes:
    request = urllib.request.Request(url, headers={**USER_AGENT, **(headers or {})})  # noqa: S310
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        data: bytes = response.read()
    return data


class RangeReader(io.RawIOBase):
    """A read-only file over HTTP range requests: enough for zipfile to find METADATA."""

    def __init__(self, url: str) -> None:
        self.url = url
        request = urllib.request.Request(url, method="HEAD", headers=USER_AGENT)  # noqa: S310
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            self.size = int(response.headers["Content-Length"])
        self.position = 0

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        self.position = {0: offset, 1: self.position + offset, 2: self.size + offset}[whence]
        return self.position

    def tell(self) -> int:
        return self.position

    def readinto(self, buffer: Any) -> int:
        size = min(len(buffer), self.size - self.position)
        if size <= 0:
            return 0
        data = http_get(self.url, {"Range": f"bytes={self.position}-{self.position + size - 1}"})
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)


@dataclass(frozen=True)
class WheelFile:
    filename: str
    url: str
    has_metadata: bool


class PyPIMetadata:
    """The real wheel listings and METADATA of PyPI, cached under `cache`."""

    def __init__(self, cache: Path, *, refresh: bool = False) -> None:
        self.cache = cache
        self.refresh = refresh
        (cache / "simple").mkdir(parents=True, exist_ok=True)
        (cache / "metadata").mkdir(parents=True, exist_ok=True)

    def files(self, project: str) -> list[WheelFile]:
        path = self.cache / "simple" / f"{project}.json"
        if self.refresh or not path.exists():
            path.write_bytes(
                http_get(f"{PYPI_SIMPLE}/{project}/", {"Accept": "application/vnd.pypi.simple.v1+json"})
            )
        listing = json.loads(path.read_text(encoding="utf-8"))
        return [
            WheelFile(
                entry["filename"],
                entry["url"],
                bool(entry.get("core-metadata") or entry.get("dist-info-metadata")),
            )
            for entry in listing["files"]
            if entry["filename"].endswith(".whl") and not entry.get("yanked")
        ]

    def metadata(self, wheel: WheelFile) -> str:
        path = self.cache / "metadata" / f"{wheel.filename}.metadata"
        if not path.exists():
            if wheel.has_metadata:
                text = http_get(wheel.url + ".metadata").decode("utf-8")
            else:
                reader = io.BufferedReader(RangeReader(wheel.url), buffer_size=1 << 16)
                with zipfile.ZipFile(reader) as archive:
                    name = next(
                        n for n in archive.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)
                    )
                    text = archive.read(name).decode("utf-8")
            path.write_text(text, encoding="utf-8")
        return path.read_text(encoding="utf-8")


def header_lines(metadata: str) -> list[str]:
    """The METADATA headers (the description after the blank line is not needed)."""
    lines: list[str] = []
    for line in metadata.splitlines():
        if not line.strip():
            break
        lines.append(line)
    return lines


def torch_requirements(lines: list[str]) -> list[Requirement]:
    found = []
    for line in lines:
        if line.startswith("Requires-Dist:"):
            with contextlib.suppress(InvalidRequirement):
                requirement = Requirement(line.split(":", 1)[1].strip())
                if canonicalize_name(requirement.name) == "torch" and requirement.marker is None:
                    found.append(requirement)
    return found


def release_of(version: Version) -> str:
    return f"{version.major}.{version.minor}"


def releases_served(
    project: str, version: Version, lines: list[str], catalog_releases: list[str]
) -> list[str]:
    """The catalog torch releases whose variant indexes carry this version."""
    if project == "torch":
        release = release_of(version)
        return [release] if release in catalog_releases else []
    specifiers = [spec for requirement in torch_requirements(lines) for spec in requirement.specifier]
    exact = [Version(spec.version) for spec in specifiers if spec.operator == "=="]
    if exact:
        release = release_of(exact[0])
        return [release] if release in catalog_releases else []
    floors = [Version(spec.version) for spec in specifiers if spec.operator == ">="]
    if floors:  # torchvision 0.29.1+: torch>=2.14.0; a floor older than the catalog is an old release
        floor = release_of(floors[0])
        return (
            [r for r in catalog_releases if Version(r) >= Version(floor)] if floor in catalog_releases else []
        )
    release = release_of(version)  # no torch requirement: torchaudio 2.11.0
    return [release] if release in catalog_releases and not specifiers else []


def with_version(lines: list[str], version: str, *, drop_cuda: bool) -> list[str]:
    out = []
    for line in lines:
        if line.startswith("Version:"):
            out.append(f"Version: {version}")
            continue
        if drop_cuda and line.startswith("Requires-Dist:"):
            with contextlib.suppress(InvalidRequirement):
                if CPU_DROP.match(canonicalize_name(Requirement(line.split(":", 1)[1].strip()).name)):
                    continue
        out.append(line)
    return out


def requires_python(lines: list[str]) -> str:
    for line in lines:
        if line.startswith("Requires-Python:"):
            return line.split(":", 1)[1].strip()
    return ""


def sha256_record(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def tiny_wheel(name: str, version: str, tag: str, metadata: str) -> tuple[str, bytes]:
    """A valid wheel holding only the metadata (and an __init__ naming the build)."""
    dist = canonicalize_name(name).replace("-", "_")
    dist_info = f"{dist}-{version}.dist-info"
    files = {
        f"{dist}/__init__.py": f"__version__ = {version!r}  # llm-sync compat stand-in, no code\n",
        f"{dist_info}/METADATA": metadata,
        f"{dist_info}/WHEEL": f"Wheel-Version: 1.0\nGenerator: llm-sync-compat\nRoot-Is-Purelib: false\nTag: {tag}\n",
    }
    record = [f"{path},{sha256_record(text.encode())},{len(text.encode())}" for path, text in files.items()]
    files[f"{dist_info}/RECORD"] = "\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, text in files.items():
            archive.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), text)
    return f"{dist}-{version}-{tag}.whl", buffer.getvalue()


def platform_of(filename: str) -> str | None:
    """linux (x86_64), windows (amd64), macos (arm64), or None for wheels the stand-in skips."""
    platforms = {tag.platform for tag in parse_wheel_filename(filename)[3]}
    if any(p.startswith(("manylinux", "linux")) and p.endswith("x86_64") for p in platforms):
        return "linux"
    if "win_amd64" in platforms:
        return "windows"
    if any(p.startswith("macosx") and p.endswith("arm64") for p in platforms):
        return "macos"
    return None


def tag_of(filename: str) -> str:
    return "-".join(filename[: -len(".whl")].split("-")[-3:])


@dataclass
class StandinIndex:
    root: Path  # <root>/whl/<variant>/<project>/index.html and the wheels
    served: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # variant -> project -> versions

    def add(self, variant: str, project: str, version: str, tag: str, metadata: str) -> None:
        folder = self.root / "whl" / variant / project
        folder.mkdir(parents=True, exist_ok=True)
        filename, data = tiny_wheel(project, version, tag, metadata)
        (folder / filename).write_bytes(data)
        (folder / f"{filename}.metadata").write_text(metadata, encoding="utf-8")
        versions = self.served.setdefault(variant, {}).setdefault(project, [])
        if version not in versions:
            versions.append(version)

    def write_pages(self) -> None:
        for variant, projects in self.served.items():
            for project in projects:
                folder = self.root / "whl" / variant / project
                links = []
                for wheel in sorted(folder.glob("*.whl")):
                    metadata = (folder / f"{wheel.name}.metadata").read_bytes()
                    digest = hashlib.sha256(metadata).hexdigest()
                    attributes = (
                        f' data-core-metadata="sha256={digest}" data-dist-info-metadata="sha256={digest}"'
                    )
                    python = requires_python(metadata.decode("utf-8").splitlines())
                    if python:
                        attributes += f' data-requires-python="{html.escape(python)}"'
                    link = f"{urllib.parse.quote(wheel.name)}#sha256={hashlib.sha256(wheel.read_bytes()).hexdigest()}"
                    links.append(f'<a href="{link}"{attributes}>{html.escape(wheel.name)}</a><br/>')
                page = "<!DOCTYPE html>\n<html><body>\n" + "\n".join(links) + "\n</body></html>\n"
                (folder / "index.html").write_text(page, encoding="utf-8")
            names = "\n".join(f'<a href="{p}/">{p}</a><br/>' for p in sorted(projects))
            (self.root / "whl" / variant / "index.html").write_text(
                f"<!DOCTYPE html>\n<html><body>\n{names}\n</body></html>\n", encoding="utf-8"
            )


def build_index(
    root: Path,
    catalog: dict[str, list[str]],
    files: Callable[[str], list[WheelFile]],
    metadata: Callable[[WheelFile], str],
) -> StandinIndex:
    """Write the stand-in under `root`. `catalog`: torch release -> its CUDA variants."""
    index = StandinIndex(root)
    for project in FAMILY:
        by_version: dict[Version, list[WheelFile]] = {}
        for wheel in files(project):
            try:
                version = parse_wheel_filename(wheel.filename)[1]
            except (InvalidVersion, ValueError):
                continue
            if not (version.is_prerelease or version.is_devrelease or version.local):
                by_version.setdefault(version, []).append(wheel)
        for version, wheels in sorted(by_version.items()):
            _add_version(index, project, version, wheels, catalog, metadata)
    index.write_pages()
    (root / "served.json").write_text(json.dumps(index.served, indent=1, sort_keys=True), encoding="utf-8")
    return index


def _add_version(  # noqa: PLR0917 - a private helper of build_index
    index: StandinIndex,
    project: str,
    version: Version,
    wheels: list[WheelFile],
    catalog: dict[str, list[str]],
    metadata: Callable[[WheelFile], str],
) -> None:
    """Serve one PyPI version in every variant of the catalog releases it goes with."""
    linux = sorted(
        (w for w in wheels if platform_of(w.filename) == "linux"),
        key=lambda w: ("cp312" not in w.filename, w.filename),
    )
    if not linux:
        return
    lines = header_lines(metadata(linux[0]))
    served = releases_served(project, version, lines, sorted(catalog, key=Version))
    variants = sorted({v for release in served for v in catalog[release]})
    if not variants:
        return
    tags = {
        p: sorted({tag_of(w.filename) for w in wheels if platform_of(w.filename) == p})
        for p in ("linux", "windows", "macos")
    }
    for variant in variants:
        text = "\n".join(with_version(lines, f"{version}+{variant}", drop_cuda=False)) + "\n\n"
        for tag in tags["linux"] + tags["windows"]:  # the real cuXYZ indexes have win_amd64 builds too
            index.add(variant, project, f"{version}+{variant}", tag, text)
    cpu = "\n".join(with_version(lines, f"{version}+cpu", drop_cuda=True)) + "\n\n"
    for tag in tags["linux"] + tags["windows"]:
        index.add("cpu", project, f"{version}+cpu", tag, cpu)
    mac = "\n".join(with_version(lines, str(version), drop_cuda=True)) + "\n\n"
    for tag in tags["macos"]:
        index.add("cpu", project, str(version), tag, mac)


def catalog_variants(catalog: dict[str, Any]) -> dict[str, list[str]]:
    """torch release -> CUDA variants, from the parsed uvx_llm/catalog.toml."""
    return {row["release"]: sorted(row.get("variants", {})) for row in catalog.get("torch", [])}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@contextlib.contextmanager
def serve(root: Path) -> Iterator[str]:
    """Serve `root` on 127.0.0.1 (a free port); yields the base URL of the indexes (…/whl)."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/whl"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
