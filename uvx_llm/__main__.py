"""`python -m uvx_llm` and the `llm-sync` console script."""

from __future__ import annotations


def main() -> None:
    from uvx_llm.cli import run  # noqa: PLC0415 - keep `python -m uvx_llm --help` import-light

    run()


if __name__ == "__main__":
    main()
