"""A client over a real ``EventBus`` + ``StateModel`` with fixed demo data.

Used by the TUI tests, the snapshot tests and ``screenshots/make_screenshots.py``: the
console is driven by real event objects through the real state model, no mocks.
"""

from __future__ import annotations

from typing import Any

from core.events import (
    DriftDetected,
    EventBus,
    HealthChanged,
    RevisionDetected,
    Subscription,
    SyncFinished,
    SyncStatusChanged,
)
from core.model import Health, ObjRef, Revision, SyncStatus
from core.state import StateModel

T0 = 1_790_000_000.0  # a fixed "now" so relative times and clocks are stable
SHA = {"config": "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432", "infra": "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d"}


class SampleClient:
    """``snapshot()`` and ``subscribe()`` like ``LocalClient``; ``publish()`` feeds events."""

    def __init__(self) -> None:
        self.bus = EventBus()
        self.model = StateModel()
        self.model.attach(self.bus)

    def snapshot(self) -> dict[str, Any]:
        return self.model.snapshot()

    def subscribe(self) -> Subscription:
        return self.bus.subscribe()

    def publish(self, *events: Any) -> None:
        for ev in events:
            self.bus.publish(ev)


def payments_drift(ts: float = T0 - 20) -> DriftDetected:
    return DriftDetected(
        app="payments",
        ref=ObjRef("apps", "Deployment", "payments", "payments-api"),
        fields=(".spec.template.spec.containers[name=api].image",),
        managers=("kubectl-edit",),
        ts=ts,
    )


def sample_client() -> SampleClient:
    """Five apps in the states the main screen must show apart."""
    c = SampleClient()
    m = c.model
    for name, source in (("web", "config"), ("api", "config"), ("payments", "config"), ("infra", "infra")):
        m.add_app(name, source=source)
    m.add_app("billing", source="config", suspended=True)
    c.publish(
        RevisionDetected(source="config", revision=Revision(SHA["config"], message="fix login"), ts=T0 - 900),
        RevisionDetected(source="infra", revision=Revision(SHA["infra"], message="bump"), ts=T0 - 900),
    )
    for name, src in (("web", "config"), ("payments", "config"), ("infra", "infra"), ("billing", "config")):
        c.publish(
            SyncFinished(app=name, revision_sha=SHA[src], ok=True, duration=2.0, ts=T0 - 120),
            SyncStatusChanged(app=name, status=SyncStatus.SYNCED, ts=T0 - 120),
            HealthChanged(app=name, health=Health.HEALTHY, ts=T0 - 110),
        )
    c.publish(
        SyncStatusChanged(app="api", status=SyncStatus.OUT_OF_SYNC, ts=T0 - 60),
        HealthChanged(app="api", health=Health.PROGRESSING, reason="rolling out", ts=T0 - 50),
    )
    c.publish(payments_drift(T0 - 30))
    return c
