"""The session flags of OpenSIPS's UA session API (MI-API.md section 1)."""

import functools
from dataclasses import dataclass

#: Default maximum session duration for ``t`` or ``t0``, in seconds (as OpenSIPS).
DEFAULT_MAX_DURATION = 43200
KNOWN_LETTERS = frozenset("tardhbn")


@dataclass(frozen=True, slots=True)
class SessionFlags:
    """Parsed flags; ``text`` is what the controller gave."""

    text: str = ""
    #: Seconds the session may last from creation, or None (no limit).
    max_duration: int | None = None
    report_ack: bool = False
    no_auto_ack: bool = False
    with_headers: bool = False
    with_body: bool = False
    no_new_event: bool = False
    #: Letters that mean nothing here (ignored with a warning, as OpenSIPS does).
    unknown: str = ""


@functools.lru_cache(maxsize=256)  # a rule's flags, parsed for each call it takes
def parse_flags(text: str, default_max_duration: int = DEFAULT_MAX_DURATION) -> SessionFlags:
    """Parse a flags string such as ``"t60bh"``. Never raises: unknown letters are collected."""
    max_duration: int | None = None
    letters: set[str] = set()
    unknown = []
    i = 0
    while i < len(text):
        c = text[i]
        i += 1
        if c == "t":
            j = i
            while j < len(text) and text[j].isdigit():
                j += 1
            seconds = int(text[i:j]) if j > i else 0
            max_duration = seconds or default_max_duration
            i = j
        elif c in KNOWN_LETTERS:
            letters.add(c)
        elif not c.isspace():
            unknown.append(c)
    return SessionFlags(
        text=text,
        max_duration=max_duration,
        report_ack="a" in letters,
        no_auto_ack="d" in letters,
        with_headers="h" in letters,
        with_body="b" in letters,
        no_new_event="n" in letters,
        unknown="".join(unknown),
    )
