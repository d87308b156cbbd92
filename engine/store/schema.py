"""The event log's tables, their migrations, and opening a file with a one-line error.

Tables (every time is Unix time, a float):

``sessions``
    One row per UA session: ``key`` (primary key; ``refused:CALL-ID`` for a call the incoming
    policy refused, which the engine answers without making a session), ``callid``,
    ``entity_type`` (UAS, UAC), ``direction`` (``in`` for a call we received, ``out`` for one we
    placed), ``from_party``,
    ``to_party`` and ``ruri`` (from the initial INVITE), ``from_tag``, ``to_tag``, ``state`` (the
    last thing that happened: NEW, EARLY, ANSWERED, REJECTED or TERMINATED), ``created``,
    ``answered``, ``ended``, ``final_status`` and ``final_reason`` (the final reply to the initial
    INVITE), ``ended_by`` (``remote``, ``local`` or ``timeout``), and ``transport``, ``local``,
    ``remote`` (the addresses of the initial INVITE, ``udp:127.0.0.1:5060``).
``events``
    Every field of :class:`engine.ua.events.SessionEvent`, one row per event, in ``seq`` order.
``messages``
    Every SIP message sent or received: ``time``, ``direction`` (in, out), ``transport``,
    ``local``, ``remote``, ``first_line``, ``callid``, ``cseq``, ``session_key`` and ``data`` (the
    bytes as on the wire). ``messages_fts`` indexes ``first_line`` and ``data`` (FTS5).
``gaps``
    A row each time the writer's bounded queue overflowed: ``time``, ``stream`` (events or
    messages), ``lost`` (how many items) and ``reason``. A loss is never silent. (A file that
    fails stops the log instead, and the writer's status says so.)

The schema is built by the :data:`MIGRATIONS` of sqlite-utils; opening a file written by an older
version applies the migrations it lacks, in place.
"""

import contextlib
import errno
import os
import sqlite3
from pathlib import Path

from sqlite_utils import Database, Migrations

#: The migration set's name in ``_sqlite_migrations``.
MIGRATION_SET = "uaconsole-eventlog"
MIGRATIONS = Migrations(MIGRATION_SET)


@MIGRATIONS()
def m001_sessions_events_messages(db: Database) -> None:
    """The first version: sessions, events and messages."""
    db["sessions"].create(
        {
            "key": str,
            "callid": str,
            "entity_type": str,
            "direction": str,
            "from_party": str,
            "to_party": str,
            "ruri": str,
            "from_tag": str,
            "to_tag": str,
            "state": str,
            "created": float,
            "answered": float,
            "ended": float,
            "final_status": int,
            "final_reason": str,
        },
        pk="key",
    )
    db["sessions"].create_index(["created"])
    db["sessions"].create_index(["callid"])
    db["events"].create(
        {
            "id": int,
            "seq": int,
            "key": str,
            "event_type": str,
            "entity_type": str,
            "status": int,
            "reason": str,
            "method": str,
            "body": str,
            "headers": str,
            "time": float,
            "callid": str,
            "from_tag": str,
            "to_tag": str,
            "origin": str,
        },
        pk="id",
    )
    db["events"].create_index(["key"])
    db["events"].create_index(["time"])
    db["messages"].create(
        {
            "id": int,
            "time": float,
            "direction": str,
            "transport": str,
            "local": str,
            "remote": str,
            "first_line": str,
            "callid": str,
            "session_key": str,
            "data": bytes,
        },
        pk="id",
    )
    db["messages"].create_index(["callid"])
    db["messages"].create_index(["time"])


@MIGRATIONS()
def m002_message_search(db: Database) -> None:
    """Full-text search over messages, kept current by triggers."""
    db["messages"].enable_fts(["first_line", "data"], create_triggers=True)


@MIGRATIONS()
def m003_gaps_and_session_details(db: Database) -> None:
    """Gap rows, who ended a session, its addresses, and each message's CSeq."""
    db["gaps"].create(
        {"id": int, "time": float, "stream": str, "lost": int, "reason": str}, pk="id"
    )
    db["gaps"].create_index(["time"])
    for column in ("ended_by", "transport", "local", "remote"):
        db["sessions"].add_column(column, str)
    db["sessions"].create_index(["ended"])
    db["messages"].add_column("cseq", str)
    db["messages"].create_index(["session_key"])


@MIGRATIONS()
def m004_registrations(db: Database) -> None:
    """Account registration changes (RegistrationEvent), beside the session events."""
    db["registrations"].create(
        {
            "id": int, "seq": int, "time": float, "account": str, "event_type": str,
            "status": int, "reason": str, "expires": int, "aor": str, "origin": str,
        },
        pk="id",  # seq starts again at each engine start
    )  # fmt: skip
    db["registrations"].create_index(["account", "time"])


class StoreError(Exception):
    """The event log file cannot be used; ``str()`` is one line a person can act on."""


def describe_error(path: Path | str, error: BaseException) -> str:
    """One line for an error met while using the file at ``path``."""
    text = str(error)
    lowered = text.lower()
    if (isinstance(error, OSError) and error.errno == errno.ENOSPC) or "disk is full" in lowered:
        what = "the disk is full"
    elif "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
        what = "the file is corrupt or is not an event log"
    elif "locked" in lowered or "busy" in lowered:
        what = "the file is locked by another process"
    elif (
        "readonly" in lowered
        or "read-only" in lowered
        or ("unable to open" in lowered and _read_only(Path(path)))
    ):
        what = "the file or its folder is read-only"
    elif "unable to open" in lowered:
        what = "the file cannot be opened (missing folder, or no permission)"
    elif isinstance(error, OSError) and error.strerror:
        what = f"{error.strerror.lower()} ({error.filename})" if error.filename else error.strerror
        text = ""
    else:
        what = text or type(error).__name__
    detail = text.splitlines()[0] if text else ""
    if detail and detail != what:
        return f"cannot use event log {path}: {what} ({detail})"
    return f"cannot use event log {path}: {what}"


def _read_only(path: Path) -> bool:
    """True when the file, or the folder that must hold its -wal and -shm files, is read-only."""
    folder = path.parent
    if path.exists() and not os.access(path, os.W_OK):
        return True
    return folder.exists() and not os.access(folder, os.W_OK)


def connect(
    path: Path | str,
    *,
    busy_timeout: float = 2.0,
    read_only: bool = False,
    for_writing: bool = True,
) -> Database:
    """A Database on ``path`` (created with its folder unless ``read_only``), in WAL mode, with
    every migration applied. StoreError with a one-line message if the file cannot be used.

    ``for_writing``: take the write lock once, so that a file locked by another process shows
    now rather than at the first batch."""
    path = Path(path)
    conn: sqlite3.Connection | None = None
    try:
        if read_only:
            if not path.exists():
                raise StoreError(f"no event log at {path}")
            conn = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=busy_timeout
            )
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), timeout=busy_timeout)
        db = Database(conn, execute_plugins=False)
        if not read_only:
            prepare(db, probe=for_writing)
        # Reading the schema is where a file that is not a database shows it.
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return db
    except StoreError:
        if conn is not None:
            conn.close()
        raise
    except (sqlite3.Error, OSError) as error:
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        raise StoreError(describe_error(path, error)) from error


def prepare(db: Database, *, probe: bool = True) -> None:
    """WAL, incremental vacuum on a new file, every pending migration, and a write probe."""
    new = not db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    if new:
        # Must be set before the first table: lets retention give pages back to the disk.
        db.execute("PRAGMA auto_vacuum=INCREMENTAL")
    db.enable_wal()
    db.execute("PRAGMA synchronous=NORMAL")
    if MIGRATIONS.pending(db):
        MIGRATIONS.apply(db)
    if probe:
        db.execute("BEGIN IMMEDIATE")
        db.execute("COMMIT")


def schema_version(db: Database) -> list[str]:
    """The names of the migrations applied to ``db``, oldest first."""
    return [m.name for m in MIGRATIONS.applied(db)]
