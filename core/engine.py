"""The reconciliation engine: Git → render → plan → sync, drift from watch
events, health, self-heal, revert.

One ``Engine`` runs every app of a configuration on one asyncio loop. Blocking
work (git, HTTP to the cluster) runs in threads through ``asyncio.to_thread``;
watch threads hand events back to the loop with ``call_soon_threadsafe``. Each
app has a lock, so plans and syncs of one app never interleave.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core import paths
from core.cluster import Cluster, ClusterError
from core.diff import field_changes, mask_pair, strip_for_diff
from core.drift import Baseline, Drift, check, make_baseline, node_for
from core.events import (
    AppError,
    AppSuspended,
    DriftDetected,
    DriftResolved,
    Event,
    EventBus,
    HealthChanged,
    ObjectHealthChanged,
    PlanReady,
    RevertCommitted,
    RevisionDetected,
    SyncFinished,
    SyncStarted,
    SyncStatusChanged,
)
from core.health import assess
from core.history import History
from core.inventory import Inventory
from core.kube.structured import project
from core.model import Action, AppSpec, Config, Health, ObjRef, Plan, PlanItem, Problem, Revision, SyncStatus
from core.render import Manifest, render
from core.source import GitSource, SourceError
from core.state import StateModel

log = logging.getLogger(__name__)

MANAGER = "driftdeck"
APP_LABEL = "driftdeck.io/app"
MANAGED_BY = "app.kubernetes.io/managed-by"
PRUNE_ANNOTATION = "driftdeck.io/prune"  # "disabled" opts an object out of pruning
HEAL_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)
FIRST_KINDS = ("Namespace", "CustomResourceDefinition")


@dataclass
class AppRuntime:
    spec: AppSpec
    revision: Revision | None = None
    manifests: dict[ObjRef, Manifest] = field(default_factory=dict)
    baselines: dict[ObjRef, Baseline] = field(default_factory=dict)
    drifted: dict[ObjRef, Drift] = field(default_factory=dict)
    obj_health: dict[ObjRef, tuple[Health, str]] = field(default_factory=dict)
    # The same, bucketed by health, so an app's worst health is found in O(1) per event.
    by_health: dict[Health, dict[ObjRef, str]] = field(default_factory=lambda: {h: {} for h in Health})

    def set_object_health(self, ref: ObjRef, value: tuple[Health, str] | None) -> None:
        before = self.obj_health.pop(ref, None)
        if before is not None:
            self.by_health[before[0]].pop(ref, None)
        if value is not None:
            self.obj_health[ref] = value
            self.by_health[value[0]][ref] = value[1]

    def worst(self) -> tuple[ObjRef, Health, str] | None:
        for health in sorted(Health, key=lambda h: h.severity, reverse=True):
            bucket = self.by_health[health]
            if bucket:
                ref = next(iter(bucket))
                return ref, health, bucket[ref]
        return None
    health: Health = Health.UNKNOWN
    health_reason: str = ""
    sync_status: SyncStatus = SyncStatus.UNKNOWN
    pending: int = 0  # objects the last plan would create/configure/prune
    problems: list[Problem] = field(default_factory=list)
    suspended: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    heal_attempts: dict[ObjRef, int] = field(default_factory=dict)
    heal_tasks: dict[ObjRef, asyncio.Task[None]] = field(default_factory=dict)
    syncing: bool = False
    inflight: dict[ObjRef, str] = field(default_factory=dict)  # ref -> "sync" | "self-heal" while we apply it


@dataclass
class SyncOutcome:
    app: str
    ok: bool
    message: str
    revision: Revision | None
    plan: Plan | None = None
    applied: int = 0
    pruned: int = 0
    health: Health = Health.UNKNOWN
    duration: float = 0.0


class EngineError(Exception):
    """A command could not run (unknown app, source failure, ...)."""


def _manifest_hash(obj: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def _baseline(m: Manifest, answer: dict[str, Any]) -> Baseline:
    """F and E for a manifest from the server's apply or dry-run answer."""
    b = make_baseline(m.obj, answer, node_for(m.obj), MANAGER)
    b.manifest_hash = _manifest_hash(m.obj)
    return b


def _comparable(obj: dict[str, Any], desired_meta: dict[str, Any]) -> dict[str, Any]:
    """What a plan compares (Flux): everything but status and server metadata;
    of labels/annotations only the keys the manifest sets."""
    out = {k: v for k, v in obj.items() if k not in ("status", "metadata")}
    meta = obj.get("metadata") or {}
    for key in ("labels", "annotations"):
        wanted = desired_meta.get(key) or {}
        out[key] = {k: (meta.get(key) or {}).get(k) for k in wanted}
    return out


class Engine:
    """Runs the reconciliation loops of one configuration."""

    def __init__(
        self,
        config: Config,
        *,
        history: History | None = None,
        inventory: Inventory | None = None,
        bus: EventBus | None = None,
        cache_dir: Path | None = None,
        who: str = "driftdeck",
        clusters: dict[str, Cluster] | None = None,
    ) -> None:
        self.config = config
        db = paths.history_db()
        self.history = history or History(db)
        self.inventory = inventory or Inventory(db)
        self.bus = bus or EventBus()
        self.state = StateModel.from_config(config)
        self.state.attach(self.bus)
        self.bus.on(self._record)
        self.who = who
        self.cache_dir = cache_dir or paths.cache_dir() / "sources"
        self.apps: dict[str, AppRuntime] = {
            name: AppRuntime(spec, suspended=spec.suspend or self.inventory.suspended(name))
            for name, spec in config.apps.items()
        }
        self.sources: dict[str, GitSource] = {}
        self.clusters: dict[str, Cluster] = dict(clusters or {})
        self._owner: dict[ObjRef, str] = {}  # ref -> app that manages it
        self._watching: set[tuple[str, str, str]] = set()
        self._tasks: list[asyncio.Task[Any]] = []
        self._interval_tasks: dict[str, asyncio.Task[Any]] = {}
        self._source_tasks: dict[str, asyncio.Task[Any]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running = False

    # ----- plumbing --------------------------------------------------------------------------------
    def _record(self, event: Event) -> None:
        try:
            self.history.record(event)
        except Exception:  # history must never stop reconciliation
            log.exception("history write failed for %s", event.type)

    def emit(self, event: Event) -> None:
        self.bus.publish(event)

    def app(self, name: str) -> AppRuntime:
        rt = self.apps.get(name)
        if rt is None:
            known = ", ".join(sorted(self.apps)) or "none"
            raise EngineError(f"unknown app {name!r} (apps: {known})")
        return rt

    def source(self, name: str) -> GitSource:
        src = self.sources.get(name)
        if src is None:
            spec = self.config.sources.get(name)
            if spec is None:
                raise EngineError(f"unknown source {name!r}")
            src = GitSource(spec, cache_dir=self.cache_dir / name)
            self.sources[name] = src
        return src

    def cluster(self, name: str) -> Cluster:
        cl = self.clusters.get(name)
        if cl is None:
            spec = self.config.clusters.get(name)
            if spec is None:
                raise EngineError(f"unknown cluster {name!r}")
            if spec.sandbox and not spec.kubeconfig:
                cl = Cluster(str(paths.sandbox_kubeconfig()), name=name)
            else:
                cl = Cluster.from_spec(spec)
            self.clusters[name] = cl
        return cl

    def _cluster_name(self, spec: AppSpec) -> str:
        if spec.cluster:
            return spec.cluster
        if len(self.config.clusters) == 1:
            return next(iter(self.config.clusters))
        raise EngineError(f"app {spec.name}: no cluster given and the config has {len(self.config.clusters)}")

    def _set_status(self, rt: AppRuntime) -> None:
        """Recompute sync status and health of an app; emit changes."""
        name = rt.spec.name
        was_ready = rt.sync_status == SyncStatus.SYNCED and rt.health == Health.HEALTHY
        if rt.revision is None or rt.problems:
            # A revision that does not render, validate or dry-run cannot be compared (Argo: ComparisonError).
            status = SyncStatus.UNKNOWN
        elif rt.drifted or rt.pending:
            status = SyncStatus.OUT_OF_SYNC
        else:
            status = SyncStatus.SYNCED
        if status != rt.sync_status:
            prev, rt.sync_status = rt.sync_status, status
            self.emit(SyncStatusChanged(name, status, prev, len(rt.drifted)))
        if rt.suspended and rt.obj_health:
            health, reason = Health.SUSPENDED, "suspended by operator"
        elif not rt.obj_health:
            health, reason = (Health.UNKNOWN, "not planned yet") if rt.revision is None else (Health.HEALTHY, "no objects")
        else:
            worst = rt.worst()
            assert worst is not None
            ref, health, reason = worst
            if health != Health.HEALTHY:
                reason = f"{ref}: {reason}"
            else:
                reason = f"{len(rt.obj_health)} objects healthy"
        if health != rt.health:
            prev_h, rt.health, rt.health_reason = rt.health, health, reason
            self.emit(HealthChanged(name, health, prev_h, reason))
        else:
            rt.health_reason = reason
        if not was_ready and rt.sync_status == SyncStatus.SYNCED and rt.health == Health.HEALTHY:
            self._kick_dependents(name)

    def _kick_dependents(self, name: str) -> None:
        """Reconcile the auto apps that wait for ``name`` (dependsOn) now that it is ready: their
        auto-sync was refused while it was not, and would otherwise only be retried an interval later."""
        if not self._running or self._loop is None:
            return
        self._tasks = [t for t in self._tasks if not t.done()]
        for other, rt in self.apps.items():
            if (name in rt.spec.depends_on and rt.spec.sync == "auto" and not rt.suspended
                    and rt.sync_status != SyncStatus.SYNCED):
                self._tasks.append(self._loop.create_task(self._reconcile(other, reason=f"{name} ready")))

    def _set_object_health(self, rt: AppRuntime, ref: ObjRef, obj: dict[str, Any] | None) -> None:
        health, reason = assess(obj)
        if rt.obj_health.get(ref) != (health, reason):
            before = rt.obj_health.get(ref)
            rt.set_object_health(ref, (health, reason))
            if before is None or before[0] != health:
                self.emit(ObjectHealthChanged(rt.spec.name, ref, health, reason))

    # ----- render and plan ----------------------------------------------------------------------------
    async def _render(self, rt: AppRuntime, revision: Revision | None = None) -> tuple[Revision, dict[ObjRef, Manifest], list[Problem]]:
        spec = rt.spec
        src = self.source(spec.source)
        try:
            rev = revision if revision is not None else await asyncio.to_thread(src.head)
            # The whole tree: kustomize overlays refer to bases outside the app's path.
            files, file_problems = await asyncio.to_thread(src.files, rev.sha)
        except SourceError as exc:
            raise EngineError(f"app {spec.name}: source {spec.source}: {exc}") from exc
        cluster = self.cluster(self._cluster_name(spec))
        try:
            manifests, problems = await asyncio.to_thread(
                render, files, spec.path, default_namespace=spec.namespace or cluster.default_namespace,
                namespaced=cluster.namespaced, validate=True,
            )
        except ClusterError as exc:
            # render() asks the cluster (discovery) for each kind's scope: an unreachable cluster is this
            # app's error (rt.problems + AppError, like a source failure), not an unexpected crash that
            # escaped plan()/sync() with no problem recorded.
            raise EngineError(f"app {spec.name}: {exc}") from exc
        prefix = spec.path.strip("/").removeprefix("./")
        mine = [p for p in file_problems
                if not prefix or prefix == "." or p.location is None or p.location.file.startswith(prefix)]
        problems = [*mine, *problems]
        by_ref: dict[ObjRef, Manifest] = {}
        for m in manifests:
            owner = self._owner.get(m.ref)
            if owner and owner != spec.name:
                problems.append(Problem(f"also managed by app {owner!r}", m.location, obj=str(m.ref), app=spec.name))
                continue
            obj = copy.deepcopy(m.obj)
            labels = obj.setdefault("metadata", {}).setdefault("labels", {})
            labels[APP_LABEL] = spec.name
            labels[MANAGED_BY] = "driftdeck"
            m.obj = obj
            by_ref[m.ref] = m
        problems = [p if p.app else Problem(p.message, p.location, p.obj, p.field, spec.name) for p in problems]
        return rev, by_ref, problems

    def _dry_run_item(
        self, cluster: Cluster, m: Manifest, live: dict[str, Any] | None, new_namespaces: set[str]
    ) -> PlanItem:
        try:
            answer = cluster.apply(m.obj, manager=MANAGER, force=True, dry_run=True)
        except ClusterError as exc:
            if exc.code == 404 and live is None and m.ref.namespace in new_namespaces:
                # Its namespace is created by this same plan: the server cannot dry-run it yet.
                return PlanItem(m.ref, Action.CREATE, desired=None,
                                message=f"namespace {m.ref.namespace} is created first")
            return PlanItem(m.ref, Action.ERROR, message=str(exc))
        if live is None:
            return PlanItem(m.ref, Action.CREATE, desired=answer)
        same = _comparable(answer, m.obj.get("metadata") or {}) == _comparable(live, m.obj.get("metadata") or {})
        return PlanItem(m.ref, Action.UNCHANGED if same else Action.CONFIGURE, desired=answer, live=live)

    def _live(self, cluster: Cluster, m: Manifest) -> dict[str, Any] | None:
        cached = cluster.watches.cache.get(m.ref) if self._is_watched(cluster, m.obj) else None
        if cached is not None:
            return cached
        meta = m.obj.get("metadata") or {}
        return cluster.get(m.obj["apiVersion"], m.obj["kind"], meta.get("namespace", ""), meta["name"])

    def _read_live(self, cluster: Cluster, manifests: list[Manifest]) -> list[tuple[ObjRef, dict[str, Any] | None]]:
        return [(m.ref, self._live(cluster, m)) for m in manifests]

    def _is_watched(self, cluster: Cluster, obj: dict[str, Any]) -> bool:
        return (cluster.name, obj.get("apiVersion", ""), obj.get("kind", "")) in self._watching

    async def plan(self, name: str, revision: Revision | None = None) -> Plan:
        """Dry-run the app's manifests at the source head (or ``revision``)."""
        rt = self.app(name)
        self._bind()
        async with rt.lock:
            return await self._plan_locked(rt, revision)

    async def _plan_locked(self, rt: AppRuntime, revision: Revision | None = None) -> Plan:
        spec = rt.spec
        try:
            rev, manifests, problems = await self._render(rt, revision)
        except EngineError as exc:
            rt.problems = [Problem(str(exc), app=spec.name)]
            self.emit(AppError(spec.name, str(exc)))
            self._set_status(rt)
            return Plan(spec.name, rt.revision, problems=rt.problems)
        if rt.revision is None or rt.revision.sha != rev.sha:
            rt.revision = rev
        cluster = self.cluster(self._cluster_name(spec))
        plan = Plan(spec.name, rev, problems=problems)

        def run() -> list[PlanItem]:
            items: list[PlanItem] = []
            new_namespaces: set[str] = set()
            ordered = sorted(manifests.values(), key=lambda m: m.ref.kind not in FIRST_KINDS)
            for m in ordered:
                base = rt.baselines.get(m.ref)
                live = self._live(cluster, m)
                if (
                    base is not None
                    and live is not None
                    and base.manifest_hash == _manifest_hash(m.obj)
                    and check(base, live, spec.ignore) is None
                ):
                    # We applied (or dry-ran) exactly this manifest and the live object still matches.
                    items.append(PlanItem(m.ref, Action.UNCHANGED, desired=None, live=live))
                    continue
                item = self._dry_run_item(cluster, m, live, new_namespaces)
                if item.ref.kind == "Namespace" and item.action == Action.CREATE:
                    new_namespaces.add(item.ref.name)
                items.append(item)
            return items

        try:
            plan.items = await asyncio.to_thread(run)
        except ClusterError as exc:
            rt.problems = [*problems, Problem(str(exc), app=spec.name)]
            self.emit(AppError(spec.name, str(exc)))
            self._set_status(rt)
            return plan
        plan.items.extend(await asyncio.to_thread(self._prune_candidates, rt, cluster, set(manifests)))
        rt.manifests = manifests
        rt.problems = problems + [
            Problem(i.message, obj=str(i.ref), app=spec.name) for i in plan.items if i.action == Action.ERROR
        ]
        for item in plan.items:
            m = manifests.get(item.ref)
            if m is None:
                continue
            if item.desired is not None:
                rt.baselines[item.ref] = _baseline(m, item.desired)
            self._owner[item.ref] = spec.name
            if item.action == Action.CREATE:
                rt.drifted.pop(item.ref, None)
                self._set_object_health(rt, item.ref, None)
            elif item.live is not None:
                self._set_object_health(rt, item.ref, item.live)
        for ref in list(rt.baselines):
            if ref not in manifests:
                rt.baselines.pop(ref, None)
                rt.set_object_health(ref, None)
                rt.drifted.pop(ref, None)
                if self._owner.get(ref) == spec.name:
                    self._owner.pop(ref, None)
        rt.pending = sum(1 for i in plan.items if i.action in (Action.CREATE, Action.CONFIGURE, Action.PRUNE))
        self.emit(PlanReady.of(plan))
        if rt.problems:
            shown = "; ".join(str(p) for p in rt.problems[:5])
            more = f" (+{len(rt.problems) - 5} more)" if len(rt.problems) > 5 else ""
            self.emit(AppError(spec.name, f"revision {rev.short} cannot be applied: {shown}{more}"))
        self._watch_kinds(cluster, manifests.values())
        self._set_status(rt)
        return plan

    def _prune_candidates(self, rt: AppRuntime, cluster: Cluster, current: set[ObjRef]) -> list[PlanItem]:
        """Objects this app applied before and no longer renders, still carrying our label."""
        out: list[PlanItem] = []
        for ref, api_version in self.inventory.get(rt.spec.name).items():
            if ref in current:
                continue
            try:
                live = cluster.get(api_version, ref.kind, ref.namespace, ref.name)
            except ClusterError as exc:
                out.append(PlanItem(ref, Action.ERROR, message=str(exc)))
                continue
            if live is None:
                continue
            meta = live.get("metadata") or {}
            if (meta.get("labels") or {}).get(APP_LABEL) != rt.spec.name:
                continue  # no longer ours: leave it alone
            if (meta.get("annotations") or {}).get(PRUNE_ANNOTATION) == "disabled":
                continue
            out.append(PlanItem(ref, Action.PRUNE, live=live, message="" if rt.spec.prune else "prune disabled"))
        return out

    # ----- sync ------------------------------------------------------------------------------------------
    async def sync(self, name: str, *, who: str = "", dry_run: bool = False, wait: bool = True,
                   revision: Revision | None = None) -> SyncOutcome:
        """Apply the app's manifests (server-side apply, force), prune, wait for health."""
        rt = self.app(name)
        self._bind()
        who = who or self.who
        blocked = self._blocked_by_dependencies(rt)
        if blocked:
            return SyncOutcome(name, False, blocked, rt.revision)
        async with rt.lock:
            start = time.monotonic()
            plan = await self._plan_locked(rt, revision)
            errors = [i for i in plan.items if i.action == Action.ERROR]
            if plan.revision is None or plan.problems or errors:
                # Never apply (or prune!) part of a revision that failed to render or validate.
                reasons = [str(p) for p in plan.problems] + [f"{i.ref}: {i.message}" for i in errors]
                message = "not synced: " + ("; ".join(reasons) or "no revision")
                if not dry_run:
                    self.emit(AppError(name, message))
                return SyncOutcome(name, False, message, plan.revision, plan)
            if dry_run:
                return SyncOutcome(name, not plan.problems, "dry run", plan.revision, plan)
            rt.syncing = True
            self.emit(SyncStarted(name, plan.revision.sha, who))
            try:
                applied, pruned, apply_errors = await self._apply_plan(rt, plan)
            finally:
                rt.syncing = False
            rt.pending = sum(1 for i in plan.items if i.action == Action.PRUNE and not rt.spec.prune)
            ok = not apply_errors
            message = "; ".join(apply_errors) or f"applied {applied}, pruned {pruned}"
            self._set_status(rt)
        health = rt.health
        if ok and wait:
            health = await self._wait_health(rt, rt.spec.timeout)
            if health == Health.DEGRADED:
                ok, message = False, f"{message}; degraded: {rt.health_reason}"
            elif health not in (Health.HEALTHY, Health.SUSPENDED):
                ok, message = False, f"{message}; not healthy after {rt.spec.timeout:g}s: {rt.health_reason}"
        duration = time.monotonic() - start
        self.emit(SyncFinished(name, plan.revision.sha, ok, message, duration, applied, pruned, who))
        return SyncOutcome(name, ok, message, plan.revision, plan, applied, pruned, health, duration)

    async def _apply_plan(self, rt: AppRuntime, plan: Plan) -> tuple[int, int, list[str]]:
        cluster = self.cluster(self._cluster_name(rt.spec))
        todo = [i for i in plan.items if i.action in (Action.CREATE, Action.CONFIGURE)]
        todo.sort(key=lambda i: (i.ref.kind not in FIRST_KINDS, FIRST_KINDS.index(i.ref.kind) if i.ref.kind in FIRST_KINDS else 0))
        errors: list[str] = []
        applied = 0
        rediscover = False

        def apply_all() -> None:
            nonlocal applied, rediscover
            for item in todo:
                m = rt.manifests[item.ref]
                if rediscover and item.ref.kind not in FIRST_KINDS:
                    cluster.discover()
                    rediscover = False
                try:
                    answer = cluster.apply(m.obj, manager=MANAGER, force=True)
                except ClusterError as exc:
                    errors.append(f"{item.ref}: {exc}")
                    continue
                applied += 1
                if item.ref.kind == "CustomResourceDefinition":
                    rediscover = True
                self._loop_call(self._after_apply, rt, item.ref, _baseline(m, answer), answer, "sync")

        for item in todo:
            rt.inflight[item.ref] = "sync"
        try:
            await asyncio.to_thread(apply_all)
            await asyncio.sleep(0)  # let the _after_apply callbacks run while still attributed
        finally:
            for item in todo:
                rt.inflight.pop(item.ref, None)
        pruned = 0
        if rt.spec.prune:
            pruned = await asyncio.to_thread(self._prune, rt, cluster, plan, errors)
        inventory = {ref: m.obj["apiVersion"] for ref, m in rt.manifests.items()}
        if not rt.spec.prune:
            inventory.update({i.ref: self.inventory.get(rt.spec.name).get(i.ref, "v1")
                              for i in plan.items if i.action == Action.PRUNE})
        await asyncio.to_thread(self.inventory.replace, rt.spec.name, inventory)
        await asyncio.sleep(0)  # let _after_apply callbacks run
        return applied, pruned, errors

    def _prune(self, rt: AppRuntime, cluster: Cluster, plan: Plan, errors: list[str]) -> int:
        victims = [i for i in plan.items if i.action == Action.PRUNE]
        # Namespaced objects first, then cluster-scoped, then Namespaces and CRDs (Flux's order).
        victims.sort(key=lambda i: (i.ref.kind in FIRST_KINDS, not i.ref.namespace))
        count = 0
        for item in victims:
            api_version = (item.live or {}).get("apiVersion", "v1")
            try:
                cluster.delete(api_version, item.ref.kind, item.ref.namespace, item.ref.name)
                count += 1
            except ClusterError as exc:
                errors.append(f"prune {item.ref}: {exc}")
        return count

    def _loop_call(self, fn: Callable[..., None], *args: Any) -> None:
        assert self._loop is not None, "engine commands bind the loop first"
        self._loop.call_soon_threadsafe(fn, *args)

    def _bind(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self.bus.bind(self._loop)

    def _after_apply(self, rt: AppRuntime, ref: ObjRef, b: Baseline, answer: dict[str, Any], how: str) -> None:
        rt.baselines[ref] = b
        self._owner[ref] = rt.spec.name
        self._set_object_health(rt, ref, answer)
        drift = check(b, answer, rt.spec.ignore)
        if drift is None and ref in rt.drifted:
            rt.drifted.pop(ref)
            rt.heal_attempts.pop(ref, None)
            self.emit(DriftResolved(rt.spec.name, ref, how))
        self._set_status(rt)

    async def _wait_health(self, rt: AppRuntime, timeout: float) -> Health:
        deadline = time.monotonic() + timeout
        # Objects that are not watched get polled; watched ones update from events.
        cluster = self.cluster(self._cluster_name(rt.spec))
        while True:
            unwatched = [m for m in rt.manifests.values() if not self._is_watched(cluster, m.obj)]
            if unwatched:
                lives = await asyncio.to_thread(self._read_live, cluster, unwatched)
                for ref, live in lives:
                    self._set_object_health(rt, ref, live)
                self._set_status(rt)
            if rt.health in (Health.HEALTHY, Health.DEGRADED, Health.SUSPENDED):
                return rt.health
            if time.monotonic() >= deadline:
                return rt.health
            await asyncio.sleep(0.1)

    def _blocked_by_dependencies(self, rt: AppRuntime) -> str:
        for dep in rt.spec.depends_on:
            other = self.apps.get(dep)
            if other is None:
                return f"dependency {dep!r} is not a known app"
            if other.health != Health.HEALTHY or other.sync_status != SyncStatus.SYNCED:
                return f"dependency {dep!r} is not ready ({other.sync_status}, {other.health})"
        return ""

    # ----- watch-driven drift and health ------------------------------------------------------------------
    def _watch_kinds(self, cluster: Cluster, manifests: Any) -> None:
        if not self._running:
            return
        for m in manifests:
            key = (cluster.name, m.obj["apiVersion"], m.obj["kind"])
            if key in self._watching:
                continue
            self._watching.add(key)
            loop = cluster.watches.ensure(m.obj["apiVersion"], m.obj["kind"])
            loop.listen(self._watch_listener(cluster))

    def _watch_listener(self, cluster: Cluster) -> Callable[[str, dict[str, Any]], None]:
        def listener(event_type: str, obj: dict[str, Any]) -> None:
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._on_object, event_type, obj)

        return listener

    def _on_object(self, event_type: str, obj: dict[str, Any]) -> None:
        ref = ObjRef.of(obj)
        name = self._owner.get(ref)
        if name is None:
            return
        rt = self.apps[name]
        base = rt.baselines.get(ref)
        if base is None:
            return
        live = None if event_type == "DELETED" else obj
        if live is not None:
            try:
                if int(live["metadata"].get("resourceVersion", "0")) < int(base.resource_version or 0):
                    return  # older than what we applied: stale
            except ValueError:
                pass
        self._set_object_health(rt, ref, live)
        drift = check(base, live, rt.spec.ignore)
        if drift is not None:
            known = rt.drifted.get(ref)
            if known is None or known.fields != drift.fields or known.missing != drift.missing:
                rt.drifted[ref] = drift
                self.emit(DriftDetected(name, ref, drift.fields, drift.managers, drift.missing))
            if rt.spec.self_heal and not rt.suspended and not rt.syncing:
                self._schedule_heal(rt, ref)
        elif ref in rt.drifted:
            rt.drifted.pop(ref)
            rt.heal_attempts.pop(ref, None)
            # Our own apply's event may arrive before the apply call returns.
            self.emit(DriftResolved(name, ref, rt.inflight.get(ref, "reverted-externally")))
        self._set_status(rt)

    def _schedule_heal(self, rt: AppRuntime, ref: ObjRef) -> None:
        task = rt.heal_tasks.get(ref)
        if task is not None and not task.done():
            return
        attempt = rt.heal_attempts.get(ref, 0)
        delay = 0.0 if attempt == 0 else HEAL_BACKOFF[min(attempt - 1, len(HEAL_BACKOFF) - 1)]
        rt.heal_attempts[ref] = attempt + 1
        rt.heal_tasks[ref] = asyncio.ensure_future(self._heal(rt, ref, delay))

    async def _heal(self, rt: AppRuntime, ref: ObjRef, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        if ref not in rt.drifted or rt.suspended:
            return
        m = rt.manifests.get(ref)
        if m is None:
            return
        cluster = self.cluster(self._cluster_name(rt.spec))
        rt.inflight[ref] = "self-heal"
        try:
            answer = await asyncio.to_thread(cluster.apply, m.obj, manager=MANAGER, force=True)
        except ClusterError as exc:
            rt.inflight.pop(ref, None)
            self.emit(AppError(rt.spec.name, f"self-heal of {ref} failed: {exc}"))
            self._schedule_heal(rt, ref)
            return
        self._after_apply(rt, ref, _baseline(m, answer), answer, "self-heal")
        rt.inflight.pop(ref, None)

    # ----- read models for the console -------------------------------------------------------------------------
    def objects(self, name: str) -> list[dict[str, Any]]:
        """One JSON-safe row per object of the app (rendered, applied or drifted), by kind/namespace/name:
        ``id``, ``kind``, ``namespace``, ``name``, ``sync`` (Synced | OutOfSync | Missing | Unknown),
        ``health``, ``reason``, ``fields`` and ``managers`` of a drift."""
        rt = self.app(name)
        refs = set(rt.manifests) | set(rt.baselines) | set(rt.drifted)
        rows: list[dict[str, Any]] = []
        for ref in refs:
            drift = rt.drifted.get(ref)
            health, reason = rt.obj_health.get(ref, (Health.UNKNOWN, ""))
            if drift is not None:
                sync = "Missing" if drift.missing else "OutOfSync"
            elif ref in rt.baselines:
                sync = "Synced"
            else:
                sync = "OutOfSync" if rt.pending else "Unknown"
            rows.append({
                "id": ref.inventory_id, "group": ref.group, "kind": ref.kind, "namespace": ref.namespace,
                "name": ref.name, "sync": sync, "health": health.value, "reason": reason,
                "fields": list(drift.fields) if drift else [], "managers": list(drift.managers) if drift else [],
            })
        rows.sort(key=lambda r: (r["kind"] not in FIRST_KINDS, r["kind"], r["namespace"], r["name"]))
        return rows

    def object_diff(self, name: str, ref_id: str) -> dict[str, Any]:
        """Desired vs live for one object, Secret values masked, from memory (no API call).

        For an applied object ``desired`` is what we applied (the server's answer, limited to
        the fields we own) and ``live`` is the watched object limited to the same fields, so
        server defaults and other managers' fields are no difference. Otherwise ``desired``
        is the rendered manifest and ``live`` the cached object, if any."""
        rt = self.app(name)
        ref = ObjRef.from_inventory_id(ref_id)
        base = rt.baselines.get(ref)
        cluster = self.cluster(self._cluster_name(rt.spec))
        live_obj = cluster.watches.cache.get(ref)
        desired: dict[str, Any] | None
        live: dict[str, Any] | None
        if base is not None:
            desired = base.expected
            live = project(live_obj, base.fields, base.node) if live_obj is not None else None
        else:
            m = rt.manifests.get(ref)
            desired = m.obj if m is not None else None
            live = live_obj
        desired, live = mask_pair(
            strip_for_diff(desired) if desired is not None else None,
            strip_for_diff(live) if live is not None else None,
        )
        drift = rt.drifted.get(ref)
        event = self.state.app(name)
        detected = event.drifted.get(ref) if event is not None else None
        return {
            "id": ref_id,
            "object": str(ref),
            "desired": desired,
            "live": live,
            "changes": [str(c) for c in field_changes(desired, live)],
            "drift": None if drift is None else {
                "missing": drift.missing, "fields": list(drift.fields), "managers": list(drift.managers),
                "ts": detected.ts if detected is not None else 0.0,
            },
        }

    # ----- operator commands ----------------------------------------------------------------------------------
    async def set_suspended(self, name: str, value: bool, who: str = "") -> None:
        rt = self.app(name)
        await asyncio.to_thread(self.inventory.set_suspended, name, value, who or self.who)
        rt.suspended = value
        self.emit(AppSuspended(name, value, who or self.who))
        self._set_status(rt)

    async def revert(self, name: str, *, to: str | None = None, last: bool = False, who: str = "") -> SyncOutcome:
        """A real ``git revert`` on the app's source, then a sync of the result."""
        rt = self.app(name)
        src = self.source(rt.spec.source)
        try:
            targets = await asyncio.to_thread(src.revert_targets, to, last=not to)
            new = await asyncio.to_thread(src.revert, to, last=not to, author=who or self.who)
        except SourceError as exc:
            raise EngineError(f"revert of {name} failed: {exc}") from exc
        self.emit(RevertCommitted(name, rt.spec.source, tuple(t.sha for t in targets), new.sha, who or self.who))
        self.emit(RevisionDetected(rt.spec.source, new))
        return await self.sync(name, who=who, revision=new)

    # ----- the loops ----------------------------------------------------------------------------------------------
    def activate(self) -> None:
        """Bind to the running loop and watch the kinds apps apply (no source/interval loops).

        One-shot commands use this so a sync can wait for health from watch events."""
        self._loop = asyncio.get_running_loop()
        self.bus.bind(self._loop)
        self._running = True

    async def start(self) -> None:
        """Initial plan (and auto-sync) of every app, then the source and interval loops."""
        self.activate()
        for name in self._ordered_apps():
            await self._reconcile(name, reason="start")
        for src_name in {a.spec.source for a in self.apps.values()}:
            # Watch from the revision the initial reconcile used, not from whatever the head is when the
            # watcher first reads it: a commit landing in between would otherwise never be reconciled
            # (until the interval loop). Apps that saw different heads: "" makes the watch yield at once.
            seen = {rt.revision.sha for rt in self.apps.values() if rt.spec.source == src_name and rt.revision}
            since = seen.pop() if len(seen) == 1 else ("" if seen else None)
            self._start_source_loop(src_name, since)
        for name in self.apps:
            self._start_interval_loop(name)

    def _start_source_loop(self, src_name: str, since: str | None) -> None:
        task = asyncio.create_task(self._source_loop(src_name, since), name=f"source {src_name}")
        self._source_tasks[src_name] = task
        self._tasks.append(task)

    def _start_interval_loop(self, name: str) -> None:
        task = asyncio.create_task(self._interval_loop(name), name=f"interval {name}")
        self._interval_tasks[name] = task
        self._tasks.append(task)

    async def reconfigure(self, config: Config) -> list[str]:
        """Apply a reloaded configuration in place (the daemon's SIGHUP): apps added, removed
        or changed, new sources watched. Objects of a removed app stay in the cluster (as when
        Argo CD deletes an Application non-cascading). Cluster changes need a restart.
        Returns the changes, one line each."""
        changes: list[str] = []
        if {n: c for n, c in config.clusters.items()} != {n: c for n, c in self.config.clusters.items()}:
            changes.append("clusters changed: takes effect after a restart")
        old_sources = self.config.sources
        self.config = config
        for name in sorted(set(self.apps) - set(config.apps)):
            rt = self.apps.pop(name)
            for t in rt.heal_tasks.values():
                t.cancel()
            task = self._interval_tasks.pop(name, None)
            if task is not None:
                task.cancel()
            self.state.remove_app(name)
            for ref, owner in list(self._owner.items()):
                if owner == name:
                    del self._owner[ref]
            changes.append(f"app {name} removed (its objects stay in the cluster)")
        touched: list[str] = []
        for name, spec in config.apps.items():
            existing = self.apps.get(name)
            if existing is None:
                self.apps[name] = AppRuntime(spec, suspended=spec.suspend or self.inventory.suspended(name))
                self.state.add_app(spec)
                changes.append(f"app {name} added")
            elif existing.spec != spec:
                existing.spec = spec
                self.state.add_app(spec)
                changes.append(f"app {name} changed")
            else:
                continue
            touched.append(name)
        for src_name, src_spec in config.sources.items():
            if old_sources.get(src_name) not in (None, src_spec):
                self.sources.pop(src_name, None)  # re-created from the new spec on next use
                task = self._source_tasks.pop(src_name, None)
                if task is not None:
                    task.cancel()
                changes.append(f"source {src_name} changed")
        if self._running:
            for src_name in sorted({a.spec.source for a in self.apps.values()} - set(self._source_tasks)):
                self._start_source_loop(src_name, None)
            for name in touched:
                if name not in self._interval_tasks:
                    self._start_interval_loop(name)
            for name in self._ordered_apps():
                if name in touched:
                    await self._reconcile(name, reason="config reload")
        return changes

    async def stop(self) -> None:
        self._running = False
        for t in self._tasks:
            t.cancel()
        for rt in self.apps.values():
            for t in rt.heal_tasks.values():
                t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        for cl in self.clusters.values():
            await asyncio.to_thread(cl.close)

    def _ordered_apps(self) -> list[str]:
        """Apps with their dependencies first (config validation rejects cycles)."""
        order: list[str] = []
        seen: set[str] = set()

        def visit(n: str) -> None:
            if n in seen or n not in self.apps:
                return
            seen.add(n)
            for d in self.apps[n].spec.depends_on:
                visit(d)
            order.append(n)

        for n in sorted(self.apps):
            visit(n)
        return order

    async def _reconcile(self, name: str, reason: str, revision: Revision | None = None) -> None:
        rt = self.apps[name]
        try:
            if rt.spec.sync == "auto" and not rt.suspended:
                plan = await self.plan(name, revision)
                if plan.has_changes or any(i.action == Action.CREATE for i in plan.items):
                    await self.sync(name, who=f"{self.who} ({reason})", revision=revision, wait=False)
            else:
                await self.plan(name, revision)
        except EngineError as exc:
            self.emit(AppError(name, str(exc)))
        except Exception as exc:  # one app's failure never stops the others
            log.exception("reconcile of %s failed", name)
            self.emit(AppError(name, f"{type(exc).__name__}: {exc}"))

    async def _source_loop(self, src_name: str, since: str | None = None) -> None:
        src = self.source(src_name)
        try:
            async for rev in src.watch(since=since):  # since: see start()
                self.emit(RevisionDetected(src_name, rev))
                for name in self._ordered_apps():
                    if self.apps[name].spec.source == src_name:
                        await self._reconcile(name, reason=f"revision {rev.short}", revision=rev)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            for name, rt in self.apps.items():
                if rt.spec.source == src_name:
                    self.emit(AppError(name, f"source {src_name} stopped: {exc}"))

    async def _interval_loop(self, name: str) -> None:
        while name in self.apps:
            await asyncio.sleep(max(1.0, self.apps[name].spec.interval))
            if name in self.apps:
                await self._reconcile(name, reason="interval")
