"""Service cluster IP and node port allocation.

Deterministic and sequential (next-fit with a cursor, so a released value is
not handed out again until the range wraps), unlike the apiserver's random
choice. The service range is 10.96.0.0/12; its network and broadcast
addresses are never handed out, nor is the first address (10.96.0.1), which
only the ``kubernetes`` Service reserves (reserving it is idempotent). Node ports come
from 30000-32767. All methods are thread-safe.

Values may carry an owner (the Service's uid): reserving a value its owner
already holds succeeds, so re-defaulting a stored Service on update is safe;
a value reserved without an owner (e.g. restored from a snapshot) is adopted
by the first owner that reserves it.
"""

from __future__ import annotations

import ipaddress
import threading

SERVICE_CIDR = "10.96.0.0/12"
KUBERNETES_SERVICE_IP = "10.96.0.1"
NODE_PORT_RANGE = (30000, 32767)


class AllocationFailed(ValueError):
    """A value could not be reserved; the message is the apiserver's wording."""


class _Pool:
    """Next-fit allocation of integers in [low, high], with optional owners."""

    def __init__(self, low: int, high: int) -> None:
        self.low = low
        self.high = high
        self.owners: dict[int, str | None] = {}
        self.skip: set[int] = set()  # never handed out, but reservable (idempotently)
        self.cursor = low

    def next_free(self) -> int | None:
        size = self.high - self.low + 1
        taken = len(self.owners) + sum(1 for v in self.skip if v not in self.owners)
        if taken >= size:
            return None
        value = self.cursor
        for _ in range(size):
            if value not in self.owners and value not in self.skip:
                return value
            value = self.low if value >= self.high else value + 1
        return None

    def take(self, value: int, owner: str | None) -> None:
        self.owners[value] = owner
        self.cursor = self.low if value >= self.high else value + 1


class Allocator:
    """Hands out Service cluster IPs and node ports."""

    def __init__(self, cidr: str = SERVICE_CIDR, node_ports: tuple[int, int] = NODE_PORT_RANGE) -> None:
        self.network = ipaddress.IPv4Network(cidr)
        first = int(self.network.network_address) + 1
        last = int(self.network.broadcast_address) - 1
        self._ips = _Pool(first, last)
        self._ports = _Pool(node_ports[0], node_ports[1])
        self._lock = threading.Lock()
        # The first address of the range belongs to the `kubernetes` Service.
        self.kubernetes_ip = str(ipaddress.IPv4Address(first))
        self._ips.skip.add(first)

    @property
    def node_port_range(self) -> tuple[int, int]:
        return (self._ports.low, self._ports.high)

    def allocate_ip(self, *, dry_run: bool = False, owner: str | None = None) -> str:
        """The next free cluster IP; with ``dry_run`` it is not marked as used."""
        with self._lock:
            value = self._ips.next_free()
            if value is None:
                raise AllocationFailed("range is full")
            if not dry_run:
                self._ips.take(value, owner)
            return str(ipaddress.IPv4Address(value))

    def allocate_node_port(self, *, dry_run: bool = False, owner: str | None = None) -> int:
        """The next free node port; with ``dry_run`` it is not marked as used."""
        with self._lock:
            value = self._ports.next_free()
            if value is None:
                raise AllocationFailed("range is full")
            if not dry_run:
                self._ports.take(value, owner)
            return value

    def reserve(self, value: str | int, *, dry_run: bool = False, owner: str | None = None) -> None:
        """Reserve a specific IP (str) or node port (int) for ``owner``.

        Raises :class:`AllocationFailed` with the apiserver's detail text when
        the value is outside the range or held by someone else.
        """
        with self._lock:
            pool, key = self._resolve(value)
            if key in pool.owners:
                holder = pool.owners[key]
                if owner is not None and holder in (None, owner):
                    if not dry_run:
                        pool.owners[key] = owner
                    return
                if key in pool.skip and owner is None:
                    return
                kind = "IP" if isinstance(value, str) else "port"
                raise AllocationFailed(f"provided {kind} is already allocated")
            if not dry_run:
                pool.owners[key] = owner

    def release(self, value: str | int) -> None:
        """Give back an IP or port (unknown or out-of-range values are ignored)."""
        with self._lock:
            try:
                pool, key = self._resolve(value)
            except AllocationFailed:
                return
            pool.owners.pop(key, None)

    def in_use(self, value: str | int) -> bool:
        with self._lock:
            try:
                pool, key = self._resolve(value)
            except AllocationFailed:
                return False
            return key in pool.owners

    def owner(self, value: str | int) -> str | None:
        """The owner recorded for a value (None when free or reserved anonymously)."""
        with self._lock:
            try:
                pool, key = self._resolve(value)
            except AllocationFailed:
                return None
            return pool.owners.get(key)

    def _resolve(self, value: str | int) -> tuple[_Pool, int]:
        if isinstance(value, bool):
            raise AllocationFailed(f"invalid value {value!r}")
        if isinstance(value, int):
            if not self._ports.low <= value <= self._ports.high:
                raise AllocationFailed(
                    "provided port is not in the valid range. "
                    f"The range of valid ports is {self._ports.low}-{self._ports.high}"
                )
            return self._ports, value
        try:
            ip = ipaddress.ip_address(value)
        except ValueError as exc:
            raise AllocationFailed(f"failed to parse IP {value}") from exc
        key = int(ip)
        if ip.version != 4 or not self._ips.low <= key <= self._ips.high:
            raise AllocationFailed(
                f"the provided IP ({value}) is not in the valid range. "
                f"The range of valid IPs is {self.network.with_prefixlen}"
            )
        return self._ips, key
