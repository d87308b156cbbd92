"""Every command and error row of MI-API.md section 2, over HTTP, and JSON-RPC 2.0 framing."""

import asyncio
import json
from typing import Any

import pytest

from engine.api.engine import Engine

from .conftest import HOST, SDP_OFFER, Rpc, Sink, event_of

UNKNOWN_KEY = "B2B.1.1.1700000000.0123456789abcdef"
TOO_FEW = "Too few or too many parameters"
NO_MATCH = "Named parameters do not match"


def invalid_params(data: str) -> dict[str, Any]:
    return {"code": -32602, "message": "Invalid params", "data": data}


async def call_to(rpc: Rpc, sink: Sink, **extra: Any) -> str:
    """Start a call to the silent peer; the key (the INVITE is taken off the sink)."""
    params = {"ruri": f"sip:bob@{HOST}:{sink.port}", "to": f"sip:bob@{HOST}", "from": "sip:a@x"}
    params.update(extra)
    key = await rpc("ua_session_client_start", params)
    await sink.get()
    return key


# -- framing ---------------------------------------------------------------------------------------


async def test_unknown_command(rpc: Rpc) -> None:
    assert await rpc.error("no_such_command") == {"code": -32601, "message": "Method not found"}


@pytest.mark.parametrize("body", [b"", b"   ", b"{not json", b"\xff\xfe", b'{"a": NaN}', b"[1,"])
async def test_parse_error_has_id_null(rpc: Rpc, body: bytes) -> None:
    status, answer = await rpc.post(body)
    assert status == 200
    assert answer["id"] is None and answer["jsonrpc"] == "2.0"
    assert (answer["error"]["code"], answer["error"]["message"]) == (-32700, "Parse error")


@pytest.mark.parametrize(
    "document",
    [
        {"method": "version", "id": 1},  # no jsonrpc
        {"jsonrpc": "1.0", "method": "version", "id": 1},
        {"jsonrpc": "2.0", "method": 5, "id": 1},
        {"jsonrpc": "2.0", "id": 1},
        {"jsonrpc": "2.0", "method": "version", "params": "x", "id": 1},
        {"jsonrpc": "2.0", "method": "version", "params": 3, "id": 1},
        {"jsonrpc": "2.0", "method": "version", "id": {"a": 1}},
        {"jsonrpc": "2.0", "method": "version", "id": True},
        42,
        "version",
        None,
    ],
)
async def test_invalid_request(rpc: Rpc, document: Any) -> None:
    status, answer = await rpc.post(json.dumps(document))
    assert status == 200
    assert (answer["error"]["code"], answer["error"]["message"]) == (-32600, "Invalid Request")
    expected_id = 1 if isinstance(document, dict) and type(document.get("id")) is int else None
    assert answer["id"] == expected_id


@pytest.mark.parametrize("request_id", ["abc", 7, 1.5, None])
async def test_id_is_echoed(rpc: Rpc, request_id: Any) -> None:
    answer = await rpc.request("version", id=request_id)
    assert answer["id"] == request_id and "result" in answer


async def test_notification_is_run_and_answered_202(rpc: Rpc) -> None:
    doc = {
        "jsonrpc": "2.0",
        "method": "event_subscribe",
        "params": ["E_UA_SESSION", "udp:127.0.0.1:9"],
    }
    assert await rpc.post(json.dumps(doc)) == (202, None)
    listed = await rpc("subscribers_list")
    assert listed["Events"][0]["Subscribers"][0]["socket"] == "udp:127.0.0.1:9"
    # a failing notification is not answered either
    assert await rpc.post('{"jsonrpc": "2.0", "method": "nope"}') == (202, None)


async def test_batch(rpc: Rpc) -> None:
    batch = [
        {"jsonrpc": "2.0", "method": "version", "id": "a"},
        {"jsonrpc": "2.0", "method": "uptime"},
        {"jsonrpc": "2.0", "method": "nope", "id": "b"},
        7,
        {"jsonrpc": "2.0", "method": "ua_session_list", "id": "c"},
    ]
    status, answer = await rpc.post(json.dumps(batch))
    assert status == 200
    assert [r["id"] for r in answer] == ["a", "b", None, "c"]
    assert "Server" in answer[0]["result"]
    assert answer[1]["error"]["code"] == -32601
    assert answer[2]["error"]["code"] == -32600
    assert answer[3]["result"] == []


async def test_batch_of_notifications_and_empty_batch(rpc: Rpc) -> None:
    notes = [{"jsonrpc": "2.0", "method": "version"}, {"jsonrpc": "2.0", "method": "uptime"}]
    assert await rpc.post(json.dumps(notes)) == (202, None)
    _, answer = await rpc.post("[]")
    assert answer["error"]["code"] == -32600 and answer["id"] is None


async def test_batch_size_is_limited(rpc: Rpc) -> None:
    batch = [{"jsonrpc": "2.0", "method": "version", "id": i} for i in range(101)]
    _, answer = await rpc.post(json.dumps(batch))
    assert answer["error"]["code"] == -32600
    assert "at most 100" in answer["error"]["data"]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_other_http_methods_405(rpc: Rpc, method: str) -> None:
    status, _ = await rpc.post(b"", method=method)
    assert status == 405


# -- parameter matching --------------------------------------------------------------------------


async def test_required_parameter_missing(rpc: Rpc) -> None:
    error = await rpc.error("ua_session_client_start", {"ruri": "sip:a@b", "to": "sip:a@b"})
    assert error == invalid_params(TOO_FEW)
    assert await rpc.error("ua_session_terminate") == invalid_params(TOO_FEW)
    assert await rpc.error("ua_session_reply", {}) == invalid_params(TOO_FEW)


async def test_wrong_count_of_positional_parameters(rpc: Rpc) -> None:
    assert await rpc.error("ua_session_terminate", []) == invalid_params(TOO_FEW)
    assert await rpc.error("ua_session_terminate", ["a", "b", "c"]) == invalid_params(TOO_FEW)
    assert await rpc.error("ua_session_client_start", ["a", "b"]) == invalid_params(TOO_FEW)
    assert await rpc.error("version", ["x"]) == invalid_params(TOO_FEW)


async def test_ambiguous_positional_count(rpc: Rpc) -> None:
    # ruri, to, from and one of proxy/body/extra_headers/flags/socket
    error = await rpc.error("ua_session_client_start", ["sip:a@b", "sip:a@b", "sip:a@b", "x"])
    assert error == invalid_params("Ambiguous call")


async def test_unknown_parameter_name(rpc: Rpc) -> None:
    error = await rpc.error("ua_session_terminate", {"key": UNKNOWN_KEY, "reason": "x"})
    assert error == invalid_params(NO_MATCH)
    assert await rpc.error("version", {"x": 1}) == invalid_params(NO_MATCH)


async def test_content_type_without_body(rpc: Rpc) -> None:
    params = {"key": UNKNOWN_KEY, "method": "INFO", "content_type": "text/plain"}
    assert await rpc.error("ua_session_update", params) == invalid_params(NO_MATCH)
    params = {"key": UNKNOWN_KEY, "method": "INVITE", "code": 200, "reason": "OK"}
    params["content_type"] = "application/sdp"
    assert await rpc.error("ua_session_reply", params) == invalid_params(NO_MATCH)


@pytest.mark.parametrize("code", ["abc", "", "2.5", True, None, [200], {"c": 1}, 1.5])
async def test_parameter_of_wrong_type(rpc: Rpc, code: Any) -> None:
    params = {"key": UNKNOWN_KEY, "method": "INVITE", "code": code, "reason": "OK"}
    assert await rpc.error("ua_session_reply", params) == invalid_params(
        "Bad type for parameter 'code'"
    )


@pytest.mark.parametrize("value", [None, True, 1.5, ["sip:a@b"], {"uri": "sip:a@b"}])
async def test_string_parameter_of_wrong_type(rpc: Rpc, value: Any) -> None:
    assert await rpc.error("ua_session_terminate", {"key": value}) == invalid_params(
        "Bad type for parameter 'key'"
    )


@pytest.mark.parametrize("code", [180, "180", " 180 ", 180.0])
async def test_numbers_as_numbers_or_numeric_strings(rpc: Rpc, code: Any) -> None:
    params = {"key": UNKNOWN_KEY, "method": "INVITE", "code": code, "reason": "Ringing"}
    error = await rpc.error("ua_session_reply", params)
    assert (error["code"], error["message"]) == (500, "Failed to send reply")


# -- commands -------------------------------------------------------------------------------------


async def test_client_start_returns_the_key_and_sends_the_invite(
    rpc: Rpc, sink: Sink, engine: Engine
) -> None:
    key = await rpc(
        "ua_session_client_start",
        {
            "ruri": f"<sip:bob@{HOST}:{sink.port}>",
            "to": f"Bob Smith,sip:bob@{HOST}",
            "from": "sip:alice@example.org",
            "body": "hello",
            "content_type": "Content-Type: text/plain\r\n",
            "extra_headers": "X-Test: 1\r\nSubject: hi\r\n",
        },
    )
    invite = (await sink.get()).decode()
    assert invite.startswith(f"INVITE sip:bob@{HOST}:{sink.port} SIP/2.0\r\n")
    assert f"Call-ID: {key}\r\n" in invite
    assert "Content-Type: text/plain\r\n" in invite and invite.endswith("\r\n\r\nhello")
    assert "X-Test: 1\r\n" in invite and "Subject: hi\r\n" in invite
    assert '"Bob Smith" <sip:bob@127.0.0.1>' in invite
    await rpc("ua_session_terminate", {"key": key})


async def test_bare_media_type_and_default_sdp(rpc: Rpc, sink: Sink) -> None:
    base = {"ruri": f"sip:bob@{HOST}:{sink.port}", "to": "sip:b@x", "from": "sip:a@x"}
    await rpc("ua_session_client_start", {**base, "body": "x", "content_type": "text/plain"})
    assert "Content-Type: text/plain\r\n" in (await sink.get()).decode()
    await rpc("ua_session_client_start", {**base, "body": SDP_OFFER})
    assert "Content-Type: application/sdp\r\n" in (await sink.get()).decode()


async def test_extra_headers_without_body_are_sent_as_given(rpc: Rpc, sink: Sink) -> None:
    base = {"ruri": f"sip:bob@{HOST}:{sink.port}", "to": "sip:b@x", "from": "sip:a@x"}
    await rpc("ua_session_client_start", {**base, "extra_headers": "X-Only: yes\r\n"})
    invite = (await sink.get()).decode()
    assert "X-Only: yes\r\n" in invite and "Content-Length: 0\r\n" in invite


async def test_client_start_socket(rpc: Rpc, sink: Sink, engine: Engine) -> None:
    base = {"ruri": f"sip:bob@{HOST}:{sink.port}", "to": "sip:b@x", "from": "sip:a@x"}
    local = str(engine.listeners[0])
    key = await rpc("ua_session_client_start", {**base, "socket": local})
    assert key
    error = await rpc.error("ua_session_client_start", {**base, "socket": "udp:127.0.0.1:1"})
    assert (error["code"], error["message"]) == (500, "Non-local socket specified")


async def test_reply_unknown_key_and_no_pending_request(rpc: Rpc, sink: Sink) -> None:
    params = {"key": UNKNOWN_KEY, "method": "INVITE", "code": 200, "reason": "OK"}
    error = await rpc.error("ua_session_reply", params)
    assert (error["code"], error["message"]) == (500, "Failed to send reply")
    key = await call_to(rpc, sink)
    error = await rpc.error("ua_session_reply", {**params, "key": key})
    assert (error["code"], error["message"]) == (500, "Failed to send reply")
    assert key in error["data"] or "pending" in error["data"]


async def test_update_unknown_key_and_method_not_allowed(rpc: Rpc, sink: Sink) -> None:
    error = await rpc.error("ua_session_update", {"key": UNKNOWN_KEY, "method": "INFO"})
    assert (error["code"], error["message"]) == (500, "Failed to send sequential request")
    key = await call_to(rpc, sink)  # unanswered: INFO is not allowed before confirmation
    error = await rpc.error("ua_session_update", {"key": key, "method": "INFO"})
    assert (error["code"], error["message"]) == (500, "Failed to send sequential request")
    assert "INFO" in error["data"]


async def test_terminate(rpc: Rpc, sink: Sink, engine: Engine) -> None:
    error = await rpc.error("ua_session_terminate", {"key": UNKNOWN_KEY})
    assert error["code"] == 500 and error["message"] == "Failed to terminate session"
    reader = engine.events()
    key = await call_to(rpc, sink)
    assert await rpc("ua_session_terminate", [key]) == "OK"
    event = await event_of(reader, key, "TERMINATED")
    assert event.origin == "local"
    reader.close()


async def test_list(rpc: Rpc, sink: Sink) -> None:
    assert await rpc("ua_session_list") == []
    key = await call_to(rpc, sink, flags="t30")
    every = await rpc("ua_session_list")
    assert [s["key"] for s in every] == [key]
    one = await rpc("ua_session_list", {"key": key})
    assert one == every[0]
    for field in (
        "key", "entity_type", "state", "state_name", "callid", "from", "from_uri", "from_tag",
        "to", "to_uri", "to_tag", "ruri", "cseq", "route_set", "contact", "last_method",
        "last_reply_code", "created", "flags",
    ):  # fmt: skip
        assert field in one, field
    assert set(one["cseq"]) == {"caller", "callee"} == set(one["route_set"]) == set(one["contact"])
    assert (one["entity_type"], one["state"], one["state_name"]) == ("UAC", 1, "NEW")
    assert one["flags"] == "t30" and isinstance(one["created"], float)
    assert await rpc("ua_session_list", [key]) == one


async def test_list_unknown_and_malformed_key(rpc: Rpc) -> None:
    assert (await rpc.error("ua_session_list", {"key": UNKNOWN_KEY}))["code"] == 404
    error = await rpc.error("ua_session_list", {"key": UNKNOWN_KEY})
    assert error["message"] == "Entity not found"
    error = await rpc.error("ua_session_list", {"key": "not-a-key"})
    assert (error["code"], error["message"]) == (400, "Bad format for b2b key")


async def test_event_subscribe_errors(rpc: Rpc) -> None:
    error = await rpc.error("event_subscribe", {"event": "E_NOPE", "socket": "udp:127.0.0.1:9"})
    assert (error["code"], error["message"]) == (400, "Bad parameter value")
    for socket in ("udp:127.0.0.1", "sctp:127.0.0.1:9", "udp:example.com:9", "udp:1.2.3.4:0", "x"):
        error = await rpc.error("event_subscribe", ["E_UA_SESSION", socket])
        assert (error["code"], error["message"]) == (400, "Bad parameter value"), socket
    error = await rpc.error("event_subscribe", ["E_UA_SESSION", "udp:127.0.0.1:9", -1])
    assert error == invalid_params("Negative expire value")
    error = await rpc.error("event_subscribe", ["E_UA_SESSION", "udp:127.0.0.1:9", "soon"])
    assert error == invalid_params("Bad type for parameter 'expire'")


async def test_event_subscribe_expire_as_string_and_unsubscribe(rpc: Rpc) -> None:
    assert await rpc("event_subscribe", ["E_UA_SESSION", "udp:127.0.0.1:9", "60"]) == "OK"
    listed = await rpc("subscribers_list", {"event": "E_UA_SESSION"})
    assert listed["Event"]["Subscribers"][0]["expire"] == 60
    assert await rpc("event_subscribe", ["E_UA_SESSION", "udp:127.0.0.1:9", 0]) == "OK"
    assert await rpc("subscribers_list") == {"Events": []}


# -- core commands ---------------------------------------------------------------------------------


async def test_which(rpc: Rpc) -> None:
    names = await rpc("which")
    for name in (
        "ua_session_client_start", "ua_session_reply", "ua_session_update",
        "ua_session_terminate", "ua_session_list", "event_subscribe", "events_list",
        "subscribers_list", "which", "version", "uptime", "ps",
    ):  # fmt: skip
        assert name in names
    recipes = await rpc("which", {"command": "ua_session_terminate"})
    assert recipes == [["key"], ["key", "extra_headers"]]
    recipes = await rpc("which", ["ua_session_client_start"])
    assert ["ruri", "to", "from"] in recipes
    assert ["ruri", "to", "from", "content_type"] not in recipes
    assert ["ruri", "to", "from", "body", "content_type"] in recipes
    error = await rpc.error("which", {"command": "nope"})
    assert (error["code"], error["message"]) == (404, "unknown MI command")


async def test_version_uptime_ps_events_list(rpc: Rpc, engine: Engine) -> None:
    version = await rpc("version")
    assert list(version) == ["Server"] and version["Server"].startswith("UA Console (")
    uptime = await rpc("uptime")
    assert list(uptime) == ["Now", "Up since", "Up time"]
    assert uptime["Up time"].endswith(" [sec]")
    ps = await rpc("ps")
    processes = ps["Processes"]
    assert [p["ID"] for p in processes] == list(range(len(processes)))
    assert all(set(p) == {"ID", "PID", "Type"} for p in processes)
    assert f"SIP receiver {engine.listeners[0]}" in [p["Type"] for p in processes]
    assert await rpc("events_list") == {
        "Events": [{"name": "E_UA_SESSION", "id": 0}, {"name": "E_UA_REGISTRATION", "id": 1}]
    }


async def test_subscribers_list_shapes(rpc: Rpc) -> None:
    assert await rpc("subscribers_list") == {"Events": []}
    await rpc("event_subscribe", ["E_UA_SESSION", "udp:127.0.0.1:9"])
    everything = await rpc("subscribers_list")
    (event,) = everything["Events"]
    assert (event["name"], event["id"]) == ("E_UA_SESSION", 0)
    (subscriber,) = event["Subscribers"]
    assert subscriber["socket"] == "udp:127.0.0.1:9" and subscriber["expire"] == 3600
    one = await rpc("subscribers_list", ["E_UA_SESSION", "udp:127.0.0.1:9"])
    assert one["Event"]["Subscriber"]["socket"] == "udp:127.0.0.1:9"
    error = await rpc.error("subscribers_list", {"event": "E_NOPE"})
    assert (error["code"], error["message"]) == (404, "Event not published")
    error = await rpc.error("subscribers_list", ["E_UA_SESSION", "udp:127.0.0.1:10"])
    assert (error["code"], error["message"]) == (404, "Subscriber does not exist")


async def test_engine_keeps_running_between_requests(rpc: Rpc) -> None:
    results = await asyncio.gather(*(rpc("version") for _ in range(20)))
    assert len({r["Server"] for r in results}) == 1


async def test_non_finite_or_huge_id_is_refused(rpc: Rpc) -> None:
    _, answer = await rpc.post('{"jsonrpc": "2.0", "method": "version", "id": 1e999}')
    assert answer["error"]["code"] == -32600 and answer["id"] is None
    answer = await rpc.request("version", id="x" * 300)
    assert answer["error"]["code"] == -32600


async def test_lone_surrogate_is_refused(rpc: Rpc) -> None:
    _, answer = await rpc.post(
        '{"jsonrpc": "2.0", "method": "ua_session_terminate", "params": ["\\ud800"], "id": 1}'
    )
    assert answer["error"]["code"] == -32602
    assert "parameter 'key'" in answer["error"]["data"]


async def test_registration_commands_and_their_errors(rpc) -> None:
    """Accounts over MI: the list is empty without accounts; unknown accounts are named."""
    assert await rpc("ua_registration_list") == []
    for method in ("ua_register", "ua_unregister"):
        error = await rpc.error(method, {"account": "nobody"})
        assert error["code"] == 404 and "nobody" in error.get("data", "")
    error = await rpc.error("ua_registration_list", {"account": "nobody"})
    assert error["code"] == 404
