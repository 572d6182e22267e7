"""The refresh command, offline: real METADATA recorded from PyPI (tests/fixtures/metadata),
served from 127.0.0.1 as a PEP 691 index, in wheels read through range requests."""

from __future__ import annotations

import http.server
import io
import json
import os
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from packaging.version import Version

from uvx_llm import catalog, refresh

if TYPE_CHECKING:
    from collections.abc import Iterator

METADATA = Path(__file__).parent / "fixtures" / "metadata"
WHEELS: dict[str, str] = json.loads((METADATA / "wheels.json").read_text(encoding="utf-8"))


def recorded(key: str) -> refresh.Metadata:
    return refresh.Metadata.parse((METADATA / f"{key}.METADATA").read_text(encoding="utf-8"))


# --- what METADATA says ---------------------------------------------------------------------


def test_vllm_pins_come_from_the_wheel_not_the_json_api() -> None:
    # PyPI's JSON requires_dist says torch 2.13.0 for vllm 0.33.0; its wheels say 2.14.0.
    meta = recorded("vllm-0.33.0")
    assert meta.pin("torch") == "2.14.0"
    assert meta.pin("torchvision") == "0.29.0"
    assert meta.pin("xformers") is None
    assert meta.pin("flashinfer-python") == "0.7.2.post1"
    assert meta.requires_python == "<3.15,>=3.11"


def test_vllm_0111_pins_torch_290_and_xformers_on_linux_x86_64_only() -> None:
    meta = recorded("vllm-0.11.1")
    assert meta.pin("torch") == "2.9.0"
    assert meta.pin("xformers") == "0.0.33.post1"  # marker: platform_machine == "x86_64"
    assert meta.pin("flashinfer-python") == "0.5.2"


@pytest.mark.parametrize(
    ("key", "cuda"),
    [
        ("torch-2.6.0", "12.4"),  # nvidia-cuda-runtime-cu12==12.4.127
        ("torch-2.10.0", "12.8"),
        ("torch-2.11.0", "13.0"),  # cuda-toolkit[cudart,...]==13.0.2
        ("torch-2.15.0", "13.2"),
    ],
)
def test_the_cuda_of_torchs_pypi_wheel(key: str, cuda: str) -> None:
    assert recorded(key).cuda() == cuda


def test_runs_of_vllm_releases_with_the_same_pins_become_one_row() -> None:
    rows = refresh.vllm_rows({Version(k.split("-")[1]): recorded(k) for k in WHEELS if k.startswith("vllm-")})
    shown = [(str(r.first), str(r.last), str(r.upper), r.torch) for r in rows]
    assert shown == [
        ("0.8.5.post1", "0.8.5.post1", "0.10.2", "2.6.0"),
        ("0.10.2", "0.11.0", "0.11.1", "2.8.0"),
        ("0.11.1", "0.11.2", "0.12.0", "2.9.0"),
        ("0.12.0", "0.12.0", "0.32.0", "2.9.0"),  # no xformers from 0.12
        ("0.32.0", "0.32.0", "0.33.0", "2.13.0"),
        ("0.33.0", "0.33.0", "None", "2.14.0"),
    ]
    text = refresh.render(rows, [], index="http://127.0.0.1/simple", checked="2026-11-22")
    assert 'vllm = ">=0.11.1,<0.12.0"\ntorch = "2.9.0"' in text
    assert 'vllm = "==0.33.0"' in text


# --- a loopback index ----------------------------------------------------------------------


def make_wheel(key: str) -> bytes:
    """A wheel with the recorded METADATA, padded with incompressible bytes so that reading it
    whole would take many blocks: the range reader must fetch only what it needs."""
    name, version = key.split("-", 1)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as wheel:
        wheel.writestr(f"{name}/_padding.bin", os.urandom(600 * 1024), zipfile.ZIP_STORED)
        wheel.writestr(f"{name}-{version}.dist-info/METADATA", (METADATA / f"{key}.METADATA").read_bytes())
        wheel.writestr(f"{name}-{version}.dist-info/WHEEL", "Wheel-Version: 1.0\n")
    return buffer.getvalue()


@dataclass
class Served:
    base: str
    files: dict[str, bytes]
    core_metadata: bool = False
    honour_range: bool = True
    requests: list[tuple[str, str]] = field(default_factory=list)  # (path, Range header)
    listings: dict[str, list[dict[str, object]]] = field(default_factory=dict)

    def body(self, path: str) -> bytes | None:
        name = path.removeprefix("/simple/").rstrip("/")
        if path.startswith("/simple/") and name in self.listings:
            rows = [{**row, "core-metadata": self.core_metadata} for row in self.listings[name]]
            return json.dumps({"meta": {"api-version": "1.1"}, "files": rows}).encode()
        return self.files.get(path)


def _handler(served: Served) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002, ARG002 - the base class's signature; quiet
            return

        def do_GET(self) -> None:
            byte_range = self.headers.get("Range", "")
            served.requests.append((self.path, byte_range))
            body = served.body(self.path)
            if body is None:
                self.send_response(404)
                self.end_headers()
                return
            if byte_range and served.honour_range and self.path.endswith(".whl"):
                first, _, last = byte_range.removeprefix("bytes=").partition("-")
                start = len(body) - int(last) if not first else int(first)
                end = len(body) - 1 if not first or not last else min(int(last), len(body) - 1)
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(body)}")
                body = body[start : end + 1]
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture
def index() -> Iterator[Served]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    served = Served(f"{base}/simple", {})
    server.RequestHandlerClass = _handler(served)
    listings = served.listings
    for key, filename in WHEELS.items():
        name = key.split("-")[0]
        path = f"/files/{filename}"
        served.files[path] = make_wheel(key)
        served.files[f"{path}.metadata"] = (METADATA / f"{key}.METADATA").read_bytes()
        listings.setdefault(name, []).append({"filename": filename, "url": f"{base}{path}"})
        listings[name].append({"filename": f"{name}-{key.split('-')[1]}.tar.gz", "url": f"{base}/nothing"})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served
    server.shutdown()
    server.server_close()


def test_metadata_is_read_through_range_requests(index: Served) -> None:
    source = refresh.Index(index.base)
    wheel = refresh.representative(source.wheels("vllm"))[Version("0.11.1")]
    assert not wheel.core_metadata
    meta = refresh.Metadata.parse(source.metadata(wheel))
    assert meta.pin("torch") == "2.9.0"
    assert source.range_reads == 1
    ranges = [r for path, r in index.requests if path.endswith(".whl")]
    assert ranges[0] == f"bytes=-{64 * 1024}"  # the tail: end of central directory
    size = len(index.files[f"/files/{wheel.filename}"])
    assert len(ranges) * 64 * 1024 < size / 2  # the 600 KiB padding was never read


def test_pep_658_metadata_is_preferred(index: Served) -> None:
    index.core_metadata = True
    source = refresh.Index(index.base)
    wheel = refresh.representative(source.wheels("torch"))[Version("2.11.0")]
    assert refresh.Metadata.parse(source.metadata(wheel)).cuda() == "13.0"
    assert source.range_reads == 0
    assert [path for path, _ in index.requests if "/files/" in path] == [f"/files/{wheel.filename}.metadata"]


def test_a_server_that_ignores_range_still_works(index: Served) -> None:
    index.honour_range = False
    source = refresh.Index(index.base)
    wheel = refresh.representative(source.wheels("vllm"))[Version("0.33.0")]
    assert refresh.Metadata.parse(source.metadata(wheel)).pin("torch") == "2.14.0"


TEMPLATE = f"""schema = 1
[hand-kept]
x = 1

{refresh.BEGIN}
{refresh.END}
"""


def test_check_write_check(index: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "catalog.toml"
    target.write_text(TEMPLATE, encoding="utf-8")
    common = ["--index", index.base, "--catalog", str(target), "--date", "2026-11-22"]
    assert refresh.main(["--check", *common]) == 1
    out = capsys.readouterr().out
    assert '+vllm = ">=0.11.1,<0.12.0"' in out
    assert target.read_text(encoding="utf-8") == TEMPLATE  # --check writes nothing
    assert refresh.main(["--write", *common]) == 0
    written = target.read_text(encoding="utf-8")
    assert written.startswith("schema = 1\n[hand-kept]\nx = 1\n")
    assert 'release = "2.11"\nversions = ["2.11.0"]\npypi-cuda = "13.0"' in written
    capsys.readouterr()
    assert refresh.main(["--check", *common[:-1], "2027-01-01"]) == 0  # only the date would change
    assert capsys.readouterr().out == ""


def test_a_catalog_without_the_markers_is_a_clear_error(
    index: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "catalog.toml"
    target.write_text("schema = 1\n", encoding="utf-8")
    assert refresh.main(["--check", "--index", index.base, "--catalog", str(target)]) == 2
    assert "no generated region" in capsys.readouterr().err


def test_an_unreachable_index_is_a_clear_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()  # nothing listens there now
    target = tmp_path / "catalog.toml"
    target.write_text(TEMPLATE, encoding="utf-8")
    code = refresh.main(["--index", f"http://127.0.0.1:{port}/simple", "--catalog", str(target)])
    assert code == 2
    assert "cannot reach" in capsys.readouterr().err


def test_the_shipped_catalog_has_a_generated_part_the_loader_reads() -> None:
    text = refresh.CATALOG.read_text(encoding="utf-8")
    region = text[text.index(refresh.BEGIN) : text.index(refresh.END)]
    loaded = catalog.from_text(text)
    assert region.count("[[vllm]]") == len(loaded.vllm)
    assert "[generated]" in region
