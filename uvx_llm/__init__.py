"""llm-sync: make `uv sync` work for GPU/LLM projects on the machine it runs on."""

__version__ = "0.1.0"
