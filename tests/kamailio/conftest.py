"""Helpers for the Kamailio tests: a real registrar and record-routing proxy on 127.0.0.1.

- ``kamailio``: a started :class:`Kamailio` (Debian's ``kamailio`` with kamailio.cfg.in filled
  in) on a free UDP port; ``stop()`` and ``start()`` again on the same port; ``contacts(user)``
  reads its location table over ``kamcmd ul.dump``. Stopped (SIGTERM, then SIGKILL) at the end.
- ``start_ua``: ``await start_ua(accounts=[...], incoming={...}, engine={...})`` starts an
  Engine on a free port of 127.0.0.1 (``account(kamailio, ...)`` builds an ``[[accounts]]``
  table aimed at the Kamailio), with readers of its events (session and registration) and of
  its SIP messages opened before start(), so the first REGISTER is seen too. It depends on
  ``kamailio``, so the engine stops (and unregisters) before Kamailio does.
- ``run_sipp`` is the interop tests' SIPp runner (scenarios of this directory are given as
  paths).

Kamailio's own output (it logs to stderr) goes to ``kamailio.log`` in the test's tmp_path, and
the end of it is in the message of an assertion about Kamailio.
"""

import asyncio
import contextlib
import os
import re
import signal
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from engine.api.config import EngineConfig
from engine.api.engine import Engine, MessageRecord
from engine.api.streams import Gap, Reader
from engine.sip import Request, Response, parse_message
from engine.ua.events import SessionEvent
from engine.ua.registration import RegistrationEvent
from tests.conftest import require_tool
from tests.interop.conftest import (  # noqa: F401 (run_sipp: a fixture used here)
    HOST,
    WAIT,
    free_udp_port,
    run_sipp,
    udp_port_bound,
)

HERE = Path(__file__).parent
SCENARIOS = HERE / "scenarios"
TEMPLATE = HERE / "kamailio.cfg.in"
#: The users' domain: an alias of the Kamailio instance (no DNS is ever asked).
DOMAIN = "ua.test"
#: The fixed user table of kamailio.cfg.in (route[PASSWORD]).
USERS = {"alice": "secret", "bob": "secret"}
#: How long Kamailio may take to answer its first OPTIONS.
START_TIMEOUT = 10.0

Event = SessionEvent | RegistrationEvent


# -- Kamailio -----------------------------------------------------------------------------------


class _Probe(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if not self.answer.done():
            self.answer.set_result(data)


class Kamailio:
    """One Kamailio process (restartable on the same ports)."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.executable = require_tool("kamailio")
        self.kamcmd = require_tool("kamcmd")
        self.directory = directory
        self.port = port or free_udp_port()
        self.ctl_port = free_udp_port()
        self.config = directory / "kamailio.cfg"
        self.log_file = directory / "kamailio.log"
        self.run_dir = directory / "kamailio-run"
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0

    @property
    def address(self) -> str:
        """host:port."""
        return f"{HOST}:{self.port}"

    @property
    def uri(self) -> str:
        """The server's SIP URI (registrar, outbound proxy)."""
        return f"sip:{HOST}:{self.port}"

    def write_config(self) -> None:
        text = TEMPLATE.read_text()
        for name, value in (
            ("PORT", self.port), ("CTL_PORT", self.ctl_port), ("DOMAIN", DOMAIN),
        ):  # fmt: skip
            text = text.replace(f"@{name}@", str(value))
        left = re.findall(r"@[A-Z_]+@", text)
        assert not left, f"placeholders left in {TEMPLATE.name}: {left}"
        self.config.write_text(text)

    async def start(self) -> None:
        """Start Kamailio and wait until it answers OPTIONS."""
        assert self.process is None or self.process.returncode is not None, "already running"
        if not self.config.exists():
            self.write_config()
        self.run_dir.mkdir(exist_ok=True)
        self.starts += 1
        with self.log_file.open("ab") as log:
            log.write(f"==== start {self.starts} ====\n".encode())
            log.flush()
            self.process = await asyncio.create_subprocess_exec(
                self.executable,
                "-f", str(self.config),
                "-DD", "-E", "-n", "1", "-m", "64", "-M", "8",
                "-Y", str(self.run_dir),
                "-P", str(self.run_dir / "kamailio.pid"),
                "-w", str(self.directory),
                cwd=self.directory,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.returncode is not None:
                raise AssertionError(f"Kamailio exited at start\n{self.log_tail()}")
            if await self.options(timeout=0.2):
                return
            if time.monotonic() > deadline:
                await self.stop()
                raise AssertionError(f"Kamailio did not answer OPTIONS\n{self.log_tail()}")

    async def options(self, timeout: float) -> bool:
        """Send one OPTIONS to the server; True if it answered 200."""
        loop = asyncio.get_running_loop()
        transport, probe = await loop.create_datagram_endpoint(
            _Probe, local_addr=(HOST, 0), family=socket.AF_INET
        )
        try:
            local_port = transport.get_extra_info("sockname")[1]
            branch = f"z9hG4bK-probe-{time.monotonic_ns()}"
            message = (
                f"OPTIONS {self.uri} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {HOST}:{local_port};branch={branch}\r\n"
                "Max-Forwards: 70\r\n"
                f"From: <sip:probe@{HOST}:{local_port}>;tag=probe\r\n"
                f"To: <{self.uri}>\r\n"
                f"Call-ID: {branch}\r\n"
                "CSeq: 1 OPTIONS\r\n"
                "Content-Length: 0\r\n\r\n"
            )
            transport.sendto(message.encode(), (HOST, self.port))
            try:
                answer = await asyncio.wait_for(probe.answer, timeout)
            except TimeoutError:
                return False
            return answer.startswith(b"SIP/2.0 200 ")
        finally:
            transport.close()

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL to its process group after 5 s."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
        # Its children (one per role) leave with it; wait until the SIP port is free again.
        deadline = time.monotonic() + 5
        while udp_port_bound(self.port) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    async def rpc(self, *command: str) -> str:
        """``kamcmd`` against this instance; its output."""
        process = await asyncio.create_subprocess_exec(
            self.kamcmd,
            "-s", f"udp:{HOST}:{self.ctl_port}",
            *command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(process.communicate(), 10)
        text = out.decode("utf-8", "replace")
        assert process.returncode == 0, f"kamcmd {' '.join(command)}: {text}\n{self.log_tail()}"
        return text

    async def contacts(self, user: str) -> dict[str, int]:
        """The location table's contacts of ``user``: address -> seconds left (ul.dump)."""
        found: dict[str, int] = {}
        aor = None
        address = None
        for line in (await self.rpc("ul.dump")).splitlines():
            key, _, value = line.strip().partition(":")
            value = value.strip()
            if key == "AoR":
                aor = value
            elif key == "Address" and aor == user:
                address = value
            elif key == "Expires" and aor == user and address is not None:
                found[address] = int(value) if value.lstrip("-").isdigit() else -1
                address = None
        return found

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_file.read_text("utf-8", "replace")
        except OSError:
            return "(no Kamailio log)"
        return "--- Kamailio log (end) ---\n" + "\n".join(text.splitlines()[-lines:])


@pytest.fixture
async def kamailio(tmp_path: Path) -> AsyncIterator[Kamailio]:
    """A running Kamailio on a free port of 127.0.0.1 (needs kamailio and sipp installed)."""
    require_tool("sipp")
    server = Kamailio(tmp_path)
    await server.start()
    yield server
    await server.stop()


# -- the engine ---------------------------------------------------------------------------------


def account(kamailio: Kamailio, **values: object) -> dict[str, object]:
    """An ``[[accounts]]`` table for alice at ``kamailio`` (``values`` on top)."""
    table: dict[str, object] = {
        "name": "alice",
        "aor": f"sip:alice@{DOMAIN}",
        "registrar": kamailio.uri,
        "username": "alice",
        "password": USERS["alice"],
    }
    table.update(values)
    return table


@dataclass
class Ua:
    """An engine under test with everything it reported and sent so far."""

    engine: Engine
    port: int
    events: Reader[Event]
    wire: Reader[MessageRecord]
    seen: list[Event] = field(default_factory=list)
    messages: list[MessageRecord] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    async def next_event(self, timeout: float = WAIT) -> Event:
        try:
            item = await asyncio.wait_for(self.events.get(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"no engine event within {timeout} s; seen: {describe(self.seen)}"
            ) from None
        assert not isinstance(item, Gap), f"the event reader lost {item.lost} events"
        self.seen.append(item)
        return item

    async def registration(
        self, event_type: str, account: str = "alice", timeout: float = WAIT
    ) -> RegistrationEvent:
        """The next RegistrationEvent of ``event_type`` for ``account``, reading past others."""
        return await self._wait(
            lambda e: (
                isinstance(e, RegistrationEvent)
                and (e.event_type, e.account) == (event_type, account)
            ),
            f"{event_type} of account {account}",
            timeout,
        )  # type: ignore[return-value]

    async def session_event(
        self, event_type: str, key: str | None = None, timeout: float = WAIT
    ) -> SessionEvent:
        """The next SessionEvent of ``event_type`` (and ``key``), reading past others."""
        return await self._wait(
            lambda e: (
                isinstance(e, SessionEvent) and e.event_type == event_type and key in (None, e.key)
            ),
            f"{event_type} session event",
            timeout,
        )  # type: ignore[return-value]

    async def _wait(self, wanted: Callable[[Event], bool], what: str, timeout: float) -> Event:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {what} within {timeout} s; seen: {describe(self.seen)}")
            event = await self.next_event(left)
            if wanted(event):
                return event

    def sip(self) -> list[tuple[MessageRecord, Request | Response]]:
        """Every SIP message the engine sent or received so far, parsed, in order."""
        while (item := self.wire.get_nowait()) is not None:
            assert not isinstance(item, Gap), f"the message reader lost {item.lost} messages"
            self.messages.append(item)
        return [(record, parse_message(record.data)) for record in self.messages]

    def requests_out(self) -> list[tuple[MessageRecord, Request]]:
        """Every request the engine sent so far (retransmissions included), in order."""
        return [(r, m) for r, m in self.sip() if r.direction == "out" and isinstance(m, Request)]

    def requests_in(self, method: str) -> list[tuple[MessageRecord, Request]]:
        """The ``method`` requests the engine received so far (retransmissions included)."""
        return [
            (r, m)
            for r, m in self.sip()
            if r.direction == "in" and isinstance(m, Request) and m.method == method
        ]

    def ladder(self) -> str:
        """The first lines of every message, for assertion messages."""
        return "\n  " + "\n  ".join(
            f"{r.direction:3} {r.remote:22} {r.first_line}" for r, _ in self.sip()
        )


def describe(events: list[Event]) -> str:
    lines = []
    for e in events[-40:]:
        if isinstance(e, RegistrationEvent):
            lines.append(f"{e.seq} reg {e.account} {e.event_type} {e.status} {e.reason} {e.origin}")
        else:
            lines.append(f"{e.seq} {e.key[-8:]} {e.event_type} {e.method} {e.status} {e.origin}")
    return "\n  " + "\n  ".join(lines) if lines else "(none)"


@pytest.fixture
async def start_ua(kamailio: Kamailio) -> AsyncIterator[Callable[..., Awaitable[Ua]]]:
    """``await start_ua(accounts=[...], incoming={...}, engine={...})``: a started engine on a
    free port of 127.0.0.1; stopped (unregistering its accounts) at the end, before Kamailio
    (this fixture depends on ``kamailio``, so it is torn down first)."""
    started: list[Engine] = []

    async def start(
        *,
        accounts: list[dict[str, object]],
        incoming: dict[str, object] | None = None,
        engine: dict[str, object] | None = None,
    ) -> Ua:
        data: dict[str, Any] = {
            "engine": {"listen": [f"udp:{HOST}:0"], **(engine or {})},
            "accounts": accounts,
        }
        if incoming is not None:
            data["incoming"] = incoming
        config = EngineConfig.from_dict(data)
        ua = Engine(config)
        # Readers before start(): it sends the first REGISTERs.
        events, wire = ua.events(maxsize=100000), ua.messages(maxsize=100000)
        listeners = await ua.start()
        started.append(ua)
        return Ua(ua, listeners[0].port, events, wire)

    yield start
    for ua in started:
        await ua.stop(timeout=2.0)
