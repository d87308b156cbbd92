"""A bounded memo for parsers of header values that repeat from message to message.

The same URIs and addresses come back all the time: the Request-URI and Contact of every call
from one peer, the From of a call's INVITE, ACK and BYE. Their parsed forms are immutable, so
they can be shared. Only successful parses are kept (an error is raised anew each time, with its
caller's wording). When the memo is full it starts again empty: bounded memory, no bookkeeping
on the hot path.
"""

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
P = TypeVar("P", bound=Callable[..., Any])

#: Distinct texts kept per parser before the memo starts again. Tagged values (a call's From and
#: To) repeat only within the call's first exchanges, so a short memory is enough.
LIMIT = 1024


def memoized(parse: P, limit: int = LIMIT) -> P:
    """``parse`` with its results kept by input text (its first argument; any others may only
    change the wording of its errors). ``parse`` must be pure and its results never changed by
    their users."""
    known: dict[str, Any] = {}

    def lookup(text: str, *args: Any) -> Any:
        value = known.get(text)
        if value is None:
            value = parse(text, *args)
            if len(known) >= limit:
                known.clear()
            known[text] = value
        return value

    lookup.__doc__ = parse.__doc__
    lookup.__wrapped__ = parse  # type: ignore[attr-defined]
    return lookup  # type: ignore[return-value]
