"""The daemon's wire protocol: one JSON object per line, both ways.

Client → daemon, requests::

    {"id": 1, "op": "hello", "args": {"terminal": "...", "tty": "...", "token": "..."}}
    {"id": 2, "op": "subscribe", "args": {"since": 1234}}      # since: last event id seen, or null
    {"id": 3, "op": "sync", "args": {"app": "web"}}

Daemon → client: a response per request ``{"id": 3, "ok": true, "result": ...}`` or
``{"id": 3, "ok": false, "error": "...", "code": "forbidden"}``, and, once subscribed,
pushed lines:

* ``{"eid": 1235, "event": {...}}`` — every event, in order, with its event id;
* ``{"snapshot": {...}, "eid": 1300}`` — the state as of event 1300 (first message of a
  subscription that cannot be replayed from ``since``, and after falling behind);
* ``{"lagged": 812}`` — this client fell behind and 812 events were dropped for it; a
  snapshot follows.
"""

from __future__ import annotations

import json
from typing import Any

MAX_LINE = 64 * 1024 * 1024  # a snapshot of 10,000 objects is a few MB

# Operations a viewer may call (reads); everything in OPERATOR_OPS needs the operator role.
READ_OPS = frozenset({
    "hello", "snapshot", "subscribe", "objects", "object_diff", "history", "commits", "pipelines", "runs",
    "run", "run_log", "trace", "whoami", "ping", "plan",
})
OPERATOR_OPS = frozenset({
    "sync", "suspend", "resume", "revert", "start_run", "approve", "reject", "retry", "stop",
})


class ProtocolError(Exception):
    """A malformed line or request."""


class RemoteError(Exception):
    """The daemon refused or failed a request: ``code`` is forbidden | not_found | bad_request |
    draining | error."""

    def __init__(self, message: str, code: str = "error") -> None:
        super().__init__(message)
        self.code = code


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), default=str).encode() + b"\n"


def loads(line: bytes) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ProtocolError("expected a JSON object")
    return value
