"""Releases newer than the catalog: their pins read from the index's METADATA (an I/O edge).

A project may pin a vllm released after the catalog's last refresh. Before planning, the
pipeline asks here: for each vllm requirement that only allows releases newer than the
catalog, the release uv would take (the pinned one, else the newest on the index inside
the range) has its wheel METADATA read from the project's default index, with refresh.py's
readers (PEP 658 ``.metadata``, else HTTP range reads of the zip). What it says becomes an
extra ``VllmPin`` row, marked as read from the index, that the pure planner takes as a value.

METADATA of a released version never changes, so it is cached under the user cache
directory for good, keyed by index URL (without credentials), package and version.
Offline (``--offline``, ``UV_OFFLINE``) nothing is fetched; ``check`` reads the cache
only. One short timeout, and after the first failure no further request in this run.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import zipfile
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit, urlunsplit

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from uvx_llm import refresh
from uvx_llm.catalog import VllmPin, newest_vllm
from uvx_llm.errors import LlmSyncError
from uvx_llm.redact import redact
from uvx_llm.torch_fit import newer_than_catalog

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from pathlib import Path

    from packaging.requirements import Requirement

    from uvx_llm.catalog import Catalog

PYPI = "https://pypi.org/simple"
TIMEOUT = 5.0  # seconds per request: planning must not hang on an unreachable index
NETWORK, CACHE, OFFLINE = "network", "cache", "offline"  # how far reads may go
_TRUE = {"1", "true", "yes", "on", "y", "t"}


def offline_requested(uv_args: Iterable[str], environ: Mapping[str, str]) -> bool:
    """``--offline`` among uv's arguments, or UV_OFFLINE set to a true value (as uv reads it)."""
    return "--offline" in uv_args or environ.get("UV_OFFLINE", "").strip().lower() in _TRUE


@dataclass(frozen=True)
class Learned:
    """What the index said about releases the catalog lacks, and what it could not say."""

    pins: tuple[VllmPin, ...] = ()
    unread: tuple[tuple[str, str], ...] = ()  # (requirement, why its METADATA was not read)


def split_credentials(url: str) -> tuple[str, str | None]:
    """(the URL without ``user:password@``, the Basic Authorization header they make, if any)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
    return urlunsplit(parts._replace(netloc=host)), f"Basic {token}"


class _Reader:
    """HTTP GETs with one short timeout; credentials sent to the index's host only; the first
    failure ends the run's reads (``down`` says why)."""

    def __init__(self, index: str, fetch: refresh.Fetch | None) -> None:
        self.index = index
        self.base, self.authorization = split_credentials(index)
        self.host = urlsplit(self.base).netloc
        self.fetch = fetch
        self.down: str | None = None

    def __call__(self, url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        if self.authorization and urlsplit(url).netloc == self.host:
            headers = {**headers, "Authorization": self.authorization}
        if self.fetch is not None:
            return self.fetch(url, headers)
        return refresh.http_get(url, headers, timeout=TIMEOUT)


def cache_file(cache: Path, index: str, package: str, version: Version) -> Path:
    key = hashlib.sha256(split_credentials(index)[0].rstrip("/").encode()).hexdigest()[:24]
    return cache / "metadata" / key / f"{canonicalize_name(package)}-{version}.METADATA"


def _store(path: Path, text: str, index: str) -> None:
    with contextlib.suppress(OSError):  # a cache that cannot be written is only a cache
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "index.txt").write_text(redact(index) + "\n", encoding="utf-8")
        partial = path.with_suffix(f".{os.getpid()}.partial")
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)


def _cached_versions(cache: Path, index: str, package: str) -> list[Version]:
    folder = cache_file(cache, index, package, Version("0")).parent
    found = []
    for path in folder.glob(f"{canonicalize_name(package)}-*.METADATA") if folder.is_dir() else ():
        with contextlib.suppress(InvalidVersion):
            found.append(Version(path.name.removesuffix(".METADATA").rpartition("-")[2]))
    return found


def _exact(specifier: SpecifierSet) -> Version | None:
    items = list(specifier)
    if len(items) == 1 and items[0].operator in {"==", "==="} and not items[0].version.endswith(".*"):
        with contextlib.suppress(InvalidVersion):
            return Version(items[0].version)
    return None


def _pick(versions: Iterable[Version], specifier: SpecifierSet, newest: Version) -> Version | None:
    """The release uv would take: the newest final one inside ``specifier``, after the catalog."""
    fitting = [v for v in versions if v > newest and not v.is_prerelease and specifier.contains(v)]
    return max(fitting, default=None)


def _cached(requirement: Requirement, newest: Version, index: str, cache: Path) -> tuple[Version, str] | None:
    version = _exact(requirement.specifier)
    chosen = version or _pick(_cached_versions(cache, index, requirement.name), requirement.specifier, newest)
    path = cache_file(cache, index, requirement.name, chosen) if chosen else None
    if chosen is None or path is None or not path.is_file():
        return None
    return chosen, path.read_text(encoding="utf-8")


def _fetched(requirement: Requirement, newest: Version, reader: _Reader) -> tuple[Version, str] | str:
    """(version, its METADATA) read from the index, or why not."""
    if reader.down is not None:
        return reader.down
    shown = redact(reader.base)
    try:
        index_reader = refresh.Index(reader.base, reader)
        wheels = refresh.representative(index_reader.wheels(requirement.name))
        chosen = _exact(requirement.specifier) or _pick(wheels, requirement.specifier, newest)
        if chosen is None or chosen not in wheels:
            return f"no such release on {shown}"
        return chosen, index_reader.metadata(wheels[chosen])
    except LlmSyncError as error:
        what = error.what.removeprefix("refresh: ")
        reader.down = redact(
            f"index unreachable: {what}: {error.why}" if error.why else f"index unreachable: {what}"
        )
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:  # a malformed answer
        reader.down = redact(f"{shown} gave an answer that could not be read: {error}")
    return reader.down


def _release(
    requirement: Requirement, newest: Version, reader: _Reader, cache: Path, reads: str
) -> tuple[Version, str] | str:
    """(version, its METADATA) from the cache, else from the index where ``reads`` allows; or why not."""
    cached = _cached(requirement, newest, reader.index, cache)
    if cached is not None:
        return cached
    if reads == OFFLINE:
        return "offline (--offline or UV_OFFLINE): the index was not asked, and nothing is cached"
    if reads == CACHE:
        return "check reads only llm-sync's cache, which has nothing for that release; `llm-sync plan` reads the index"
    found = _fetched(requirement, newest, reader)
    if not isinstance(found, str):
        _store(cache_file(cache, reader.index, requirement.name, found[0]), found[1], reader.index)
    return found


def learn(
    requirements: Iterable[Requirement],
    catalog: Catalog,
    *,
    index: str,
    cache: Path,
    reads: str = NETWORK,
    fetch: refresh.Fetch | None = None,
) -> Learned:
    """Pins of the vllm releases ``requirements`` name that are newer than ``catalog``."""
    newest = newest_vllm(catalog.vllm)
    if newest is None:
        return Learned()
    reader = _Reader(index, fetch)
    pins: list[VllmPin] = []
    unread: list[tuple[str, str]] = []
    seen: set[str] = set()
    for requirement in requirements:
        if canonicalize_name(requirement.name) != "vllm" or str(requirement) in seen:
            continue
        seen.add(str(requirement))
        if not newer_than_catalog(requirement.specifier, newest):
            continue
        found = _release(requirement, newest, reader, cache, reads)
        if isinstance(found, str):
            unread.append((str(requirement), found))
            continue
        version, text = found
        metadata = refresh.Metadata.parse(text)
        pin = metadata.pin("torch") or "none"
        try:
            exact = Version(pin)
            python = SpecifierSet(metadata.requires_python)
        except (InvalidVersion, InvalidSpecifier):
            unread.append((str(requirement), f"vllm {version}'s METADATA pins no exact torch ({pin})"))
            continue
        source = f"read from the index's metadata (not in the catalog): Requires-Dist of vllm {version} on {redact(index)}"
        pins.append(VllmPin(SpecifierSet(f"=={version}"), exact, python, source))
    return Learned(tuple(pins), tuple(unread))
