"""Digest authentication (RFC 2617, RFC 7616, RFC 8760) as SIP uses it (RFC 3261 section 22).

The client side parses a ``WWW-Authenticate`` / ``Proxy-Authenticate`` value into a
:class:`Challenge` and answers it with an ``Authorization`` / ``Proxy-Authorization`` value.
:class:`DigestClient` keeps the per-nonce counts and picks the credential by realm; the pure
:func:`build_authorization` does one answer. :func:`verify_authorization` is the matching
server-side check, small enough for tests that play the registrar.

Nothing here draws random numbers: the client nonce comes from an injected callable or an
:class:`~engine.sip.ids.IdFactory`.
"""

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .errors import LocalProtocolError, ParseError
from .grammar import TOKEN, quote
from .ids import IdFactory
from .message import Response

#: Canonical spellings of the algorithms we can compute, by lower-case name:
#: (hashlib name, is a ``-sess`` variant).
_ALGORITHMS: dict[str, tuple[str, str, bool]] = {
    "md5": ("MD5", "md5", False),
    "md5-sess": ("MD5-sess", "md5", True),
    "sha-256": ("SHA-256", "sha256", False),
    "sha-256-sess": ("SHA-256-sess", "sha256", True),
}
SUPPORTED_ALGORITHMS = tuple(spelling for spelling, _, _ in _ALGORITHMS.values())
#: The qop values we can answer, in order of preference.
SUPPORTED_QOPS = ("auth", "auth-int")
#: The header that carries the answer to each challenge header.
ANSWER_HEADER = {
    "www-authenticate": "Authorization",
    "proxy-authenticate": "Proxy-Authorization",
}
#: Random bytes in a client nonce drawn from an IdFactory (hex: twice as many characters).
CNONCE_BYTES = 16
MAX_NONCE_COUNT = 0xFFFFFFFF
#: The realm of a credential that answers any realm (accounts only; see select_credential).
ANY_REALM = "*"

_TOKEN_RE = re.compile(TOKEN)
_LWS = " \t\r\n"
_BARE_VALUE_RE = re.compile(r'[^ \t\r\n",]+')
_NC_RE = re.compile(r"[0-9A-Fa-f]{8}")
_BAD_CHARS_RE = re.compile(r"[\r\n\x00]")


def _short(text: str, limit: int = 40) -> str:
    """``repr`` of ``text``, cut short for error messages."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _parse_scheme_and_params(text: str, what: str) -> dict[str, str]:
    """Parse ``Digest name=value, name="quoted", ...`` into unquoted values by lower-case name.

    Quoted strings may hold commas and backslash escapes; LWS is allowed around ``=`` and ``,``
    and empty list elements are skipped. Values may also be bare (unquoted) words, which some
    servers send for quoted parameters. Any malformation raises ParseError naming ``what``.
    """
    n = len(text)
    pos = 0
    while pos < n and text[pos] in _LWS:
        pos += 1
    m = _TOKEN_RE.match(text, pos)
    if m is None:
        raise ParseError(f"{what} has no authentication scheme")
    scheme = m.group()
    pos = m.end()
    if scheme.lower() != "digest":
        raise ParseError(f"unsupported authentication scheme {_short(scheme)} in {what}")
    if pos < n and text[pos] not in _LWS:
        raise ParseError(f"no space after the Digest scheme in {what}")
    params: dict[str, str] = {}
    need_comma = False
    while True:
        while pos < n and text[pos] in _LWS:
            pos += 1
        if pos >= n:
            break
        if text[pos] == ",":
            pos += 1
            need_comma = False
            continue
        if need_comma:
            raise ParseError(f"missing comma before {_short(text[pos:])} in {what}")
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise ParseError(f"expected a parameter name at {_short(text[pos:])} in {what}")
        name = m.group().lower()
        pos = m.end()
        while pos < n and text[pos] in _LWS:
            pos += 1
        if pos >= n or text[pos] != "=":
            raise ParseError(f"parameter {name!r} has no '=value' in {what}")
        pos += 1
        while pos < n and text[pos] in _LWS:
            pos += 1
        if pos < n and text[pos] == '"':
            value, pos = _scan_quoted(text, pos, name, what)
        else:
            m = _BARE_VALUE_RE.match(text, pos)
            if m is None:
                raise ParseError(f"parameter {name!r} has an empty value in {what}")
            value = m.group()
            pos = m.end()
        if name in params:
            raise ParseError(f"parameter {name!r} appears twice in {what}")
        params[name] = value
        need_comma = True
    return params


def _scan_quoted(text: str, pos: int, name: str, what: str) -> tuple[str, int]:
    """The unescaped content of the quoted string at ``text[pos]`` and the index after it."""
    out: list[str] = []
    i = pos + 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            if i + 1 >= n:
                break
            out.append(text[i + 1])
            i += 2
        elif c == '"':
            return "".join(out), i + 1
        else:
            out.append(c)
            i += 1
    raise ParseError(f"unterminated quoted string in parameter {name!r} of {what}")


def _flag(value: str | None) -> bool:
    """``true`` (any case) is True; anything else, or absence, is False (RFC 7616 3.3)."""
    return value is not None and value.strip().lower() == "true"


@dataclass(frozen=True, slots=True)
class Challenge:
    """A Digest challenge from a ``WWW-Authenticate`` or ``Proxy-Authenticate`` header.

    ``algorithm`` is in canonical spelling when we support it (see :data:`SUPPORTED_ALGORITHMS`)
    and as received otherwise. ``qop`` holds the offered values, lower-cased, in the server's
    order; it is empty for an RFC 2069 challenge without qop.
    """

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False
    domain: tuple[str, ...] = ()
    userhash: bool = False

    @property
    def supported(self) -> bool:
        """True if we can compute an answer: known algorithm and, if qop is offered, a known one."""
        return self.algorithm.lower() in _ALGORITHMS and (
            not self.qop or any(q in SUPPORTED_QOPS for q in self.qop)
        )

    def __str__(self) -> str:
        parts = [f"realm={quote(self.realm)}"]
        if self.domain:
            parts.append(f"domain={quote(' '.join(self.domain))}")
        parts.append(f"nonce={quote(self.nonce)}")
        if self.opaque is not None:
            parts.append(f"opaque={quote(self.opaque)}")
        if self.stale:
            parts.append("stale=true")
        parts.append(f"algorithm={self.algorithm}")
        if self.qop:
            parts.append(f"qop={quote(','.join(self.qop))}")
        if self.userhash:
            parts.append("userhash=true")
        return "Digest " + ", ".join(parts)


def parse_challenge(header_value: str) -> Challenge:
    """Parse one ``WWW-Authenticate`` / ``Proxy-Authenticate`` value of scheme ``Digest``.

    Raises ParseError (and nothing else) for anything malformed, another scheme, or a challenge
    without realm or nonce. An unknown algorithm or qop is kept: see :attr:`Challenge.supported`.
    """
    params = _parse_scheme_and_params(header_value, "Digest challenge")
    realm = params.get("realm")
    if realm is None:
        raise ParseError("Digest challenge has no realm")
    nonce = params.get("nonce")
    if nonce is None:
        raise ParseError("Digest challenge has no nonce")
    algorithm = params.get("algorithm", "MD5").strip()
    if not algorithm:
        raise ParseError("Digest challenge has an empty algorithm")
    known = _ALGORITHMS.get(algorithm.lower())
    if known is not None:
        algorithm = known[0]
    qop: tuple[str, ...] = ()
    if "qop" in params:
        qop = tuple(q.strip().lower() for q in params["qop"].split(",") if q.strip())
        if not qop:
            raise ParseError("Digest challenge has an empty qop list")
    return Challenge(
        realm=realm,
        nonce=nonce,
        algorithm=algorithm,
        qop=qop,
        opaque=params.get("opaque"),
        stale=_flag(params.get("stale")),
        domain=tuple(params.get("domain", "").split()),
        userhash=_flag(params.get("userhash")),
    )


@dataclass(frozen=True, slots=True)
class Credential:
    """A username and password for one realm. Neither ``repr`` nor ``str`` shows the password."""

    username: str
    realm: str
    password: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.username:
            raise LocalProtocolError("credential has an empty username")
        if not self.realm:
            raise LocalProtocolError("credential has an empty realm")
        if _BAD_CHARS_RE.search(self.username) or _BAD_CHARS_RE.search(self.realm):
            raise LocalProtocolError("credential username or realm holds CR, LF or NUL")


def challenge_header(response: Response) -> str:
    """Where a 401 (WWW-Authenticate) or a 407 (Proxy-Authenticate) puts its challenges; the
    answer goes in ``ANSWER_HEADER`` of it."""
    return "www-authenticate" if response.status == 401 else "proxy-authenticate"


def challenges_in(response: Response) -> list[Challenge]:
    """The challenges of a 401 or 407; malformed ones are skipped, the others may still be
    answered."""
    name = challenge_header(response)
    challenges = []
    for value in response.headers.get_all(name):
        try:
            challenges.append(parse_challenge(value))
        except ParseError:
            continue
    return challenges


def parse_credential(text: str) -> Credential:
    """Parse ``USER:REALM:PASSWORD`` (OpenSIPS ``uac_auth`` style; the password may hold ':').

    Raises LocalProtocolError (it is configuration, not wire input) with a message that never
    repeats the text, since it may hold the password.
    """
    username, sep1, rest = text.partition(":")
    realm, sep2, password = rest.partition(":")
    if not sep1 or not sep2:
        raise LocalProtocolError("credential is not in the form USER:REALM:PASSWORD")
    if not username:
        raise LocalProtocolError("credential has an empty username (USER:REALM:PASSWORD)")
    if not realm:
        raise LocalProtocolError(
            f"credential for user {_short(username)} has an empty realm (USER:REALM:PASSWORD)"
        )
    return Credential(username, realm, password)


def select_credential(credentials: Iterable[Credential], realm: str) -> Credential | None:
    """The first credential configured for exactly ``realm``, else one whose realm is ``*``
    (an account's password, good for any realm its own registrar names); None: do not answer."""
    wildcard = None
    for credential in credentials:
        if credential.realm == realm:
            return credential
        if credential.realm == ANY_REALM and wildcard is None:
            wildcard = credential
    return wildcard


def choose_qop(challenge: Challenge) -> str | None:
    """``auth`` when offered, else ``auth-int`` when offered, else None (no qop offered).

    Raises LocalProtocolError when qop is offered but none of its values is one we know.
    """
    if not challenge.qop:
        return None
    for qop in SUPPORTED_QOPS:
        if qop in challenge.qop:
            return qop
    raise LocalProtocolError(f"no supported qop among {', '.join(challenge.qop)}")


def _bytes(text: str) -> bytes:
    """UTF-8, with wire bytes that came in as surrogate escapes restored."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _hasher(algorithm: str) -> tuple[Callable[[str | bytes], str], bool]:
    """``H`` (hex digest of text or bytes) and the ``-sess`` flag for ``algorithm``."""
    known = _ALGORITHMS.get(algorithm.lower())
    if known is None:
        raise LocalProtocolError(f"unsupported digest algorithm {_short(algorithm)}")
    _, name, sess = known

    def h(data: str | bytes) -> str:
        raw = _bytes(data) if isinstance(data, str) else data
        return hashlib.new(name, raw, usedforsecurity=False).hexdigest()

    return h, sess


def digest_response(
    *,
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    nonce: str,
    method: str,
    uri: str,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
    body: bytes = b"",
) -> str:
    """The ``response`` hex digest (RFC 7616 3.4.1; RFC 2069 form when ``qop`` is None).

    ``nc`` is the 8-hex-digit count as sent. ``cnonce`` is needed with a qop or a ``-sess``
    algorithm; ``body`` only matters for ``auth-int``. Unsupported algorithm or qop raises
    LocalProtocolError.
    """
    h, sess = _hasher(algorithm)
    ha1 = h(f"{username}:{realm}:{password}")
    if sess:
        if cnonce is None:
            raise LocalProtocolError(f"{algorithm} needs a cnonce")
        ha1 = h(f"{ha1}:{nonce}:{cnonce}")
    if qop == "auth-int":
        ha2 = h(f"{method}:{uri}:{h(body)}")
    elif qop is None or qop == "auth":
        ha2 = h(f"{method}:{uri}")
    else:
        raise LocalProtocolError(f"unsupported qop {_short(qop)}")
    if qop is None:
        return h(f"{ha1}:{nonce}:{ha2}")
    if nc is None or cnonce is None:
        raise LocalProtocolError("qop needs nc and cnonce")
    return h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def build_authorization(
    challenge: Challenge,
    credential: Credential,
    method: str,
    uri: str,
    *,
    cnonce: str,
    nc: int = 1,
    body: bytes = b"",
) -> str:
    """The ``Authorization`` / ``Proxy-Authorization`` value answering ``challenge``.

    ``uri`` is the digest-uri (the Request-URI as sent). ``cnonce`` and ``nc`` appear only when
    a qop is used (``cnonce`` also feeds a ``-sess`` HA1). Raises LocalProtocolError when the
    challenge is unsupported, the credential is for another realm, or ``nc`` is out of range.
    """
    if credential.realm not in (challenge.realm, ANY_REALM):
        raise LocalProtocolError(
            f"credential for realm {_short(credential.realm)} "
            f"cannot answer realm {_short(challenge.realm)}"
        )
    if not 1 <= nc <= MAX_NONCE_COUNT:
        raise LocalProtocolError(f"nonce count {nc} out of range")
    qop = choose_qop(challenge)
    h, sess = _hasher(challenge.algorithm)
    nc_text = f"{nc:08x}"
    response = digest_response(
        algorithm=challenge.algorithm,
        username=credential.username,
        realm=challenge.realm,
        password=credential.password,
        nonce=challenge.nonce,
        method=method,
        uri=uri,
        qop=qop,
        nc=nc_text,
        cnonce=cnonce,
        body=body,
    )
    username = credential.username
    if challenge.userhash:
        username = h(f"{credential.username}:{challenge.realm}")
    parts = [
        f"username={quote(username)}",
        f"realm={quote(challenge.realm)}",
        f"nonce={quote(challenge.nonce)}",
        f"uri={quote(uri)}",
        f'response="{response}"',
        f"algorithm={_ALGORITHMS[challenge.algorithm.lower()][0]}",
    ]
    if qop is not None or sess:
        parts.append(f"cnonce={quote(cnonce)}")
    if challenge.opaque is not None:
        parts.append(f"opaque={quote(challenge.opaque)}")
    if qop is not None:
        parts.append(f"qop={qop}")
        parts.append(f"nc={nc_text}")
    if challenge.userhash:
        parts.append("userhash=true")
    return "Digest " + ", ".join(parts)


def _algorithm_rank(challenge: Challenge) -> int:
    """Lower is stronger: SHA-256 before MD5 (RFC 7616 3.7, RFC 8760 2.4)."""
    return 0 if challenge.algorithm.lower().startswith("sha-256") else 1


class DigestClient:
    """Answers Digest challenges with configured credentials, keeping nonce counts.

    The count is per (realm, nonce) and grows by one on each answer, so a nonce reused for a
    later request is sent with ``nc=00000002`` and so on. A ``stale=true`` challenge starts its
    realm afresh: earlier counts for that realm are forgotten and the count for its nonce starts
    again at 1 (once per stale challenge received, not on every reuse of it). At most
    ``max_nonces`` counts are kept; the oldest are dropped first.
    """

    def __init__(
        self,
        credentials: Iterable[Credential],
        cnonce: Callable[[], str] | IdFactory,
        *,
        max_nonces: int = 64,
    ) -> None:
        self._credentials = tuple(credentials)
        if isinstance(cnonce, IdFactory):
            ids = cnonce
            self._cnonce: Callable[[], str] = lambda: ids.token(CNONCE_BYTES)
        else:
            self._cnonce = cnonce
        self._max_nonces = max_nonces
        self._counts: dict[tuple[str, str], int] = {}
        self._stale_seen: set[tuple[str, str]] = set()

    @property
    def credentials(self) -> tuple[Credential, ...]:
        """The configured credentials, in order of preference."""
        return self._credentials

    def credential_for(self, realm: str) -> Credential | None:
        """The credential for ``realm``, or None when that realm is not configured."""
        return select_credential(self._credentials, realm)

    def can_answer(self, challenge: Challenge) -> bool:
        """True if the challenge is supported and its realm is configured."""
        return challenge.supported and self.credential_for(challenge.realm) is not None

    def pick(self, challenges: Iterable[Challenge]) -> Challenge | None:
        """The answerable challenge with the strongest algorithm (first wins ties), or None."""
        usable = [c for c in challenges if self.can_answer(c)]
        return min(usable, key=_algorithm_rank) if usable else None

    def nonce_count(self, realm: str, nonce: str) -> int:
        """The count last sent for this realm and nonce (0 if none)."""
        return self._counts.get((realm, nonce), 0)

    def forget(self, realm: str | None = None) -> None:
        """Drop the nonce counts of ``realm`` (or of every realm)."""
        if realm is None:
            self._counts.clear()
            self._stale_seen.clear()
            return
        for key in [k for k in self._counts if k[0] == realm]:
            del self._counts[key]
        self._stale_seen = {k for k in self._stale_seen if k[0] != realm}

    def authorize(
        self, challenge: Challenge, method: str, uri: str, body: bytes = b""
    ) -> str | None:
        """The header value answering ``challenge``, or None when it cannot be answered.

        None means the realm is not configured or the challenge is unsupported (see
        :attr:`Challenge.supported`); the caller then lets the 401/407 stand.
        """
        credential = self.credential_for(challenge.realm)
        if credential is None or not challenge.supported:
            return None
        key = (challenge.realm, challenge.nonce)
        if challenge.stale and key not in self._stale_seen:
            self.forget(challenge.realm)
            self._stale_seen.add(key)
        nc = self._counts.pop(key, 0) + 1
        if nc > MAX_NONCE_COUNT:
            return None
        self._counts[key] = nc
        while len(self._counts) > self._max_nonces:
            del self._counts[next(iter(self._counts))]
        return build_authorization(
            challenge, credential, method, uri, cnonce=self._cnonce(), nc=nc, body=body
        )


def verify_authorization(
    header_value: str,
    method: str,
    password_lookup: Callable[[str, str], str | None],
    *,
    body: bytes = b"",
    realm: str | None = None,
    nonce: str | None = None,
    uri: str | None = None,
) -> bool:
    """Server side: True if ``header_value`` is a correct Digest answer.

    ``password_lookup(username, realm)`` gives the password or None for an unknown user.
    ``realm``, ``nonce`` and ``uri``, when given, must equal the ones in the header (the nonce
    we issued, the Request-URI). Nonce-count replay checks are the caller's business. Never
    raises: anything malformed or unsupported (including ``userhash``) is False.
    """
    try:
        params = _parse_scheme_and_params(header_value, "Digest credentials")
    except ParseError:
        return False
    required = ("username", "realm", "nonce", "uri", "response")
    if any(name not in params for name in required):
        return False
    for expected, name in ((realm, "realm"), (nonce, "nonce"), (uri, "uri")):
        if expected is not None and params[name] != expected:
            return False
    if _flag(params.get("userhash")):
        return False
    algorithm = params.get("algorithm", "MD5")
    qop = params.get("qop")
    nc = params.get("nc")
    cnonce = params.get("cnonce")
    if algorithm.lower() not in _ALGORITHMS:
        return False
    if qop is not None:
        qop = qop.lower()
        if qop not in SUPPORTED_QOPS or nc is None or cnonce is None:
            return False
        if _NC_RE.fullmatch(nc) is None:
            return False
    elif algorithm.lower().endswith("-sess") and cnonce is None:
        return False
    password = password_lookup(params["username"], params["realm"])
    if password is None:
        return False
    expected_response = digest_response(
        algorithm=algorithm,
        username=params["username"],
        realm=params["realm"],
        password=password,
        nonce=params["nonce"],
        method=method,
        uri=params["uri"],
        qop=qop,
        nc=nc,
        cnonce=cnonce,
        body=body,
    )
    return hmac.compare_digest(_bytes(expected_response), _bytes(params["response"].lower()))
