"""A stand-in for the `ray` package, for llm-sync's cluster doctor tests: a cluster of
simulated nodes read from the JSON file that RAY_STANDIN_NODES names.

Each node is {"NodeID", "NodeManagerHostname", "NodeManagerAddress", "Alive", "env", "hang"}.
A task pinned to a node (NodeAffinitySchedulingStrategy, soft=False, as the driver must ask)
runs in this process with that node's environment variables ("env": PATH with its own
nvidia-smi and uv, UV_PROJECT_ENVIRONMENT with its own interpreter, UV_CACHE_DIR with its own
uv cache: `sync --ray`'s task runs the real uv there, so each node is a machine of its own);
a "hang" node never answers (true: no task; a list: the tasks of those functions, by name).
Every call is appended to the file RAY_STANDIN_LOG names, for the tests to read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__version__ = "2.49.0"
_STATE: dict[str, Any] = {}


def _log(event: str, **fields: Any) -> None:
    path = os.environ.get("RAY_STANDIN_LOG")
    if path:
        with Path(path).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"event": event, **fields}) + "\n")


def init(address: str | None = None, **options: Any) -> None:
    cluster = json.loads(Path(os.environ["RAY_STANDIN_NODES"]).read_text(encoding="utf-8"))
    if address not in {"auto", cluster.get("address")}:
        raise ConnectionError(f"Could not find any running Ray instance at {address}")
    _STATE["nodes"] = cluster["nodes"]
    _log("init", address=address, options=sorted(options))


def nodes() -> list[dict[str, Any]]:
    return [{k: v for k, v in node.items() if k not in {"env", "hang"}} for node in _STATE["nodes"]]


class ObjectRef:
    def __init__(
        self, node_id: str, *, result: Any = None, error: BaseException | None = None, done: bool = True
    ) -> None:
        self.node_id, self.result, self.error, self.done = node_id, result, error, done


class _Bound:
    def __init__(self, function: Any, options: dict[str, Any]) -> None:
        self.function, self.options = function, options

    def remote(self, *args: Any) -> ObjectRef:
        strategy = self.options.get("scheduling_strategy")
        if strategy is None or strategy.soft:
            raise AssertionError("the stand-in cluster wants every task pinned (soft=False)")
        node = next(n for n in _STATE["nodes"] if n["NodeID"] == strategy.node_id)
        _log("task", node=strategy.node_id, options=sorted(self.options))
        hang = node.get("hang")
        if hang is True or (isinstance(hang, list) and self.function.__name__ in hang):
            return ObjectRef(strategy.node_id, done=False)
        saved = dict(os.environ)
        os.environ.update(node.get("env", {}))
        try:
            return ObjectRef(strategy.node_id, result=self.function(*args))
        except Exception as error:  # noqa: BLE001 - a task's failure comes back through get()
            return ObjectRef(strategy.node_id, error=error)
        finally:
            os.environ.clear()
            os.environ.update(saved)


class _Remote:
    def __init__(self, function: Any) -> None:
        self.function = function

    def options(self, **options: Any) -> _Bound:
        return _Bound(self.function, options)

    def remote(self, *args: Any) -> ObjectRef:  # noqa: ARG002 - ray's signature; unpinned tasks are refused
        raise AssertionError(
            "the stand-in cluster wants every task pinned with options(scheduling_strategy=...)"
        )


def remote(function: Any) -> _Remote:
    return _Remote(function)


def wait(
    refs: list[ObjectRef], *, num_returns: int = 1, timeout: float | None = None
) -> tuple[list[ObjectRef], list[ObjectRef]]:
    _log("wait", count=len(refs), num_returns=num_returns, timeout=timeout)
    return [r for r in refs if r.done], [r for r in refs if not r.done]


def get(ref: ObjectRef) -> Any:
    if ref.error is not None:
        raise RuntimeError(f"task on {ref.node_id} failed: {ref.error}")
    return ref.result


def cancel(ref: ObjectRef, *, force: bool = False) -> None:
    _log("cancel", node=ref.node_id, force=force)


def shutdown() -> None:
    _log("shutdown")
