"""Accounts against a real registrar and proxy: Debian's Kamailio with kamailio.cfg.in.

Everything runs on 127.0.0.1: Kamailio on a free port (users alice and bob, password "secret",
domain ua.test), the engine on another, SIPp on others. The engine registers alice with digest;
SIPp calls alice through Kamailio and the engine's incoming rule for the account answers; the
engine calls a SIPp callee through Kamailio as its outbound proxy (digest on the INVITE too);
re-INVITE and BYE follow the record-route both ways. Then the registrar's 423, a refresh before
expiry, and a Kamailio that stops and comes back. See README.md in this directory.
"""

import asyncio
import time

import pytest

from engine.sip import Request, Response
from engine.ua.events import EventType, Origin, SessionState
from engine.ua.registration import RegistrationState
from tests.interop.conftest import SDP_OFFER, sdp

from .conftest import DOMAIN, HOST, SCENARIOS, Kamailio, Ua, account

pytestmark = pytest.mark.interop

#: An incoming rule per account: calls for alice ring and are answered at once; anything else
#: gets 480, so an answered call proves the engine matched it to the account.
ALICE_ANSWERS = {
    "default": "reject:480",
    "rule": [
        {
            "name": "alice's line",
            "match": {"account": "^alice$"},
            "action": "session",
            "flags": "b",  # bodies in the events
            "replies": [{"code": 180}, {"code": 200, "answer_offer": True}],
        }
    ],
}


def in_dialog(request: Request) -> bool:
    """A request in the dialog with SIPp (whose tags are ``...SIPpTag0N...``); the ACK of a
    407 also has a To tag, Kamailio's, but it is hop-by-hop and takes no Route."""
    return "SIPpTag" in (request.headers.get("to") or "")


def assert_follows_record_route(ua: Ua, kamailio: Kamailio, methods: set[str]) -> None:
    """Every in-dialog request the engine sent went to Kamailio with a Route naming it, and
    every method of ``methods`` was among them."""
    sent = [(r, m) for r, m in ua.requests_out() if in_dialog(m)]
    assert {m.method for _, m in sent} >= methods, ua.ladder()
    for record, request in sent:
        assert record.remote == f"udp:{kamailio.address}", ua.ladder()
        routes = request.headers.values("route")
        assert len(routes) == 1, request.headers.get_all("route")
        assert routes[0].startswith(f"<{kamailio.uri};lr"), routes


async def established(ua: Ua, key: str, timeout: float = 5.0) -> None:
    """Wait until the session's ACK has come (the engine reports no event for it)."""
    deadline = time.monotonic() + timeout
    while ua.engine.session(key).state is not SessionState.ESTABLISHED:
        assert time.monotonic() < deadline, f"no ACK for {key}:{ua.ladder()}"
        await asyncio.sleep(0.02)


# -- 1. REGISTER with digest --------------------------------------------------------------------


async def test_engine_registers_with_digest(kamailio, start_ua) -> None:
    """alice registers (401, then REGISTER with Authorization, 200); her contact is in
    Kamailio's location table; bob with a wrong password FAILs with 401; alice's unregister
    removes the binding."""
    ua = await start_ua(
        accounts=[
            account(kamailio, expires=300),
            account(kamailio, name="bob", aor=f"sip:bob@{DOMAIN}", username="bob", password="x"),
        ]
    )
    registered = await ua.registration("REGISTERED")
    assert (registered.status, registered.origin) == (200, "remote")
    assert (registered.aor, registered.expires) == (f"sip:alice@{DOMAIN}", 300)
    failed = await ua.registration("FAILED", account="bob")
    assert (failed.status, failed.origin) == (401, "remote")

    alice, bob = ua.engine.registrations()
    assert (alice.account, alice.expires) == ("alice", 300)
    assert alice.state is RegistrationState.REGISTERED
    assert alice.contact == f"<sip:alice@{ua.address}>"
    assert alice.public_address == ua.address  # Kamailio's received/rport on our Via
    assert alice.expires_at is not None and alice.next_attempt is not None
    assert alice.next_attempt < alice.expires_at
    assert (bob.state, bob.last_status, bob.failures) == (RegistrationState.FAILED, 401, 1)
    assert bob.next_attempt is not None  # retried later (back-off)

    # On the wire: each account's first REGISTER is unauthenticated, its second answers the
    # 401 (alice's is accepted, bob's is refused again and not retried at once).
    registers = [m for _, m in ua.requests_out() if m.method == "REGISTER"]
    for user in ("alice", "bob"):
        mine = [m for m in registers if f"sip:{user}@{DOMAIN}" in (m.headers.get("to") or "")]
        assert len(mine) == 2, ua.ladder()
        assert mine[0].headers.get("authorization") is None
        answer = mine[1].headers.get("authorization") or ""
        assert f'username="{user}"' in answer and f'realm="{DOMAIN}"' in answer, answer
        assert mine[0].uri_text == kamailio.uri
        assert mine[1].headers.get("call-id") == mine[0].headers.get("call-id")

    bindings = await kamailio.contacts("alice")
    assert list(bindings) == [f"sip:alice@{ua.address}"], kamailio.log_tail()
    assert 290 <= bindings[f"sip:alice@{ua.address}"] <= 300
    assert await kamailio.contacts("bob") == {}

    await ua.engine.unregister("alice")
    gone = await ua.registration("UNREGISTERED")
    assert (gone.status, gone.origin, gone.expires) == (200, "remote", 0)
    assert ua.engine.registrations()[0].state is RegistrationState.UNREGISTERED
    assert await kamailio.contacts("alice") == {}


# -- 2. a call to alice through Kamailio --------------------------------------------------------


async def test_sipp_calls_alice_through_kamailio(kamailio, start_ua, run_sipp) -> None:
    """SIPp calls sip:alice@ua.test at Kamailio, which forwards to alice's registered contact
    (record-routing); the account's incoming rule answers; SIPp's ACK comes through Kamailio;
    the engine's re-INVITE, its ACK and its BYE carry Kamailio's Route and go to Kamailio."""
    ua = await start_ua(accounts=[account(kamailio, expires=300)], incoming=ALICE_ANSWERS)
    await ua.registration("REGISTERED")
    sipp = await run_sipp.start(
        str(SCENARIOS / "uac_call_alice.xml"),
        remote=kamailio.address,
        options=["-key", "domain", DOMAIN],
    )
    new = await ua.session_event(EventType.NEW)
    assert (new.entity_type, new.method, new.origin) == ("UAS", "INVITE", Origin.REMOTE)
    key = new.key
    await established(ua, key)

    ((record, invite),) = ua.requests_in("INVITE")
    assert record.remote == f"udp:{kamailio.address}"
    assert invite.uri_text == f"sip:alice@{ua.address}"  # Kamailio's lookup
    assert invite.headers.values("record-route")[0].startswith(f"<{kamailio.uri};lr")
    assert len(invite.vias) == 2
    info = ua.engine.session(key)
    assert info.route_set["caller"] == [invite.headers.values("record-route")[0]]
    ((record, _),) = ua.requests_in("ACK")
    assert record.remote == f"udp:{kamailio.address}"

    await ua.engine.update(key, "INVITE", body=sdp("sendonly"))
    reinvite = await ua.session_event(EventType.ANSWERED, key)
    assert (reinvite.method, reinvite.status) == ("INVITE", 200)
    assert reinvite.body is not None and "a=recvonly" in reinvite.body
    await ua.engine.terminate(key)
    terminated = await ua.session_event(EventType.TERMINATED, key)
    assert (terminated.method, terminated.origin) == ("BYE", Origin.LOCAL)

    result = await sipp.wait()
    result.assert_passed(1)
    assert_follows_record_route(ua, kamailio, {"INVITE", "ACK", "BYE"})
    # The engine's re-INVITE and BYE are addressed to SIPp's Contact, not to Kamailio.
    for _, request in ua.requests_out():
        if in_dialog(request):
            assert request.uri_text.startswith("sip:caller@"), request.uri_text


# -- 3. a call through Kamailio as outbound proxy ------------------------------------------------


async def test_engine_calls_through_outbound_proxy(kamailio, start_ua, run_sipp) -> None:
    """alice (register = false, outbound_proxy = Kamailio) calls a SIPp callee: Kamailio asks
    for digest (407), the engine answers with alice's credentials, Kamailio record-routes and
    relays to the Request-URI; re-INVITE and BYE from the engine follow the record-route."""
    ua = await start_ua(
        accounts=[account(kamailio, outbound_proxy=f"{kamailio.uri};lr", register=False)]
    )
    sipp = await run_sipp.start(str(SCENARIOS / "uas_behind_proxy.xml"))
    callee = f"sip:service@{HOST}:{sipp.port}"
    key = await ua.engine.client_start(callee, callee, "", account="alice", body=SDP_OFFER)
    answered = await ua.session_event(EventType.ANSWERED, key)
    assert (answered.method, answered.status, answered.entity_type) == ("INVITE", 200, "UAC")

    await ua.engine.update(key, "INVITE", body=sdp("sendonly"))
    reinvite = await ua.session_event(EventType.ANSWERED, key)
    assert (reinvite.method, reinvite.status) == ("INVITE", 200)
    await ua.engine.terminate(key)
    terminated = await ua.session_event(EventType.TERMINATED, key)
    assert terminated.origin == Origin.LOCAL
    result = await sipp.wait()
    result.assert_passed(1)

    assert [m for _, m in ua.requests_out() if m.method == "REGISTER"] == []
    invites = [(r, m) for r, m in ua.requests_out() if m.method == "INVITE" and not in_dialog(m)]
    assert len(invites) == 2, ua.ladder()
    (_, first), (_, second) = invites
    for record, invite in invites:
        assert record.remote == f"udp:{kamailio.address}"  # the outbound proxy
        assert invite.uri_text == callee
        assert f"<sip:alice@{DOMAIN}>" in (invite.headers.get("from") or "")
    assert first.headers.get("proxy-authorization") is None
    answer = second.headers.get("proxy-authorization") or ""
    assert 'username="alice"' in answer and f'realm="{DOMAIN}"' in answer, answer
    statuses = [m.status for r, m in ua.sip() if r.direction == "in" and isinstance(m, Response)]
    assert statuses[0] == 407 and 200 in statuses, ua.ladder()
    assert_follows_record_route(ua, kamailio, {"INVITE", "ACK", "BYE"})


# -- 4. 423 and refresh ------------------------------------------------------------------------


async def test_interval_too_brief_raises_the_expiry(kamailio, start_ua) -> None:
    """alice asks for 5 s; Kamailio (min_expires 10) answers 423 with Min-Expires: 10; the
    engine asks again for 10 s at once and registers."""
    ua = await start_ua(accounts=[account(kamailio, expires=5, keepalive=0)])
    registered = await ua.registration("REGISTERED")
    assert registered.expires == 10
    assert not [e for e in ua.seen if getattr(e, "event_type", "") == "FAILED"], ua.seen
    asked = [m.headers.get("expires") for _, m in ua.requests_out() if m.method == "REGISTER"]
    assert asked[0] == "5" and asked[-1] == "10", asked
    statuses = [m.status for r, m in ua.sip() if r.direction == "in" and isinstance(m, Response)]
    assert 423 in statuses, ua.ladder()


async def test_registration_is_refreshed_before_expiry(kamailio, start_ua) -> None:
    """Granted 10 s, the engine refreshes at half the interval (REFRESHED about 5 s after
    REGISTERED, long before expiry) on the same Call-ID with a higher CSeq, and Kamailio's
    binding is extended."""
    ua = await start_ua(accounts=[account(kamailio, expires=10, keepalive=0)])
    registered = await ua.registration("REGISTERED")
    assert registered.expires == 10
    refreshed = await ua.registration("REFRESHED", timeout=12)
    waited = refreshed.time - registered.time
    assert 4 <= waited <= 7, waited
    assert (refreshed.status, refreshed.expires, refreshed.origin) == (200, 10, "remote")
    info = ua.engine.registrations()[0]
    assert info.state is RegistrationState.REGISTERED
    assert info.expires_at is not None and info.expires_at >= refreshed.time + 9

    registers = [m for _, m in ua.requests_out() if m.method == "REGISTER"]
    assert len({m.headers.get("call-id") for m in registers}) == 1
    seqs = [m.cseq.seq for m in registers]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs
    # The original binding would have had < 5 s left; the refreshed one has about 10.
    left = await kamailio.contacts("alice")
    assert len(left) == 1 and min(left.values()) >= 8, (left, kamailio.log_tail())


# -- 5. Kamailio stops and comes back ----------------------------------------------------------


async def test_stopped_kamailio_is_noticed_and_registration_returns(kamailio, start_ua) -> None:
    """Keep-alive OPTIONS every 2 s (T1 = 50 ms, so a transaction times out in 3.2 s): with
    Kamailio stopped the keep-alive times out and the registration FAILs (408, timeout); when
    Kamailio is started again on the same port (its location table empty) the engine registers
    again by itself."""
    ua = await start_ua(accounts=[account(kamailio, expires=300, keepalive=2)], engine={"t1": 0.05})
    await ua.registration("REGISTERED")
    assert len(await kamailio.contacts("alice")) == 1
    stopped = time.time()
    await kamailio.stop()

    failed = await ua.registration("FAILED", timeout=10)
    assert (failed.status, failed.origin) == (408, "timeout")
    assert failed.time - stopped <= 2 + 64 * 0.05 + 1.5, failed.time - stopped
    options = [m for _, m in ua.requests_out() if m.method == "OPTIONS"]
    assert options and options[-1].uri_text == kamailio.uri

    restarted = time.time()
    await kamailio.start()  # a new process: its location table is empty
    back = await ua.registration("REGISTERED", timeout=20)
    assert back.time >= restarted
    assert (back.status, back.origin, back.expires) == (200, "remote", 300)
    info = ua.engine.registrations()[0]
    assert (info.state, info.failures) == (RegistrationState.REGISTERED, 0)
    assert list(await kamailio.contacts("alice")) == [f"sip:alice@{ua.address}"]

    # The keep-alives resume (so the next break is noticed too): an OPTIONS answered 200.
    deadline = time.monotonic() + 2 + 2
    while not [
        m
        for r, m in ua.sip()
        if isinstance(m, Response) and m.cseq.method == "OPTIONS" and r.time > back.time
    ]:
        assert time.monotonic() < deadline, f"no keep-alive answered after the return{ua.ladder()}"
        await asyncio.sleep(0.05)
