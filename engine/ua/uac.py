"""The UA client half of the core: requests we send, the responses to them, and digest.

Mixed into :class:`engine.ua.core.UserAgent`, which holds the state; see core.py for the
contract.
"""

from typing import TYPE_CHECKING

from engine.sip import Request, Response, Target
from engine.sip.dialog import Dialog, dialog_id_of_response
from engine.sip.digest import ANSWER_HEADER, challenge_header, challenges_in
from engine.sip.transaction import Outgoing

from .errors import request_failed
from .events import EventType, Origin, SessionState
from .messages import set_body, slim_invite, via_value
from .session import UAC, Outstanding, Session

if TYPE_CHECKING:
    from .core import UserAgent

#: Methods the controller may send before the dialog is confirmed.
EARLY_METHODS = frozenset({"UPDATE", "PRACK", "CANCEL", "BYE"})


class UacHalf:
    """Requests the controller sends, the responses that come back, and authentication."""

    # -- requests we send ----------------------------------------------------------------------

    def _update_early(
        self: "UserAgent",
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
        set_body(request, body, content_type)
        self._send_in_dialog(s, request, "user", now)

    def _update_confirmed(
        self: "UserAgent",
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
        set_body(request, body, content_type)
        self._send_in_dialog(s, request, "user", now)
        if method == "INVITE":
            s.state = SessionState.MODIFIED

    def _preload_proxy_route(self: "UserAgent", s: Session, request: Request) -> None:
        """In a dialog that no proxy record-routed, a request sent to the session's outbound
        proxy carries it as a Route (RFC 3261 section 8.1.2's preloaded route), so that a
        loose-routing proxy relays it to the Request-URI instead of refusing it."""
        if s.proxy is not None and "route" not in request.headers:
            request.headers.insert_first("Route", f"<{s.proxy.with_params(lr=None)}>")

    def _send_in_dialog(
        self: "UserAgent", s: Session, request: Request, purpose: str, now: float
    ) -> None:
        self._preload_proxy_route(s, request)
        request.headers.insert_first("Via", via_value(s.local))
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

    def _send_ack(
        self: "UserAgent", s: Session, body: str | None, content_type: str | None, now: float
    ) -> None:
        invite = s.unacked_invite
        dialog = s.dialog
        assert invite is not None and dialog is not None
        ack = dialog.create_ack(invite)
        set_body(ack, body, content_type)
        ack.headers.insert_first(
            "Via",
            via_value(s.local, self._ids.branch()),
        )
        self._preload_proxy_route(s, ack)
        target = self._next_hop(s, ack)
        self.txn.send_stateless(ack, target, now)
        s.acks[dialog.remote_tag] = (ack.to_bytes(), target)
        s.unacked_invite = None
        s.state = SessionState.ESTABLISHED
        s.invite = slim_invite(s.invite)

    def _cancel_invite(self: "UserAgent", s: Session, now: float) -> None:
        for txn, out in s.outstanding.items():
            if out.request.method == "INVITE":
                try:
                    self.txn.send_cancel(txn, now)
                except Exception as error:
                    raise request_failed(f"cannot CANCEL now: {error}") from None
                return
        raise request_failed("no INVITE to CANCEL")

    # -- responses from the network ------------------------------------------------------------

    def _on_response(self: "UserAgent", txn: str, response: Response, now: float) -> None:
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

    def _repeated_2xx(
        self: "UserAgent", s: Session, out: Outstanding, response: Response, now: float
    ) -> None:
        """A 2xx to an INVITE already answered: ACK it again, or ACK and BYE another leg's."""
        tag = response.to.tag or ""
        if s.dialog is not None and tag != s.dialog.remote_tag:
            self._notice("info", f"session {s.key}: a second 2xx from leg {tag}: ACK and BYE")
            self._ack_and_bye(out.request, response, now)
        elif tag in s.acks:
            self._raw.append(Outgoing(*s.acks[tag]))

    def _on_stray(self: "UserAgent", response: Response, source: Target, now: float) -> None:
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

    def _on_timeout(self: "UserAgent", txn: str, method: str, now: float) -> None:
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

    def _authenticate(
        self: "UserAgent", s: Session, out: Outstanding, response: Response, now: float
    ) -> bool:
        """Answer a 401/407 with credentials, once per challenge; False if we cannot."""
        challenges = challenges_in(response)
        digest = (self.accounts.digest_for(s.account) if s.account else None) or self._digest
        challenge = digest.pick(challenges)
        if challenge is None or out.auth_attempts >= (2 if challenge.stale else 1):
            return False
        request = out.request
        retry = Request(request.method, request.uri, request.headers.copy())
        retry.body = request.body
        retry.headers.remove("via")
        retry.headers.remove(ANSWER_HEADER[challenge_header(response)])
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
        retry.headers.add(ANSWER_HEADER[challenge_header(response)], answer)
        retry.headers.insert_first("Via", via_value(s.local))
        target = self._next_hop(s, retry)
        again = self._send_request(s, retry, target, out.purpose, now)
        again.auth_attempts = out.auth_attempts + 1
        if initial:
            s.state = SessionState.NEW_AUTH
        return True
