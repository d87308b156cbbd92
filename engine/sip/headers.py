"""An ordered, case-insensitive header collection that understands compact forms."""

from collections.abc import Callable, Iterator
from typing import TypeVar

from .grammar import check_header_value, split_outside_quotes

T = TypeVar("T")

#: RFC 3261 section 7.3.3 compact forms (and later RFCs'), to the full name.
COMPACT_FORMS = {
    "a": "accept-contact",
    "b": "referred-by",
    "c": "content-type",
    "d": "request-disposition",
    "e": "content-encoding",
    "f": "from",
    "i": "call-id",
    "j": "reject-contact",
    "k": "supported",
    "l": "content-length",
    "m": "contact",
    "n": "identity-info",
    "o": "event",
    "r": "refer-to",
    "s": "subject",
    "t": "to",
    "u": "allow-events",
    "v": "via",
    "x": "session-expires",
    "y": "identity",
}

#: Headers that may appear once only in a message.
SINGLE_VALUED = frozenset(
    {"from", "to", "call-id", "cseq", "max-forwards", "content-length", "content-type"}
)


#: Header names as they are usually spelled, to their key: a dict hit skips the token check
#: and the lower-casing on the hot path.
KNOWN_SPELLINGS = (
    {
        spelling: key
        for key in (
            "via",
            "from",
            "to",
            "call-id",
            "cseq",
            "contact",
            "max-forwards",
            "content-type",
            "content-length",
            "subject",
            "route",
            "record-route",
            "allow",
            "supported",
            "require",
            "user-agent",
            "server",
            "expires",
            "session-expires",
            "min-se",
            "accept",
            "rseq",
            "rack",
            "event",
            "authorization",
            "proxy-authorization",
            "www-authenticate",
            "proxy-authenticate",
            "date",
            "timestamp",
            "organization",
            "p-asserted-identity",
        )
        for spelling in (key, key.title(), key.upper())
    }
    | {
        "Call-ID": "call-id",
        "CSeq": "cseq",
        "WWW-Authenticate": "www-authenticate",
        "RSeq": "rseq",
        "RAck": "rack",
    }
    | {spelling: key for short, key in COMPACT_FORMS.items() for spelling in (short, short.upper())}
)


def header_key(name: str) -> str:
    """The lookup key of a header name: lower case, compact forms expanded."""
    key = KNOWN_SPELLINGS.get(name)
    if key is None:
        key = name.lower()
        key = COMPACT_FORMS.get(key, key)
    return key


class Headers:
    """Header lines in their order on the wire, looked up by name in any case or compact form.

    Values are stored as written (already unfolded). Parsed forms are cached per name and the
    cache is dropped on every change.
    """

    __slots__ = ("_cache", "_index", "_items")

    def __init__(self, items: list[tuple[str, str]] | None = None, *, checked: bool = False):
        if items and not checked:
            for name, value in items:
                check_header_value(name, value)
        self._items: list[tuple[str, str]] = items if items is not None else []
        self._index: dict[str, list[int]] | None = None
        self._cache: dict[str, object] = {}

    def index(self) -> dict[str, list[int]]:
        """The positions of each header's lines, by lookup key (see :func:`header_key`).

        For fast checks of which headers are present; read it, never change it.
        """
        return self._lookup()

    def _lookup(self) -> dict[str, list[int]]:
        index = self._index
        if index is None:
            index = {}
            compact = COMPACT_FORMS
            for i, (name, _) in enumerate(self._items):
                key = name.lower()
                key = compact.get(key, key)
                if key in index:
                    index[key].append(i)
                else:
                    index[key] = [i]
            self._index = index
        return index

    @classmethod
    def parsed_from_wire(
        cls, items: list[tuple[str, str]], index: dict[str, list[int]]
    ) -> "Headers":
        """Headers the message parser has already split, checked and indexed."""
        headers = cls.__new__(cls)
        headers._items = items
        headers._index = index
        headers._cache = {}
        return headers

    def _changed(self) -> None:
        self._index = None
        self._cache.clear()

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    # The lookups below inline header_key and _lookup: they run tens of times per message.

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        index = self._index if self._index is not None else self._lookup()
        return (KNOWN_SPELLINGS.get(name) or header_key(name)) in index

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._items == other._items

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of the first line of ``name``, or ``default``."""
        index = self._index if self._index is not None else self._lookup()
        positions = index.get(KNOWN_SPELLINGS.get(name) or header_key(name))
        return self._items[positions[0]][1] if positions else default

    def get_all(self, name: str) -> list[str]:
        """The value of every line of ``name``, in order."""
        items = self._items
        index = self._index if self._index is not None else self._lookup()
        return [items[i][1] for i in index.get(KNOWN_SPELLINGS.get(name) or header_key(name), ())]

    def count(self, name: str) -> int:
        """How many lines of ``name`` there are."""
        return len(self._lookup().get(header_key(name), ()))

    def values(self, name: str) -> list[str]:
        """Every comma-separated value of ``name`` over all its lines, stripped.

        Commas inside quoted strings and ``<...>`` do not split. Use for list headers (Via,
        Contact, Route, Require, Allow...), never for Date or the authentication headers.
        """
        out: list[str] = []
        for line in self.get_all(name):
            out.extend(v.strip() for v in split_outside_quotes(line, ",") if v.strip())
        return out

    def parsed(self, name: str, parser: Callable[["Headers"], T]) -> T:
        """``parser(self)``, cached under ``name`` until the headers change."""
        cache = self._cache
        if name in cache:
            return cache[name]  # type: ignore[return-value]
        value = parser(self)
        cache[name] = value
        return value

    def remember(self, name: str, value: object) -> None:
        """Cache ``value`` as the parsed form of ``name``, known without parsing (a response
        carries its request's CSeq). It is dropped, like any parsed form, on the next change."""
        self._cache[name] = value

    def items(self) -> list[tuple[str, str]]:
        """A copy of the (name, value) pairs."""
        return list(self._items)

    def add(self, name: str, value: str) -> None:
        """Append a line."""
        check_header_value(name, value)
        self._items.append((name, value))
        self._changed()

    def insert_first(self, name: str, value: str) -> None:
        """Put a line before every other (a new top Via)."""
        check_header_value(name, value)
        self._items.insert(0, (name, value))
        self._changed()

    def set(self, name: str, value: str) -> None:
        """Replace every line of ``name`` by one line, where the first one was (else at the end)."""
        check_header_value(name, value)
        key = header_key(name)
        index = self._lookup()
        positions = index.get(key)
        if not positions:
            index[key] = [len(self._items)]
            self._items.append((name, value))
            self._cache.pop(key, None)
            return
        self._items[positions[0]] = (name, value)
        if len(positions) == 1:  # the common case: the index stays right
            self._cache.pop(key, None)
            return
        drop = set(positions[1:])
        self._items = [item for i, item in enumerate(self._items) if i not in drop]
        self._changed()

    def remove(self, name: str) -> None:
        """Remove every line of ``name``."""
        key = header_key(name)
        if key not in self._lookup():
            return
        self._items = [item for item in self._items if header_key(item[0]) != key]
        self._changed()

    def remove_first(self, name: str) -> None:
        """Remove the first line of ``name`` (a response's top Via), if any."""
        positions = self._lookup().get(header_key(name))
        if positions:
            del self._items[positions[0]]
            self._changed()

    def copy(self) -> "Headers":
        """An independent copy."""
        return Headers(list(self._items), checked=True)
