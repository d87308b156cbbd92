"""Bad input, measured (issue section 5): at least 10,000 malformed or hostile requests.

Broken JSON, wrong JSON-RPC envelopes, wrong types, huge values, injection attempts (CR, LF, NUL,
header lines, whole SIP messages) in every string parameter, and HTTP-level abuse (content types,
Host, Origin, methods, paths). Each must get a JSON-RPC error or an HTTP 4xx; the engine must
send no SIP message for any of them and still place a normal call afterwards.

The engine and its MI server run in a thread of their own (their own event loop); hypothesis
drives them with a plain keep-alive HTTP client, which keeps 10,000 requests well under a minute.
Every example is built with at least one defect, so that no request could be valid: nothing may
reach the network.
"""

import asyncio
import collections
import contextlib
import http.client
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.api.config import EngineConfig
from engine.api.engine import Engine
from engine.api.streams import Gap
from engine.mi.server import MiServer
from tests.conftest import require_tool

from .conftest import HOST, mi_config

#: Examples per test; they add up to 10,000.
RAW, FRAMING, PARAMS, HTTP = 2000, 2000, 5000, 1000
COUNTS: collections.Counter[str] = collections.Counter()
SETTINGS = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}

SESSION_COMMANDS = ["ua_session_client_start", "ua_session_reply", "ua_session_update",
                    "ua_session_terminate"]  # fmt: skip
ALL_COMMANDS = [*SESSION_COMMANDS, "ua_session_list", "event_subscribe", "events_list",
                "subscribers_list", "which", "version", "uptime", "ps"]  # fmt: skip


class EngineThread:
    """An engine and its MI server on an event loop in a background thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.messages = 0
        self.events: list[Any] = []
        self.engine: Engine | None = None
        self.server: MiServer | None = None

    def run(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        self.thread.start()
        self.run(self._start())

    async def _start(self) -> None:
        self.engine = Engine(EngineConfig().with_values({"listen": [f"udp:{HOST}:0"]}))
        await self.engine.start()
        messages = self.engine.messages()
        events = self.engine.events()

        async def count() -> None:
            async for item in messages:
                if not isinstance(item, Gap):
                    self.messages += 1

        async def keep() -> None:
            async for item in events:
                self.events.append(item)

        self._tasks = [asyncio.create_task(count()), asyncio.create_task(keep())]
        self.server = MiServer(self.engine, mi_config(max_body_bytes=2048, max_header_bytes=1024))
        await self.server.start()

    def sessions(self) -> int:
        async def n() -> int:
            assert self.engine is not None
            return len(self.engine.sessions())

        return self.run(n())

    def stop(self) -> None:
        async def _stop() -> None:
            assert self.server is not None and self.engine is not None
            await self.server.stop()
            await self.engine.stop(timeout=0.5)
            for task in self._tasks:
                task.cancel()

        self.run(_stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="module")
def target() -> Iterator[EngineThread]:
    runner = EngineThread()
    runner.start()
    yield runner
    runner.stop()


class Client:
    """A keep-alive HTTP/1.1 connection to the MI server."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection(HOST, port, timeout=10)

    def send(
        self, body: bytes, headers: dict[str, str] | None = None, method: str = "POST",
        path: str = "/mi", host: str | None = None,
    ) -> tuple[int, bytes]:  # fmt: skip
        for attempt in range(2):
            try:
                self.conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
                self.conn.putheader("Host", host if host is not None else f"{HOST}:{self.port}")
                sent = {"Content-Type": "application/json", **(headers or {})}
                for name, value in sent.items():
                    self.conn.putheader(name, value)
                self.conn.putheader("Content-Length", str(len(body)))
                self.conn.endheaders(body)
                response = self.conn.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(HOST, self.port, timeout=10)
                if attempt:
                    raise
        raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def client(target: EngineThread) -> Client:
    assert target.server is not None
    return Client(target.server.port)


def expect_refused(target: EngineThread, status: int, data: bytes, kind: str) -> None:
    """The answer is an HTTP 4xx, or JSON-RPC errors only (202 only for pure notifications)."""
    assert target.messages == 0, "a SIP message was sent"
    COUNTS[kind] += 1
    if 400 <= status < 500:
        COUNTS[f"http {status}"] += 1
        return
    if status == 202:
        assert data == b""
        COUNTS["202 notification"] += 1
        return
    assert status == 200, (status, data[:200])
    answer = json.loads(data)
    answers = answer if isinstance(answer, list) else [answer]
    assert answers
    for one in answers:
        assert "error" in one and "result" not in one, one
        assert one["jsonrpc"] == "2.0" and "id" in one
        COUNTS[f"jsonrpc {one['error']['code']}"] += 1


# -- strategies ------------------------------------------------------------------------------------

INJECTIONS = st.sampled_from([
    "\r\n", "\n", "\r", "\x00", "\r\nVia: SIP/2.0/UDP 203.0.113.9;branch=z9hG4bKevil\r\n",
    "\r\n\r\nINVITE sip:victim@203.0.113.9 SIP/2.0\r\n", "\x00\r\n", "\n\n", "\x1b[2J\x00",
    "\r\nContent-Length: 0\r\n\r\n", "\u2028\r\n", "%0d%0a\r\n",
])  # fmt: skip
ANY_TEXT = st.text(max_size=40)
JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
#: Values of the wrong JSON type for a string parameter (ints would be taken as strings).
WRONG_TYPES = st.one_of(
    st.none(), st.booleans(), st.floats(allow_nan=False, allow_infinity=False),
    st.lists(JSON_SCALARS, max_size=3),
    st.dictionaries(st.text(max_size=5), JSON_SCALARS, max_size=3),
)  # fmt: skip


@st.composite
def injected(draw: st.DrawFn, valid: str) -> str:
    """``valid`` with an injection somewhere in it (or instead of it)."""
    text = draw(st.sampled_from([valid, "", draw(ANY_TEXT)]))
    at = draw(st.integers(0, len(text)))
    return text[:at] + draw(INJECTIONS) + text[at:] + draw(ANY_TEXT)


def huge(limit: int) -> st.SearchStrategy[str]:
    return st.integers(limit + 1, limit * 4).map(lambda n: "a" * n)


OWNED = ["Via", "From", "To", "Call-ID", "CSeq", "Content-Length", "Max-Forwards", "Contact",
         "Route", "Record-Route", "v", "f", "t", "i", "l", "m"]  # fmt: skip


@st.composite
def bad_extra_headers(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["owned", "inject", "noname", "badname", "huge", "lines"]))
    if kind == "owned":
        name = "".join(
            c.upper() if draw(st.booleans()) else c.lower() for c in draw(st.sampled_from(OWNED))
        )
        return f"X-Ok: 1\r\n{name}: {draw(st.text(alphabet='abc<>@:;.', max_size=20))}\r\n"
    if kind == "inject":
        return "X-A: " + draw(injected("value")) + "\r\n"
    if kind == "noname":
        return draw(st.text(alphabet="abc def", min_size=1, max_size=20)) + "\r\n"
    if kind == "badname":
        return draw(st.sampled_from(["Bad Name", "Bad@Name", "", "X(1)", "é"])) + ": v\r\n"
    if kind == "huge":
        return "X-Big: " + "b" * 1100 + "\r\n"
    return "".join(f"X-{i}: v\r\n" for i in range(65))


def hostile_value(command: str, name: str) -> st.SearchStrategy[Any]:
    """A value of parameter ``name`` that is refused whatever the other parameters are."""
    if name in ("ruri", "to", "from", "proxy"):
        return st.one_of(injected(f"sip:bob@{HOST}:5"), huge(2048), WRONG_TYPES,
                         st.text(alphabet="abc@.", max_size=20))  # fmt: skip
    if name == "body":
        return st.one_of(huge(2048), injected("v=0").map(lambda s: s + "\x00"), WRONG_TYPES)
    if name == "content_type":
        return st.one_of(injected("text/plain"), WRONG_TYPES, st.text(alphabet="abc ;", max_size=9))
    if name == "extra_headers":
        return st.one_of(bad_extra_headers(), WRONG_TYPES)
    if name == "flags":
        return st.one_of(
            st.text(min_size=1, max_size=10).map(lambda s: s + "!"), huge(64), WRONG_TYPES
        )
    if name == "socket":
        return st.one_of(injected("udp:127.0.0.1:1"), WRONG_TYPES, st.just("tcp:127.0.0.1:1"))
    if name == "code":
        return st.one_of(
            st.integers(max_value=99), st.integers(min_value=700), st.text(alphabet="abc"),
            st.booleans(), st.none(), st.lists(st.integers(), max_size=2),
        )  # fmt: skip
    if name in ("reason", "method", "key"):
        return st.one_of(injected("OK"), huge(300), WRONG_TYPES)
    raise AssertionError(name)


SIGNATURES = {
    "ua_session_client_start": (
        ["ruri", "to", "from"],
        ["proxy", "body", "content_type", "extra_headers", "flags", "socket"],
    ),
    "ua_session_reply": (
        ["key", "method", "code", "reason"],
        ["body", "content_type", "extra_headers"],
    ),
    "ua_session_update": (["key", "method"], ["body", "content_type", "extra_headers"]),
    "ua_session_terminate": (["key"], ["extra_headers"]),
}
KEY = "B2B.1.1.1700000000.0123456789abcdef"
VALID_OPTIONAL = {
    "body": "x",
    "content_type": "text/plain",
    "extra_headers": "X-A: 1\r\n",
    "flags": "b",
    "proxy": f"sip:{HOST}:9",
    "socket": "udp:127.0.0.1:1",
}


def valid_params(command: str, sink_port: int) -> dict[str, Any]:
    if command == "ua_session_client_start":
        return {"ruri": f"sip:bob@{HOST}:{sink_port}", "to": "sip:b@x", "from": "sip:a@x"}
    if command == "ua_session_reply":
        return {"key": KEY, "method": "INVITE", "code": 200, "reason": "OK"}
    if command == "ua_session_update":
        return {"key": KEY, "method": "INFO"}
    return {"key": KEY}


@st.composite
def hostile_call(draw: st.DrawFn) -> tuple[str, Any]:
    """A session command (or event_subscribe) with at least one refused parameter."""
    command = draw(st.sampled_from([*SESSION_COMMANDS, "event_subscribe", "ua_session_list"]))
    if command == "event_subscribe":
        event = draw(st.one_of(st.just("E_UA_SESSION"), injected("E_UA_SESSION"), WRONG_TYPES))
        socket = draw(st.one_of(
            injected("udp:127.0.0.1:9"), st.text(max_size=30), WRONG_TYPES,
            st.sampled_from(["udp:example.com:9", "tcp:host:1", "udp:127.0.0.1:0", "sctp:1.2.3.4:5",
                             "udp:0.0.0.0:9", "udp:224.0.0.1:9", "tcp:[::1]:70000"]),
        ))  # fmt: skip
        if (
            event == "E_UA_SESSION"
            and isinstance(socket, str)
            and not any(c in socket for c in "\r\n\x00")
        ):
            socket = socket + "\x00"  # keep a defect whatever text was drawn
        params: Any = {"event": event, "socket": socket}
        if draw(st.booleans()):
            params["expire"] = draw(st.one_of(st.integers(max_value=-1), WRONG_TYPES))
        return command, params
    if command == "ua_session_list":
        return command, {"key": draw(st.one_of(injected("B2B.1"), WRONG_TYPES, ANY_TEXT))}
    required, optional = SIGNATURES[command]
    params = valid_params(command, 9)
    for name in draw(st.lists(st.sampled_from(optional), max_size=3, unique=True)):
        params[name] = VALID_OPTIONAL[name]
    if "content_type" in params and "body" not in params:
        params["body"] = "x"
    defect = draw(st.sampled_from(["value", "value", "value", "missing", "unknown", "positional"]))
    if defect == "missing":
        del params[draw(st.sampled_from(required))]
    elif defect == "unknown":
        params[
            draw(st.text(min_size=1, max_size=10).filter(lambda n: n not in required + optional))
        ] = 1
    else:
        bad = draw(st.sampled_from(list(params)))
        params[bad] = draw(hostile_value(command, bad))
        if defect == "positional":
            params = [params[n] for n in required + optional if n in params]
    return command, params


@st.composite
def broken_envelope(draw: st.DrawFn) -> Any:
    """A JSON-RPC document with a broken envelope (or a batch of them)."""
    kind = draw(st.sampled_from(["jsonrpc", "method", "unknown", "params", "id", "batch", "value"]))
    doc: dict[str, Any] = {"jsonrpc": "2.0", "method": draw(st.sampled_from(ALL_COMMANDS)), "id": 1}
    if kind == "jsonrpc":
        value = draw(st.one_of(JSON_VALUES.filter(lambda v: v != "2.0"), st.just("2")))
        if draw(st.booleans()):
            doc["jsonrpc"] = value
        else:
            del doc["jsonrpc"]
    elif kind == "method":
        doc["method"] = draw(JSON_VALUES.filter(lambda v: not isinstance(v, str)))
    elif kind == "unknown":
        doc["method"] = draw(st.text(max_size=30).filter(lambda m: m not in ALL_COMMANDS))
    elif kind == "params":
        doc["params"] = draw(JSON_SCALARS)
    elif kind == "id":
        doc["id"] = draw(
            st.one_of(
                st.booleans(),
                st.lists(JSON_SCALARS, max_size=2),
                st.dictionaries(st.text(max_size=3), JSON_SCALARS, max_size=2),
            )
        )
    elif kind == "batch":
        return draw(st.lists(broken_envelope(), max_size=4))
    else:
        return draw(JSON_VALUES.filter(lambda v: not isinstance(v, dict | list)))
    return doc


# -- the runs --------------------------------------------------------------------------------------


@settings(max_examples=RAW, **SETTINGS)
@given(body=st.one_of(
    st.binary(max_size=200), st.text(max_size=200).map(str.encode),
    st.sampled_from([b"", b"{", b'{"jsonrpc":"2.0"', b"[" * 5000, b'{"a":' * 3000, b"NaN",
                     b'{"jsonrpc":"2.0","method":"nope","id":1e999999}', b"\xef\xbb\xbf{}",
                     b'{"id":' + b"9" * 5000 + b"}", b"null", b"[]", b"[[]]"]),
))  # fmt: skip
def test_malformed_bodies(target: EngineThread, client: Client, body: bytes) -> None:
    with contextlib.suppress(ValueError, RecursionError):
        doc = json.loads(body)
        if (
            isinstance(doc, dict)
            and doc.get("jsonrpc") == "2.0"
            and doc.get("method") in ALL_COMMANDS
        ):
            return  # the rare valid request a random text could be: not bad input
    status, data = client.send(body)
    expect_refused(target, status, data, "malformed body")


@settings(max_examples=FRAMING, **SETTINGS)
@given(doc=broken_envelope())
def test_broken_envelopes(target: EngineThread, client: Client, doc: Any) -> None:
    status, data = client.send(json.dumps(doc).encode())
    expect_refused(target, status, data, "broken envelope")


@settings(max_examples=PARAMS, **SETTINGS)
@given(call=hostile_call(), request_id=st.one_of(st.integers(), st.text(max_size=10)))
def test_hostile_parameters(
    target: EngineThread, client: Client, call: tuple[str, Any], request_id: Any
) -> None:
    command, params = call
    doc = {"jsonrpc": "2.0", "method": command, "params": params, "id": request_id}
    status, data = client.send(json.dumps(doc).encode())
    assert status == 200
    expect_refused(target, status, data, "hostile parameters")


PRINTABLE = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=30)


@settings(max_examples=HTTP, **SETTINGS)
@given(
    kind=st.sampled_from(["content-type", "host", "origin", "method", "path", "auth"]),
    value=PRINTABLE,
)
def test_http_abuse(target: EngineThread, client: Client, kind: str, value: str) -> None:
    assert target.server is not None
    port = target.server.port
    body = json.dumps({"jsonrpc": "2.0", "method": "version", "id": 1}).encode()
    if kind == "content-type":
        if value.lower().startswith("application/json"):
            value = "x" + value
        status, data = client.send(body, {"Content-Type": value})
    elif kind == "host":
        if value.lower() in (HOST, f"{HOST}:{port}", "localhost", f"localhost:{port}"):
            value += "x"
        status, data = client.send(body, host=value)
    elif kind == "origin":
        status, data = client.send(body, {"Origin": value})
    elif kind == "method":
        method = "".join(c for c in value.upper() if c.isalpha()) or "GET"
        if method == "POST":
            method = "PUT"
        status, data = client.send(body, method=method)
    elif kind == "path":
        path = "/" + value.lstrip("/")
        if path in ("/mi", "/events"):
            path += "x"
        status, data = client.send(body, path=path)
    else:  # a token where none is configured is ignored: the request must still be bad
        status, data = client.send(b"{" + value.encode(), {"Authorization": f"Bearer {value}"})
    assert status != 200 or kind == "auth", (kind, value, status)
    expect_refused(target, status, data, f"http {kind}")


def test_totals_and_a_normal_call_afterwards(target: EngineThread, tmp_path: Path) -> None:
    total = sum(COUNTS[k] for k in ("malformed body", "broken envelope", "hostile parameters",
                                    "http content-type", "http host", "http origin", "http method",
                                    "http path", "http auth"))  # fmt: skip
    if total < 10000:
        pytest.skip("run the whole module to count the hostile requests")
    time.sleep(0.2)
    assert target.messages == 0, "a SIP message was sent for bad input"
    assert target.sessions() == 0
    assert target.events == []
    print(f"\nhostile requests: {total}")
    for key, value in sorted(COUNTS.items()):
        print(f"  {key}: {value}")

    # A normal call still works: SIPp answers, the engine ACKs, terminate BYEs.
    sipp = require_tool("sipp")
    from .conftest import free_udp_port

    port = free_udp_port()
    process = subprocess.Popen(
        [sipp, "-sn", "uas", "-i", HOST, "-p", str(port), "-nostdin", "-timeout", "60"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(0.5)
        assert target.server is not None
        client = Client(target.server.port)
        params = {"ruri": f"sip:service@{HOST}:{port}", "to": "sip:s@x", "from": "sip:a@x"}
        doc = {"jsonrpc": "2.0", "method": "ua_session_client_start", "id": 1, "params": params}
        _, data = client.send(json.dumps(doc).encode())
        key = json.loads(data)["result"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
            e.key == key and e.event_type == "ANSWERED" for e in target.events
        ):
            time.sleep(0.05)
        assert any(e.key == key and e.event_type == "ANSWERED" for e in target.events)
        doc = {"jsonrpc": "2.0", "method": "ua_session_terminate", "id": 2, "params": [key]}
        assert json.loads(client.send(json.dumps(doc).encode())[1])["result"] == "OK"
        assert target.messages >= 4  # INVITE, 180, 200, ACK (and BYE)
    finally:
        process.terminate()
        process.wait(5)
