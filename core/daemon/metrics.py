"""Prometheus metrics of the daemon (``prometheus_client``), served at ``/metrics``.

Counters and histograms are updated by a bus listener (O(1) per event); the per-state
app counts are computed at scrape time from the state model, so they are always exact.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core.events import DriftDetected, Event, RunFinished, SyncFinished

if TYPE_CHECKING:
    from core.daemon.runtime import DaemonRuntime

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _StateCollector(Collector):
    def __init__(self, runtime: DaemonRuntime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        apps = self.runtime.engine.state.apps()
        by_sync = GaugeMetricFamily("driftdeck_apps_by_sync", "Apps by sync status", labels=["sync"])
        for status, n in sorted(Tally(a.sync_status.value for a in apps).items()):
            by_sync.add_metric([status], n)
        yield by_sync
        by_health = GaugeMetricFamily("driftdeck_apps_by_health", "Apps by health", labels=["health"])
        for health, n in sorted(Tally(a.health.value for a in apps).items()):
            by_health.add_metric([health], n)
        yield by_health
        drifted = GaugeMetricFamily("driftdeck_app_drifted_objects", "Objects currently drifted", labels=["app"])
        for a in apps:
            drifted.add_metric([a.name], a.drift_count)
        yield drifted
        yield GaugeMetricFamily("driftdeck_clients", "Attached clients", value=self.runtime.server.clients)
        yield GaugeMetricFamily("driftdeck_events_published", "Events published since start",
                                value=self.runtime.bus.published)


class Metrics:
    def __init__(self, runtime: DaemonRuntime) -> None:
        self.registry = CollectorRegistry()
        self.drift_events = Counter("driftdeck_drift_events", "Drift detections", ["app"], registry=self.registry)
        self.syncs = Histogram("driftdeck_sync_duration_seconds", "Sync durations", ["app", "result"],
                               registry=self.registry, buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300))
        self.pipeline_runs = Counter("driftdeck_pipeline_runs", "Finished pipeline runs", ["pipeline", "status"],
                                     registry=self.registry)
        self.registry.register(_StateCollector(runtime))
        runtime.bus.on(self._on_event)

    def _on_event(self, ev: Event) -> None:
        if isinstance(ev, DriftDetected):
            self.drift_events.labels(ev.app).inc()
        elif isinstance(ev, SyncFinished):
            self.syncs.labels(ev.app, "ok" if ev.ok else "failed").observe(ev.duration)
        elif isinstance(ev, RunFinished):
            self.pipeline_runs.labels(ev.pipeline, ev.status).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)

    async def serve(self, host: str, port: int) -> Any:
        """``GET /metrics`` on host:port (aiohttp); returns the runner (``cleanup()`` stops it)."""
        from aiohttp import web

        async def handler(_request: web.Request) -> web.Response:
            return web.Response(body=self.render(), headers={"Content-Type": CONTENT_TYPE})

        app = web.Application()
        app.router.add_get("/metrics", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        return runner
