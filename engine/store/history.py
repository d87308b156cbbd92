"""Reading the event log: sessions by time, party, state and status; one session's events and
ladder; full-text search over SIP messages.

Rows come back as plain dicts of the columns described in :mod:`engine.store.schema` (messages
with ``data`` as bytes), safe to hand to another thread or a Qt model. ``History`` opens its own
connection, so it can read a file that a running engine is writing (WAL lets both go on).
"""

import re
import sqlite3
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from .schema import StoreError, connect, describe_error

STATES = ("NEW", "EARLY", "ANSWERED", "REJECTED", "TERMINATED")
_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_STATUS_CLASS = re.compile(r"^([1-6])xx$", re.IGNORECASE)


def parse_when(text: str, now: float | None = None) -> float:
    """Unix time from ``2024-05-01``, ``2024-05-01 14:00``, ISO 8601, a Unix time, or a time
    ago (``30s``, ``10m``, ``2h``, ``3d``, ``1w``). ValueError with a message if none of these."""
    now = time.time() if now is None else now
    m = _RELATIVE.match(text)
    if m:
        return now - float(m.group(1)) * _UNITS[m.group(2).lower()]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use 2024-05-01, '2024-05-01 14:00', or 30m, 2h, 3d ago"
        ) from None
    return when.timestamp()  # naive times are local time


class History:
    """Queries over one event log file."""

    def __init__(self, db: Database, path: Path | str | None = None) -> None:
        self.db = db
        self.path = str(path) if path is not None else "the event log"
        self.db.conn.row_factory = sqlite3.Row

    @classmethod
    def open(cls, path: Path | str, *, busy_timeout: float = 5.0) -> "History":
        """Open ``path`` (upgrading an older file); StoreError with one line if it cannot.

        A file that is not writable is opened read-only, as long as it needs no upgrade."""
        path = Path(path)
        if not path.exists():
            raise StoreError(f"no event log at {path} (start `uaconsole serve` to make one)")
        try:
            return cls(connect(path, busy_timeout=busy_timeout, for_writing=False), path)
        except StoreError as error:
            if "read-only" not in str(error) and "cannot be opened" not in str(error):
                raise
        return cls(connect(path, busy_timeout=busy_timeout, read_only=True), path)

    def close(self) -> None:
        self.db.close()

    def _rows(self, sql: str, params: list[Any] | dict[str, Any] | None = None) -> list[dict]:
        try:
            return [dict(row) for row in self.db.execute(sql, params or [])]
        except sqlite3.Error as error:
            raise StoreError(describe_error(self.path, error)) from None

    # -- sessions --------------------------------------------------------------------------------

    def sessions(
        self,
        *,
        since: float | None = None,
        until: float | None = None,
        party: str | None = None,
        state: str | None = None,
        status: str | int | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> list[dict]:
        """Sessions created in [since, until), newest first.

        ``party``: a substring of From, To or the Request-URI (case-insensitive). ``state``: one
        of :data:`STATES`, or ``active`` for every session not yet TERMINATED. ``status``: a final
        status (``486``) or a class (``4xx``); ``none`` for sessions without a final reply.
        """
        where, params = [], []
        if since is not None:
            where.append("created >= ?")
            params.append(since)
        if until is not None:
            where.append("created < ?")
            params.append(until)
        if party:
            where.append(
                "(instr(lower(from_party), ?) OR instr(lower(to_party), ?) "
                "OR instr(lower(ruri), ?))"
            )
            params += [party.lower()] * 3
        if state:
            name = state.upper()
            if name == "ACTIVE":
                where.append("state != 'TERMINATED'")
            elif name in STATES:
                where.append("state = ?")
                params.append(name)
            else:
                raise ValueError(f"unknown state {state!r}: use {', '.join(STATES)} or active")
        if status is not None and status != "":
            text = str(status).strip()
            m = _STATUS_CLASS.match(text)
            if text.lower() == "none":
                where.append("final_status IS NULL")
            elif m:
                low = int(m.group(1)) * 100
                where.append("final_status >= ? AND final_status < ?")
                params += [low, low + 100]
            elif text.isdigit():
                where.append("final_status = ?")
                params.append(int(text))
            else:
                raise ValueError(f"{status!r} is not a status: use 486, 4xx or none")
        sql = "SELECT * FROM sessions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created DESC, key"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params += [limit, offset]
        return self._rows(sql, params)

    def session(self, key: str) -> dict | None:
        """The session with exactly this key, or None."""
        rows = self._rows("SELECT * FROM sessions WHERE key = ?", [key])
        return rows[0] if rows else None

    def find_session(self, text: str) -> dict:
        """The one session whose key or Call-ID is ``text``, or the only one whose key or
        Call-ID contains it. LookupError with a message when none or several match."""
        exact = self.session(text)
        if exact is not None:
            return exact
        rows = self._rows("SELECT * FROM sessions WHERE callid = ? ORDER BY created", [text])
        if len(rows) == 1:
            return rows[0]
        if not rows:
            rows = self._rows(
                "SELECT * FROM sessions WHERE instr(key, ?) OR instr(callid, ?) "
                "ORDER BY created LIMIT 6",
                [text, text],
            )
        if len(rows) == 1:
            return rows[0]
        if not rows:
            raise LookupError(f"no session matches {text!r}")
        keys = ", ".join(r["key"] for r in rows[:5])
        raise LookupError(f"{text!r} matches several sessions ({keys}...): give more of the key")

    # -- one session -----------------------------------------------------------------------------

    def events(self, key: str) -> list[dict]:
        """The session's events, in order."""
        return self._rows("SELECT * FROM events WHERE key = ? ORDER BY seq, id", [key])

    def ladder(self, key: str) -> list[dict]:
        """The session's SIP messages in order, with addresses and bytes."""
        session = self.session(key)
        callid = session["callid"] if session else key
        return self._rows(
            "SELECT * FROM messages WHERE session_key = ? "
            "OR (callid = ? AND session_key IS NULL) ORDER BY time, id",
            [key, callid],
        )

    # -- everything ------------------------------------------------------------------------------

    def search(self, text: str, *, limit: int = 50) -> list[dict]:
        """Messages whose start line or text contains the words of ``text``, newest first, each
        with a ``snippet`` around the match."""
        query = self.db.quote_fts(text)
        if not query:
            return []
        return self._rows(
            "SELECT m.id, m.time, m.direction, m.transport, m.local, m.remote, m.first_line, "
            "m.callid, m.cseq, m.session_key, "
            "snippet(messages_fts, 1, '[', ']', '...', 10) AS snippet "
            "FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
            "WHERE messages_fts MATCH ? ORDER BY m.time DESC LIMIT ?",
            [query, limit],
        )

    def gaps(self, since: float | None = None) -> list[dict]:
        """Where the log lost items, oldest first."""
        return self._rows(
            "SELECT * FROM gaps WHERE time >= ? ORDER BY time",
            [since if since is not None else 0.0],
        )

    def registrations(self, account: str | None = None, *, limit: int = 200) -> list[dict]:
        """Registration changes, newest first (all accounts, or one)."""
        where, params = ("WHERE account = ?", [account]) if account else ("", [])
        return self._rows(
            f"SELECT * FROM registrations {where} ORDER BY time DESC, id DESC LIMIT ?",
            [*params, limit],
        )

    def counts(self) -> dict[str, int]:
        """Rows per table."""
        return {
            table: self.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("sessions", "events", "messages", "gaps", "registrations")
        }
