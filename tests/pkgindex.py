"""A PEP 503 package index served on 127.0.0.1, holding tiny stand-in wheels.

The wheels are real (uv installs them); they only carry a module whose
``__version__`` records which build was installed, so a test can see whether
uv took ``torch 2.7.1+cu128`` or ``+cpu``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import http.server
import importlib.metadata
import io
import tarfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

from packaging.utils import canonicalize_name

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def build_wheel(
    directory: Path,
    name: str,
    version: str,
    *,
    requires: Sequence[str] = (),
) -> Path:
    """Write ``{name}-{version}-py3-none-any.whl`` and return its path."""
    dist = canonicalize_name(name).replace("-", "_")
    dist_info = f"{dist}-{version}.dist-info"
    metadata = "\n".join(
        [
            "Metadata-Version: 2.1",
            f"Name: {name}",
            f"Version: {version}",
            *(f"Requires-Dist: {req}" for req in requires),
            "",
        ]
    )
    files = {
        f"{dist}/__init__.py": f"__version__ = {version!r}\n",
        f"{dist_info}/METADATA": metadata,
        f"{dist_info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: llm-sync-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record_lines = [
        f"{path},{_record_hash(text.encode())},{len(text.encode())}" for path, text in files.items()
    ]
    record_lines.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = "\n".join(record_lines) + "\n"
    path = directory / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for arcname, text in files.items():
            archive.writestr(arcname, text)
    return path


def build_release_wheel(directory: Path, filename: str, name: str, version: str) -> Path:
    """A platform wheel under a release asset's name (``flash_attn-2.8.3+cu12torch2.8…-cp311-cp311-linux_x86_64.whl``).

    As the real release assets are: the local version is in the file name only, METADATA
    says ``version`` (the publish workflows rename the built wheel).
    """
    dist = canonicalize_name(name).replace("-", "_")
    dist_info = f"{dist}-{version}.dist-info"
    tag = "-".join(filename.removesuffix(".whl").split("-")[2:])
    files = {
        f"{dist}/__init__.py": f"__version__ = {version!r}\nPREBUILT = {filename!r}\n",
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nRequires-Dist: torch\n",
        f"{dist_info}/WHEEL": f"Wheel-Version: 1.0\nGenerator: llm-sync-tests\nRoot-Is-Purelib: false\nTag: {tag}\n",
    }
    lines = [f"{path},{_record_hash(text.encode())},{len(text.encode())}" for path, text in files.items()]
    files[f"{dist_info}/RECORD"] = "\n".join([*lines, f"{dist_info}/RECORD,,"]) + "\n"
    path = directory / filename
    with zipfile.ZipFile(path, "w") as archive:
        for arcname, text in files.items():
            archive.writestr(arcname, text)
    return path


def build_sdist(directory: Path, name: str, version: str, *, backend: Path) -> Path:
    """A source distribution whose in-tree PEP 517 backend is ``backend`` (no build requirements)."""
    dist = canonicalize_name(name).replace("-", "_")
    top = f"{dist}-{version}"
    files = {
        f"{top}/pyproject.toml": (
            f'[project]\nname = "{name}"\nversion = "{version}"\n\n'
            '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'
        ),
        f"{top}/PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{top}/backend.py": backend.read_text(encoding="utf-8"),
    }
    path = directory / f"{top}.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for arcname, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(arcname)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def repack_installed(directory: Path, distribution: str) -> Path:
    """A wheel made from an installed distribution's own files (listed in its RECORD).

    Lets a test serve llm-sync's real dependencies from the loopback index without
    the network.
    """
    dist = importlib.metadata.distribution(distribution)
    files = [f for f in dist.files or () if not str(f).endswith(".pyc") and "__pycache__" not in str(f)]
    wheel_text = dist.read_text("WHEEL") or ""
    tag = next(line.split(":", 1)[1].strip() for line in wheel_text.splitlines() if line.startswith("Tag:"))
    name = canonicalize_name(dist.metadata["Name"]).replace("-", "_")
    path = directory / f"{name}-{dist.version}-{tag}.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for file in files:
            located = Path(str(dist.locate_file(file)))
            if located.is_file() and not str(file).startswith(".."):
                archive.write(located, str(file))
    return path


@dataclass
class PackageIndex:
    """Index prefixes (``/simple``, ``/whl/cu128``) mapped to the files they serve."""

    root: Path
    prefixes: dict[str, list[Path]] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    base_url: str = ""
    delay_seconds: float = 0.0  # slow every answer down (tests that interrupt uv mid-way)
    flat: set[str] = field(default_factory=set)  # prefixes served as one flat file listing
    credentials: dict[str, str] = field(default_factory=dict)  # prefix -> "Basic ..." header it needs
    release_files: dict[str, Path] = field(default_factory=dict)  # exact path -> file (a GitHub release host)
    core_metadata: bool = False  # PEP 658/714: serve <wheel>.metadata and say so in the listings

    def add_release_wheel(self, path: str, name: str, version: str) -> None:
        """Serve a stand-in wheel at ``path`` (/OWNER/REPO/releases/download/TAG/ASSET), as GitHub does."""
        folder = self.root / "releases" / path.strip("/").rsplit("/", 1)[0].replace("/", "_")
        folder.mkdir(parents=True, exist_ok=True)
        filename = path.rsplit("/", 1)[1]
        self.release_files[path] = build_release_wheel(folder, filename, name, version)

    def add(self, prefix: str, name: str, version: str, *, requires: Sequence[str] = ()) -> None:
        folder = self.root / prefix.strip("/").replace("/", "_")
        folder.mkdir(parents=True, exist_ok=True)
        wheel = build_wheel(folder, name, version, requires=requires)
        self.prefixes.setdefault(prefix.rstrip("/"), []).append(wheel)

    def add_installed(self, prefix: str, distribution: str) -> None:
        folder = self.root / prefix.strip("/").replace("/", "_")
        folder.mkdir(parents=True, exist_ok=True)
        self.prefixes.setdefault(prefix.rstrip("/"), []).append(repack_installed(folder, distribution))

    def add_sdist(self, prefix: str, name: str, version: str, *, backend: Path) -> None:
        folder = self.root / prefix.strip("/").replace("/", "_")
        folder.mkdir(parents=True, exist_ok=True)
        self.prefixes.setdefault(prefix.rstrip("/"), []).append(
            build_sdist(folder, name, version, backend=backend)
        )

    def url(self, prefix: str) -> str:
        return self.base_url + prefix.rstrip("/")

    def _listing(self, prefix: str, project: str) -> str | None:
        files = self.prefixes.get(prefix)
        if files is None:
            return None
        anchors = []
        for path in files:
            dist = (
                path.name.removesuffix(".tar.gz").rsplit("-", 1)[0]
                if path.name.endswith(".tar.gz")
                else path.name.split("-", 1)[0]
            )
            if canonicalize_name(dist) != canonicalize_name(project):
                continue
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            href = f"{self.base_url}/files/{path.parent.name}/{path.name}#sha256={digest}"
            meta = ' data-core-metadata="true"' if self.core_metadata and path.name.endswith(".whl") else ""
            anchors.append(f'<a href="{html.escape(href)}"{meta}>{html.escape(path.name)}</a><br>')
        return "<!DOCTYPE html><html><body>" + "".join(anchors) + "</body></html>"

    def _flat_listing(self, prefix: str) -> str:
        anchors = "".join(
            f'<a href="{self.base_url}/files/{p.parent.name}/{p.name}">{html.escape(p.name)}</a><br>'
            for p in self.prefixes.get(prefix, [])
        )
        return "<!DOCTYPE html><html><body>" + anchors + "</body></html>"

    def _file(self, path: str) -> tuple[int, bytes, str]:
        _, _, folder, filename = path.split("/", 3)
        target = self.root / folder / filename
        if self.core_metadata and filename.endswith(".whl.metadata"):
            return self._core_metadata(target.with_suffix(""))
        if target.is_file():
            return 200, target.read_bytes(), "application/octet-stream"
        return 404, b"", "text/plain"

    def _core_metadata(self, wheel: Path) -> tuple[int, bytes, str]:
        if not wheel.is_file():
            return 404, b"", "text/plain"
        with zipfile.ZipFile(wheel) as archive:
            member = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
            return 200, archive.read(member), "text/plain"

    def authorised(self, path: str, header: str | None) -> bool:
        needed = [value for prefix, value in self.credentials.items() if path.startswith(prefix)]
        return not needed or header in needed

    def respond(self, path: str) -> tuple[int, bytes, str]:
        self.requests.append(path)
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        released = self.release_files.get(unquote(path))
        if released is not None:
            return 200, released.read_bytes(), "application/octet-stream"
        if path.rstrip("/") in self.flat:
            return 200, self._flat_listing(path.rstrip("/")).encode(), "text/html"
        if path.startswith("/files/"):
            return self._file(path)
        prefix, _, project = path.rstrip("/").rpartition("/")
        listing = None if prefix in self.flat else self._listing(prefix, project)
        if listing is None:
            return 404, b"not found", "text/plain"
        return 200, listing.encode(), "text/html"


class _Handler(http.server.BaseHTTPRequestHandler):
    index: PackageIndex

    def _answer(self, *, with_body: bool) -> None:
        path = self.path.split("?", 1)[0]
        if not self.index.authorised(path, self.headers.get("Authorization")):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="mirror"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        status, body, content_type = self.index.respond(path)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if status == 200 and self.path.startswith("/files/"):
            # As PyPI does: a file never changes, so uv may cache what it builds from it.
            self.send_header("Cache-Control", "max-age=365000000, immutable, public")
            self.send_header("ETag", '"' + hashlib.sha256(body).hexdigest() + '"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer(with_body=True)

    def do_HEAD(self) -> None:
        self._answer(with_body=False)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature of the base class
        """Stay quiet: requests are recorded in PackageIndex.requests."""


def serve(index: PackageIndex) -> Iterator[PackageIndex]:
    """Serve ``index`` on 127.0.0.1 for the duration of a ``with``/fixture block."""
    handler = type("Handler", (_Handler,), {"index": index})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    index.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield index
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
