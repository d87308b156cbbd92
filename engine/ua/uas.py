"""The UA server half of the core: requests from the network, and the answers to them.

Mixed into :class:`engine.ua.core.UserAgent`, which holds the state; see core.py for the
contract.
"""

import ipaddress
from typing import TYPE_CHECKING

from engine.sip import Request, Response, Target
from engine.sip.dialog import Dialog, dialog_id_of_request
from engine.sip.responses import make_response, reason_for
from engine.sip.transaction import RequestReceived, response_target
from engine.sip.validate import answer_without_dialog, validate_request

from .errors import CommandError, reply_failed
from .events import EventType, Origin, SessionState
from .flags import parse_flags
from .messages import encoded_body, slim_invite
from .sdp_answer import OfferError
from .session import UAS, Pending, Session, slot_of

if TYPE_CHECKING:
    from .core import UserAgent


class UasHalf:
    """Incoming requests (new calls, in-dialog requests, CANCEL, ACK, PRACK) and replies."""

    # -- requests from the network -------------------------------------------------------------

    def _on_request(self: "UserAgent", event: RequestReceived, now: float) -> None:
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

    def _trusted(self: "UserAgent", source: Target) -> bool:
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

    def _refuse_untrusted(self: "UserAgent", txn: str, request: Request, now: float) -> None:
        """The same answer to every request from an unknown source, whatever it asks."""
        self._notice("info", f"refused {request.method} from an untrusted source")
        rule = self.config.untrusted
        if rule.startswith("reject:"):
            self._respond(txn, request, int(rule.split(":", 1)[1]), None, now)

    def _answer_outside_dialog(self: "UserAgent", txn: str, request: Request, now: float) -> None:
        status = answer_without_dialog(request) or 481
        extra: list[tuple[str, str]] = []
        if status in (200, 405):
            extra.append(("Allow", self._allow))
        if status == 200:
            extra += [("Accept", "application/sdp"), ("Supported", "100rel")]
        self._respond(txn, request, status, None, now, extra, to_tag=self._ids.tag())

    def _new_incoming(self: "UserAgent", event: RequestReceived, now: float) -> None:
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

    def _in_dialog(self: "UserAgent", s: Session, event: RequestReceived, now: float) -> None:
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

    def _on_cancel(self: "UserAgent", event: RequestReceived, now: float) -> None:
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

    def _on_ack(self: "UserAgent", ack: Request, now: float) -> None:
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

    def _ack_for_rejected(self: "UserAgent", ack: Request, now: float) -> None:
        """An ACK for the non-2xx that rejected an incoming call: the session ends now."""
        key = ack.to.tag if ack.headers.get("to") else None
        s = self._sessions.get(key) if key else None
        if s is not None and s.rejected and ack.call_id == s.call_id:
            self._emit(s, EventType.TERMINATED, 0, None, "ACK", ack, Origin.REMOTE, now)
            self._forget(s)

    def _on_prack(self: "UserAgent", s: Session, prack: Request) -> None:
        pending = s.pending_1xx
        rack = (prack.headers.get("rack") or "").split()
        if pending is not None and rack and rack[0].isdigit() and int(rack[0]) == pending.number:
            s.pending_1xx = None

    # -- answering -----------------------------------------------------------------------------

    def _reply(
        self: "UserAgent",
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
        payload, media = encoded_body(body, content_type)
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

    def _answer_initial(
        self: "UserAgent", s: Session, request: Request, code: int, now: float
    ) -> None:
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
            s.invite = slim_invite(request)
        else:
            s.state = SessionState.EARLY

    def _respond(
        self: "UserAgent",
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

    def _respond_message(self: "UserAgent", txn: str, response: Response, now: float) -> None:
        try:
            self.txn.respond(txn, response, now)
        except CommandError:
            raise
        except Exception as error:  # the transaction ended or refuses: say why, never crash
            raise reply_failed(str(error)) from None
