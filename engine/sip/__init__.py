"""The pure SIP core: messages, URIs, headers, transactions, dialogs and digest.

No I/O, no clock, no randomness: callers pass the time in and take bytes and events out.
"""

from .digest import (
    Challenge,
    Credential,
    DigestClient,
    build_authorization,
    choose_qop,
    digest_response,
    parse_challenge,
    parse_credential,
    select_credential,
    verify_authorization,
)
from .errors import EngineError, LocalProtocolError, ParseError, RemoteProtocolError
from .fields import CSeq, NameAddr, Via, parse_cseq, parse_name_addr, parse_via, parse_vias
from .framer import StreamFramer
from .headers import Headers
from .message import Limits, Message, Request, Response, parse_message
from .target import Target
from .timers import TimerConfig
from .transaction import (
    AckReceived,
    MessageDropped,
    Outgoing,
    RequestReceived,
    ResponseReceived,
    StrayResponse,
    TransactionEvent,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimeout,
)
from .uri import AbsoluteUri, SipUri, TelUri, Uri, parse_uri

__all__ = [
    "AbsoluteUri",
    "AckReceived",
    "CSeq",
    "Challenge",
    "Credential",
    "DigestClient",
    "EngineError",
    "Headers",
    "Limits",
    "LocalProtocolError",
    "Message",
    "MessageDropped",
    "NameAddr",
    "Outgoing",
    "ParseError",
    "RemoteProtocolError",
    "Request",
    "RequestReceived",
    "Response",
    "ResponseReceived",
    "SipUri",
    "StrayResponse",
    "StreamFramer",
    "Target",
    "TelUri",
    "TimerConfig",
    "TransactionEvent",
    "TransactionLayer",
    "TransactionTerminated",
    "TransactionTimeout",
    "Uri",
    "Via",
    "build_authorization",
    "choose_qop",
    "digest_response",
    "parse_challenge",
    "parse_credential",
    "parse_cseq",
    "parse_message",
    "parse_name_addr",
    "parse_uri",
    "parse_via",
    "parse_vias",
    "select_credential",
    "verify_authorization",
]
