"""Credentials in index URLs: kept out of pyproject.toml, logs, plan output and errors."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def redact(text: str) -> str:
    """Replace every ``user:password@`` in URLs inside ``text`` with ``***@``."""
    return _USERINFO.sub("***@", text)


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """(the URL without credentials, username, password)."""
    parts = urlsplit(url)
    if not parts.username and not parts.password:
        return url, None, None
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    clean = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return clean, username, password


def uv_index_variable(index_name: str, field: str) -> str:
    """uv's per-index credential variable: UV_INDEX_<NAME>_USERNAME / _PASSWORD."""
    return f"UV_INDEX_{re.sub(r'[^A-Za-z0-9]', '_', index_name).upper()}_{field}"
