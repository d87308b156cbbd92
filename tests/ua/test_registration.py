"""Accounts: REGISTER with digest, refresh, 423, back-off, keep-alives, calls per account."""

import ipaddress
import re

from engine.sip import Request, Response
from engine.sip.digest import parse_credential, verify_authorization
from engine.sip.responses import make_response
from engine.ua.policy import IncomingPolicy, Rule
from engine.ua.registration import Account, RegistrationState
from tests.ua.link import Network
from tests.ua.test_call_flows import SDP

CHALLENGE = 'Digest realm="reg.test", nonce="abc", qop="auth", algorithm=MD5'
ALICE = Account(
    name="alice",
    aor="sip:alice@127.0.0.9",
    credentials=(parse_credential("alice:reg.test:secret"),),
    expires=120,
    keepalive=0,
)


class Registrar:
    """A registrar played by the test: digest, then 200 with the granted expiry."""

    def __init__(self, grant: int = 120, min_expires: int = 0) -> None:
        self.grant = grant
        self.min_expires = min_expires
        self.up = True
        self.fail_with: int | None = None
        self.registers: list[Request] = []

    def __call__(self, message, source, now):
        if not self.up or isinstance(message, Response):
            return []
        if message.method == "OPTIONS":
            return [make_response(message, 200).to_bytes()]
        if message.method != "REGISTER":
            return []
        self.registers.append(message)
        via = message.headers.get_all("via")[0].replace(";rport", ";received=127.0.0.1;rport=5060")
        message.headers.set("Via", via)
        if self.fail_with:
            return [make_response(message, self.fail_with, to_tag="r").to_bytes()]
        auth = message.headers.get("authorization")
        if auth is None:
            headers = [("WWW-Authenticate", CHALLENGE)]
            return [make_response(message, 401, to_tag="r", headers=headers).to_bytes()]
        assert verify_authorization(
            auth, "REGISTER", lambda u, r: "secret" if u == "alice" else None
        )
        asked = int(message.headers.get("expires") or "0")
        if 0 < asked < self.min_expires:
            return [
                make_response(
                    message, 423, to_tag="r", headers=[("Min-Expires", str(self.min_expires))]
                ).to_bytes()
            ]
        granted = min(asked, self.grant)
        contact = message.headers.get("contact") or ""
        headers = [("Contact", f"{contact};expires={granted}")] if granted else []
        return [make_response(message, 200, to_tag="r", headers=headers).to_bytes()]


def registration_events(node):
    return [(e.event_type, e.status) for e in node.events if hasattr(e, "account")]


def test_register_with_digest_then_refresh_before_expiry() -> None:
    net = Network()
    a = net.add("a", "127.0.0.1", accounts=(ALICE,))
    registrar = Registrar(grant=120)
    net.add_script("registrar", "127.0.0.9", registrar)
    start = net.now
    a.ua.start_registrations(net.now)
    net.advance(1)
    assert registration_events(a) == [("REGISTERED", 200)]
    (info,) = a.ua.registrations()
    assert info.state is RegistrationState.REGISTERED and info.expires == 120
    assert info.public_address == "127.0.0.1:5060"
    first = registrar.registers[1]
    assert first.headers.get("expires") == "120" and first.cseq.seq == 2
    assert first.headers.get("contact") == "<sip:alice@127.0.0.1:5060>"
    net.run(until=start + 89)
    assert len(registrar.registers) == 2
    net.run(until=start + 91)  # refreshed 30 s before the 120 s lapse
    assert registration_events(a)[-1] == ("REFRESHED", 200)
    assert [m.cseq.seq for m in registrar.registers] == [1, 2, 3, 4]
    assert len({m.call_id for m in registrar.registers}) == 1
    a.ua.unregister("alice", net.now)
    net.advance(1)
    assert registrar.registers[-1].headers.get("expires") == "0"
    assert registration_events(a)[-1] == ("UNREGISTERED", 200)
    assert a.ua.registrations()[0].state is RegistrationState.UNREGISTERED


def test_interval_too_brief_is_retried_with_min_expires() -> None:
    net = Network()
    a = net.add("a", "127.0.0.1", accounts=(ALICE,))
    registrar = Registrar(grant=3600, min_expires=600)
    net.add_script("registrar", "127.0.0.9", registrar)
    a.ua.start_registrations(net.now)
    net.advance(1)
    assert registration_events(a) == [("REGISTERED", 200)]
    assert registrar.registers[-1].headers.get("expires") == "600"
    assert a.ua.registrations()[0].expires == 600


def test_failures_back_off_and_a_returning_registrar_is_noticed() -> None:
    net = Network()
    a = net.add("a", "127.0.0.1", accounts=(ALICE,))
    registrar = Registrar()
    registrar.fail_with = 503
    net.add_script("registrar", "127.0.0.9", registrar)
    start = net.now
    a.ua.start_registrations(net.now)
    net.run(until=start + 16)
    times = [
        round(t - start, 1)
        for t in (w.time for w in net.wire if w.first_line.startswith("REGISTER"))
    ]
    assert times == [0, 5, 15]  # back-off 5 s, then 10 s
    assert registration_events(a) == [("FAILED", 503)] * 3
    registrar.fail_with = None
    registrar.up = False  # now it does not answer at all: a timeout is a failure too
    net.run(until=start + 100)  # the retry at 35 s times out at 67 s
    assert registration_events(a)[-1] == ("FAILED", 408)
    registrar.up = True
    net.run(until=start + 200)
    events = registration_events(a)
    last_failure = max(i for i, e in enumerate(events) if e[0] == "FAILED")
    assert events[last_failure] == ("FAILED", 408)
    assert events[last_failure + 1] == ("REGISTERED", 200)
    assert a.ua.registrations()[0].failures == 0


def test_broken_keepalive_triggers_a_new_registration() -> None:
    net = Network()
    account = (
        Account(**{**ALICE.__dict__, "keepalive": 10.0}) if hasattr(ALICE, "__dict__") else None
    )
    account = Account(
        name="alice", aor=ALICE.aor, credentials=ALICE.credentials, expires=120, keepalive=10.0
    )
    a = net.add("a", "127.0.0.1", accounts=(account,))
    registrar = Registrar()
    net.add_script("registrar", "127.0.0.9", registrar)
    start = net.now
    a.ua.start_registrations(net.now)
    net.run(until=start + 25)
    options = [w for w in net.wire if w.first_line.startswith("OPTIONS")]
    assert [round(w.time - start) for w in options] == [10, 20]
    registrar.up = False
    net.run(until=start + 70)
    assert ("FAILED", 408) in registration_events(a)
    assert a.ua.registrations()[0].last_reason == "Keep-alive timed out"


def test_call_from_an_account_uses_its_identity_proxy_and_credentials() -> None:
    calls: list[Request] = []

    def proxy(message, source, now):
        if isinstance(message, Request) and message.method == "INVITE":
            calls.append(message)
            if not message.headers.get("proxy-authorization"):
                headers = [("Proxy-Authenticate", CHALLENGE)]
                return [make_response(message, 407, to_tag="p", headers=headers).to_bytes()]
            return [make_response(message, 486, to_tag="p").to_bytes()]
        return []

    net = Network()
    account = Account(
        name="alice",
        aor="sip:alice@example.test",
        outbound_proxy="sip:127.0.0.8;lr",
        credentials=ALICE.credentials,
        register=False,
        display_name="Alice A",
    )
    a = net.add("a", "127.0.0.1", accounts=(account,))
    net.add_script("proxy", "127.0.0.8", proxy)
    key = a.ua.client_start(
        "sip:bob@example.test", "sip:bob@example.test", "", net.now, account="alice"
    )
    net.advance(1)
    assert [m.cseq.seq for m in calls] == [1, 2]
    assert calls[0].uri_text == "sip:bob@example.test"
    assert (
        str(calls[0].from_.uri) == "sip:alice@example.test" and calls[0].from_.display == "Alice A"
    )
    assert [(e.event_type, e.status) for e in a.events if e.key == key] == [
        ("REJECTED", 486),
        ("TERMINATED", 0),
    ]


def first_event(node, key):
    return next((e.event_type, e.status) for e in node.events if e.key == key)


def test_incoming_call_for_an_account_follows_its_rule_and_strangers_get_one_answer() -> None:
    net = Network()
    decline = Rule(
        name="alice's calls",
        matchers=(("account", re.compile("^alice$")),),
        action="reject",
        reject_code=603,
        reject_reason="Decline",
    )
    account = Account(name="alice", aor="sip:alice@127.0.0.9", register=False)
    net.add(
        "b",
        "127.0.0.2",
        policy=IncomingPolicy((decline,), IncomingPolicy.from_shortcut("manual").default),
        accounts=(account,),
        untrusted="reject:403",
        trusted_networks=(ipaddress.ip_network("127.0.0.1/32"),),
    )
    a = net.add("a", "127.0.0.1")
    stranger = net.add("c", "127.0.0.3")
    to_alice = a.ua.client_start(
        "sip:alice@127.0.0.2", "sip:alice@127.0.0.2", "sip:x@127.0.0.1", net.now, body=SDP
    )
    to_carol = a.ua.client_start(
        "sip:carol@127.0.0.2", "sip:carol@127.0.0.2", "sip:x@127.0.0.1", net.now, body=SDP
    )
    net.advance(1)
    assert first_event(a, to_alice) == ("REJECTED", 603)
    assert first_event(a, to_carol) == ("EARLY", 180)
    probes = [
        stranger.ua.client_start(
            f"sip:{user}@127.0.0.2", f"sip:{user}@127.0.0.2", "sip:y@127.0.0.3", net.now
        )
        for user in ("alice", "nobody")
    ]
    net.advance(1)
    assert [first_event(stranger, key) for key in probes] == [("REJECTED", 403)] * 2
