"""The planner's vocabulary: the edits to pyproject.toml (actions), the environment
settings for uv, decisions with reasons, what the user asked for (`Request`), the
`Plan`, and the `Builder` every sub-planner writes into.

Values only, no logic: `plan` and its sub-planners (build, frameworks, guards,
bounds) make these; `patch` applies the actions (one row per action type there).
A new action is one class here, a member of `Action`, and one row in
`patch.STEPS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from uvx_llm.lockfile import Expectation

if TYPE_CHECKING:
    from collections.abc import Mapping

    from packaging.version import Version

    from uvx_llm.config import Setting


# --- edits to pyproject.toml ----------------------------------------------------------------


@dataclass(frozen=True)
class SetIndex:
    name: str
    url: str
    format: str | None = None  # "flat" for a mirror that serves a plain file listing


@dataclass(frozen=True)
class RemoveIndex:
    name: str


@dataclass(frozen=True)
class SetSource:
    package: str
    value: Any  # None: remove llm-sync's own entry


@dataclass(frozen=True)
class AddRequirement:
    kind: str
    list_name: str | None
    requirement: str
    member: str | None = None  # a uv workspace member's list (its folder); None: the root's


@dataclass(frozen=True)
class SetConfig:
    key: str
    value: str


@dataclass(frozen=True)
class SetRequirement:
    """Replace one requirement string in a dependency list (same position, same comments)."""

    kind: str
    list_name: str | None
    old: str
    new: str
    member: str | None = None  # a uv workspace member's list (its folder); None: the root's


@dataclass(frozen=True)
class AddBuildDependencies:
    """Append these entries to [tool.uv.extra-build-dependencies] <package>."""

    package: str
    entries: tuple[Any, ...]


@dataclass(frozen=True)
class ReplaceBuildDependency:
    """Replace one entry of [tool.uv.extra-build-dependencies] <package> (same position)."""

    package: str
    old: Any
    new: Any


@dataclass(frozen=True)
class SetBuildVariables:
    """Set these entries of [tool.uv.extra-build-variables] <package>; its other entries are kept."""

    package: str
    variables: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class SetPathSource:
    package: str
    folder: str


@dataclass(frozen=True)
class AddOverride:
    requirement: str
    comment: str


@dataclass(frozen=True)
class SetDependencyMetadata:
    name: str
    version: str
    requires_dist: tuple[str, ...]
    comment: str


@dataclass(frozen=True)
class AddConstraint:
    requirement: str
    comment: str


@dataclass(frozen=True)
class SetBound:
    """Write ``requirement`` to [tool.uv] constraint-dependencies, replacing ``old`` (llm-sync's own)."""

    requirement: str
    comment: str
    old: str | None = None


@dataclass(frozen=True)
class SetOverride:
    """Write ``requirement`` to [tool.uv] override-dependencies, replacing ``old`` (llm-sync's own);
    ``requirement`` None only takes ``old`` away."""

    requirement: str | None
    comment: str
    old: str | None = None


Action = (
    SetIndex
    | RemoveIndex
    | SetSource
    | AddRequirement
    | SetConfig
    | AddBuildDependencies
    | SetRequirement
    | SetBuildVariables
    | ReplaceBuildDependency
    | SetPathSource
    | AddOverride
    | SetDependencyMetadata
    | AddConstraint
    | SetBound
    | SetOverride
)


# --- the environment of the uv process, decisions, the request, the plan ----------------------


@dataclass(frozen=True)
class EnvSetting:
    name: str
    value: str
    reason: str
    from_user: bool = False  # already set in the environment: kept, not overridden
    secret: bool = False  # a credential: passed to uv, never shown

    @property
    def shown(self) -> str:
        from uvx_llm.redact import redact  # noqa: PLC0415 - tiny, and only for display

        return "***" if self.secret else redact(self.value)


@dataclass(frozen=True)
class Decision:
    topic: str
    choice: str
    reason: str


def _auto() -> Setting:
    from uvx_llm.config import Setting  # noqa: PLC0415 - config imports this module for EnvSetting

    return Setting("auto", "default")


def _stable() -> Setting:
    from uvx_llm.config import Setting  # noqa: PLC0415 - config imports this module for EnvSetting

    return Setting("stable", "default")


@dataclass(frozen=True)
class Request:
    """What the user asked for: backend and index base, each with its origin."""

    backend: Setting = field(default_factory=_auto)
    channel: Setting = field(default_factory=_stable)  # stable, test or nightly
    index_base: Setting | None = None
    index_format: str = "simple"
    extra_env: tuple[EnvSetting, ...] = ()  # mirrors for uv (default index, Python downloads)
    relief: str = "override"  # for a framework pin the project contradicts: override or metadata
    force: bool = False
    all_archs: bool = False  # build for the packages' default architectures, not only the local GPUs
    environment: Mapping[str, str] = field(default_factory=dict)  # the user's: values set there win
    prefer: str = "prebuilt"  # where torch is open: the newest torch with release wheels, or the newest
    prebuilt_url: str = "https://github.com"  # the release-wheel download prefix (credentials split off)
    vllm_build: str = "precompiled"  # a vLLM checkout: its commit's published binaries, or a full build
    compiler_launcher: str | None = None  # sccache or ccache on PATH: a full vLLM build's compiler launcher
    # The Linux torch uv.lock holds (read only for a flat PyTorch mirror, whose builds need it pinned).
    locked_torch: str | None = None
    wheelhouse: str = ""  # a folder the team shares built CUDA-extension wheels through ("": none)
    # Releases newer than the catalog whose METADATA could not be read: (requirement, why).
    unread: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Plan:
    backend: str | None
    decisions: tuple[Decision, ...]
    warnings: tuple[str, ...]
    actions: tuple[Action, ...]
    uv_min_version: Version | None
    env: tuple[EnvSetting, ...] = ()
    build_blockers: tuple[str, ...] = ()  # why a source build would fail before it starts
    built_packages: tuple[str, ...] = ()  # CUDA-extension packages built from source
    expectation: Expectation = field(default_factory=Expectation)  # what uv.lock must show
    gib_per_build_thread: float | None = None  # memory per nvcc thread of the heaviest build, if any

    def uv_environment(self) -> dict[str, str]:
        """What llm-sync adds to uv's environment (values the user set are inherited as they are)."""
        return {s.name: s.value for s in self.env if not s.from_user}


@dataclass
class Builder:
    decisions: list[Decision] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    env: list[EnvSetting] = field(default_factory=list)

    def decide(self, topic: str, choice: str, reason: str) -> None:
        self.decisions.append(Decision(topic, choice, reason))
