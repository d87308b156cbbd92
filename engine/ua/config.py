"""What the UA core is configured with (built by engine.api from flags and TOML)."""

import ipaddress
from dataclasses import dataclass, field

from engine.sip import Limits, Target
from engine.sip.digest import Credential
from engine.sip.timers import TimerConfig
from engine.sip.validate import DEFAULT_POLICY, UasPolicy

from .flags import DEFAULT_MAX_DURATION
from .policy import IncomingPolicy
from .registration import Account


def _manual() -> IncomingPolicy:
    return IncomingPolicy.from_shortcut("manual")


@dataclass(frozen=True, slots=True)
class UaConfig:
    """Settings of one UA core."""

    #: The transport addresses we listen on (the first of each transport sends by default).
    local: tuple[Target, ...]
    policy: IncomingPolicy = field(default_factory=_manual)
    credentials: tuple[Credential, ...] = ()
    #: A URI to put in Contact instead of the listener's address (NAT, a registrar's view).
    advertised_contact: str | None = None
    timers: TimerConfig = field(default_factory=TimerConfig)
    limits: Limits = field(default_factory=Limits)
    uas: UasPolicy = DEFAULT_POLICY
    key_prefix: str = "B2B"
    default_max_duration: int = DEFAULT_MAX_DURATION
    user_agent: str = "UA Console"
    #: The address put in generated SDP (default: the listener's).
    rtp_address: str | None = None
    rtp_ports: tuple[int, int] = (20000, 29998)
    #: Accounts: identities at registrars, registered at start.
    accounts: tuple[Account, ...] = ()
    #: What requests outside a dialog from unknown sources get: "accept", "drop", or
    #: "reject:CODE" (one answer for all, so a scanner learns nothing).
    untrusted: str = "accept"
    #: Sources always trusted besides the accounts' registrars and proxies.
    trusted_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
