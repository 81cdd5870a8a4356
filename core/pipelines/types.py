"""Value types of pipelines: their declaration and the state of their runs.

Modelled on CodePipeline: a pipeline has stages that run in order; a stage's
actions run in groups by ``run_order`` (one group in parallel, groups in
sequence). Action kinds: ``run`` (a command), ``approval`` (a gate),
``promote`` (edit a YAML file in a GitOps source and commit: the CI→CD
hand-off) and ``sync`` (sync an app and wait until it is healthy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from core.model import Location


class Mode(StrEnum):
    SUPERSEDED = "superseded"  # a newer run replaces one waiting to enter a stage
    QUEUED = "queued"  # runs go one after another, in order
    PARALLEL = "parallel"  # runs are independent


class Status(StrEnum):
    """Status of a run, a stage or an action (CodePipeline's words)."""

    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    WAITING = "Waiting"  # an approval waiting for a decision
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    ABANDONED = "Abandoned"
    SUPERSEDED = "Superseded"
    CANCELLED = "Cancelled"  # a stage/action that never ran because the run ended first
    INTERRUPTED = "Interrupted"  # in flight when driftdeck was killed; retryable

    @property
    def done(self) -> bool:
        return self not in (Status.PENDING, Status.IN_PROGRESS, Status.WAITING, Status.STOPPING)


@dataclass(frozen=True)
class Trigger:
    """What starts a run on a new commit. Empty lists mean 'any'."""

    branches: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()  # include globs (``src/**``)
    exclude: tuple[str, ...] = ()  # exclude globs
    manual_only: bool = False


@dataclass(frozen=True)
class RunAction:
    command: tuple[str, ...] | str  # argv, or a string run by /bin/sh -c
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ApprovalAction:
    timeout: float = 86400.0
    message: str = ""


@dataclass(frozen=True)
class PromoteAction:
    source: str  # a source of the config (a GitOps repository)
    file: str  # path in that repository
    set: tuple[tuple[str, str], ...]  # (path like spec.template.spec.containers[name=web].image, value template)
    message: str = ""  # commit message template; the run id is always linked


@dataclass(frozen=True)
class SyncAction:
    app: str
    wait: str = "healthy"  # healthy | none
    timeout: float = 300.0


@dataclass(frozen=True)
class ActionSpec:
    name: str
    kind: str  # run | approval | promote | sync
    run_order: int = 1
    timeout: float = 3600.0
    run: RunAction | None = None
    approval: ApprovalAction | None = None
    promote: PromoteAction | None = None
    sync: SyncAction | None = None
    location: Location | None = None


@dataclass(frozen=True)
class StageSpec:
    name: str
    actions: tuple[ActionSpec, ...]
    on_failure: str = "fail"  # fail | rollback
    location: Location | None = None

    def groups(self) -> list[list[ActionSpec]]:
        """Actions grouped by run_order, in order."""
        orders = sorted({a.run_order for a in self.actions})
        return [[a for a in self.actions if a.run_order == o] for o in orders]


@dataclass(frozen=True)
class PipelineSpec:
    name: str
    source: str  # the source whose commits trigger it and whose revision it builds
    stages: tuple[StageSpec, ...]
    trigger: Trigger = field(default_factory=Trigger)
    mode: Mode = Mode.SUPERSEDED
    variables: tuple[tuple[str, str], ...] = ()  # defaults, overridden by --var K=V
    from_repo: bool = False  # declared in .driftdeck/pipeline.yaml of the source
    location: Location | None = None

    def stage(self, name: str) -> StageSpec | None:
        return next((s for s in self.stages if s.name == name), None)
