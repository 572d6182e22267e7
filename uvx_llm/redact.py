"""Credentials: kept out of pyproject.toml, logs, crash logs, plan output, settings and errors.

Everything llm-sync prints, logs or records that may hold a setting, an
environment or an argv goes through ``redact`` (text) or ``redact_data`` (a
value, a mapping of names to values, a list such as argv): the one redaction.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

MASK = "***"
_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
# user:password@host without a scheme (uv, pip and git accept it in several places).
# Starts a word: not inside a path or after another word character.
_BARE_USERINFO = re.compile(r"(?<![^\s=\"'(\[,;])[^\s/@:=\"'\[\]]+:[^\s/@\"']*@(?=[\w\[])")
# Names whose values are secrets themselves (UV_INDEX_<NAME>_PASSWORD, tokens, ...).
_SECRET_NAME = re.compile(r"PASSWORD|PASSWD|TOKEN|SECRET|CREDENTIAL|_AUTH|API_?KEY", re.IGNORECASE)
# `--password x`, `--token=x` in an argv.
_SECRET_OPTION = re.compile(r"^--?[\w-]*(password|token|secret)[\w-]*$", re.IGNORECASE)


def redact(text: str) -> str:
    """Replace every ``user:password@`` inside ``text`` (with a scheme or without) with ``***@``."""
    return _BARE_USERINFO.sub(MASK + "@", _USERINFO.sub(MASK + "@", text))


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def _redact_word(word: str) -> str:
    """``NAME=secret`` and ``--token=secret`` masked; credentials in URLs masked."""
    key, equals, rest = word.partition("=")
    secret_key = (is_secret_name(key) and not key.startswith("-")) or bool(_SECRET_OPTION.match(key))
    if equals and rest and secret_key:
        return f"{key}={MASK}"
    return redact(word)


def _redact_list(values: list[Any] | tuple[Any, ...]) -> list[Any]:
    shown = []
    for position, item in enumerate(values):
        previous = values[position - 1] if position else None
        secret_next = isinstance(previous, str) and bool(_SECRET_OPTION.match(previous))
        shown.append(MASK if secret_next else redact_data(item))
    return shown


def redact_data(value: Any, name: str = "") -> Any:
    """A copy of ``value`` safe to show: secret-named entries masked, credentials in text masked.

    Mappings (an environment, settings, a log event) are masked by key; lists (an
    argv) also mask the word after ``--password``-style options and ``NAME=secret``.
    """
    if name and is_secret_name(name) and value not in (None, ""):
        return MASK
    if isinstance(value, str):
        return _redact_word(value)
    if isinstance(value, dict):
        return {k: redact_data(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return _redact_list(value)
    if isinstance(value, tuple):
        return tuple(_redact_list(value))
    return value


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
