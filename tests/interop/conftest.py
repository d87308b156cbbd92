"""Helpers for the interop tests: the engine in-process against a real SIPp, all on 127.0.0.1.

- ``start_engine(config)``: an Engine listening on a free UDP port of 127.0.0.1, with a reader of
  its SessionEvents opened before any traffic; stopped when the test ends.
- ``run_sipp(...)``: run SIPp to its end and get a :class:`SippResult` (exit code, error log,
  final statistics); ``run_sipp.start(...)`` runs it in the background while the test drives the
  engine, then ``await sipp.wait()``. Any SIPp still running when the test ends is killed.

SIPp logs (errors, messages, statistics) go to the test's tmp_path, and its working directory is
tmp_path too, so nothing is written into the project. An assertion on a SIPp run puts SIPp's error
log and the end of its output into the failure message.
"""

import asyncio
import contextlib
import csv
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from engine.api.config import EngineConfig
from engine.api.engine import Engine
from engine.api.streams import Gap, Reader
from engine.ua.events import SessionEvent
from tests.conftest import require_tool

SCENARIOS = Path(__file__).parent / "scenarios"
#: Starts each entry of SIPp's message log (-trace_msg).
_LOG_SEPARATOR = re.compile(r"-{20,} ?")
HOST = "127.0.0.1"
#: SIPp's own global limit (-timeout); the test gives up on the process a little later.
SIPP_TIMEOUT = 60
#: How long a test waits for an engine event that should come at once on loopback.
WAIT = 10.0

#: An SDP offer for calls the engine places (sendrecv, PCMU).
SDP_OFFER = (
    "v=0\r\n"
    "o=alice 1000 1000 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\n"
    "m=audio 40000 RTP/AVP 0\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
)


def sdp(direction: str, version: int = 1001) -> str:
    """The same media as SDP_OFFER with a direction attribute (hold: sendonly; resume: sendrecv)."""
    return (
        "v=0\r\n"
        f"o=alice 1000 {version} IN IP4 127.0.0.1\r\n"
        "s=-\r\n"
        "c=IN IP4 127.0.0.1\r\n"
        "t=0 0\r\n"
        "m=audio 40000 RTP/AVP 0\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        f"a={direction}\r\n"
    )


def free_udp_port() -> int:
    """A UDP port of 127.0.0.1 that nobody is bound to right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def udp_port_bound(port: int) -> bool | None:
    """True when something is bound to UDP 127.0.0.1:``port``; None if this system cannot tell
    (it has no /proc/net/udp)."""
    wanted = f"0100007F:{port:04X}"
    try:
        lines = Path("/proc/net/udp").read_text().splitlines()[1:]
    except OSError:
        return None
    return any(len(fields) > 1 and fields[1] == wanted for fields in map(str.split, lines))


# -- the engine ---------------------------------------------------------------------------------


@dataclass
class RunningEngine:
    """An engine under test, its port, and everything it has reported so far."""

    engine: Engine
    port: int
    reader: Reader[SessionEvent]
    #: Every event read so far, in order.
    seen: list[SessionEvent] = field(default_factory=list)

    def _take(self, item: SessionEvent | Gap) -> SessionEvent:
        assert not isinstance(item, Gap), f"the event reader lost {item.lost} events"
        self.seen.append(item)
        return item

    def drain(self) -> list[SessionEvent]:
        """Read every event already published; all events seen so far."""
        while (item := self.reader.get_nowait()) is not None:
            self._take(item)
        return self.seen

    async def next_event(self, timeout: float = WAIT) -> SessionEvent:
        """The next event, or fail after ``timeout`` seconds."""
        try:
            item = await asyncio.wait_for(self.reader.get(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"no engine event within {timeout} s; seen so far: {describe(self.seen)}"
            ) from None
        return self._take(item)

    async def wait_for(
        self, event_type: str, key: str | None = None, timeout: float = WAIT
    ) -> SessionEvent:
        """The next event of ``event_type`` (and ``key``), reading past others."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"no {event_type} event within {timeout} s; seen: {describe(self.seen)}"
                )
            event = await self.next_event(left)
            if event.event_type == event_type and key in (None, event.key):
                return event

    async def idle(self, timeout: float = WAIT) -> None:
        """Wait until the engine holds no session, then read what it reported."""
        deadline = time.monotonic() + timeout
        while self.engine.sessions() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0)
        self.drain()
        assert self.engine.sessions() == [], f"sessions left: {self.engine.sessions()}"

    def kinds(self, key: str) -> list[str]:
        """The event types of one session, in order."""
        return [e.event_type for e in self.seen if e.key == key]


def describe(events: list[SessionEvent]) -> str:
    """A short line per event, for assertion messages."""
    lines = [
        f"{e.seq} {e.key[-8:]} {e.event_type} {e.method} {e.status} {e.origin}"
        for e in events[-40:]
    ]
    return "\n  " + "\n  ".join(lines) if lines else "(none)"


@pytest.fixture
async def start_engine() -> AsyncIterator[Callable[..., Awaitable[RunningEngine]]]:
    """``await start_engine(config)``: a started engine on a free port of 127.0.0.1."""
    started: list[Engine] = []

    async def start(config: EngineConfig | None = None) -> RunningEngine:
        config = config or engine_config()
        engine = Engine(config)
        listeners = await engine.start()
        started.append(engine)
        reader = engine.events(maxsize=100000)
        return RunningEngine(engine, listeners[0].port, reader)

    yield start
    for engine in started:
        await engine.stop(timeout=1.0)


def engine_config(**values: object) -> EngineConfig:
    """An EngineConfig listening on udp:127.0.0.1:0 (a free port), with ``values`` on top."""
    return EngineConfig().with_values({"listen": [f"udp:{HOST}:0"], **values})


# -- SIPp ---------------------------------------------------------------------------------------


@dataclass
class SippResult:
    """How a SIPp run ended."""

    name: str
    returncode: int
    stdout: str
    stderr: str
    #: The error log (-trace_err): unexpected messages, retransmission give-ups, failed checks.
    errors: str
    messages_file: Path
    #: The last row of the statistics file (-trace_stat): cumulative counters.
    stats: dict[str, str]

    def counter(self, name: str) -> int:
        """A cumulative counter of the statistics file, ``SuccessfulCall`` or ``FailedCall``."""
        value = self.stats.get(f"{name}(C)")
        assert value is not None, f"no {name} in SIPp's statistics\n{self.report()}"
        return int(value)

    @property
    def successful(self) -> int:
        return self.counter("SuccessfulCall")

    @property
    def failed(self) -> int:
        return self.counter("FailedCall")

    def report(self) -> str:
        """Everything worth reading when a run did not go as expected."""
        errors = self.errors.strip() or "(empty)"
        if len(errors) > 12000:
            errors = "...\n" + errors[-12000:]
        tail = "\n".join(self.stdout.splitlines()[-45:])
        return (
            f"SIPp {self.name} exited with {self.returncode}\n"
            f"--- error log ---\n{errors}\n"
            f"--- stderr ---\n{self.stderr.strip()[-3000:]}\n"
            f"--- end of the screen ---\n{tail}\n"
            f"--- messages: {self.messages_file} ---"
        )

    def sent_requests(self) -> dict[str, set[str]]:
        """Call-ID -> the methods of the requests SIPp really sent (its message log; a message
        that ``-lost`` dropped on sending is logged without its text, so it is not counted)."""
        sent: dict[str, set[str]] = {}
        text = self.messages_file.read_text("utf-8", "replace")
        for block in _LOG_SEPARATOR.split(text):
            lines = block.splitlines()
            if len(lines) < 3 or not lines[1].startswith(("UDP message sent", "TCP message sent")):
                continue
            request = next((line for line in lines[2:] if line.strip()), "")
            method = request.split(" ", 1)[0]
            if method.startswith("SIP/"):
                continue
            call_ids = [line for line in lines if line.lower().startswith("call-id:")]
            call_id = call_ids[0].split(":", 1)[1].strip() if call_ids else ""
            sent.setdefault(call_id, set()).add(method)
        return sent

    def assert_passed(self, calls: int) -> None:
        """Exit code 0, ``calls`` successful calls and no failed one."""
        assert self.returncode == 0, self.report()
        assert (self.successful, self.failed) == (calls, 0), self.report()


def _read(path: Path) -> str:
    try:
        return path.read_text("utf-8", "replace")
    except OSError:
        return ""


class Sipp:
    """A SIPp process running in the background."""

    def __init__(
        self, name: str, port: int, process: asyncio.subprocess.Process, files: dict[str, Path]
    ) -> None:
        self.name = name
        #: SIPp's SIP port on 127.0.0.1.
        self.port = port
        self.process = process
        self.files = files

    async def wait(self, timeout: float = SIPP_TIMEOUT + 30) -> SippResult:
        """Wait for SIPp to exit (kill it after ``timeout`` s) and read its logs."""
        killed = ""
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self.kill()
            await self.process.wait()
            killed = f"\n(killed by the test after {timeout} s)"
        stats: dict[str, str] = {}
        with contextlib.suppress(OSError):
            with self.files["stats"].open(newline="") as f:
                rows = list(csv.reader(f, delimiter=";"))
            if len(rows) >= 2:
                stats = dict(zip(rows[0], rows[-1], strict=False))
        return SippResult(
            name=self.name,
            returncode=self.process.returncode if self.process.returncode is not None else -1,
            stdout=_read(self.files["screen"]),
            stderr=_read(self.files["stderr"]) + killed,
            errors=_read(self.files["errors"]),
            messages_file=self.files["messages"],
            stats=stats,
        )

    def kill(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()


class SippRunner:
    """Starts SIPp processes with the options every interop test uses."""

    def __init__(self, executable: str, directory: Path) -> None:
        self.executable = executable
        self.directory = directory
        self.running: list[Sipp] = []
        self._count = 0

    async def __call__(self, *args: object, **kwargs: object) -> SippResult:
        """Run SIPp to its end (arguments as for :meth:`start`)."""
        sipp = await self.start(*args, **kwargs)  # type: ignore[arg-type]
        return await sipp.wait()

    async def start(
        self,
        scenario: str,
        *,
        remote: str | None = None,
        calls: int = 1,
        rate: float | None = None,
        port: int | None = None,
        options: list[str] | tuple[str, ...] = (),
    ) -> Sipp:
        """Start SIPp; return once its SIP port is bound.

        ``scenario``: a built-in name (``uac``, ``uas``) or a file name in scenarios/.
        ``remote``: host:port to call (client scenarios). ``calls``: -m. ``rate``: calls/s.
        ``port``: SIPp's own SIP port (a free one by default). ``options``: more SIPp flags.
        """
        self._count += 1
        port = port or free_udp_port()
        stem = Path(scenario).stem
        name = f"{self._count}-{stem}"
        files = {
            kind: self.directory / f"sipp-{name}-{kind}.{ext}"
            for kind, ext in (
                ("errors", "log"), ("messages", "log"), ("stats", "csv"),
                ("screen", "txt"), ("stderr", "txt"),
            )
        }  # fmt: skip
        if scenario.endswith(".xml"):
            path = SCENARIOS / scenario
            assert path.is_file(), f"no scenario {path}"
            chosen = ["-sf", str(path)]
        else:
            chosen = ["-sn", scenario]
        argv: list[str] = [*chosen]
        if remote:
            assert remote.startswith(f"{HOST}:"), "interop tests stay on 127.0.0.1"
            argv.append(remote)
        argv += [
            "-i", HOST, "-p", str(port), "-ci", HOST, "-cp", str(free_udp_port()),
            "-m", str(calls), "-nostdin",
            "-timeout", f"{SIPP_TIMEOUT}s", "-timeout_error",
            "-trace_err", "-error_file", str(files["errors"]),
            "-trace_msg", "-message_file", str(files["messages"]),
            "-trace_stat", "-stf", str(files["stats"]),
        ]  # fmt: skip
        if rate is not None:
            argv += ["-r", str(rate)]
        argv += [str(option) for option in options]
        # Files, not pipes: nobody reads SIPp's screen while a test drives the engine.
        with files["screen"].open("wb") as stdout, files["stderr"].open("wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                self.executable,
                *argv,
                cwd=self.directory,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
            )
        sipp = Sipp(name, port, process, files)
        self.running.append(sipp)
        deadline = time.monotonic() + 5
        while not (bound := udp_port_bound(port)):
            if bound is None:  # cannot tell: give it a moment
                await asyncio.sleep(0.5)
                break
            if process.returncode is not None or time.monotonic() > deadline:
                result = await sipp.wait(5)
                raise AssertionError("SIPp did not start\n" + result.report())
            await asyncio.sleep(0.02)
        return sipp

    async def close(self) -> None:
        for sipp in self.running:
            if sipp.process.returncode is None:
                sipp.kill()
                await sipp.process.wait()


@pytest.fixture
async def run_sipp(tmp_path: Path) -> AsyncIterator[SippRunner]:
    """``await run_sipp("uac", remote=..., calls=...)`` or ``await run_sipp.start(...)``."""
    runner = SippRunner(require_tool("sipp"), tmp_path)
    yield runner
    await runner.close()
