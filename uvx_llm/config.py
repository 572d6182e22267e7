"""Settings for one run, with where each came from.

Precedence: command line > LLM_SYNC_* environment > [tool.llm-sync] > defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from uvx_llm.errors import LlmSyncError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from uvx_llm.catalog import Catalog

# Keys llm-sync reads from [tool.llm-sync]; anything else is a typo worth reporting.
KNOWN_KEYS = {
    "backend": "the PyTorch backend llm-sync routes to (cpu, cu126, cu128, ...); written by llm-sync",
    "torch-index-url": "base URL of the PyTorch wheel indexes (a mirror); <url>/<backend> is one index",
}


@dataclass(frozen=True)
class Setting:
    value: str
    origin: str  # "--backend", "LLM_SYNC_BACKEND", "[tool.llm-sync]", "default"


def validate_table(table: Mapping[str, Any], catalog: Catalog) -> None:
    for key, value in table.items():
        if key not in KNOWN_KEYS:
            valid = ", ".join(sorted(KNOWN_KEYS))
            raise LlmSyncError(
                f"unknown key {key!r} in [tool.llm-sync]",
                why=f"llm-sync reads only: {valid}",
                fix=f"remove {key!r} or correct its spelling",
            )
        if not isinstance(value, str):
            raise LlmSyncError(
                f"[tool.llm-sync] {key} must be a string, not {type(value).__name__}",
                fix=f'write it as {key} = "..."',
            )
    if "backend" in table:
        check_backend(table["backend"], catalog, origin="[tool.llm-sync] backend")


def check_backend(value: str, catalog: Catalog, *, origin: str, allow_auto: bool = False) -> str:
    valid = ("auto", *catalog.backends) if allow_auto else catalog.backends
    if value not in valid:
        raise LlmSyncError(
            f"unknown backend {value!r} ({origin})",
            why=f"valid backends are: {', '.join(valid)}",
            fix="pick one of those, or `auto` to let llm-sync choose for this machine",
        )
    return value


def resolve_backend(cli_value: str | None, env: Mapping[str, str], catalog: Catalog) -> Setting:
    """The requested backend: `auto` unless the command line or environment names one."""
    if cli_value:
        return Setting(check_backend(cli_value, catalog, origin="--backend", allow_auto=True), "--backend")
    from_env = env.get("LLM_SYNC_BACKEND", "").strip()
    if from_env:
        return Setting(
            check_backend(from_env, catalog, origin="LLM_SYNC_BACKEND", allow_auto=True), "LLM_SYNC_BACKEND"
        )
    return Setting("auto", "default")


def resolve_index_base(
    cli_value: str | None, env: Mapping[str, str], table: Mapping[str, Any], catalog: Catalog
) -> Setting:
    if cli_value:
        return Setting(cli_value.rstrip("/"), "--torch-index-url")
    from_env = env.get("LLM_SYNC_TORCH_INDEX_URL", "").strip()
    if from_env:
        return Setting(from_env.rstrip("/"), "LLM_SYNC_TORCH_INDEX_URL")
    if "torch-index-url" in table:
        return Setting(str(table["torch-index-url"]).rstrip("/"), "[tool.llm-sync] torch-index-url")
    return Setting(catalog.index_base, "default")
