"""The SQLite event log (sqlite-utils): schema, migrations, batched writer, queries, exports.

- :class:`EventLog` writes an engine's events and SIP messages; its ``status`` (a
  :class:`StoreStatus`) says whether it is healthy, what it wrote and lost.
- :class:`History` reads a log: sessions, one session's events and ladder, full-text search.
- :func:`export_session` writes one session as pcap, a SIPp scenario, JSON lines or CSV.
- :class:`StoreOptions` / :func:`add_store_arguments` / :func:`store_options`: ``--db``,
  ``--no-db`` and retention, with :func:`default_db_path` in the user's data folder.
"""

from .export import FORMATS, export_session, text_ladder
from .history import History, parse_when
from .options import (
    StoreOptions,
    add_store_arguments,
    default_db_path,
    start_event_log,
    stop_event_log,
    store_options,
)
from .retention import Retention
from .schema import StoreError
from .writer import EventLog, StoreStatus

__all__ = [
    "FORMATS",
    "EventLog",
    "History",
    "Retention",
    "StoreError",
    "StoreOptions",
    "StoreStatus",
    "add_store_arguments",
    "default_db_path",
    "export_session",
    "parse_when",
    "start_event_log",
    "stop_event_log",
    "store_options",
    "text_ladder",
]
