"""The UA core: UA sessions with OpenSIPS b2b_entities semantics over the pure SIP layers.

Inputs take the current unix time: :meth:`UserAgent.receive`, :meth:`UserAgent.handle_timer` and
the session commands (:meth:`client_start`, :meth:`reply`, :meth:`update`, :meth:`terminate`).
Outputs are drained: :meth:`datagrams_to_send`, :meth:`next_event` (SessionEvent),
:meth:`next_notice` (things worth a log line) and :meth:`get_timer`. No I/O, no clock, no random:
identifiers come from the injected IdFactory. MI-API.md sections 1, 3, 4 and 5 are the contract.

This module holds the state, the inputs and what both sides share (ending sessions, timers,
events); the UA server side is in uas.py, the UA client side in uac.py.
"""

import contextlib
import heapq
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
from engine.sip.digest import DigestClient
from engine.sip.ids import IdFactory
from engine.sip.responses import error_response_bytes, reason_for
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
)
from engine.sip.validate import response_is_acceptable

from .accounts import AccountBook
from .config import UaConfig
from .errors import CommandError, reply_failed, request_failed, start_failed, terminate_failed
from .events import EventType, Origin, SessionEvent, SessionInfo, SessionState
from .flags import parse_flags
from .messages import as_sip_uri, hostport, invite_from_response, set_body, via_value
from .registration import RegistrationEvent, RegistrationInfo
from .sdp_answer import RtpPortAllocator, answer_sdp, offer_sdp
from .session import UAC, UAS, Outstanding, Retransmit, Session, slot_of
from .uac import UacHalf
from .uas import UasHalf

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


class UserAgent(UasHalf, UacHalf):
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
        headers.add("Via", via_value(local))
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
        set_body(invite, body, content_type)
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
        return via_value(local)

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
            invite = invite_from_response(response)
        try:
            dialog = Dialog.from_response(invite, response)
        except Exception as error:
            self._notice("info", f"cannot ACK a stray 2xx: {error}")
            return
        local = self._local_for_source(source) if source else self.config.local[0]
        via = via_value(local, self._ids.branch())
        ack = dialog.create_ack(invite)
        ack.headers.insert_first("Via", via)
        target = self._hop_for_dialog(dialog, local)
        self.txn.send_stateless(ack, target, now)
        bye = dialog.create_request("BYE")
        bye.headers.insert_first("Via", via_value(local))
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
                as_sip_uri(parse_name_addr(request.headers.values("route")[0]).uri), s.local
            )
        return self._target_of(as_sip_uri(request.uri), s.local)

    def _hop_for_dialog(self, dialog: Dialog, local: Target) -> Target:
        if dialog.route_set:
            return self._target_of(as_sip_uri(dialog.route_set[0].uri), local)
        return self._target_of(as_sip_uri(dialog.remote_target), local)

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
        return f"<{scheme}:{userpart}{hostport(local)}{transport}>"

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
