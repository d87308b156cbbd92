"""The UA core's accounts: sending REGISTERs and keep-alives, and reading their answers.

:class:`AccountBook` holds one :class:`Registration` per account and talks to the network only
through the :class:`UserAgent` that owns it (its transaction layer, timers and event stream).
"""

from typing import TYPE_CHECKING

from engine.sip import Headers, Request, Response, SipUri, Target, parse_uri
from engine.sip.digest import ANSWER_HEADER, DigestClient, challenge_header, challenges_in
from engine.sip.errors import ParseError

from .errors import CommandError
from .registration import (
    Account,
    Registration,
    RegistrationEvent,
    RegistrationInfo,
    RegistrationState,
)

if TYPE_CHECKING:
    from .core import UserAgent


class AccountBook:
    """Every account of one UA core."""

    def __init__(self, ua: "UserAgent", accounts: tuple[Account, ...]) -> None:
        self._ua = ua
        self._accounts = {a.name: a for a in accounts}
        self._digest = {a.name: DigestClient(a.credentials, ua.ids) for a in accounts}
        self._regs: dict[str, Registration] = {}
        #: REGISTER or keep-alive transaction -> (account, kind, attempts).
        self._txns: dict[str, tuple[str, str, int]] = {}
        for account in accounts:
            local = self._local(account)
            self._regs[account.name] = Registration(
                account=account,
                call_id=ua.ids.call_id(),
                from_tag=ua.ids.tag(),
                contact=ua.contact_for(account.identity(), local),
            )

    # -- looking ---------------------------------------------------------------------------------

    def get(self, name: str) -> Account | None:
        """The account called ``name``."""
        return self._accounts.get(name)

    def infos(self) -> list[RegistrationInfo]:
        """A snapshot of every account's registration."""
        return [reg.info() for reg in self._regs.values()]

    def digest_for(self, name: str) -> DigestClient | None:
        """The digest answerer of account ``name``."""
        return self._digest.get(name)

    def account_for(self, request: Request) -> str | None:
        """The account an incoming request is for: its Request-URI user is the account's
        user and the request came to the Contact we registered (or the AoR)."""
        try:
            uri = request.uri
        except ParseError:
            return None
        if not isinstance(uri, SipUri) or uri.user is None:
            return None
        for name, account in self._accounts.items():
            if account.aor_uri().user == uri.user:
                return name
        return None

    def trusted_hosts(self) -> set[str]:
        """Addresses of every registrar and outbound proxy (calls from them are expected)."""
        hosts: set[str] = set()
        for account in self._accounts.values():
            for text in (account.registrar, account.outbound_proxy):
                if text:
                    uri = parse_uri(text)
                    if isinstance(uri, SipUri):
                        hosts.add(uri.host_address)
            if not account.registrar:
                hosts.add(account.aor_uri().host_address)
        return hosts

    # -- commands --------------------------------------------------------------------------------

    def start(self, now: float) -> None:
        """Register every account that asks for it."""
        for reg in self._regs.values():
            if reg.account.register:
                self._send_register(reg, now)

    def register(self, name: str, now: float) -> None:
        """Register (or refresh) account ``name`` now."""
        reg = self._reg(name)
        if reg.txn is None:
            self._send_register(reg, now)

    def unregister(self, name: str, now: float) -> None:
        """Remove account ``name``'s binding (REGISTER with Expires 0)."""
        reg = self._reg(name)
        if reg.state in (RegistrationState.REGISTERED, RegistrationState.REGISTERING):
            self._send_register(reg, now, unregister=True)
        else:
            reg.next_attempt = None
            reg.state = RegistrationState.UNREGISTERED

    def stop(self, now: float) -> None:
        """Unregister every registered account (the engine is stopping)."""
        for reg in self._regs.values():
            if reg.state in (RegistrationState.REGISTERED, RegistrationState.REGISTERING):
                self._send_register(reg, now, unregister=True)
            reg.next_attempt = reg.next_keepalive = None

    # -- from the core -------------------------------------------------------------------------

    def on_response(self, txn: str, response: Response, now: float) -> bool:
        """A response to one of our transactions; False if the transaction is not ours."""
        entry = self._txns.get(txn)
        if entry is None:
            return False
        name, kind, attempts = entry
        reg = self._regs[name]
        if response.status < 200:
            return True
        del self._txns[txn]
        if kind == "keepalive":
            reg.keepalive_txn = None
            reg.next_keepalive = now + reg.account.keepalive
            self._ua.schedule(reg.next_keepalive, name, "keepalive")
            return True
        if response.status in (401, 407) and self._answer_challenge(reg, response, attempts, now):
            return True
        if 200 <= response.status < 300:
            event = reg.on_success(response, now)
        else:
            event = reg.on_failure(response.status, response.reason, now, response)
        self._after(reg, event, response.status, response.reason, "remote", now)
        return True

    def on_timeout(self, txn: str, now: float) -> bool:
        """A transaction of ours timed out; False if it is not ours."""
        entry = self._txns.pop(txn, None)
        if entry is None:
            return False
        name, kind, _ = entry
        reg = self._regs[name]
        if kind == "keepalive":
            event = reg.keepalive_failed(now)
        else:
            event = reg.on_failure(408, "Request Timeout", now, None)
        self._after(reg, event, 408, "Request Timeout", "timeout", now)
        return True

    def on_timer(self, name: str, kind: str, now: float) -> None:
        """A refresh, retry or keep-alive may be due."""
        reg = self._regs.get(name)
        if reg is None:
            return
        if kind == "register" and reg.next_attempt is not None and now >= reg.next_attempt:
            if reg.txn is None:
                self._send_register(reg, now)
        elif kind == "keepalive" and reg.next_keepalive is not None and now >= reg.next_keepalive:
            reg.next_keepalive = None
            self._send_keepalive(reg, now)

    # -- sending ---------------------------------------------------------------------------------

    def _send_register(self, reg: Registration, now: float, unregister: bool = False) -> None:
        request = reg.build_register(unregister)
        self._send(reg, request, "register", 0, now)

    def _send(
        self, reg: Registration, request: Request, kind: str, attempts: int, now: float
    ) -> str:
        account = reg.account
        local = self._local(account)
        request.headers.insert_first("Via", self._ua.via(local))
        hop = (
            parse_uri(account.outbound_proxy) if account.outbound_proxy else account.registrar_uri()
        )
        if not isinstance(hop, SipUri):
            raise CommandError(500, "Bad account", f"{account.name}: the next hop is not sip:")
        target = self._ua.target_of(hop, local)
        txn = self._ua.txn.send_request(request, target, now)
        self._txns[txn] = (account.name, kind, attempts)
        if kind == "register":
            reg.txn = txn
        return txn

    def _send_keepalive(self, reg: Registration, now: float) -> None:
        account = reg.account
        local = self._local(account)
        hop = (
            parse_uri(account.outbound_proxy) if account.outbound_proxy else account.registrar_uri()
        )
        if not isinstance(hop, SipUri):
            return
        target = self._ua.target_of(hop, local)
        if target.reliable:  # RFC 5626 section 4.4.1: a CRLF ping on the connection
            self._ua.send_raw(b"\r\n\r\n", target)
            reg.next_keepalive = now + account.keepalive
            self._ua.schedule(reg.next_keepalive, account.name, "keepalive")
            return
        identity = account.identity()
        headers = Headers()
        headers.add("Max-Forwards", "70")
        headers.add("From", str(identity.with_tag(self._ua.ids.tag())))
        headers.add("To", str(identity))
        headers.add("Call-ID", self._ua.ids.call_id())
        headers.add("CSeq", "1 OPTIONS")
        options = Request("OPTIONS", account.registrar_uri(), headers)
        options.set_body(b"")
        reg.keepalive_txn = self._send(reg, options, "keepalive", 0, now)

    def _answer_challenge(
        self, reg: Registration, response: Response, attempts: int, now: float
    ) -> bool:
        challenges = challenges_in(response)
        digest = self._digest[reg.account.name]
        challenge = digest.pick(challenges)
        if challenge is None or attempts >= (2 if challenge.stale else 1):
            return False
        request = reg.build_register(reg.unregistering)
        answer = digest.authorize(challenge, "REGISTER", request.uri_text)
        if answer is None:
            return False
        request.headers.add(ANSWER_HEADER[challenge_header(response)], answer)
        self._send(reg, request, "register", attempts + 1, now)
        return True

    def _after(
        self, reg: Registration, event: str, status: int, reason: str, origin: str, now: float
    ) -> None:
        if reg.next_attempt is not None:
            self._ua.schedule(reg.next_attempt, reg.account.name, "register")
        if reg.next_keepalive is not None and event == "REGISTERED":
            self._ua.schedule(reg.next_keepalive, reg.account.name, "keepalive")
        if event:
            self._ua.emit_registration(
                lambda seq: RegistrationEvent(
                    account=reg.account.name,
                    event_type=event,
                    status=status,
                    reason=reason,
                    expires=reg.expires,
                    aor=reg.account.aor,
                    seq=seq,
                    time=now,
                    origin=origin,
                )
            )
            if event == "FAILED":
                retry = "" if reg.next_attempt is None else f" in {reg.next_attempt - now:.0f} s"
                self._ua.notice(
                    "warning",
                    f"account {reg.account.name}: registration failed ({status} {reason}); "
                    f"retrying{retry}",
                )

    def _reg(self, name: str) -> Registration:
        reg = self._regs.get(name)
        if reg is None:
            raise CommandError(404, "Account not found", f"no account {name!r}")
        return reg

    def _local(self, account: Account) -> Target:
        return self._ua.local_for(account.transport)
