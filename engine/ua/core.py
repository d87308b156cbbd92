"""The UA core: UA sessions with OpenSIPS b2b_entities semantics over the pure SIP layers.

Inputs take the current unix time: :meth:`UserAgent.receive`, :meth:`UserAgent.handle_timer` and
the session commands (:meth:`client_start`, :meth:`reply`, :meth:`update`, :meth:`terminate`).
Outputs are drained: :meth:`datagrams_to_send`, :meth:`next_event` (SessionEvent),
:meth:`next_notice` (things worth a log line) and :meth:`get_timer`. No I/O, no clock, no random:
identifiers come from the injected IdFactory. MI-API.md sections 1, 3, 4 and 5 are the contract.
"""

import contextlib
import heapq
import ipaddress
import itertools
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from engine.sip import (
    Headers,
    NameAddr,
    ParseError,
    Request,
    Response,
    SipUri,
    Target,
    parse_message,
    parse_name_addr,
    parse_uri,
)
from engine.sip.dialog import Dialog, DialogId, dialog_id_of_request, dialog_id_of_response
from engine.sip.digest import ANSWER_HEADER, DigestClient, parse_challenge
from engine.sip.headers import header_key
from engine.sip.ids import IdFactory
from engine.sip.responses import error_response_bytes, make_response, reason_for
from engine.sip.transaction import (
    AckReceived,
    MessageDropped,
    Outgoing,
    RequestReceived,
    ResponseReceived,
    StrayResponse,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimeout,
    response_target,
)
from engine.sip.validate import answer_without_dialog, response_is_acceptable, validate_request

from .accounts import AccountBook
from .config import UaConfig
from .errors import CommandError, reply_failed, request_failed, start_failed, terminate_failed
from .events import EventType, Origin, SessionEvent, SessionInfo, SessionState
from .flags import parse_flags
from .registration import RegistrationEvent, RegistrationInfo
from .sdp_answer import OfferError, RtpPortAllocator, answer_sdp, offer_sdp
from .session import UAC, UAS, Outstanding, Pending, Retransmit, Session, slot_of

#: Methods the controller may send before the dialog is confirmed.
EARLY_METHODS = frozenset({"UPDATE", "PRACK", "CANCEL", "BYE"})
_EXTRA_HEADER_RE = re.compile(r"([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*:[ \t]*([^\r\n]*)")
#: OpenSIPS's key form: PREFIX.<hash>.<index>.<unix time>.<random hex>.
KEY_RE_TEMPLATE = r"{prefix}\.\d+\.\d+\.\d+\.[0-9a-f]{{16,}}"


@dataclass(frozen=True, slots=True)
class Notice:
    """Something a log should show: a dropped message, an unknown flag, a give-up."""

    level: str
    message: str


def parse_extra_headers(text: str | None) -> list[tuple[str, str]]:
    """``extra_headers`` as given to the API (lines ending in CRLF) as (name, value) pairs."""
    if not text:
        return []
    lines = text.split("\r\n")
    if lines and lines[-1] == "":
        lines.pop()
    pairs = []
    for line in lines:
        m = _EXTRA_HEADER_RE.fullmatch(line)
        if m is None or "\n" in line or "\r" in line or "\x00" in line:
            raise CommandError(400, "Bad extra_headers", f"not a header line: {line[:60]!r}")
        pairs.append((m.group(1), m.group(2).strip()))
    return pairs


def split_party(text: str) -> NameAddr:
    """``to``/``from`` as the API takes them: a URI, or ``display name,URI``."""
    display: str | None = None
    uri_text = text.strip()
    if "<" in uri_text and uri_text.endswith(">") and not uri_text.startswith("<"):
        try:  # a name-addr, '"Alice" <sip:alice@example.com>', as people write them too
            return parse_name_addr(uri_text, "party")
        except ParseError:
            pass
    if "," in uri_text and not uri_text.startswith(("sip:", "sips:", "tel:", "<")):
        display, uri_text = (part.strip() for part in uri_text.split(",", 1))
    if uri_text.startswith("<") and uri_text.endswith(">"):
        uri_text = uri_text[1:-1]
    try:
        uri = parse_uri(uri_text)
    except ParseError as error:
        raise start_failed(f"bad URI {uri_text!r}: {error}") from None
    return NameAddr(uri, display.strip('"') if display else None)


class UserAgent:
    """Every UA session of one engine, over one transaction layer."""

    def __init__(self, config: UaConfig, ids: IdFactory) -> None:
        if not config.local:
            raise ValueError("the UA needs at least one local transport address")
        self.config = config
        self._ids = ids
        self.txn = TransactionLayer(ids, config.timers)
        self._sessions: dict[str, Session] = {}
        self._lingering: dict[str, Session] = {}
        self._by_dialog: dict[DialogId, str] = {}
        #: Client transaction -> (session key, what we sent): kept until the transaction ends,
        #: so a 2xx that comes after the session ended can still be ACKed and BYEd.
        self._client_txns: dict[str, tuple[str, Outstanding]] = {}
        self._server_txns: dict[str, str] = {}
        self._timers: list[tuple[float, int, str, str]] = []
        self._timer_ids = itertools.count()
        #: Bytes the core itself sends outside transactions (2xx and reliable 1xx
        #: retransmissions, re-sent ACKs, answers to unparsable requests).
        self._raw: list[Outgoing] = []
        self._events: deque[SessionEvent | RegistrationEvent] = deque()
        self._notices: deque[Notice] = deque()
        self._seq = 0
        self._counter = itertools.count(1)
        self._digest = DigestClient(config.credentials, ids)
        self._rtp = RtpPortAllocator(*config.rtp_ports)
        #: Call-IDs of calls we placed that ended, until when a late 2xx still gets ACK and BYE.
        self._recently_ended: dict[str, float] = {}
        #: The time of the input being handled.
        self._clock = 0.0
        self._allow = config.uas.allow_header
        self.accounts = AccountBook(self, config.accounts)
        self._key_re = re.compile(KEY_RE_TEMPLATE.format(prefix=re.escape(config.key_prefix)))

    # -- outputs -------------------------------------------------------------------------------

    def datagrams_to_send(self) -> list[Outgoing]:
        """Messages to put on the wire, in order."""
        out = self.txn.datagrams_to_send()
        if self._raw:
            out.extend(self._raw)
            self._raw = []
        return out

    def next_event(self) -> SessionEvent | RegistrationEvent | None:
        """The next session or registration event, or None."""
        return self._events.popleft() if self._events else None

    def next_notice(self) -> Notice | None:
        """The next notice for the log, or None."""
        return self._notices.popleft() if self._notices else None

    def get_timer(self) -> float | None:
        """The earliest deadline at which :meth:`handle_timer` must be called, or None."""
        own = self._timers[0][0] if self._timers else None
        theirs = self.txn.get_timer()
        if own is None:
            return theirs
        return own if theirs is None else min(own, theirs)

    def sessions(self) -> list[SessionInfo]:
        """A snapshot of every live session."""
        return [s.info() for s in self._sessions.values()]

    def session(self, key: str) -> SessionInfo:
        """One session's snapshot; CommandError 400 for a malformed key, 404 for an unknown one."""
        s = self._sessions.get(key)
        if s is None:
            if not self._key_re.fullmatch(key):
                raise CommandError(400, "Bad format for b2b key", f"{key!r} is not a session key")
            raise CommandError(404, "Entity not found", f"no session {key}")
        return s.info()

    def __len__(self) -> int:
        """Sessions held in memory, the lingering ones included."""
        return len(self._sessions) + len(self._lingering)

    # -- inputs: network and time --------------------------------------------------------------

    def receive(self, data: bytes, source: Target, now: float) -> None:
        """Take one whole message from the network. Never raises for what the peer sent."""
        self._clock = now
        try:
            self._receive(data, source, now)
        except ParseError as error:
            self._notice("info", f"dropped a message from {source}: {error}")
        except CommandError as error:
            self._notice("warning", f"could not answer a message from {source}: {error}")
        self._pump(now)

    def _receive(self, data: bytes, source: Target, now: float) -> None:
        try:
            message = parse_message(data, self.config.limits)
        except ParseError as error:
            self._notice("info", f"dropped a message from {source}: {error}")
            if error.status_hint is not None:
                answer = error_response_bytes(data, error.status_hint, f"{error}"[:80])
                if answer is not None:
                    self._raw.append(Outgoing(answer, source))
            return
        if isinstance(message, Response):
            why = response_is_acceptable(message)
            if why is not None:
                self._notice("info", f"dropped a response from {source}: {why}")
                return
        else:
            index = message.headers.index()
            missing = [h for h in ("via", "from", "to", "call-id", "cseq") if h not in index]
            if missing:
                self._notice("info", f"request from {source} lacks {', '.join(missing)}")
                answer = error_response_bytes(data, 400, f"Missing {missing[0]}")
                if answer is not None and "via" not in missing:
                    self._raw.append(Outgoing(answer, source))
                return
            if message.method == "ACK":
                self._ack_for_rejected(message, now)
        self.txn.receive(message, source, now)

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at ``now``."""
        self._clock = now
        self.txn.handle_timer(now)
        while self._timers and self._timers[0][0] <= now:
            _, _, key, kind = heapq.heappop(self._timers)
            if kind in ("register", "keepalive"):
                self.accounts.on_timer(key, kind, now)
                continue
            s = self._sessions.get(key)
            if kind == "retransmit":
                s = s or self._lingering.get(key)
                if s is not None:
                    self._retransmissions(s, now)
            elif s is not None:
                self._on_timer(s, kind, now)
        self._pump(now)

    # -- inputs: commands ----------------------------------------------------------------------

    def client_start(
        self,
        ruri: str,
        to: str,
        from_: str,
        now: float,
        *,
        proxy: str | None = None,
        body: str | None = None,
        content_type: str | None = None,
        extra_headers: str | None = None,
        flags: str = "",
        socket: str | None = None,
        account: str | None = None,
    ) -> str:
        """Place a call: send an INVITE and return the new session's key.

        With ``account``, the call uses that account's identity (when ``from_`` is empty),
        outbound proxy (when ``proxy`` is not given) and credentials.
        """
        self._clock = now
        ruri = ruri.strip()
        if ruri.startswith("<") and ruri.endswith(">"):
            ruri = ruri[1:-1]
        try:
            request_uri = parse_uri(ruri)
        except ParseError as error:
            raise start_failed(f"bad ruri {ruri!r}: {error}") from None
        chosen = None
        if account is not None:
            chosen = self.accounts.get(account)
            if chosen is None:
                raise CommandError(404, "Account not found", f"no account {account!r}")
            from_ = from_ or str(chosen.identity())
            proxy = proxy or chosen.outbound_proxy
            if socket is None:
                socket = str(self.local_for(chosen.transport))
        to_addr, from_addr = split_party(to), split_party(from_)
        proxy_uri = None
        if proxy:
            proxy_uri = self._sip_uri(proxy, "proxy")
        first_hop = proxy_uri or request_uri
        if not isinstance(first_hop, SipUri):
            raise start_failed(f"cannot send to {first_hop}: not a SIP URI and no proxy")
        local = self._pick_local(first_hop, socket)
        target = self._target_of(first_hop, local)
        extra = parse_extra_headers(extra_headers)
        session_flags = parse_flags(flags, self.config.default_max_duration)
        key = self._new_key(now)
        local_tag = self._ids.tag()
        contact = self._contact_for(from_addr, local)
        headers = Headers()
        headers.add("Via", _via(local))
        headers.add("Max-Forwards", "70")
        headers.add("From", str(from_addr.with_tag(local_tag)))
        headers.add("To", str(to_addr))
        headers.add("Call-ID", key)
        headers.add("CSeq", "1 INVITE")
        headers.add("Contact", contact)
        headers.add("Allow", self._allow)
        headers.add("Supported", "100rel")
        if self.config.user_agent:
            headers.add("User-Agent", self.config.user_agent)
        for name, value in extra:
            headers.add(name, value)
        invite = Request("INVITE", request_uri, headers)
        _set_body(invite, body, content_type)
        session = Session(
            key=key,
            entity_type=UAC,
            flags=session_flags,
            created=now,
            local=local,
            call_id=key,
            local_tag=local_tag,
            invite=invite,
            local_contact=contact,
            proxy=proxy_uri,
            source=target,
            account=account,
        )
        self._warn_unknown_flags(session)
        self._sessions[key] = session
        self._send_request(session, invite, target, "user", now)
        self._arm_limit(session, now)
        self._pump(now)
        return key

    def reply(
        self,
        key: str,
        method: str,
        code: int,
        reason: str,
        now: float,
        *,
        body: str | None = None,
        content_type: str | None = None,
        extra_headers: str | None = None,
    ) -> None:
        """Answer the pending incoming request of ``method`` in session ``key``."""
        self._clock = now
        method = method.upper()
        s = self._sessions.get(key)
        if s is None:
            raise reply_failed(f"no session {key}")
        if not 100 <= code <= 699:
            raise CommandError(400, "Bad reply code", f"{code} is not in 100..699")
        pending = s.pending_in.get(slot_of(method))
        if pending is None or pending.request.method != method:
            if s.last_reply.get(method) == code:
                return  # a harmless retry of the last reply
            raise reply_failed(f"no pending {method} request in session {key}")
        extra = parse_extra_headers(extra_headers)
        self._reply(s, pending, code, reason or reason_for(code), body, content_type, extra, now)
        self._pump(now)

    def update(
        self,
        key: str,
        method: str,
        now: float,
        *,
        body: str | None = None,
        content_type: str | None = None,
        extra_headers: str | None = None,
    ) -> None:
        """Send a request in session ``key`` (any method; see MI-API.md)."""
        self._clock = now
        method = method.upper()
        s = self._sessions.get(key)
        if s is None:
            raise request_failed(f"no session {key}")
        extra = parse_extra_headers(extra_headers)
        if method == "ACK":
            if s.unacked_invite is None:
                raise request_failed("there is no 2xx waiting for an ACK")
            self._send_ack(s, body, content_type, now)
        elif not s.confirmed:
            self._update_early(s, method, body, content_type, extra, now)
        else:
            self._update_confirmed(s, method, body, content_type, extra, now)
        self._pump(now)

    def terminate(self, key: str, now: float, *, extra_headers: str | None = None) -> None:
        """End session ``key`` now, the proper way for its state; TERMINATED follows."""
        self._clock = now
        s = self._sessions.get(key)
        if s is None:
            raise terminate_failed(f"no session {key}")
        extra = parse_extra_headers(extra_headers)
        self._end_by_us(s, Origin.LOCAL, extra, now)
        self._pump(now)

    def shutdown(self, now: float) -> None:
        """End every session (``Engine.stop``)."""
        self._clock = now
        for s in list(self._sessions.values()):
            self._end_by_us(s, Origin.LOCAL, [], now)
        self.accounts.stop(now)
        self._pump(now)

    # -- accounts ----------------------------------------------------------------------------

    def start_registrations(self, now: float) -> None:
        """Register every account configured to register (the engine calls it at start)."""
        self._clock = now
        self.accounts.start(now)
        self._pump(now)

    def register(self, name: str, now: float) -> None:
        """Register account ``name`` now (CommandError 404 for an unknown account)."""
        self._clock = now
        self.accounts.register(name, now)
        self._pump(now)

    def unregister(self, name: str, now: float) -> None:
        """Remove account ``name``'s binding now."""
        self._clock = now
        self.accounts.unregister(name, now)
        self._pump(now)

    def registrations(self) -> list[RegistrationInfo]:
        """Every account's registration."""
        return self.accounts.infos()

    # -- what AccountBook uses of the core -------------------------------------------------------

    @property
    def ids(self) -> IdFactory:
        """The identifier source."""
        return self._ids

    def via(self, local: Target) -> str:
        """A Via value for a request sent from ``local``."""
        return _via(local)

    def target_of(self, uri: SipUri, local: Target) -> Target:
        """Where a request for ``uri`` goes (transport param, default port)."""
        return self._target_of(uri, local)

    def local_for(self, transport: str) -> Target:
        """The first local address of ``transport`` (else the first of any)."""
        return next(
            (t for t in self.config.local if t.transport == transport), self.config.local[0]
        )

    def contact_for(self, party: NameAddr, local: Target) -> str:
        """The Contact for ``party`` reached at ``local``."""
        return self._contact_for(party, local)

    def schedule(self, when: float, key: str, kind: str) -> None:
        """Call back at ``when`` (kinds ``register`` and ``keepalive`` go to the accounts)."""
        self._schedule(when, key, kind)

    def send_raw(self, data: bytes, target: Target) -> None:
        """Put bytes on the wire outside any transaction (a keep-alive)."""
        self._raw.append(Outgoing(data, target))

    def emit_registration(self, make: Callable[[int], RegistrationEvent]) -> None:
        """Append a registration event, numbered in the same sequence as session events."""
        self._seq += 1
        self._events.append(make(self._seq))

    def notice(self, level: str, message: str) -> None:
        """A line for the log."""
        self._notice(level, message)

    # -- the transaction layer's events --------------------------------------------------------

    def _pump(self, now: float) -> None:
        while (event := self.txn.next_event()) is not None:
            if isinstance(event, RequestReceived):
                self._on_request(event, now)
            elif isinstance(event, ResponseReceived):
                if not self.accounts.on_response(event.key, event.response, now):
                    self._on_response(event.key, event.response, now)
            elif isinstance(event, AckReceived):
                self._on_ack(event.request, now)
            elif isinstance(event, StrayResponse):
                self._on_stray(event.response, event.source, now)
            elif isinstance(event, TransactionTimeout):
                if not self.accounts.on_timeout(event.key, now):
                    self._on_timeout(event.key, event.method, now)
            elif isinstance(event, TransactionTerminated):
                self._client_txns.pop(event.key, None)
                self._server_txns.pop(event.key, None)
            elif isinstance(event, MessageDropped):
                self._notice(
                    "info", f"dropped {event.message!r} from {event.source}: {event.reason}"
                )

    # -- requests from the network -------------------------------------------------------------

    def _on_request(self, event: RequestReceived, now: float) -> None:
        request, txn = event.request, event.key
        if request.method == "CANCEL":
            self._on_cancel(event, now)
            return
        rejection = validate_request(request, self.config.uas)
        if rejection is not None:
            self._notice("info", f"{request.method} from {event.source}: {rejection.detail}")
            self._respond(
                txn, request, rejection.status, rejection.reason, now, list(rejection.headers)
            )
            return
        if request.to.tag is None:
            if not self._trusted(event.source):
                self._refuse_untrusted(txn, request, now)
                return
            if request.method == "INVITE":
                self._new_incoming(event, now)
            else:
                self._answer_outside_dialog(txn, request, now)
            return
        key = self._by_dialog.get(dialog_id_of_request(request))
        s = self._sessions.get(key) if key else None
        if s is None:
            self._respond(txn, request, 481, None, now)
            return
        self._in_dialog(s, event, now)

    def _trusted(self, source: Target) -> bool:
        """May this source start a dialog? (Only asked when ``untrusted`` is not "accept".)"""
        if self.config.untrusted == "accept":
            return True
        if source.host in self.accounts.trusted_hosts():
            return True
        try:
            address = ipaddress.ip_address(source.host)
        except ValueError:
            return False
        return any(address in network for network in self.config.trusted_networks)

    def _refuse_untrusted(self, txn: str, request: Request, now: float) -> None:
        """The same answer to every request from an unknown source, whatever it asks."""
        self._notice("info", f"refused {request.method} from an untrusted source")
        rule = self.config.untrusted
        if rule.startswith("reject:"):
            self._respond(txn, request, int(rule.split(":", 1)[1]), None, now)

    def _answer_outside_dialog(self, txn: str, request: Request, now: float) -> None:
        status = answer_without_dialog(request) or 481
        extra: list[tuple[str, str]] = []
        if status in (200, 405):
            extra.append(("Allow", self._allow))
        if status == 200:
            extra += [("Accept", "application/sdp"), ("Supported", "100rel")]
        self._respond(txn, request, status, None, now, extra, to_tag=self._ids.tag())

    def _new_incoming(self, event: RequestReceived, now: float) -> None:
        request = event.request
        account = self.accounts.account_for(request)
        rule = self.config.policy.decide(request, event.source, account)
        if rule.action == "reject":
            self._respond(event.key, request, rule.reject_code, rule.reject_reason or None, now)
            return
        key = self._new_key(now)
        local = self._local_for_source(event.source)
        contact = self._contact_for(request.to, local)
        s = Session(
            key=key,
            entity_type=UAS,
            flags=parse_flags(rule.flags, self.config.default_max_duration),
            created=now,
            local=local,
            call_id=request.call_id,
            local_tag=key,
            invite=request,
            local_contact=contact,
            remote_tag=request.from_.tag or "",
            invite_txn=event.key,
            source=event.source,
            account=account,
            peer_requires_100rel="100rel" in request.headers.values("require"),
        )
        self._warn_unknown_flags(s)
        self._sessions[key] = s
        self._track_server(s, event.key)
        s.pending_in["INVITE"] = Pending(event.key, request, event.source)
        if not s.flags.no_new_event:
            self._emit(s, EventType.NEW, 0, None, "INVITE", request, Origin.REMOTE, now)
        self._arm_limit(s, now)
        for auto in rule.replies:
            if s.key not in self._sessions or "INVITE" not in s.pending_in:
                break
            body, content_type = auto.body, auto.content_type
            code, reason = auto.code, auto.reason or reason_for(auto.code)
            if auto.answer_offer:
                try:
                    body = self._answer_offer(request)
                    content_type = "application/sdp"
                except OfferError as error:
                    self._notice("info", f"session {key}: cannot answer the offer: {error}")
                    code, reason, body, content_type = 488, reason_for(488), None, None
            else:
                body = auto.render_body(self._template_values(s))
            self._reply(s, s.pending_in["INVITE"], code, reason, body, content_type, [], now)

    def _in_dialog(self, s: Session, event: RequestReceived, now: float) -> None:
        request, txn, method = event.request, event.key, event.request.method
        if method == "BYE":
            self._track_server(s, txn)
            for pending in list(s.pending_in.values()):
                self._respond(pending.txn, pending.request, 487, None, now)
            s.pending_in.clear()
            self._emit(s, EventType.TERMINATED, 0, None, "BYE", request, Origin.REMOTE, now)
            self._respond(txn, request, 200, None, now)
            self._forget(s)
            return
        dialog = self._dialog_for_request(s, request)
        if dialog is None:
            self._respond(txn, request, 481, None, now)
            return
        ours = {o.request.method for o in s.outstanding.values() if o.purpose == "user"}
        if method in ("INVITE", "UPDATE") and ours & {"INVITE", "UPDATE"}:
            self._respond(txn, request, 491, None, now)
            return
        slot = slot_of(method)
        if slot in s.pending_in or (method == "INVITE" and s.pending_2xx is not None):
            retry = ("Retry-After", str(int(self._ids.token(1), 16) % 11))
            self._respond(txn, request, 500, None, now, [retry])
            return
        status = dialog.on_request(request)
        if status is not None:
            self._respond(txn, request, status, None, now)
            return
        if method == "PRACK":
            self._on_prack(s, request)
        s.pending_in[slot] = Pending(txn, request, event.source)
        self._track_server(s, txn)
        s.last_method = method
        if method == "INVITE":
            s.state = SessionState.MODIFIED
        self._emit(s, EventType.UPDATED, 0, None, method, request, Origin.REMOTE, now)

    def _on_cancel(self, event: RequestReceived, now: float) -> None:
        request = event.request
        key = self._server_txns.get(event.invite_key) if event.invite_key else None
        s = self._sessions.get(key) if key else None
        if event.invite_key is None:
            self._respond(event.key, request, 481, None, now)
            return
        # the same To tag as the 487 that follows (RFC 3261 section 9.2)
        self._respond(event.key, request, 200, None, now, to_tag=s.local_tag if s else None)
        if s is None:
            return
        pending = s.pending_in.get("INVITE")
        if pending is not None and pending.txn == event.invite_key:
            s.pending_in.pop("INVITE")
            self._respond(pending.txn, pending.request, 487, None, now, to_tag=s.local_tag)
            if s.invite_txn == event.invite_key:
                self._emit(s, EventType.TERMINATED, 0, None, "CANCEL", request, Origin.REMOTE, now)
                self._forget(s)
            else:
                s.state = SessionState.ESTABLISHED

    def _on_ack(self, ack: Request, now: float) -> None:
        key = self._by_dialog.get(dialog_id_of_request(ack))
        s = (self._sessions.get(key) or self._lingering.get(key)) if key else None
        if s is None:
            self._notice("debug", f"absorbed an ACK for no session (Call-ID {ack.call_id})")
            return
        if s.pending_2xx is not None and s.pending_2xx.number == ack.cseq.seq:
            s.pending_2xx = None
            if s.ended:
                self._finish_lingering(s, now)
                return
            s.state = SessionState.ESTABLISHED
            if s.dialog is not None and ack.headers.get("contact"):
                s.dialog.on_request(ack)
        elif s.ended:
            return
        s.last_method = "ACK"
        if s.flags.report_ack:
            self._emit(s, EventType.UPDATED, 0, None, "ACK", ack, Origin.REMOTE, now)

    def _ack_for_rejected(self, ack: Request, now: float) -> None:
        """An ACK for the non-2xx that rejected an incoming call: the session ends now."""
        key = ack.to.tag if ack.headers.get("to") else None
        s = self._sessions.get(key) if key else None
        if s is not None and s.rejected and ack.call_id == s.call_id:
            self._emit(s, EventType.TERMINATED, 0, None, "ACK", ack, Origin.REMOTE, now)
            self._forget(s)

    def _on_prack(self, s: Session, prack: Request) -> None:
        pending = s.pending_1xx
        rack = (prack.headers.get("rack") or "").split()
        if pending is not None and rack and rack[0].isdigit() and int(rack[0]) == pending.number:
            s.pending_1xx = None

    # -- answering -----------------------------------------------------------------------------

    def _reply(
        self,
        s: Session,
        pending: Pending,
        code: int,
        reason: str,
        body: str | None,
        content_type: str | None,
        extra: list[tuple[str, str]],
        now: float,
    ) -> None:
        request = pending.request
        method = request.method
        initial = pending.txn == s.invite_txn
        headers = list(extra)
        if method in ("INVITE", "UPDATE") and 100 < code < 300:
            headers.insert(0, ("Contact", s.local_contact))
        if method == "INVITE" and 200 <= code < 300:
            headers += [("Allow", self._allow), ("Supported", "100rel")]
        if initial and 100 < code < 300:  # the dialog's route set (RFC 3261 section 12.1.1)
            headers += [("Record-Route", v) for v in request.headers.get_all("record-route")]
        reliable = (
            initial
            and 100 < code < 200
            and (
                s.peer_requires_100rel
                or any(v.strip() == "100rel" for n, v in extra if n.lower() == "require")
            )
        )
        if reliable:
            if s.pending_1xx is not None:
                raise reply_failed("the last reliable provisional response is not PRACKed yet")
            s.rseq += 1
            headers.append(("RSeq", str(s.rseq)))
            if not any(n.lower() == "require" for n, _ in extra):
                headers.append(("Require", "100rel"))
        payload, media = _encoded_body(body, content_type)
        response = make_response(
            request, code, reason, to_tag=s.local_tag, headers=headers, body=payload,
            content_type=media,
        )  # fmt: skip
        self._respond_message(pending.txn, response, now)
        s.last_reply[method] = code
        s.last_reply_code = code
        if code >= 200 or method != "INVITE":
            s.pending_in.pop(slot_of(method), None)
        target = response_target(request.top_via, pending.source)
        if reliable and not target.reliable:
            s.pending_1xx = self._retransmit(s, response, target, now, s.rseq)
        if method != "INVITE":
            return
        if initial:
            self._answer_initial(s, request, code, now)
        elif code >= 300:
            s.state = SessionState.ESTABLISHED
        else:
            s.state = SessionState.CONFIRMED if code >= 200 else s.state
        if 200 <= code < 300:
            s.pending_1xx = None
            if not target.reliable:
                s.pending_2xx = self._retransmit(s, response, target, now, request.cseq.seq)

    def _answer_initial(self, s: Session, request: Request, code: int, now: float) -> None:
        if code >= 300:
            s.rejected = True
            s.pending_1xx = None
            return
        if code == 100:
            return
        if s.dialog is None:
            s.dialog = Dialog.from_request(request, s.local_tag)
            self._by_dialog[s.dialog.id] = s.key
        if code >= 200:
            s.dialog.confirm()
            s.state = SessionState.CONFIRMED
            s.answered = now
            s.invite = _slim(request)
        else:
            s.state = SessionState.EARLY

    def _respond(
        self,
        txn: str,
        request: Request,
        code: int,
        reason: str | None,
        now: float,
        headers: list[tuple[str, str]] | None = None,
        to_tag: str | None = None,
    ) -> None:
        if request.method == "ACK":
            return
        tag = to_tag if to_tag is not None else (None if request.to.tag else self._ids.tag())
        response = make_response(request, code, reason, to_tag=tag, headers=headers or ())
        self._respond_message(txn, response, now)

    def _respond_message(self, txn: str, response: Response, now: float) -> None:
        try:
            self.txn.respond(txn, response, now)
        except CommandError:
            raise
        except Exception as error:  # the transaction ended or refuses: say why, never crash
            raise reply_failed(str(error)) from None

    # -- requests we send ----------------------------------------------------------------------

    def _update_early(
        self,
        s: Session,
        method: str,
        body: str | None,
        content_type: str | None,
        extra: list[tuple[str, str]],
        now: float,
    ) -> None:
        if method not in EARLY_METHODS:
            raise request_failed(f"{method} is not allowed before the dialog is confirmed")
        if method in ("BYE", "CANCEL"):
            if s.entity_type == UAC:
                self._cancel_invite(s, now)
                return
            raise request_failed(f"{method} on an unanswered incoming call: use terminate")
        dialog = s.dialog or next(iter(s.early.values()), None)
        if dialog is None:
            raise request_failed(f"{method} needs an early dialog (no provisional response yet)")
        request = dialog.create_request(method, s.local_contact, extra_headers=extra)
        _set_body(request, body, content_type)
        self._send_in_dialog(s, request, "user", now)

    def _update_confirmed(
        self,
        s: Session,
        method: str,
        body: str | None,
        content_type: str | None,
        extra: list[tuple[str, str]],
        now: float,
    ) -> None:
        assert s.dialog is not None
        if s.unacked_invite is not None:
            self._send_ack(s, None, None, now)
        ours = {o.request.method for o in s.outstanding.values() if o.purpose == "user"}
        if method in ("INVITE", "UPDATE") and ours & {"INVITE", "UPDATE"}:
            raise request_failed(f"a {'/'.join(sorted(ours))} of this session is still pending")
        if method == "CANCEL":
            for txn, out in s.outstanding.items():
                if out.request.method == "INVITE":
                    self.txn.send_cancel(txn, now)
                    return
            raise request_failed("there is no pending re-INVITE to CANCEL")
        if method == "INVITE" and s.pending_2xx is not None:
            raise request_failed("the last 2xx sent has not been ACKed yet")
        request = s.dialog.create_request(method, s.local_contact, extra_headers=extra)
        _set_body(request, body, content_type)
        self._send_in_dialog(s, request, "user", now)
        if method == "INVITE":
            s.state = SessionState.MODIFIED

    def _preload_proxy_route(self, s: Session, request: Request) -> None:
        """In a dialog that no proxy record-routed, a request sent to the session's outbound
        proxy carries it as a Route (RFC 3261 section 8.1.2's preloaded route), so that a
        loose-routing proxy relays it to the Request-URI instead of refusing it."""
        if s.proxy is not None and "route" not in request.headers:
            request.headers.insert_first("Route", f"<{s.proxy.with_params(lr=None)}>")

    def _send_in_dialog(self, s: Session, request: Request, purpose: str, now: float) -> None:
        self._preload_proxy_route(s, request)
        request.headers.insert_first("Via", _via(s.local))
        if self.config.user_agent and request.method != "ACK":
            request.headers.add("User-Agent", self.config.user_agent)
        self._send_request(s, request, self._next_hop(s, request), purpose, now)

    def _send_request(
        self, s: Session, request: Request, target: Target, purpose: str, now: float
    ) -> Outstanding:
        txn = self.txn.send_request(request, target, now)
        out = Outstanding(txn, request, purpose)
        s.outstanding[txn] = out
        self._client_txns[txn] = (s.key, out)
        if purpose == "user":
            s.last_method = request.method
        if request.method == "INVITE" and s.entity_type == UAC and s.dialog is None:
            s.invite = request
        return out

    def _send_ack(self, s: Session, body: str | None, content_type: str | None, now: float) -> None:
        invite = s.unacked_invite
        dialog = s.dialog
        assert invite is not None and dialog is not None
        ack = dialog.create_ack(invite)
        _set_body(ack, body, content_type)
        ack.headers.insert_first(
            "Via",
            _via(s.local, self._ids.branch()),
        )
        self._preload_proxy_route(s, ack)
        target = self._next_hop(s, ack)
        self.txn.send_stateless(ack, target, now)
        s.acks[dialog.remote_tag] = (ack.to_bytes(), target)
        s.unacked_invite = None
        s.state = SessionState.ESTABLISHED
        s.invite = _slim(s.invite)

    def _cancel_invite(self, s: Session, now: float) -> None:
        for txn, out in s.outstanding.items():
            if out.request.method == "INVITE":
                try:
                    self.txn.send_cancel(txn, now)
                except Exception as error:
                    raise request_failed(f"cannot CANCEL now: {error}") from None
                return
        raise request_failed("no INVITE to CANCEL")

    # -- responses from the network ------------------------------------------------------------

    def _on_response(self, txn: str, response: Response, now: float) -> None:
        entry = self._client_txns.get(txn)
        if entry is None:
            return
        key, out = entry
        s = self._sessions.get(key)
        if s is None or s.ended:
            if response.cseq.method == "INVITE" and 200 <= response.status < 300:
                self._ack_and_bye(out.request, response, now)
            return
        method = out.request.method
        if txn not in s.outstanding:  # a final response came already: 2xx retransmissions
            if method == "INVITE" and 200 <= response.status < 300:
                self._repeated_2xx(s, out, response, now)
            return
        if response.status >= 200:
            s.outstanding.pop(txn, None)
        if response.status in (401, 407) and self._authenticate(s, out, response, now):
            return
        if (
            method == "INVITE"
            and s.entity_type == UAC
            and not s.confirmed
            and out.purpose == "user"
        ):
            self._initial_invite_response(s, out, response, now)
            return
        dialog = self._dialog_for_response(s, response)
        if dialog is not None:
            dialog.on_response(out.request, response)
        if out.purpose != "user":
            return
        s.last_reply_code = response.status
        if method == "INVITE":
            if 200 <= response.status < 300:
                s.state = SessionState.CONFIRMED
                self._emit(
                    s,
                    EventType.ANSWERED,
                    response.status,
                    response.reason,
                    method,
                    response,
                    Origin.REMOTE,
                    now,
                )
                s.unacked_invite = out.request
                if not s.flags.no_auto_ack:
                    self._send_ack(s, None, None, now)
                return
            if response.status >= 300:
                s.state = SessionState.ESTABLISHED
        self._emit_reply(s, response, method, now)
        if method == "BYE" and response.status >= 200:
            self._emit(s, EventType.TERMINATED, 0, None, "BYE", None, Origin.LOCAL, now)
            self._forget(s)

    def _initial_invite_response(
        self, s: Session, out: Outstanding, response: Response, now: float
    ) -> None:
        status, tag = response.status, response.to.tag
        s.last_reply_code = status
        if status < 200:
            if status == 100 or tag is None or self._is_repeated_reliable(s, response):
                return
            dialog = s.early.get(tag)
            if dialog is None:
                dialog = Dialog.from_response(out.request, response)
                s.early[tag] = dialog
                self._by_dialog[dialog.id] = s.key
            else:
                dialog.on_response(out.request, response)
            s.remote_tag = s.remote_tag or tag
            s.state = SessionState.EARLY
            self._emit(
                s, EventType.EARLY, status, response.reason, "INVITE", response, Origin.REMOTE, now
            )
            self._prack_if_asked(s, dialog, response, now)
            return
        if status >= 300:
            s.outstanding.pop(out.txn, None)
            self._emit(
                s,
                EventType.REJECTED,
                status,
                response.reason,
                "INVITE",
                response,
                Origin.REMOTE,
                now,
            )
            self._emit(s, EventType.TERMINATED, 0, None, "INVITE", None, Origin.REMOTE, now)
            self._forget(s)
            return
        if tag is None:
            self._notice("info", f"session {s.key}: 2xx without To-tag dropped")
            return
        dialog = s.early.get(tag) or Dialog.from_response(out.request, response)
        dialog.on_response(out.request, response)
        for other_tag, other in list(s.early.items()):
            if other_tag != tag:
                self._by_dialog.pop(other.id, None)
        s.early.clear()
        s.dialog = dialog
        s.remote_tag = tag
        self._by_dialog[dialog.id] = s.key
        s.state = SessionState.CONFIRMED
        s.answered = now
        s.unacked_invite = out.request
        self._emit(
            s, EventType.ANSWERED, status, response.reason, "INVITE", response, Origin.REMOTE, now
        )
        if not s.flags.no_auto_ack:
            self._send_ack(s, None, None, now)

    def _repeated_2xx(self, s: Session, out: Outstanding, response: Response, now: float) -> None:
        """A 2xx to an INVITE already answered: ACK it again, or ACK and BYE another leg's."""
        tag = response.to.tag or ""
        if s.dialog is not None and tag != s.dialog.remote_tag:
            self._notice("info", f"session {s.key}: a second 2xx from leg {tag}: ACK and BYE")
            self._ack_and_bye(out.request, response, now)
        elif tag in s.acks:
            self._raw.append(Outgoing(*s.acks[tag]))

    def _on_stray(self, response: Response, source: Target, now: float) -> None:
        if response.cseq.method != "INVITE" or not 200 <= response.status < 300:
            return
        key = self._by_dialog.get(dialog_id_of_response(response))
        s = self._sessions.get(key) if key else None
        if s is not None and response.to.tag in s.acks:
            self._raw.append(Outgoing(*s.acks[response.to.tag or ""]))
            return
        if s is None and self._recently_ended.get(response.call_id, 0.0) >= now:
            self._notice("info", f"2xx for ended session {response.call_id}: ACK and BYE")
            self._ack_and_bye(None, response, now, source)
        elif s is None:
            self._notice("info", f"dropped a 2xx for no call of ours (Call-ID {response.call_id})")

    def _on_timeout(self, txn: str, method: str, now: float) -> None:
        entry = self._client_txns.get(txn)
        if entry is not None:
            key, out = entry
            s = self._sessions.get(key)
            if s is None or s.ended:
                return
            s.outstanding.pop(txn, None)
            if out.purpose != "user":
                if method == "BYE":
                    self._forget(s)
                return
            if method == "INVITE" and s.entity_type == UAC and not s.confirmed:
                self._emit(s, EventType.REJECTED, 408, "Timeout", method, None, Origin.TIMEOUT, now)
                self._emit(s, EventType.TERMINATED, 0, None, method, None, Origin.TIMEOUT, now)
                self._forget(s)
                return
            self._emit(s, EventType.REJECTED, 408, "Timeout", method, None, Origin.TIMEOUT, now)
            if method == "BYE":
                self._emit(s, EventType.TERMINATED, 0, None, "BYE", None, Origin.TIMEOUT, now)
                self._forget(s)
            elif method == "INVITE":
                s.state = SessionState.ESTABLISHED
            return
        key = self._server_txns.get(txn)
        s = self._sessions.get(key) if key else None
        if s is not None and s.rejected and txn == s.invite_txn:
            self._emit(s, EventType.TERMINATED, 0, None, "INVITE", None, Origin.TIMEOUT, now)
            self._forget(s)

    # -- digest --------------------------------------------------------------------------------

    def _authenticate(self, s: Session, out: Outstanding, response: Response, now: float) -> bool:
        """Answer a 401/407 with credentials, once per challenge; False if we cannot."""
        name = "www-authenticate" if response.status == 401 else "proxy-authenticate"
        challenges = []
        for value in response.headers.get_all(name):
            try:
                challenges.append(parse_challenge(value))
            except ParseError:
                continue
        digest = (self.accounts.digest_for(s.account) if s.account else None) or self._digest
        challenge = digest.pick(challenges)
        if challenge is None or out.auth_attempts >= (2 if challenge.stale else 1):
            return False
        request = out.request
        retry = Request(request.method, request.uri, request.headers.copy())
        retry.body = request.body
        retry.headers.remove("via")
        retry.headers.remove(ANSWER_HEADER[name])
        initial = request.method == "INVITE" and s.entity_type == UAC and not s.confirmed
        dialog = None if initial else self._dialog_for_response(s, response)
        if dialog is not None:
            dialog.local_seq += 1
            seq = dialog.local_seq
        else:
            seq = request.cseq.seq + 1
        retry.headers.set("CSeq", f"{seq} {request.method}")
        answer = digest.authorize(challenge, request.method, request.uri_text, request.body)
        if answer is None:
            return False
        retry.headers.add(ANSWER_HEADER[name], answer)
        retry.headers.insert_first("Via", _via(s.local))
        target = self._next_hop(s, retry)
        again = self._send_request(s, retry, target, out.purpose, now)
        again.auth_attempts = out.auth_attempts + 1
        if initial:
            s.state = SessionState.NEW_AUTH
        return True

    # -- ending --------------------------------------------------------------------------------

    def _end_by_us(self, s: Session, origin: str, extra: list[tuple[str, str]], now: float) -> None:
        if s.entity_type == UAC and not s.confirmed:
            with contextlib.suppress(CommandError):  # nothing to cancel: the INVITE ended
                self._cancel_invite(s, now)
        elif s.entity_type == UAS and not s.confirmed:
            pending = s.pending_in.get("INVITE")
            if pending is not None and pending.txn == s.invite_txn:
                code = 408 if origin == Origin.TIMEOUT else 480
                self._respond(
                    pending.txn, pending.request, code, None, now, extra, to_tag=s.local_tag
                )
        else:
            for pending in list(s.pending_in.values()):
                self._respond(pending.txn, pending.request, 487, None, now)
            if s.unacked_invite is not None:
                self._send_ack(s, None, None, now)
            if s.pending_2xx is not None:
                s.bye_on_ack = True
            else:
                self._send_bye(s, extra, now)
        s.pending_in.clear()
        self._emit(s, EventType.TERMINATED, 0, None, "BYE", None, origin, now)
        if s.bye_on_ack:
            s.ended = True
            self._sessions.pop(s.key, None)
            self._lingering[s.key] = s
        else:
            self._forget(s)

    def _send_bye(self, s: Session, extra: list[tuple[str, str]], now: float) -> None:
        assert s.dialog is not None
        bye = s.dialog.create_request("BYE", extra_headers=extra)
        self._send_in_dialog(s, bye, "bye", now)

    def _finish_lingering(self, s: Session, now: float) -> None:
        self._send_bye(s, [], now)
        self._forget(s)

    def _ack_and_bye(
        self, invite: Request | None, response: Response, now: float, source: Target | None = None
    ) -> None:
        """ACK a 2xx that no live session wants, then BYE it (MI-API.md section 4)."""
        if invite is None:
            invite = _invite_from_response(response)
        try:
            dialog = Dialog.from_response(invite, response)
        except Exception as error:
            self._notice("info", f"cannot ACK a stray 2xx: {error}")
            return
        local = self._local_for_source(source) if source else self.config.local[0]
        via = _via(local, self._ids.branch())
        ack = dialog.create_ack(invite)
        ack.headers.insert_first("Via", via)
        target = self._hop_for_dialog(dialog, local)
        self.txn.send_stateless(ack, target, now)
        bye = dialog.create_request("BYE")
        bye.headers.insert_first("Via", _via(local))
        self.txn.send_request(bye, target, now)

    def _track_server(self, s: Session, txn: str) -> None:
        self._server_txns[txn] = s.key
        s.server_txns.append(txn)

    def _forget(self, s: Session) -> None:
        if s.entity_type == UAC:
            # a 2xx may still come for it: ACK and BYE it until then (MI-API.md section 4)
            clock = self._clock
            if len(self._recently_ended) > 4096:
                self._recently_ended = {k: t for k, t in self._recently_ended.items() if t >= clock}
            self._recently_ended[s.call_id] = clock + 64 * self.config.timers.t1
        self._sessions.pop(s.key, None)
        self._lingering.pop(s.key, None)
        s.ended = True
        s.pending_2xx = s.pending_1xx = None
        for dialog in [s.dialog, *s.early.values()]:
            if dialog is not None and self._by_dialog.get(dialog.id) == s.key:
                del self._by_dialog[dialog.id]
        for txn in list(s.outstanding):
            out = s.outstanding.pop(txn)
            if out.request.method != "INVITE":
                self._client_txns.pop(txn, None)
        for txn in s.server_txns:
            if self._server_txns.get(txn) == s.key:
                del self._server_txns[txn]

    # -- timers --------------------------------------------------------------------------------

    def _arm_limit(self, s: Session, now: float) -> None:
        if s.flags.max_duration is not None:
            s.deadline = now + s.flags.max_duration
            self._schedule(s.deadline, s.key, "limit")

    def _retransmit(
        self, s: Session, message: Response, target: Target, now: float, number: int
    ) -> Retransmit:
        t1 = self.config.timers.t1
        r = Retransmit(message.to_bytes(), target, now + t1, t1, now + 64 * t1, number)
        self._schedule(r.next_at, s.key, "retransmit")
        return r

    def _schedule(self, when: float, key: str, kind: str) -> None:
        heapq.heappush(self._timers, (when, next(self._timer_ids), key, kind))

    def _on_timer(self, s: Session, kind: str, now: float) -> None:
        if kind == "limit" and not s.ended and s.deadline is not None and now >= s.deadline:
            self._notice("info", f"session {s.key} reached its {s.flags.max_duration} s limit")
            self._end_by_us(s, Origin.TIMEOUT, [], now)

    def _retransmissions(self, s: Session, now: float) -> None:
        """Resend what of ``s`` is due (a session may have a 2xx and a reliable 1xx pending)."""
        for attr in ("pending_2xx", "pending_1xx"):
            r: Retransmit | None = getattr(s, attr)
            if r is None:
                continue
            # before the next_at test: the timer armed for give_up_at fires before next_at
            if now >= r.give_up_at:
                setattr(s, attr, None)
                self._gave_up(s, attr, now)
                continue
            if r.next_at > now:
                continue
            self._raw.append(Outgoing(r.data, r.target))
            r.interval = min(r.interval * 2, self.config.timers.t2)
            r.next_at = now + r.interval
            self._schedule(min(r.next_at, r.give_up_at), s.key, "retransmit")

    def _gave_up(self, s: Session, what: str, now: float) -> None:
        if what == "pending_2xx":
            self._notice("info", f"session {s.key}: no ACK for the 2xx within 64*T1, sending BYE")
            if s.ended:
                self._finish_lingering(s, now)
                return
            self._send_bye(s, [], now)
            self._emit(s, EventType.TERMINATED, 0, None, "BYE", None, Origin.TIMEOUT, now)
            self._forget(s)
        else:
            self._notice("info", f"session {s.key}: no PRACK for the reliable provisional response")
            pending = s.pending_in.pop("INVITE", None)
            if pending is not None:
                self._respond(
                    pending.txn, pending.request, 500, "No PRACK", now, to_tag=s.local_tag
                )
                s.rejected = True

    # -- helpers -------------------------------------------------------------------------------

    def _emit(
        self,
        s: Session,
        event_type: str,
        status: int,
        reason: str | None,
        method: str,
        message: Request | Response | None,
        origin: str,
        now: float,
    ) -> None:
        body = headers = None
        if message is not None:
            if s.flags.with_body and message.body:
                body = message.body.decode("utf-8", "replace")
            if s.flags.with_headers:
                headers = "".join(f"{n}: {v}\r\n" for n, v in message.headers)
        self._seq += 1
        from_tag = s.local_tag if s.entity_type == UAC else s.remote_tag
        to_tag = s.remote_tag if s.entity_type == UAC else s.local_tag
        if s.entity_type == UAS and s.dialog is None and s.state is SessionState.NEW:
            to_tag = ""
        self._events.append(
            SessionEvent(
                key=s.key,
                event_type=event_type,
                entity_type=s.entity_type,
                status=status,
                reason=reason,
                method=method,
                body=body,
                headers=headers,
                seq=self._seq,
                time=now,
                callid=s.call_id,
                from_tag=from_tag,
                to_tag=to_tag,
                origin=origin,
            )
        )

    def _emit_reply(self, s: Session, response: Response, method: str, now: float) -> None:
        status = response.status
        kind = (
            EventType.EARLY
            if status < 200
            else EventType.ANSWERED
            if status < 300
            else EventType.REJECTED
        )
        self._emit(s, kind, status, response.reason, method, response, Origin.REMOTE, now)

    def _notice(self, level: str, message: str) -> None:
        self._notices.append(Notice(level, message))

    def _warn_unknown_flags(self, s: Session) -> None:
        if s.flags.unknown:
            self._notice("warning", f"session {s.key}: unknown flags {s.flags.unknown!r} ignored")

    def _new_key(self, now: float) -> str:
        index = next(self._counter)
        return f"{self.config.key_prefix}.{index % 1024}.{index}.{int(now)}.{self._ids.token(8)}"

    def _dialog_for_request(self, s: Session, request: Request) -> Dialog | None:
        wanted = dialog_id_of_request(request)
        if s.dialog is not None and s.dialog.id == wanted:
            return s.dialog
        return next((d for d in s.early.values() if d.id == wanted), None)

    def _dialog_for_response(self, s: Session, response: Response) -> Dialog | None:
        wanted = dialog_id_of_response(response)
        if s.dialog is not None and s.dialog.id == wanted:
            return s.dialog
        return next((d for d in s.early.values() if d.id == wanted), None)

    def _is_repeated_reliable(self, s: Session, response: Response) -> bool:
        """True for a reliable provisional response already PRACKed (a retransmission)."""
        if "100rel" not in response.headers.values("require"):
            return False
        rseq = (response.headers.get("rseq") or "").strip()
        return rseq.isdigit() and int(rseq) <= s.pracked.get(response.to.tag or "", 0)

    def _prack_if_asked(self, s: Session, dialog: Dialog, response: Response, now: float) -> None:
        if "100rel" not in response.headers.values("require"):
            return
        rseq_text = (response.headers.get("rseq") or "").strip()
        if not rseq_text.isdigit():
            self._notice("info", f"session {s.key}: reliable {response.status} without RSeq")
            return
        rseq = int(rseq_text)
        s.pracked[dialog.remote_tag] = rseq
        cseq = response.cseq
        prack = dialog.create_request(
            "PRACK", extra_headers=[("RAck", f"{rseq} {cseq.seq} {cseq.method}")]
        )
        self._send_in_dialog(s, prack, "prack", now)

    def _next_hop(self, s: Session, request: Request) -> Target:
        if s.proxy is not None:
            return self._target_of(s.proxy, s.local)
        route = request.headers.get("route")
        if route:
            return self._target_of(
                _sip(parse_name_addr(request.headers.values("route")[0]).uri), s.local
            )
        return self._target_of(_sip(request.uri), s.local)

    def _hop_for_dialog(self, dialog: Dialog, local: Target) -> Target:
        if dialog.route_set:
            return self._target_of(_sip(dialog.route_set[0].uri), local)
        return self._target_of(_sip(dialog.remote_target), local)

    def _target_of(self, uri: SipUri, local: Target) -> Target:
        transport = uri.transport or ("tls" if uri.scheme == "sips" else local.transport)
        host = uri.params.get("maddr") or uri.host_address
        port = uri.port or (5061 if transport == "tls" else 5060)
        return Target(transport, host.strip("[]"), port)

    def _pick_local(self, uri: SipUri, socket: str | None) -> Target:
        if socket:
            for local in self.config.local:
                if socket.lower() == str(local).lower():
                    return local
            raise CommandError(500, "Non-local socket specified", f"{socket} is not a listener")
        transport = uri.transport or ("tls" if uri.scheme == "sips" else "udp")
        family_v6 = ":" in uri.host_address
        candidates = [t for t in self.config.local if t.transport == transport]
        for local in candidates:
            if (":" in local.host) == family_v6:
                return local
        if candidates:
            return candidates[0]
        raise start_failed(f"no {transport} listener to send from")

    def _local_for_source(self, source: Target) -> Target:
        family_v6 = ":" in source.host
        for local in self.config.local:
            if local.transport == source.transport and (":" in local.host) == family_v6:
                return local
        return self.config.local[0]

    def _contact_for(self, party: NameAddr, local: Target) -> str:
        if self.config.advertised_contact:
            return f"<{self.config.advertised_contact}>"
        user = party.uri.user if isinstance(party.uri, SipUri) and party.uri.user else None
        transport = "" if local.transport == "udp" else f";transport={local.transport}"
        scheme = "sips" if local.transport == "tls" else "sip"
        userpart = f"{user}@" if user else ""
        return f"<{scheme}:{userpart}{_hostport(local)}{transport}>"

    def _sip_uri(self, text: str, what: str) -> SipUri:
        text = text.strip()
        if text.startswith("<") and text.endswith(">"):
            text = text[1:-1]
        try:
            uri = parse_uri(text)
        except ParseError as error:
            raise start_failed(f"bad {what} {text!r}: {error}") from None
        if not isinstance(uri, SipUri):
            raise start_failed(f"{what} must be a sip: or sips: URI")
        return uri

    def _answer_offer(self, request: Request) -> str:
        address = self.config.rtp_address or self.config.local[0].host
        port, session_id = self._rtp.next(), next(self._counter)
        if not request.body:  # no offer in the INVITE: the 2xx carries ours (RFC 3264)
            return offer_sdp(address=address, rtp_port=port, session_id=session_id)
        offer = request.body.decode("utf-8", "replace")
        return answer_sdp(offer, address=address, rtp_port=port, session_id=session_id)

    def _template_values(self, s: Session) -> dict[str, str]:
        return {
            "local_ip": self.config.rtp_address or s.local.host,
            "rtp_port": str(self._rtp.next()),
            "session_id": str(next(self._counter)),
            "session_version": "1",
        }


def _via(local: Target, branch: str | None = None) -> str:
    """A Via value for a request sent from ``local`` (the transaction layer adds a branch)."""
    branch_param = f";branch={branch}" if branch else ""
    return f"SIP/2.0/{local.transport.upper()} {_hostport(local)}{branch_param};rport"


def _hostport(target: Target) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    return f"{host}:{target.port}"


def _sip(uri: object) -> SipUri:
    if not isinstance(uri, SipUri):
        raise request_failed(f"cannot send to {uri}: not a SIP URI")
    return uri


def _encoded_body(body: str | None, content_type: str | None) -> tuple[bytes, str | None]:
    """A body given to a command, and its media type (application/sdp unless told)."""
    if not body:
        return b"", None
    media = (content_type or "application/sdp").strip()
    if media.lower().startswith("content-type:"):
        media = media.split(":", 1)[1].strip()
    return body.encode("utf-8"), media


def _set_body(message: Request, body: str | None, content_type: str | None) -> None:
    message.set_body(*_encoded_body(body, content_type))


def _invite_from_response(response: Response) -> Request:
    """The INVITE a 2xx answers, as far as a dialog needs it (From, To, Call-ID, CSeq)."""
    headers = Headers()
    for name in ("from", "to", "call-id"):
        headers.add(name.title(), response.headers.get(name) or "")
    headers.add("CSeq", f"{response.cseq.seq} INVITE")
    contact = response.contacts()[0].uri if response.headers.get("contact") else response.to.uri
    return Request("INVITE", contact, headers)


#: What a session still needs of its initial INVITE once the call is up (ua_session_list).
#: Their names are written in one spelling, shared by every session (not the received strings).
_KEPT_OF_INVITE = {"from": "From", "to": "To", "call-id": "Call-ID", "cseq": "CSeq"}


def _slim(invite: Request) -> Request:
    """The initial INVITE reduced to what a live session shows of it: the INVITE and its
    parsed headers are a third of a session's memory, and nothing else reads them any more."""
    kept = []
    for name, value in invite.headers:
        spelling = _KEPT_OF_INVITE.get(header_key(name))
        if spelling is not None:
            kept.append((spelling, value))
    return Request(invite.method, invite.uri_text, Headers(kept, checked=True))
