"""The stand-in's NodeAffinitySchedulingStrategy: the node and whether the pin may be ignored."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NodeAffinitySchedulingStrategy:
    node_id: str
    soft: bool
