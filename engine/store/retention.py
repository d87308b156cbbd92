"""Retention: delete what is older than a given age, or the oldest rows while the file is too big.

Both run in the writer's worker thread between batches, in small transactions, so that a large
clean-up never holds the writer back for long.
"""

import time
from dataclasses import dataclass

from sqlite_utils import Database

#: Rows deleted per statement: small enough to keep each transaction short.
CHUNK = 2000


@dataclass(frozen=True, slots=True)
class Retention:
    """How much history to keep. None means no limit."""

    #: Delete sessions, events, messages and gaps older than this many seconds.
    max_age: float | None = 30 * 86400
    #: Delete the oldest rows while the data in the file takes more than this many bytes.
    max_bytes: int | None = 2 * 1024**3
    #: Seconds between two checks.
    every: float = 60.0
    #: Seconds of work per check at most; the rest waits for the next check.
    budget: float = 0.25


def used_bytes(db: Database) -> int:
    """Bytes taken by data (the file less its free pages; the WAL not counted)."""
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    free = db.execute("PRAGMA freelist_count").fetchone()[0]
    return (pages - free) * page_size


def _delete_before(db: Database, cutoff: float) -> int:
    """Delete up to CHUNK rows of each table older than ``cutoff``; how many went."""
    deleted = 0
    with db.atomic():
        for table, column in (("messages", "time"), ("events", "time"), ("gaps", "time")):
            cursor = db.execute(
                f"DELETE FROM {table} WHERE id IN "
                f"(SELECT id FROM {table} WHERE {column} < ? ORDER BY {column} LIMIT ?)",
                [cutoff, CHUNK],
            )
            deleted += cursor.rowcount
        cursor = db.execute(
            "DELETE FROM sessions WHERE key IN (SELECT key FROM sessions "
            "WHERE coalesce(ended, created) < ? LIMIT ?)",
            [cutoff, CHUNK],
        )
        deleted += cursor.rowcount
    return deleted


def prune(db: Database, retention: Retention, now: float | None = None) -> int:
    """Apply ``retention`` for at most ``retention.budget`` seconds; rows deleted."""
    now = time.time() if now is None else now
    started = time.monotonic()
    deleted = 0
    if retention.max_age is not None:
        cutoff = now - retention.max_age
        while time.monotonic() - started < retention.budget:
            count = _delete_before(db, cutoff)
            deleted += count
            if count == 0:
                break
    if retention.max_bytes is not None:
        while (
            used_bytes(db) > retention.max_bytes and time.monotonic() - started < retention.budget
        ):
            # The time of the CHUNK-th oldest message: everything up to it goes.
            row = db.execute(
                "SELECT time FROM messages ORDER BY time LIMIT 1 OFFSET ?", [CHUNK - 1]
            ).fetchone()
            if row is None:
                row = db.execute("SELECT max(time) FROM messages").fetchone()
            if row is None or row[0] is None:
                row = db.execute("SELECT max(time) FROM events").fetchone()
            if row is None or row[0] is None:
                break
            count = _delete_before(db, row[0] + 1e-6)
            deleted += count
            if count == 0:
                break
    if deleted:
        # Each step of the pragma frees pages: read it to the end.
        db.execute("PRAGMA incremental_vacuum").fetchall()
    return deleted
