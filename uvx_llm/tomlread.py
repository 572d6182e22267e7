"""The one TOML reader: Python's `tomllib` where it exists, tomlkit on Python 3.10.

`tomllib` reads verl's 17 kB pyproject in ~2 ms where tomlkit takes ~26 ms, and a
pre-commit hook pays that on every commit; tomlkit loads only to edit a file, and
here on 3.10. Both raise a ValueError for invalid TOML; each caller says which file
and what to do.
"""

from __future__ import annotations

import sys
from typing import Any


def loads(text: str) -> dict[str, Any]:
    """The plain data of a TOML text. Raises ValueError when it is not valid TOML."""
    if sys.version_info >= (3, 11):
        import tomllib  # noqa: PLC0415 - stdlib only from 3.11

        return tomllib.loads(text)
    import tomlkit  # pragma: no cover  # noqa: PLC0415 - the 3.10 fallback

    data: dict[str, Any] = tomlkit.parse(text).unwrap()  # pragma: no cover
    return data  # pragma: no cover
