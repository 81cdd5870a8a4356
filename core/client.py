"""The client API: what the TUI, the CLI verbs and (later) the daemon protocol use.

``Client`` is the interface: a state snapshot, an event subscription and the
operator commands. ``LocalClient`` runs them on an in-process ``Engine``; a
remote implementation over the daemon's socket will offer the same methods, so
a caller cannot tell which it has.
"""

from __future__ import annotations

from typing import Any, Protocol

from core.engine import Engine, SyncOutcome
from core.events import Subscription
from core.model import Plan


class Client(Protocol):
    def snapshot(self) -> dict[str, Any]: ...

    def subscribe(self) -> Subscription: ...

    async def plan(self, app: str) -> Plan: ...

    async def sync(self, app: str, *, dry_run: bool = False, wait: bool = True) -> SyncOutcome: ...

    async def suspend(self, app: str) -> None: ...

    async def resume(self, app: str) -> None: ...

    async def revert(self, app: str, *, to: str | None = None) -> SyncOutcome: ...

    def history(self, app: str, limit: int = 50) -> list[dict[str, Any]]: ...


class LocalClient:
    """The engine in this process. ``who`` is recorded with every command."""

    def __init__(self, engine: Engine, who: str) -> None:
        self.engine = engine
        self.who = who

    def snapshot(self) -> dict[str, Any]:
        return self.engine.state.snapshot()

    def subscribe(self) -> Subscription:
        return self.engine.bus.subscribe()

    async def plan(self, app: str) -> Plan:
        return await self.engine.plan(app)

    async def sync(self, app: str, *, dry_run: bool = False, wait: bool = True) -> SyncOutcome:
        self._audit("sync", app, {"dryRun": dry_run})
        return await self.engine.sync(app, who=self.who, dry_run=dry_run, wait=wait)

    async def suspend(self, app: str) -> None:
        self._audit("suspend", app, {})
        await self.engine.set_suspended(app, True, self.who)

    async def resume(self, app: str) -> None:
        self._audit("resume", app, {})
        await self.engine.set_suspended(app, False, self.who)

    async def revert(self, app: str, *, to: str | None = None) -> SyncOutcome:
        self._audit("revert", app, {"to": to} if to else {"last": True})
        return await self.engine.revert(app, to=to, last=to is None, who=self.who)

    def history(self, app: str, limit: int = 50) -> list[dict[str, Any]]:
        self.engine.app(app)  # unknown app -> EngineError
        return self.engine.history.app_history(app, limit=limit)

    def _audit(self, action: str, target: str, args: dict[str, Any]) -> None:
        self.engine.app(target)
        self.engine.history.add_audit(self.who, action, target=target, args=args)
