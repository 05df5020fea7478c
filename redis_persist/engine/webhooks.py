"""Run webhooks: refuse URLs that point inside the network (SSRF), and deliver each run's end at least once.

The guard follows LangGraph's server since GHSA-q3v5-r5ch-p57j: relative URLs and loopback addresses are
refused unless allowed, and so are private, link-local (cloud metadata) and other non-public addresses.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from redis_persist.core.errors import InvalidRequest, TaskNotFound
from redis_persist.store.webhooks import WebhookQueue

log = logging.getLogger(__name__)
LOCALHOST_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
MAX_URL_LENGTH = 4096
HOLD_MS = 30_000  # a delivery claimed by a replica is retried by another after this long
RECHECK_MS = 2_000  # how often an armed delivery looks whether its run has ended
FIRST_RETRY_MS = 1_000


class WebhookPolicy:
    """Which webhook URLs are acceptable: public http(s) hosts, optionally loopback, optionally only some domains."""

    def __init__(self, allow_loopback: bool, allowed_domains: list[str]) -> None:
        self.allow_loopback = allow_loopback
        self._exact = {d.lower() for d in allowed_domains if not d.startswith("*.")}
        self._wildcards = tuple(d[2:].lower() for d in allowed_domains if d.startswith("*."))

    async def check(self, url: str) -> None:
        """Raise InvalidRequest (422) unless `url` may receive a webhook."""
        if len(url) > MAX_URL_LENGTH:
            raise InvalidRequest("Webhook URL too long")
        if url.startswith("/") or "://" not in url:
            raise InvalidRequest("Relative webhook URLs are refused: give an absolute http(s) URL")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise InvalidRequest("Webhook must use http or https")
        host = (parts.hostname or "").lower()
        if not host:
            raise InvalidRequest(f"Invalid webhook hostname in {url!r}")
        if (self._exact or self._wildcards) and not (
                host in self._exact or any(host.endswith("." + base) for base in self._wildcards)):
            raise InvalidRequest(f"Webhook domain {host!r} is not in REDIS_PERSIST_WEBHOOK_ALLOWED_DOMAINS")
        if host in LOCALHOST_NAMES:
            if not self.allow_loopback:
                raise InvalidRequest(_loopback_refused(host))
            return
        for address in await _addresses(host, parts.port or (443 if parts.scheme == "https" else 80)):
            if address.is_loopback:
                if not self.allow_loopback:
                    raise InvalidRequest(_loopback_refused(host))
            elif not address.is_global or address.is_multicast:
                raise InvalidRequest(f"Webhook host {host!r} resolves to a non-public address ({address})")


def _loopback_refused(host: str) -> str:
    return (f"Webhook host {host!r} is a loopback address; refused unless "
            "REDIS_PERSIST_WEBHOOK_ALLOW_LOOPBACK=true")


async def _addresses(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise InvalidRequest(f"Webhook host {host!r} does not resolve: {error}") from error
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]


class WebhookClient:
    """The HTTP client webhooks are sent with, opened at the first delivery: most replicas never send one,
    and an open client costs ~1.5 MB resident in every process (httpcore, an SSL context with the CA bundle)."""

    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None

    def get(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient()
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class WebhookDeliverer:
    """Delivers due webhooks; every replica runs one, Redis decides who delivers what."""

    def __init__(self, queue: WebhookQueue, policy: WebhookPolicy, max_attempts: int,
                 payload_of: Callable[[str], Awaitable[dict[str, Any] | None]]) -> None:
        self._queue = queue
        self._policy = policy
        self._max_attempts = max_attempts
        self._payload_of = payload_of  # run id -> final run payload, or None while the run goes on

    async def deliver_due(self, client: WebhookClient) -> None:
        for run_id, url, attempt in await self._queue.claim_due(HOLD_MS, limit=50):
            try:
                payload = await self._payload_of(run_id)
            except TaskNotFound:  # the run (or its thread) was deleted: nobody to tell
                await self._queue.done(run_id)
                continue
            if payload is None:
                await self._queue.recheck_in(run_id, RECHECK_MS)
                continue
            await self._deliver(client.get(), run_id, url, attempt, payload)

    async def _deliver(self, client: httpx.AsyncClient, run_id: str, url: str, attempt: int,
                       payload: dict[str, Any]) -> None:
        extra = {"task_id": run_id, "webhook": url, "attempt": attempt}
        try:
            await self._policy.check(url)  # again: DNS may have changed since the run was created
            body = {**payload, "webhook_sent_at": datetime.now(UTC).isoformat()}
            response = await client.post(url, json=body, timeout=10)
            response.raise_for_status()
        except InvalidRequest as error:
            log.warning("webhook refused at delivery; dropped", extra={**extra, "error": str(error)})
            await self._queue.done(run_id)
        except httpx.HTTPError as error:
            if attempt >= self._max_attempts:
                log.error("webhook failed; giving up", extra={**extra, "error": str(error)})
                await self._queue.done(run_id)
            else:
                delay = min(FIRST_RETRY_MS * 2 ** (attempt - 1), 300_000)
                log.info("webhook failed; will retry", extra={**extra, "error": str(error), "retry_ms": delay})
                await self._queue.retry_in(run_id, delay)
        else:
            log.info("webhook delivered", extra=extra)
            await self._queue.done(run_id)
