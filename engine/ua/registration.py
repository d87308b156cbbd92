"""Accounts and their registrations (RFC 3261 section 10, RFC 5626 keep-alives), pure.

An account is an address of record at a registrar, with credentials and an optional outbound
proxy. Its :class:`Registration` keeps one binding alive: REGISTER at start, a refresh before
the granted expiry, digest answers (via the UA core), 423 Interval Too Brief, back-off after
failures and timeouts, keep-alives (OPTIONS over UDP, CRLF over TCP/TLS) that notice a broken
binding, and REGISTER with Expires 0 at stop. The UA core owns the transactions and calls the
``on_*`` methods; this module only decides what to send and when.
"""

from dataclasses import dataclass, field, replace
from enum import Enum

from engine.sip import Headers, NameAddr, Request, Response, SipUri, parse_name_addr, parse_uri
from engine.sip.digest import Credential
from engine.sip.errors import LocalProtocolError, ParseError

#: Refresh this long before expiry, or at half the interval for short ones.
REFRESH_MARGIN = 30.0
#: Back-off after failures: first retry, doubling up to the maximum.
RETRY_FIRST = 5.0
RETRY_MAX = 300.0


class RegistrationState(Enum):
    """Where a registration stands."""

    UNREGISTERED = "unregistered"
    REGISTERING = "registering"
    REGISTERED = "registered"
    FAILED = "failed"
    UNREGISTERING = "unregistering"


@dataclass(frozen=True, slots=True)
class Account:
    """One identity at one registrar (a ``[[accounts]]`` table of the configuration)."""

    name: str
    #: The address of record, ``sip:alice@example.com``.
    aor: str
    #: Where REGISTER goes; None: the AoR's domain.
    registrar: str | None = None
    #: Every request of this account goes there first (REGISTER too); None: direct.
    outbound_proxy: str | None = None
    credentials: tuple[Credential, ...] = ()
    display_name: str | None = None
    expires: int = 3600
    #: "udp", "tcp" or "tls": the transport to the registrar.
    transport: str = "udp"
    #: Seconds between keep-alives (OPTIONS on UDP, CRLF on TCP/TLS); 0: none.
    keepalive: float = 30.0
    #: Register at start (False: the account only places calls).
    register: bool = True

    def aor_uri(self) -> SipUri:
        """The address of record, parsed."""
        uri = parse_uri(self.aor)
        if not isinstance(uri, SipUri) or uri.user is None:
            raise LocalProtocolError(f"account {self.name}: aor must be sip:user@domain")
        return uri

    def registrar_uri(self) -> SipUri:
        """The registrar's URI (the AoR's domain when none is set)."""
        if self.registrar:
            uri = parse_uri(self.registrar)
            if not isinstance(uri, SipUri):
                raise LocalProtocolError(f"account {self.name}: registrar must be a sip: URI")
            return uri
        aor = self.aor_uri()
        return SipUri(aor.host, None, aor.port, aor.scheme)

    def identity(self) -> NameAddr:
        """The From of the account's requests."""
        return NameAddr(self.aor_uri(), self.display_name)


@dataclass(frozen=True, slots=True)
class RegistrationInfo:
    """A snapshot of one account's registration (``ua_registration_list``)."""

    account: str
    aor: str
    registrar: str
    state: RegistrationState
    #: The Contact we registered.
    contact: str
    #: Seconds the registrar granted (0 when not registered).
    expires: int
    #: Unix time the binding lapses, or None.
    expires_at: float | None
    last_status: int
    last_reason: str
    #: Unix time of the next REGISTER (refresh or retry), or None.
    next_attempt: float | None
    #: Our address as the registrar sees it (Via received/rport), if it told us.
    public_address: str | None = None
    failures: int = 0

    def to_mi(self) -> dict[str, object]:
        """The JSON object of ``ua_registration_list``."""
        return {
            "account": self.account,
            "aor": self.aor,
            "registrar": self.registrar,
            "state": self.state.value,
            "contact": self.contact,
            "expires": self.expires,
            "expires_at": self.expires_at,
            "last_status": self.last_status,
            "last_reason": self.last_reason,
            "next_attempt": self.next_attempt,
            "public_address": self.public_address,
            "failures": self.failures,
        }


@dataclass(frozen=True, slots=True)
class RegistrationEvent:
    """A registration changed (the ``E_UA_REGISTRATION`` event), in the engine's event stream."""

    #: The account's name.
    account: str
    #: REGISTERED, REFRESHED, UNREGISTERED, FAILED.
    event_type: str
    #: The registrar's reply code (0: none, e.g. a timeout is 408).
    status: int
    reason: str
    #: Seconds granted (0 when not registered).
    expires: int
    aor: str
    #: Engine-wide event number, shared with SessionEvent.
    seq: int
    time: float
    #: ``remote`` (a reply), ``local`` (a command), ``timeout``.
    origin: str

    def params(self) -> dict[str, object]:
        """The JSON-RPC ``params`` of the notification."""
        return {
            "account": self.account,
            "event_type": self.event_type,
            "status": self.status,
            "reason": self.reason,
            "expires": self.expires,
            "aor": self.aor,
            "seq": self.seq,
            "time": self.time,
            "origin": self.origin,
        }


@dataclass(slots=True)
class Registration:
    """The state of one account's binding. The core drives it and sends what it builds."""

    account: Account
    call_id: str
    from_tag: str
    contact: str
    state: RegistrationState = RegistrationState.UNREGISTERED
    cseq: int = 0
    expires: int = 0
    expires_at: float | None = None
    next_attempt: float | None = None
    next_keepalive: float | None = None
    last_status: int = 0
    last_reason: str = ""
    failures: int = 0
    public_address: str | None = None
    #: The interval we ask for (raised by 423 Min-Expires).
    asked: int = field(default=0)
    #: The REGISTER in flight (its transaction key) and whether it unregisters.
    txn: str | None = None
    unregistering: bool = False
    keepalive_txn: str | None = None

    def __post_init__(self) -> None:
        self.asked = self.asked or self.account.expires

    def info(self) -> RegistrationInfo:
        """A snapshot."""
        return RegistrationInfo(
            account=self.account.name,
            aor=self.account.aor,
            registrar=str(self.account.registrar_uri()),
            state=self.state,
            contact=self.contact,
            expires=self.expires,
            expires_at=self.expires_at,
            last_status=self.last_status,
            last_reason=self.last_reason,
            next_attempt=self.next_attempt,
            public_address=self.public_address,
            failures=self.failures,
        )

    def build_register(self, unregister: bool = False) -> Request:
        """The next REGISTER (without Via: the core adds it), CSeq one higher."""
        account = self.account
        self.cseq += 1
        aor = account.identity()
        headers = Headers()
        headers.add("Max-Forwards", "70")
        headers.add("From", str(aor.with_tag(self.from_tag)))
        headers.add("To", str(replace(aor, params={})))
        headers.add("Call-ID", self.call_id)
        headers.add("CSeq", f"{self.cseq} REGISTER")
        headers.add("Contact", self.contact)
        headers.add("Expires", "0" if unregister else str(self.asked))
        request = Request("REGISTER", account.registrar_uri(), headers)
        request.set_body(b"")
        self.unregistering = unregister
        if unregister:
            self.state = RegistrationState.UNREGISTERING
        elif self.state is not RegistrationState.REGISTERED:
            self.state = RegistrationState.REGISTERING
        self.next_attempt = None
        return request

    def on_success(self, response: Response, now: float) -> str:
        """A 2xx to our REGISTER; the event type to report."""
        self.last_status, self.last_reason = response.status, response.reason
        self.txn = None
        self._learn_public_address(response)
        if self.unregistering:
            self._lapse()
            self.state = RegistrationState.UNREGISTERED
            return "UNREGISTERED"
        granted = self._granted(response)
        if granted <= 0:
            self._lapse()
            self.state = RegistrationState.FAILED
            self.failures += 1
            self.next_attempt = now + self._backoff()
            return "FAILED"
        was_registered = self.state is RegistrationState.REGISTERED and self.expires_at is not None
        self.state = RegistrationState.REGISTERED
        self.failures = 0
        self.expires = granted
        self.expires_at = now + granted
        margin = REFRESH_MARGIN if granted > 2 * REFRESH_MARGIN else granted / 2
        self.next_attempt = now + granted - margin
        if self.account.keepalive > 0 and self.next_keepalive is None:
            self.next_keepalive = now + self.account.keepalive
        return "REFRESHED" if was_registered else "REGISTERED"

    def on_failure(self, status: int, reason: str, now: float, response: Response | None) -> str:
        """A final failure (>= 300 we cannot answer, or a timeout as 408); the event type."""
        self.last_status, self.last_reason = status, reason
        self.txn = None
        if self.unregistering:
            self._lapse()
            self.state = RegistrationState.UNREGISTERED
            return "UNREGISTERED"
        if status == 423 and response is not None:
            minimum = (response.headers.get("min-expires") or "").strip()
            if minimum.isdigit() and int(minimum) > self.asked:
                self.asked = int(minimum)
                self.next_attempt = now  # at once, with the longer interval
                return ""
        self._lapse()
        self.state = RegistrationState.FAILED
        self.failures += 1
        retry_after = (
            (response.headers.get("retry-after") or "").split(";")[0].strip() if response else ""
        )
        delay = float(retry_after) if retry_after.isdigit() else self._backoff()
        self.next_attempt = now + delay
        return "FAILED"

    def keepalive_failed(self, now: float) -> str:
        """The registrar stopped answering keep-alives: the binding is broken, register again."""
        self.keepalive_txn = None
        self._lapse()
        self.state = RegistrationState.FAILED
        self.last_status, self.last_reason = 408, "Keep-alive timed out"
        self.failures += 1
        self.next_attempt = now
        return "FAILED"

    def _lapse(self) -> None:
        self.expires = 0
        self.expires_at = None
        self.next_keepalive = None
        self.next_attempt = None

    def _backoff(self) -> float:
        return min(RETRY_FIRST * 2 ** max(self.failures - 1, 0), RETRY_MAX)

    def _granted(self, response: Response) -> int:
        """The expiry the registrar gave our Contact (its ``expires`` param, else Expires)."""
        try:
            contacts = response.contacts() if response.headers.get("contact") else []
        except ParseError:
            contacts = []
        mine = _contact_key(self.contact)
        for contact in contacts:
            if _contact_key(str(contact)) == mine:
                value = contact.params.get("expires")
                if value and value.isdigit():
                    return int(value)
        header = (response.headers.get("expires") or "").strip()
        if header.isdigit():
            return int(header)
        return self.asked if contacts else 0

    def _learn_public_address(self, response: Response) -> None:
        try:
            via = response.top_via
        except ParseError:
            return
        if via.received or via.rport:
            host = via.received or via.host
            self.public_address = f"{host}:{via.rport or via.port or 5060}"


def _contact_key(text: str) -> tuple[object, ...] | str:
    """A Contact's URI in comparable form (RFC 3261 section 10.2.4 compares URIs)."""
    try:
        uri = parse_name_addr(text, "Contact").uri
    except ParseError:
        return text
    return uri.comparable() if isinstance(uri, SipUri) else str(uri)
