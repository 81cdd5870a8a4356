"""Service load-balancer controller: a ``LoadBalancer`` Service gets
``status.loadBalancer.ingress [{ip: 172.18.255.x, ipMode: VIP}]`` after
``pace`` (addresses from the pool kind + MetalLB setups use); the address is
released when the type changes or the Service goes away.
"""

from __future__ import annotations

import copy
from typing import Any

from sandbox.controllers.base import SERVICES, Controller, Obj, deleting, meta_of
from sandbox.store import Event, Key

POOL = [f"172.18.255.{i}" for i in (*range(200, 251), *range(1, 200), *range(251, 255))]


def _ingress_ips(svc: Obj | None) -> list[str]:
    lb = ((svc or {}).get("status") or {}).get("loadBalancer") or {}
    return [str(i["ip"]) for i in lb.get("ingress") or () if isinstance(i, dict) and i.get("ip")]


class ServiceController(Controller):
    name = "service-lb"
    primary = SERVICES

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        self._used: dict[str, tuple[str, str]] = {}  # ip -> (namespace, name)

    def on_event(self, key: Key, ev: Event) -> None:
        meta = meta_of(ev.obj)
        owner = (meta.get("namespace", ""), meta["name"])
        for ip in _ingress_ips(ev.old):
            if self._used.get(ip) == owner:
                del self._used[ip]
        if ev.type != "DELETED":
            for ip in _ingress_ips(ev.obj):
                self._used[ip] = owner
        super().on_event(key, ev)

    def resync(self) -> None:
        for svc in self.store.items(SERVICES):
            meta = meta_of(svc)
            for ip in _ingress_ips(svc):
                self._used[ip] = (meta.get("namespace", ""), meta["name"])
        super().resync()

    def _allocate(self, svc: Obj) -> str | None:
        wanted = (svc.get("spec") or {}).get("loadBalancerIP")
        if wanted and wanted not in self._used:
            return str(wanted)
        return next((ip for ip in POOL if ip not in self._used), None)

    def reconcile(self, item: Any) -> None:
        ns, name = item
        svc = self.get(SERVICES, ns, name)
        if svc is None or deleting(svc):
            return
        status: Obj = copy.deepcopy(svc.get("status") or {})
        has = _ingress_ips(svc)
        if (svc.get("spec") or {}).get("type") == "LoadBalancer":
            if has or not self.elapsed(meta_of(svc)["uid"], "lb", item):
                return
            ip = self._allocate(svc)
            if ip is None:
                return
            self._used[ip] = (ns, name)
            status["loadBalancer"] = {"ingress": [{"ip": ip, "ipMode": "VIP"}]}
        elif has:
            status["loadBalancer"] = {}
        else:
            return
        self.update_status(SERVICES, svc, status)
