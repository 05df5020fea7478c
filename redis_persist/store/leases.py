"""LeaseKeeper: renews this replica's task leases from its own thread.

A thread, not an asyncio task, so that a node blocking the event loop cannot
starve renewal: a live replica keeps its leases however long a node runs.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import redis

from redis_persist.store import keys, scripts
from redis_persist.store.connections import RedisConnections

log = logging.getLogger(__name__)
LEASE_LOST, LEASE_HELD, LEASE_RELEASED = 0, 1, 2  # RENEW_LEASES' answer per lease
# Leases renewed per script call. Redis runs nothing else while a script runs: 5,000 leases in one call held
# it for 8 ms (every other command of every replica waited), 500 for 0.8 ms (bench/README.md, "Lease renewal
# in batches").
RENEW_BATCH = 500


class LeaseKeeper:
    """Holds (task id -> fencing token) for the tasks this replica runs and keeps them alive."""

    def __init__(
        self,
        connections: RedisConnections,
        replica: str,
        lease_ttl_seconds: float,
        on_lost: Callable[[str], None],
    ) -> None:
        # A failed renewal is retried for up to a third of the lease: that rides out a Redis restart or a
        # Sentinel failover (2-3 s) without losing the leases, and the next regular renewal is due by then.
        self._client = connections.sync_client(
            socket_timeout=lease_ttl_seconds / 3, socket_connect_timeout=min(2, lease_ttl_seconds / 3),
            retry_for_seconds=lease_ttl_seconds / 3,
        )
        self._renew = self._client.register_script(scripts.RENEW_LEASES)
        self._replica = replica
        self._ttl = lease_ttl_seconds
        self._on_lost = on_lost
        self._held: dict[str, tuple[str, float]] = {}  # task id -> (token, last renewal, monotonic)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-keeper-{replica}", daemon=True)

    @property
    def ttl_ms(self) -> int:
        return int(self._ttl * 1000)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._ttl)
        self._client.close()

    def hold(self, task_id: str, token: str) -> None:
        """Start renewing the lease a claim just took."""
        with self._lock:
            self._held[task_id] = (token, time.monotonic())

    def drop(self, task_id: str) -> None:
        """Stop renewing (the task left running, or this replica stopped it)."""
        with self._lock:
            self._held.pop(task_id, None)

    def token(self, task_id: str) -> str | None:
        """The fencing token this replica holds for the task, if any."""
        with self._lock:
            held = self._held.get(task_id)
        return held[0] if held else None

    def _run(self) -> None:
        interval = self._ttl / 3
        while not self._stop.wait(interval):
            self._renew_all()

    def _renew_all(self) -> None:
        with self._lock:
            held = list(self._held.items())
        for start in range(0, len(held), RENEW_BATCH):
            batch = held[start:start + RENEW_BATCH]
            try:
                outcomes = self._renew(keys=keys.for_renew_leases(task_id for task_id, _ in batch),
                                       args=[self.ttl_ms, *(token for _, (token, _) in batch)])
            except redis.RedisError as error:
                # Redis unreachable: a lease we could not renew in time may already be someone else's.
                now = time.monotonic()
                log.warning("lease renewal failed", extra={"replica": self._replica, "error": str(error)})
                for task_id, (token, renewed_at) in held[start:]:
                    if now - renewed_at > self._ttl:
                        self._lose(task_id, token)
                return
            self._apply(batch, outcomes)

    def _apply(self, batch: list[tuple[str, tuple[str, float]]], outcomes: list[int]) -> None:
        now = time.monotonic()
        for (task_id, (token, _)), outcome in zip(batch, outcomes, strict=True):
            if outcome == LEASE_HELD:
                with self._lock:
                    if self._held.get(task_id, ("",))[0] == token:
                        self._held[task_id] = (token, now)
            elif outcome == LEASE_RELEASED:
                self._release(task_id, token)
            else:
                self._lose(task_id, token)

    def _release(self, task_id: str, token: str) -> None:
        # The task left running under this lease (the runner's status change released it) just before
        # the worker dropped it here: an ordinary end, not a loss. Stop it all the same (a no-op if it ended).
        if self._forget(task_id, token):
            log.debug("lease released by the task's end", extra={"task_id": task_id, "replica": self._replica})
            self._on_lost(task_id)

    def _lose(self, task_id: str, token: str) -> None:
        # Dropped since the snapshot: the task ended here in the meantime, nothing was lost.
        if self._forget(task_id, token):
            log.warning("lease lost", extra={"task_id": task_id, "replica": self._replica})
            self._on_lost(task_id)

    def _forget(self, task_id: str, token: str) -> bool:
        """Stop holding the lease `token` of the task; False if this replica no longer holds that one.

        The task may have ended and been claimed here again since the snapshot: its new lease is not
        the one the renewal answered for, and stays held.
        """
        with self._lock:
            if self._held.get(task_id, ("",))[0] != token:
                return False
            del self._held[task_id]
            return True
