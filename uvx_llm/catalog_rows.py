"""Reading catalog.toml table by table: a missing or malformed value is an error that names
its row and key (a shipped catalog that does not parse is a bug: exit code 3)."""

from __future__ import annotations

from typing import Any

from packaging.specifiers import InvalidSpecifier
from packaging.version import InvalidVersion

from uvx_llm.errors import ExitCode, LlmSyncError


class Row:
    """One table of the catalog, read key by key: a missing or malformed value names its place."""

    def __init__(self, where: str, data: object) -> None:
        self.where = where
        if not isinstance(data, dict):
            raise bad(where, f"expected a table, found {type(data).__name__}")
        self.data: dict[str, Any] = data

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
        if key not in self.data:
            if default is ...:
                raise bad(self.where, f"missing key {key!r}")
            return default
        value = self.data[key]
        if not isinstance(value, kind):
            raise bad(self.where, f"{key} = {value!r} is not {_kind_name(kind)}")
        return value

    def text(self, key: str, default: Any = ...) -> Any:
        return self.get(key, str, default)

    def strings(self, key: str, default: Any = ...) -> list[str]:
        values: list[Any] = self.get(key, list, default)
        if any(not isinstance(v, str) for v in values):
            raise bad(self.where, f"{key} = {values!r} is not a list of strings")
        return values

    def table(self, key: str, default: Any = ...) -> Row:
        return Row(f"{self.where}.{key}", self.get(key, dict, default))

    def convert(self, key: str, parse: Any, default: Any = ...) -> Any:
        """``parse`` applied to the text at ``key`` (a version, a specifier, a pair)."""
        value = self.text(key, default)
        if value is default and default is not ...:
            return default
        try:
            return parse(value)
        except (InvalidSpecifier, InvalidVersion, ValueError) as error:
            raise bad(self.where, f"{key} = {value!r}: {error}") from error

    def rows(self, key: str) -> list[Row]:
        """An array of tables; each row named by its position and its first value."""
        values = self.get(key, list, [])
        named = []
        for number, value in enumerate(values, start=1):
            label = f"[[{key}]] #{number}"
            if isinstance(value, dict) and value:
                first_key, first_value = next(iter(value.items()))
                label += f" ({first_key} = {first_value!r})"
            named.append(Row(label, value))
        return named

    def items(self) -> list[tuple[str, Any]]:
        return list(self.data.items())


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {str: "a string", list: "a list", dict: "a table", int: "an integer", float: "a number"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def bad(where: str, problem: str) -> LlmSyncError:
    return LlmSyncError(
        f"the compatibility catalog is malformed: {where}: {problem}",
        why="llm-sync reads its knowledge from catalog.toml (docs/refresh.md); this row does not have the expected shape",
        fix="reinstall llm-sync, or fix that row (python -m uvx_llm.refresh --check verifies the generated part)",
        exit_code=ExitCode.INTERNAL,
    )
