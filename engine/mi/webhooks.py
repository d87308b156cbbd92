"""Webhooks from the configuration: each event (or those of ``event_types``) POSTed as JSON.

Each webhook reads its own bounded ``engine.events()`` reader (``queue`` events): a slow or
unreachable endpoint never slows the engine; beyond the queue the oldest events are dropped.
A POST that fails (connection error, timeout, status other than 2xx) is retried ``retries`` times
with back-off (0.5 s, 1 s, 2 s...). Every event that does not get through is counted in ``lost``,
logged with the reason, and shown by ``subscribers_list`` (socket ``webhook:URL``).
"""

import asyncio
import contextlib
import logging

import aiohttp

from engine.api.engine import Engine
from engine.api.streams import Gap, Reader
from engine.ua.events import SessionEvent

from .config import WebhookConfig
from .subscribers import Counters, notification

log = logging.getLogger("uaconsole.mi")


class Webhook:
    """One configured endpoint."""

    def __init__(self, engine: Engine, config: WebhookConfig) -> None:
        self.config = config
        self.counters = Counters()
        self._reader: Reader[SessionEvent] = engine.events(maxsize=config.queue)
        self._task: asyncio.Task[None] | None = None

    def start(self, session: aiohttp.ClientSession) -> None:
        """Begin delivering."""
        self._task = asyncio.create_task(self._run(session), name=f"mi-webhook {self.config.url}")

    async def stop(self) -> None:
        """Stop delivering (what is queued is dropped)."""
        self._reader.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def queued(self) -> int:
        """Events waiting."""
        return len(self._reader)

    def to_mi(self) -> dict[str, object]:
        """The ``subscribers_list`` entry."""
        return {
            "socket": f"webhook:{self.config.url}",
            "expire": "never",
            "delivered": self.counters.delivered,
            "lost": self.counters.lost,
            "queued": self.queued,
        }

    def _lose(self, count: int, why: str) -> None:
        self.counters.lost += count
        log.warning(
            "webhook %s: %d event(s) lost (%s); %d lost in all",
            self.config.url, count, why, self.counters.lost,
        )  # fmt: skip

    async def _run(self, session: aiohttp.ClientSession) -> None:
        wanted = set(self.config.event_types)
        headers = {"Content-Type": "application/json", **dict(self.config.headers)}
        async for item in self._reader:
            if isinstance(item, Gap):
                self._lose(item.lost, f"more than {self.config.queue} events queued")
                continue
            if wanted and item.event_type not in wanted:
                continue
            await self._post(session, item, headers)

    async def _post(
        self, session: aiohttp.ClientSession, event: SessionEvent, headers: dict[str, str]
    ) -> None:
        data = notification(event)
        timeout = aiohttp.ClientTimeout(total=self.config.timeout)
        problem = ""
        for attempt in range(self.config.retries + 1):
            if attempt:
                await asyncio.sleep(min(0.5 * 2 ** (attempt - 1), 30.0))
            try:
                async with session.post(
                    self.config.url, data=data, headers=headers, timeout=timeout,
                    allow_redirects=False,
                ) as response:  # fmt: skip
                    await response.read()
                    if 200 <= response.status < 300:
                        self.counters.delivered += 1
                        return
                    problem = f"HTTP {response.status}"
            except (aiohttp.ClientError, TimeoutError, OSError) as error:
                problem = str(error) or type(error).__name__
        self._lose(1, f"seq {event.seq} after {self.config.retries + 1} attempts: {problem}")


class Webhooks:
    """Every configured webhook, sharing one HTTP client session."""

    def __init__(self, engine: Engine, configs: tuple[WebhookConfig, ...]) -> None:
        self.hooks = [Webhook(engine, c) for c in configs]
        self._session: aiohttp.ClientSession | None = None

    def start(self) -> None:
        """Begin delivering."""
        if not self.hooks:
            return
        self._session = aiohttp.ClientSession()
        for hook in self.hooks:
            hook.start(self._session)

    async def stop(self) -> None:
        """Stop every webhook and close the client."""
        for hook in self.hooks:
            await hook.stop()
        if self._session is not None:
            await self._session.close()
            self._session = None
