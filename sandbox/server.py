"""HTTP front of the sandbox: routing, query options, JSON/NDJSON encoding,
watch streaming, fault injection and the kubeconfig it writes.

``SandboxServer`` runs either on the caller's event loop (``driftdeck sandbox
serve``) or in a background thread with its own loop (tests, the demo).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from sandbox import discovery, errors, openapi, tables
from sandbox.api import Api, Request, decode_body
from sandbox.errors import ApiError
from sandbox.resources import Registry, ResourceType
from sandbox.store import Store, TooOld

CONTEXT_NAME = "driftdeck-sandbox"
JSON = "application/json"
ADMIN_PREFIX = "/_sandbox/"


@dataclass
class Faults:
    """Test-only fault injection, driven through the /_sandbox/ admin paths."""

    fail_count: int = 0
    fail_code: int = 500
    latency_ms: float = 0.0


@dataclass
class Options:
    host: str = "127.0.0.1"
    port: int = 0
    data_file: str | None = None
    kubeconfig: str | None = None
    bookmark_interval: float = 5.0
    controllers: bool = True
    pace: float = 0.5  # seconds between controller phases (Deployment Progressing -> Available, ...)
    pods: bool = True  # the Deployment/ReplicaSet controllers create Pods


def _json_response(body: Any, status: int = 200, warnings: list[str] | None = None) -> web.Response:
    headers = {}
    if warnings:
        headers["Warning"] = ", ".join(f'299 - "{w}"' for w in warnings)
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(), status=status, content_type=JSON, headers=headers
    )


def _error_response(exc: ApiError) -> web.Response:
    resp = _json_response(exc.status(), exc.code)
    if exc.code == 429:
        resp.headers["Retry-After"] = "1"
    return resp


def _flag(q: Any, name: str) -> bool | None:
    v = q.get(name)
    if v is None:
        return None
    return v.lower() in ("true", "1", "")


class SandboxServer:
    def __init__(self, options: Options | None = None) -> None:
        self.options = options or Options()
        self.store = Store(self.options.data_file)
        self.registry = Registry()
        self.api = Api(self.store, self.registry)
        self.faults = Faults()
        self.started = time.time()
        self._runner: web.AppRunner | None = None
        self._site_port = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = threading.Event()
        self.controllers: Any = None
        self._restore()

    # ----- lifecycle --------------------------------------------------------------
    def _restore(self) -> None:
        """Re-register CRDs and reserve cluster IPs of a restored store; create system objects."""
        crd_rt = self.registry.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        assert crd_rt is not None
        for crd in self.store.items(crd_rt.key):
            self.registry.set_crd(crd)
        svc_rt = self.registry.lookup("", "v1", "services")
        assert svc_rt is not None
        for svc in self.store.items(svc_rt.key):
            spec = svc.get("spec") or {}
            for ip in spec.get("clusterIPs") or []:
                self.api.allocator.reserve(ip)
            for port in spec.get("ports") or []:
                if port.get("nodePort"):
                    self.api.allocator.reserve(port["nodePort"])
        self.api.bootstrap()

    @property
    def url(self) -> str:
        return f"http://{self.options.host}:{self._site_port}"

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[self._middleware])
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    async def start_async(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._runner = web.AppRunner(self.app(), handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.options.host, self.options.port, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self._site_port = sockets[0].getsockname()[1] if sockets else self.options.port
        if self.options.controllers:
            from sandbox.controllers import Controllers

            self.controllers = Controllers(self.api, pace=self.options.pace, pods=self.options.pods)
            self.controllers.start()
        if self.options.kubeconfig:
            write_kubeconfig(self.options.kubeconfig, self.url)

    async def stop_async(self) -> None:
        if self.controllers is not None:
            await self.controllers.stop()
        self.store.drop_watches()
        if self._runner is not None:
            await self._runner.cleanup()
        self.store.close()

    def start_in_thread(self) -> SandboxServer:
        """Run the server on its own loop in a daemon thread; returns once it listens."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start_async())
            except BaseException as exc:  # reported to the caller below
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop_async())
            loop.close()
            self._stopped.set()

        self._thread = threading.Thread(target=run, name="sandbox", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._stopped.wait(15)

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the server's loop (thread mode) and return its result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(_call(fn), self._loop).result(30)

    # ----- middleware: faults and error mapping ------------------------------------------
    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if not request.path.startswith(ADMIN_PREFIX):
            if self.faults.latency_ms:
                await asyncio.sleep(self.faults.latency_ms / 1000)
            if self.faults.fail_count > 0:
                self.faults.fail_count -= 1
                if self.faults.fail_code == 429:
                    return _error_response(errors.too_many_requests())
                return _error_response(errors.internal("injected failure"))
        try:
            return await handler(request)
        except ApiError as exc:
            return _error_response(exc)
        except (asyncio.CancelledError, ConnectionResetError, web.HTTPException):
            raise
        except Exception as exc:  # never a stack trace on the wire
            return _error_response(errors.internal(f"{type(exc).__name__}: {exc}"))

    # ----- routing -------------------------------------------------------------------------
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        method = request.method
        if path.startswith(ADMIN_PREFIX.rstrip("/")):
            return await self._admin(request, path[len(ADMIN_PREFIX):])
        if path in ("/healthz", "/readyz", "/livez"):
            return web.Response(text="ok", content_type="text/plain")
        if method == "GET":
            if path == "/version":
                return _json_response(discovery.version_info())
            if path == "/api":
                return _json_response(discovery.api_versions(request.host))
            if path == "/apis":
                return _json_response(discovery.api_group_list(self.registry))
            if path == "/openapi/v3":
                return _json_response(openapi.openapi_index(self.registry))
            if path.startswith("/openapi/v3/"):
                rel = path[len("/openapi/v3/"):]
                built = openapi.openapi_body(self.registry, rel)
                if built is None:
                    raise errors.route_not_found(path)
                body, digest = built
                asked = request.query.get("hash")
                if asked and asked != digest:
                    # kube redirects a stale hash to the current document.
                    raise web.HTTPMovedPermanently(location=f"{request.path}?hash={digest}")
                headers = {"ETag": f'"{digest}"'}
                if asked:
                    headers["Cache-Control"] = "public, immutable"
                return web.Response(body=body, content_type=JSON, headers=headers)
        segs = [s for s in path.split("/") if s]
        if len(segs) >= 2 and segs[0] == "api":
            group, version, rest = "", segs[1], segs[2:]
        elif len(segs) >= 3 and segs[0] == "apis":
            group, version, rest = segs[1], segs[2], segs[3:]
        elif len(segs) == 2 and segs[0] == "apis" and method == "GET":
            doc = discovery.api_group(self.registry, segs[1])
            if doc is None:
                raise errors.route_not_found(path)
            return _json_response(doc)
        else:
            raise errors.route_not_found(path)
        if not rest:
            if method != "GET":
                raise errors.method_not_allowed()
            doc = discovery.api_resource_list(self.registry, group, version)
            if doc is None:
                raise errors.route_not_found(path)
            return _json_response(doc)
        return await self._resource(request, group, version, rest)

    def _parse_rest(self, group: str, version: str, rest: list[str]) -> tuple[ResourceType, str | None, str, str]:
        """(type, namespace, name, subresource) from the path after the group version."""
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3 and not (len(rest) == 3 and rest[2] in ("status", "finalize")):
            namespace = rest[1]
            rest = rest[2:]
        plural = rest[0]
        rt = self.registry.lookup(group, version, plural)
        if rt is None or len(rest) > 3:
            raise errors.route_not_found("/".join(rest))
        if namespace is not None and not rt.namespaced:
            raise errors.route_not_found(plural)
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        if sub and sub not in rt.subresources:
            raise errors.route_not_found(sub)
        return rt, namespace, name, sub

    def _request_options(self, request: web.Request) -> Request:
        q = request.query
        dry = q.getall("dryRun", [])
        for d in dry:
            if d != "All":
                raise errors.bad_request(f'Invalid value: "{d}": supported values: "All"')
        fv = q.get("fieldValidation", "Strict" if "kubectl" in request.headers.get("User-Agent", "") else "Warn")
        if fv not in ("Ignore", "Warn", "Strict"):
            raise errors.bad_request(f'Invalid value: "{fv}": supported values: "Ignore", "Warn", "Strict"')
        return Request(
            field_manager=q.get("fieldManager", ""),
            user_agent=request.headers.get("User-Agent", ""),
            dry_run=bool(dry),
            force=_flag(q, "force"),
            field_validation=fv,
        )

    async def _resource(self, request: web.Request, group: str, version: str, rest: list[str]) -> web.StreamResponse:
        rt, namespace, name, sub = self._parse_rest(group, version, rest)
        method = request.method
        q = request.query
        ns = namespace or ""
        if rt.namespaced and name and namespace is None:
            raise errors.route_not_found(rt.plural)
        if not name:
            if method == "GET":
                if _flag(q, "watch"):
                    return await self._watch(request, rt, namespace)
                listed = self.api.list(
                    rt,
                    namespace,
                    q.get("labelSelector", ""),
                    q.get("fieldSelector", ""),
                    _int(q.get("limit"), "limit"),
                    q.get("continue", ""),
                )
                if tables.wants_table(request.headers.get("Accept", "")):
                    return _json_response(tables.list_table(rt, listed, self._now()))
                return _json_response(listed)
            if method == "POST":
                body = decode_body(await request.read(), request.content_type)
                req = self._request_options(request)
                code, obj = self.api.create(rt, ns, body, req)
                return _json_response(obj, code, req.warnings)
            if method == "DELETE":
                req = self._request_options(request)
                opts = await self._delete_options(request)
                code, body = self.api.delete_collection(
                    rt, namespace, q.get("labelSelector", ""), q.get("fieldSelector", ""), opts, req
                )
                return _json_response(body, code)
            raise errors.method_not_allowed()
        if sub == "scale":
            req = self._request_options(request)
            if method == "GET":
                return _json_response(self.api.scale_of(rt, self.api.get(rt, ns, name)))
            if method == "PUT":
                body = decode_body(await request.read(), request.content_type)
                code, obj = self.api.update_scale(rt, ns, name, body, req)
                return _json_response(obj, code)
            if method == "PATCH":
                code, obj = self.api.patch_scale(rt, ns, name, await request.read(), request.content_type, req)
                return _json_response(obj, code)
            raise errors.method_not_allowed()
        if method == "GET":
            obj = self.api.get(rt, ns, name)
            if tables.wants_table(request.headers.get("Accept", "")):
                return _json_response(tables.object_table(rt, obj, self._now()))
            return _json_response(obj)
        if method == "PUT":
            body = decode_body(await request.read(), request.content_type)
            req = self._request_options(request)
            code, obj = self.api.replace(rt, ns, name, body, req, sub)
            return _json_response(obj, code, req.warnings)
        if method == "PATCH":
            req = self._request_options(request)
            code, obj = self.api.patch(rt, ns, name, await request.read(), request.content_type, req, sub)
            return _json_response(obj, code, req.warnings)
        if method == "DELETE" and not sub:
            req = self._request_options(request)
            opts = await self._delete_options(request)
            code, body = self.api.delete(rt, ns, name, opts, req)
            return _json_response(body, code)
        raise errors.method_not_allowed()

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        opts: dict[str, Any] = {}
        raw = await request.read()
        if raw.strip():
            parsed = decode_body(raw, request.content_type or JSON)
            if isinstance(parsed, dict):
                opts.update(parsed)
        q = request.query
        if "propagationPolicy" in q:
            opts["propagationPolicy"] = q["propagationPolicy"]
        if "gracePeriodSeconds" in q:
            opts["gracePeriodSeconds"] = _int(q["gracePeriodSeconds"], "gracePeriodSeconds")
        if "orphanDependents" in q:
            opts["orphanDependents"] = _flag(q, "orphanDependents")
        return opts

    def _now(self) -> float:
        return time.time()

    # ----- watch -----------------------------------------------------------------------------
    async def _watch(self, request: web.Request, rt: ResourceType, namespace: str | None) -> web.StreamResponse:
        q = request.query
        matches = self.api.matcher(rt, namespace, q.get("labelSelector", ""), q.get("fieldSelector", ""))
        rv_param = q.get("resourceVersion", "")
        send_initial = _flag(q, "sendInitialEvents")
        bookmarks = bool(_flag(q, "allowWatchBookmarks"))
        timeout = _int(q.get("timeoutSeconds"), "timeoutSeconds") or 1800
        since = None if send_initial or rv_param in ("", "0") else _int(rv_param, "resourceVersion")
        as_table = tables.wants_table(request.headers.get("Accept", ""))
        resp = web.StreamResponse(status=200, headers={"Content-Type": JSON})
        resp.enable_chunked_encoding()
        try:
            watcher = self.store.watch(rt.key, matches, since)
        except TooOld as exc:
            await resp.prepare(request)
            err = errors.expired(str(exc)).status()
            await resp.write(json.dumps({"type": "ERROR", "object": err}).encode() + b"\n")
            await resp.write_eof()
            return resp
        initial_pending = bool(send_initial)
        if initial_pending:
            # Everything queued so far is the initial state; mark its end with a bookmark.
            initial_count = watcher.queue.qsize()
        await resp.prepare(request)
        deadline = time.monotonic() + timeout
        interval = self.options.bookmark_interval
        try:
            while True:
                if initial_pending and initial_count == 0:
                    initial_pending = False
                    await resp.write(self._bookmark(rt, initial_end=True))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    ev = await asyncio.wait_for(watcher.queue.get(), timeout=min(remaining, interval))
                except TimeoutError:
                    if bookmarks and watcher.queue.empty() and deadline - time.monotonic() > 0:
                        await resp.write(self._bookmark(rt))
                    continue
                if ev is None:
                    break
                if initial_pending:
                    initial_count -= 1
                if as_table:
                    row = tables.object_table(rt, ev.obj, self._now())
                    await resp.write(json.dumps({"type": ev.type, "object": row}).encode() + b"\n")
                else:
                    await resp.write(ev.encoded())
            if bookmarks and not watcher.overflowed:
                with contextlib.suppress(ConnectionResetError):
                    await resp.write(self._bookmark(rt))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.store.unwatch(watcher)
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await resp.write_eof()
        return resp

    def _bookmark(self, rt: ResourceType, initial_end: bool = False) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": str(self.store.rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        obj = {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}
        return json.dumps({"type": "BOOKMARK", "object": obj}, separators=(",", ":")).encode() + b"\n"

    # ----- admin (test hooks, not part of the Kubernetes API) --------------------------------------
    async def _admin(self, request: web.Request, action: str) -> web.StreamResponse:
        q = request.query
        if action == "state" and request.method == "GET":
            return _json_response(
                {
                    "resourceVersion": self.store.rv,
                    "watchers": self.store.watcher_count(),
                    "faults": {"failCount": self.faults.fail_count, "failCode": self.faults.fail_code,
                               "latencyMs": self.faults.latency_ms},
                    "objects": self.store.total(),
                }
            )
        if request.method != "POST":
            raise errors.method_not_allowed()
        if action == "compact":
            return _json_response({"compactedTo": self.store.compact()})
        if action == "drop-watches":
            return _json_response({"dropped": self.store.drop_watches()})
        if action == "fail":
            code = _int(q.get("code", "500"), "code")
            if code not in (500, 429):
                raise errors.bad_request("code must be 500 or 429")
            self.faults.fail_count = _int(q.get("count", "1"), "count")
            self.faults.fail_code = code
            return _json_response({"failCount": self.faults.fail_count, "failCode": code})
        if action == "latency":
            self.faults.latency_ms = float(q.get("ms", "0"))
            return _json_response({"latencyMs": self.faults.latency_ms})
        if action == "reset":
            self.faults = Faults()
            return _json_response({})
        if action == "import":
            # Store objects verbatim (managedFields included): seeds recorded live objects for conformance tests.
            body = decode_body(await request.read(), request.content_type or JSON)
            items = body.get("items", []) if isinstance(body, dict) and "items" in body else [body]
            out = []
            for obj in items:
                rt = self.registry.by_gvk(obj.get("apiVersion", ""), obj.get("kind", ""))
                if rt is None:
                    raise errors.bad_request(f"no kind {obj.get('kind')} in {obj.get('apiVersion')}")
                meta = obj.setdefault("metadata", {})
                meta.pop("resourceVersion", None)
                ns = meta.get("namespace", "") if rt.namespaced else ""
                if rt.namespaced and self.store.get(("", "namespaces"), "", ns) is None:
                    self.api.create(self.registry.lookup("", "v1", "namespaces"),  # type: ignore[arg-type]
                                    "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
                                    Request(field_manager="sandbox-import"))
                created = self.store.get(rt.key, ns, meta["name"]) is None
                out.append(self.store.put(rt.key, obj, created=created))
            return _json_response({"items": out})
        raise errors.route_not_found(action)


async def _call(fn: Callable[[], Any]) -> Any:
    return fn()


def _int(value: str | None, name: str) -> int:
    if value is None or value == "":
        return 0
    try:
        return int(value)
    except ValueError:
        raise errors.bad_request(f'Invalid value: "{value}": {name} must be an integer') from None


def kubeconfig_dict(url: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT_NAME, "cluster": {"server": url}}],
        "users": [{"name": CONTEXT_NAME, "user": {"username": "sandbox-admin"}}],
        "contexts": [
            {"name": CONTEXT_NAME, "context": {"cluster": CONTEXT_NAME, "user": CONTEXT_NAME, "namespace": "default"}}
        ],
        "current-context": CONTEXT_NAME,
        "preferences": {},
    }


def write_kubeconfig(path: str, url: str) -> None:
    """Write (atomically) a kubeconfig whose current context points at the sandbox."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(target.suffix + ".tmp")
    tmp.write_text(yaml.safe_dump(kubeconfig_dict(url), sort_keys=False))
    os.chmod(tmp, 0o600)
    tmp.replace(target)


@dataclass
class Running:
    """A sandbox started in a thread, as tests and the demo use it."""

    server: SandboxServer
    kubeconfig: str
    extra: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        self.server.stop()
