"""Where the event log lives and how much it keeps: flags, the ``[store]`` table, the default.

```toml
[store]
path = "/var/lib/uaconsole/events.db"   # --db PATH; default: the user's data folder
enabled = true                          # --no-db turns the log off
retention_days = 30                     # --db-retention-days
max_mb = 2048                           # --db-max-mb
```
"""

import argparse
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from engine.ua.policy import ConfigError

from .retention import Retention
from .writer import EventLog, EventSource, StoreStatus

APP_NAME = "uaconsole"
FILE_NAME = "eventlog.db"


def default_db_path() -> Path:
    """The event log in the user's data folder (``~/.local/share/uaconsole/eventlog.db`` on
    Linux)."""
    return platformdirs.user_data_path(APP_NAME, appauthor=False) / FILE_NAME


@dataclass(frozen=True, slots=True)
class StoreOptions:
    """The event log's settings; ``path`` None means no log."""

    path: Path | None = field(default_factory=default_db_path)
    retention: Retention = field(default_factory=Retention)

    def event_log(self) -> EventLog | None:
        """A writer for these settings, or None when the log is off."""
        return EventLog(self.path, retention=self.retention) if self.path is not None else None


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    """``--db PATH``, ``--no-db``, ``--db-retention-days`` and ``--db-max-mb``."""
    group = parser.add_argument_group("event log")
    group.add_argument(
        "--db", type=Path, metavar="PATH",
        help=f"the SQLite event log (default {default_db_path()})",
    )  # fmt: skip
    group.add_argument("--no-db", action="store_true", help="keep no event log")
    group.add_argument(
        "--db-retention-days", type=float, metavar="DAYS",
        help="delete history older than DAYS (default 30; 0 keeps everything)",
    )  # fmt: skip
    group.add_argument(
        "--db-max-mb", type=float, metavar="MB",
        help="delete the oldest history while the log holds more than MB (default 2048; "
        "0: no limit)",
    )  # fmt: skip


def store_options(args: argparse.Namespace) -> StoreOptions:
    """The ``[store]`` table of ``--config`` (if any) with the flags on top. ConfigError."""
    table: dict[str, Any] = {}
    config_file = getattr(args, "config", None)
    if config_file is not None:
        try:
            with Path(config_file).open("rb") as f:
                table = tomllib.load(f).get("store", {})
        except (OSError, tomllib.TOMLDecodeError):
            table = {}  # the engine's own reading of the file reports it
        if not isinstance(table, dict):
            raise ConfigError("must be a table", "store")
        unknown = set(table) - {"path", "enabled", "retention_days", "max_mb"}
        if unknown:
            raise ConfigError("unknown key (known: enabled, max_mb, path, retention_days)",
                              f"store.{sorted(unknown)[0]}")  # fmt: skip
    path: Path | None = default_db_path()
    if "path" in table:
        if not isinstance(table["path"], str) or not table["path"]:
            raise ConfigError("must be a file name", "store.path")
        path = Path(table["path"]).expanduser()
    if table.get("enabled") is False:
        path = None
    if getattr(args, "db", None) is not None:
        path = args.db.expanduser()
    if getattr(args, "no_db", False):
        path = None
    keep_days = _number(args, "db_retention_days", table, "retention_days", 30)
    max_mb = _number(args, "db_max_mb", table, "max_mb", 2048)
    retention = Retention(
        max_age=keep_days * 86400 if keep_days else None,
        max_bytes=int(max_mb * 1024 * 1024) if max_mb else None,
    )
    return StoreOptions(path, retention)


def _number(args: argparse.Namespace, flag: str, table: dict, key: str, default: float) -> float:
    value = getattr(args, flag, None)
    where = "--" + flag.replace("_", "-")
    if value is None:
        value, where = table.get(key, default), f"store.{key}"
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"must be a number, at least 0, not {value!r}", where)
    return float(value)


async def start_event_log(engine: EventSource, options: StoreOptions | None) -> EventLog | None:
    """Start logging ``engine`` (before ``engine.start()``, to miss nothing). If the file cannot
    be used, the writer logs one error line and the engine runs on without a log."""
    if options is None:
        return None
    event_log = options.event_log()
    if event_log is None:
        print("uaconsole: event log off (--no-db)", file=sys.stderr)
        return None
    status = await event_log.start(engine)
    if status.ok:  # else the writer has logged why, in one line
        print(f"uaconsole: event log {status.path}", file=sys.stderr, flush=True)
    return event_log


async def stop_event_log(event_log: EventLog | None) -> StoreStatus | None:
    """Write what is left and close (after ``engine.stop()``); the final status."""
    if event_log is None:
        return None
    status = await event_log.stop()
    if not status.ok:
        return status  # said when it failed
    print(
        f"uaconsole: {status.summary}, writer lag at most {status.max_lag * 1000:.0f} ms",
        file=sys.stderr,
        flush=True,
    )
    return status
