"""SDP offers and answers for the UA's own media (RFC 3264, RFC 4566), built with sdp-transform.

The engine does not carry media; these functions only write the SDP that a simple audio end point
would send: one audio stream with one codec (plus telephone-event), every other stream refused.

- ``answer_sdp`` answers an offer: same m-lines in the same order (RFC 3264 section 6), the first
  usable audio stream accepted with the first codec of the offer's list that we know, the others
  refused with port 0.
- ``offer_sdp`` writes an initial offer; ``set_direction`` rewrites the direction of a session
  description for hold and resume, bumping the ``o=`` version (RFC 3264 section 8).
- ``RtpPortAllocator`` hands out even RTP ports in rotation.

Errors in an offer raise ``OfferError`` (a ValueError): the caller answers 488 Not Acceptable Here.
"""

import functools
from collections.abc import Sequence
from typing import Any

import sdp_transform

#: The codecs ``answer_sdp`` accepts unless told otherwise (matched by encoding name).
DEFAULT_ANSWER_CODECS = ("PCMU", "PCMA", "G722", "opus", "telephone-event")
#: The codecs ``offer_sdp`` offers unless told otherwise, in this order.
DEFAULT_OFFER_CODECS = ("PCMU", "PCMA", "telephone-event")
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
#: What an answerer sends for each direction offered (RFC 3264 section 6.1).
MIRRORED_DIRECTION = {
    "sendrecv": "sendrecv",
    "sendonly": "recvonly",
    "recvonly": "sendonly",
    "inactive": "inactive",
}
#: Static payload types of RFC 3551 section 6 that need no rtpmap: (encoding name, clock rate).
STATIC_PAYLOAD_TYPES = {
    0: ("PCMU", 8000),
    3: ("GSM", 8000),
    4: ("G723", 8000),
    8: ("PCMA", 8000),
    9: ("G722", 8000),
    18: ("G729", 8000),
}
#: What ``offer_sdp`` writes for each codec it knows: (payload type, name, rate, channels, fmtp).
OFFER_CODECS: dict[str, tuple[int, str, int, str | None, str | None]] = {
    "pcmu": (0, "PCMU", 8000, None, None),
    "gsm": (3, "GSM", 8000, None, None),
    "pcma": (8, "PCMA", 8000, None, None),
    "g722": (9, "G722", 8000, None, None),
    "g729": (18, "G729", 8000, None, None),
    "telephone-event": (101, "telephone-event", 8000, None, "0-16"),
    "opus": (111, "opus", 48000, "2", None),
}
TELEPHONE_EVENT = "telephone-event"
#: The RTP profile we answer; a stream of another profile (SRTP, DTLS...) is refused.
ANSWERED_PROTOCOL = "RTP/AVP"


class OfferError(ValueError):
    """An SDP offer (or description) we cannot use; a server answers it with 488."""


#: Stand-ins for the port and the o= numbers in a cached answer (see answer_sdp).
_PORT_MARK = 65531
_ID_MARK = 987654321987


def answer_sdp(
    offer: str,
    *,
    address: str,
    rtp_port: int,
    session_id: int,
    session_version: int | None = None,
    codecs: Sequence[str] = DEFAULT_ANSWER_CODECS,
) -> str:
    """The SDP answer to ``offer`` (RFC 3264 section 6); see :func:`_answer` for the rules.

    Answers differ only in the port and the ``o=`` numbers when the offer is the same (a load
    test sends one offer thousands of times), so the answer is computed once per offer, with
    stand-ins for those, and the stand-ins replaced for each call.
    """
    _check_port(rtp_port)
    version = _checked_ids(session_id, session_version)
    text = _answer_template(offer, address, tuple(codecs))
    return text.replace(f" {_ID_MARK} {_ID_MARK} ", f" {session_id} {version} ", 1).replace(
        f"m=audio {_PORT_MARK} ", f"m=audio {rtp_port} ", 1
    )


@functools.lru_cache(maxsize=256)
def _answer_template(offer: str, address: str, codecs: tuple[str, ...]) -> str:
    return _answer(
        offer,
        address=address,
        rtp_port=_PORT_MARK,
        session_id=_ID_MARK,
        session_version=_ID_MARK,
        codecs=codecs,
    )


def _answer(
    offer: str,
    *,
    address: str,
    rtp_port: int,
    session_id: int,
    session_version: int | None = None,
    codecs: Sequence[str] = DEFAULT_ANSWER_CODECS,
) -> str:
    """Compute the SDP answer to ``offer`` (RFC 3264 section 6).

    The first audio m-line that is live (port not 0), uses RTP/AVP and offers a codec named in
    ``codecs`` is accepted: its payload list keeps the first such codec in the OFFER's order, and
    telephone-event too when both sides have it (the one at the codec's clock rate if several).
    It gets ``rtp_port`` and the mirrored direction; an offer on ``c=0.0.0.0`` without a
    direction attribute (RFC 2543 hold) counts as sendonly. Every other m-line is refused with
    port 0 and its first format. ``c=`` and ``o=`` use ``address``; ``o=`` version defaults to
    ``session_id``. Raises OfferError for a malformed offer and for one with no common codec.
    """
    session = _parse(offer, "offer")
    version = _ip_version(address)
    host = _bare(address)
    _check_port(rtp_port)
    wanted = {name.lower() for name in codecs}
    media_out: list[dict[str, Any]] = []
    accepted = False
    for index, media in enumerate(session["media"]):
        answer = None
        if not accepted and _usable_audio(media):
            _connection_of(session, media, index)  # a live stream needs an address
            answer = _answer_audio(session, media, wanted, rtp_port)
        if answer is None:
            answer = _refused(media)
        else:
            accepted = True
        media_out.append(answer)
    if not accepted:
        offered = sorted({_describe(m) for m in session["media"] if m["type"] == "audio"})
        raise OfferError(
            "no common audio codec: the offer has "
            + (", ".join(offered) if offered else "no audio stream")
            + f"; we accept {', '.join(codecs) or 'nothing'} over {ANSWERED_PROTOCOL}"
        )
    return _write(host, version, session_id, session_version, media_out)


def offer_sdp(
    *,
    address: str,
    rtp_port: int,
    session_id: int,
    session_version: int | None = None,
    codecs: Sequence[str] = DEFAULT_OFFER_CODECS,
    direction: str = "sendrecv",
) -> str:
    """An initial offer: one RTP/AVP audio stream on ``rtp_port`` with ``codecs`` in order.

    Known codecs: the keys of OFFER_CODECS (case-insensitive); repeated names count once. Raises
    ValueError for an unknown codec or direction, or when no voice codec is left (telephone-event
    alone carries no speech).
    """
    _check_direction(direction)
    _check_port(rtp_port)
    rtp: list[dict[str, Any]] = []
    fmtp: list[dict[str, Any]] = []
    payloads: list[int] = []
    for name in codecs:
        known = OFFER_CODECS.get(name.lower())
        if known is None:
            raise ValueError(f"unknown codec {name!r}; known: {', '.join(OFFER_CODECS)}")
        pt, encoding, rate, channels, config = known
        if pt in payloads:
            continue
        payloads.append(pt)
        entry: dict[str, Any] = {"payload": pt, "codec": encoding, "rate": rate}
        if channels is not None:
            entry["encoding"] = channels
        rtp.append(entry)
        if config is not None:
            fmtp.append({"payload": pt, "config": config})
    if not any(entry["codec"] != TELEPHONE_EVENT for entry in rtp):
        raise ValueError("an offer needs at least one voice codec besides telephone-event")
    media = {
        "type": "audio",
        "port": rtp_port,
        "protocol": ANSWERED_PROTOCOL,
        "payloads": " ".join(str(pt) for pt in payloads),
        "rtp": rtp,
        "fmtp": fmtp,
        "direction": direction,
    }
    return _write(_bare(address), _ip_version(address), session_id, session_version, [media])


def set_direction(sdp: str, direction: str) -> str:
    """``sdp`` with every live m-line (port not 0) set to ``direction`` and ``o=`` version + 1.

    A session-level direction attribute is removed so that the media-level ones rule. Used for
    hold (``sendonly``) and resume (``sendrecv``). Raises ValueError for an unknown direction and
    OfferError for a malformed description. Lines sdp-transform does not model may be dropped.
    """
    _check_direction(direction)
    session = _parse(sdp, "session description")
    origin = session["origin"]
    if not isinstance(origin.get("sessionVersion"), int):
        raise OfferError("malformed session description: the o= line has no version number")
    origin["sessionVersion"] += 1
    session.pop("direction", None)
    for media in session["media"]:
        if media["port"] != 0:
            media["direction"] = direction
    return sdp_transform.write(session)


class RtpPortAllocator:
    """Even RTP port numbers in ``[first, last]``, handed out in rotation (RTCP takes port + 1).

    Pure and deterministic: the first call returns the lowest even port of the range, each call
    the next even one, wrapping around after the highest. It does not know which ports are free.
    """

    def __init__(self, first: int, last: int) -> None:
        if not 1 <= first <= last <= 65535:
            raise ValueError(f"bad RTP port range {first}-{last}: need 1 <= first <= last <= 65535")
        low = first + first % 2
        high = last - last % 2
        if low > high:
            raise ValueError(f"RTP port range {first}-{last} holds no even port")
        #: The lowest and highest ports handed out.
        self.first = low
        self.last = high
        self._next = low

    def __len__(self) -> int:
        """How many ports the rotation holds."""
        return (self.last - self.first) // 2 + 1

    def next(self) -> int:
        """The next port of the rotation."""
        port = self._next
        self._next = port + 2 if port + 2 <= self.last else self.first
        return port


# -- parsing and checking ---------------------------------------------------------------------


def _parse(text: str, what: str) -> dict[str, Any]:
    """Parse with sdp-transform and check what it silently lets through."""
    if not isinstance(text, str):
        raise OfferError(f"malformed {what}: not text")
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or lines[0].strip() != "v=0":
        raise OfferError(f"malformed {what}: it does not begin with v=0")
    try:
        session = sdp_transform.parse(text)
    except Exception as exc:  # the parser is lenient, but never trust it on peer input
        raise OfferError(f"malformed {what}: {exc}") from None
    if not isinstance(session.get("origin"), dict):
        raise OfferError(f"malformed {what}: no valid o= line")
    for index, media in enumerate(session["media"]):
        kind, port, protocol = media.get("type"), media.get("port"), media.get("protocol")
        formats = _formats(media)
        if not kind or not isinstance(port, int) or not protocol or not formats:
            raise OfferError(f"malformed {what}: m-line {index + 1} is not 'type port proto fmt'")
        if _is_rtp(media) and not all(f.isdigit() for f in formats):
            raise OfferError(f"malformed {what}: m-line {index + 1} has a non-numeric payload")
    return session


def _formats(media: dict[str, Any]) -> list[str]:
    """The format list of an m-line (sdp-transform gives an int for a single payload type)."""
    payloads = media.get("payloads")
    if payloads is None:
        return []
    return str(payloads).split()


def _is_rtp(media: dict[str, Any]) -> bool:
    return str(media.get("protocol", "")).upper().startswith("RTP/")


def _usable_audio(media: dict[str, Any]) -> bool:
    return (
        media["type"] == "audio"
        and media["port"] != 0
        and str(media["protocol"]).upper() == ANSWERED_PROTOCOL
    )


def _connection_of(session: dict[str, Any], media: dict[str, Any], index: int) -> dict[str, Any]:
    connection = media.get("connection") or session.get("connection")
    if not isinstance(connection, dict) or not connection.get("ip"):
        raise OfferError(f"malformed offer: no c= line for m-line {index + 1}")
    return connection


def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ValueError(f"bad direction {direction!r}: use one of {', '.join(DIRECTIONS)}")


def _checked_ids(session_id: int, session_version: int | None) -> int:
    """The o= version (default: the session id), after checking both numbers."""
    version = session_id if session_version is None else session_version
    for name, value in (("session_id", session_id), ("session_version", version)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"bad {name} {value!r}: need an integer >= 0")
    return version


def _check_port(port: int) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"bad RTP port {port!r}")


def _bare(address: str) -> str:
    return address[1:-1] if address.startswith("[") and address.endswith("]") else address


def _ip_version(address: str) -> int:
    """6 for an IPv6 address, else 4 (RFC 4566 also allows a host name after IP4)."""
    return 6 if ":" in address else 4


# -- building the answer ----------------------------------------------------------------------


def _rtpmaps(media: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """The offer's rtpmap entries by payload type, with the static types filled in."""
    maps: dict[int, dict[str, Any]] = {}
    for entry in media.get("rtp", []):
        if isinstance(entry.get("payload"), int) and entry.get("codec"):
            maps.setdefault(entry["payload"], entry)
    for pt, (name, rate) in STATIC_PAYLOAD_TYPES.items():
        maps.setdefault(pt, {"payload": pt, "codec": name, "rate": rate})
    return maps


def _answer_audio(
    session: dict[str, Any], media: dict[str, Any], wanted: set[str], rtp_port: int
) -> dict[str, Any] | None:
    maps = _rtpmaps(media)
    offered = [maps[int(f)] for f in _formats(media) if int(f) in maps]
    codec = next(
        (
            e
            for e in offered
            if str(e["codec"]).lower() in wanted and str(e["codec"]).lower() != TELEPHONE_EVENT
        ),
        None,
    )
    if codec is None:
        return None
    chosen = [codec]
    if TELEPHONE_EVENT in wanted:
        events = [e for e in offered if str(e["codec"]).lower() == TELEPHONE_EVENT]
        same_rate = [e for e in events if e.get("rate") == codec.get("rate")]
        if events:
            chosen.append((same_rate or events)[0])
    pts = [e["payload"] for e in chosen]
    fmtp = [dict(f) for f in media.get("fmtp", []) if f.get("payload") in pts]
    answer: dict[str, Any] = {
        "type": "audio",
        "port": rtp_port,
        "protocol": media["protocol"],
        "payloads": " ".join(str(pt) for pt in pts),
        "rtp": [dict(e) for e in chosen],
        "fmtp": fmtp,
    }
    if isinstance(media.get("ptime"), int | float):
        answer["ptime"] = media["ptime"]
    answer["direction"] = MIRRORED_DIRECTION[_offered_direction(session, media)]
    return answer


def _offered_direction(session: dict[str, Any], media: dict[str, Any]) -> str:
    direction = media.get("direction") or session.get("direction")
    if direction in DIRECTIONS:
        return str(direction)
    connection = media.get("connection") or session.get("connection") or {}
    if connection.get("ip") == "0.0.0.0":
        return "sendonly"  # RFC 2543 hold (RFC 3264 section 8.4)
    return "sendrecv"


def _refused(media: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": media["type"],
        "port": 0,
        "protocol": media["protocol"],
        "payloads": _formats(media)[0],
    }


def _describe(media: dict[str, Any]) -> str:
    maps = _rtpmaps(media) if _is_rtp(media) else {}
    names = [
        str(maps[int(f)]["codec"]) if f.isdigit() and int(f) in maps else f for f in _formats(media)
    ]
    port = " (port 0)" if media["port"] == 0 else ""
    return f"{media['protocol']} {' '.join(names)}{port}"


def _write(
    host: str,
    ip_version: int,
    session_id: int,
    session_version: int | None,
    media: list[dict[str, Any]],
) -> str:
    version = _checked_ids(session_id, session_version)
    session = {
        "version": 0,
        "origin": {
            "username": "-",
            "sessionId": session_id,
            "sessionVersion": version,
            "netType": "IN",
            "ipVer": ip_version,
            "address": host,
        },
        "name": "-",
        "connection": {"version": ip_version, "ip": host},
        "timing": {"start": 0, "stop": 0},
        "media": media,
    }
    return sdp_transform.write(session)
