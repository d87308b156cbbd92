"""The History tab of the event log dock: past sessions from the SQLite event log.

Search by party (From, To, Request-URI), state, final status and time range, page through the
results, full-text search over SIP messages, open a session's ladder, and export a session as
pcap, SIPp scenario, JSON lines or CSV from its context menu. SQLite work runs in one worker
thread (through asyncio's run_in_executor), so a slow disk never freezes the window.
"""

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from engine.api import MessageRecord

from .hub import MessageItem
from .ladder import LadderView, describe
from .sipmsg import split_message
from .tablemodel import Index

try:
    from engine.store.export import FORMATS, export_session
    from engine.store.history import STATES, History, parse_when
except ImportError:  # pragma: no cover - an engine without the event log
    History = None  # type: ignore[assignment,misc]
    FORMATS = ()  # type: ignore[assignment]
    STATES = ()  # type: ignore[assignment]

T = TypeVar("T")
PAGE = 100
#: What each export format is called in menus, and its file suffix.
EXPORTS = {
    "pcap": ("pcap (Wireshark)", ".pcap"),
    "sipp": ("SIPp scenario", ".xml"),
    "jsonl": ("JSON lines", ".jsonl"),
    "csv": ("CSV", ".csv"),
}


def _when(value: Any) -> str:
    if not isinstance(value, int | float):
        return ""
    return datetime.fromtimestamp(value).strftime("%Y-%m-%d %H:%M:%S")


class HistoryModel(QAbstractTableModel):
    """Rows of the ``sessions`` table (plain dicts), one page at a time."""

    COLUMNS = ("Created", "Key", "Dir", "From", "To", "State", "Final", "Duration")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[dict[str, Any]] = []

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if (
            role == Qt.ItemDataRole.DisplayRole
            and orientation == Qt.Orientation.Horizontal
            and 0 <= section < len(self.COLUMNS)
        ):
            return self.COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        if role == Qt.ItemDataRole.UserRole:
            return row.get("key")
        if role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return None
        column = index.column()
        if column == 0:
            return _when(row.get("created"))
        if column == 1:
            return row.get("key") or ""
        if column == 2:
            return "in" if row.get("entity_type") == "UAS" else "out"
        if column == 3:
            return row.get("from_party") or ""
        if column == 4:
            return row.get("to_party") or ""
        if column == 5:
            return row.get("state") or ""
        if column == 6:
            return str(row.get("final_status") or "")
        if column == 7:
            start = row.get("answered") or row.get("created")
            end = row.get("ended")
            if isinstance(start, int | float) and isinstance(end, int | float):
                return f"{max(0.0, end - start):.1f} s"
            return ""
        return None

    def set_rows(self, rows: list[dict[str, Any]]) -> None:
        """Replace the page."""
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def key_at(self, row: int) -> str | None:
        """The session key of a row."""
        return self._rows[row].get("key") if 0 <= row < len(self._rows) else None


class HistoryPane(QWidget):
    """Search, page, ladder and export over the event log file."""

    def __init__(self, path_of: Callable[[], Path | None], parent: QWidget | None = None):
        super().__init__(parent)
        self._path_of = path_of
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="uaconsole-history")
        self._history: Any = None
        self._history_path: Path | None = None
        self.offset = 0
        self.forms: list[QWidget] = []
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        bar = QHBoxLayout()
        self.party = QLineEdit()
        self.party.setPlaceholderText("Party: part of From, To or Request-URI")
        self.party.setAccessibleName("History: party")
        self.state = QComboBox()
        self.state.addItems(["any state", "active", *STATES])
        self.state.setAccessibleName("History: state")
        self.status = QLineEdit()
        self.status.setPlaceholderText("Status: 486, 4xx, none")
        self.status.setAccessibleName("History: final status")
        self.status.setMaximumWidth(150)
        self.since = QLineEdit()
        self.since.setPlaceholderText("Since: 2h, 2024-05-01 14:00")
        self.since.setAccessibleName("History: since")
        self.since.setMaximumWidth(190)
        self.until = QLineEdit()
        self.until.setPlaceholderText("Until")
        self.until.setAccessibleName("History: until")
        self.until.setMaximumWidth(150)
        self.search_button = QPushButton("&Search")
        self.search_button.setAccessibleName("Search the history")
        for widget in (
            self.party,
            self.state,
            self.status,
            self.since,
            self.until,
            self.search_button,
        ):
            bar.addWidget(widget)
        layout.addLayout(bar)
        text_bar = QHBoxLayout()
        self.text = QLineEdit()
        self.text.setPlaceholderText("Words in SIP messages (full-text search), e.g. X-Case 4711")
        self.text.setAccessibleName("History: message text")
        text_bar.addWidget(self.text, 1)
        self.previous_button = QPushButton("◀ &Newer")
        self.previous_button.setAccessibleName("Newer page")
        self.next_button = QPushButton("&Older ▶")
        self.next_button.setAccessibleName("Older page")
        self.page_label = QLabel()
        text_bar.addWidget(self.previous_button)
        text_bar.addWidget(self.page_label)
        text_bar.addWidget(self.next_button)
        layout.addLayout(text_bar)
        self.model = HistoryModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setAccessibleName("History sessions")
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.horizontalHeader().setStretchLastSection(True)
        for column, width in enumerate((140, 170, 40, 220, 220, 100, 50)):
            self.table.setColumnWidth(column, width)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.table.doubleClicked.connect(
            lambda index: self.open_ladder(self.model.key_at(index.row()))
        )
        layout.addWidget(self.table, 1)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setAccessibleName("History status")
        layout.addWidget(self.message)
        self.search_button.clicked.connect(lambda: self.refresh(reset=True))
        for edit in (self.party, self.status, self.since, self.until, self.text):
            edit.returnPressed.connect(lambda: self.refresh(reset=True))
        self.state.currentIndexChanged.connect(lambda _: self.refresh(reset=True))
        self.previous_button.clicked.connect(lambda: self.page(-1))
        self.next_button.clicked.connect(lambda: self.page(+1))
        self.last_task: asyncio.Task[Any] | None = None

    # -- worker thread ---------------------------------------------------------------------------

    async def _in_worker(self, fn: Callable[[Any], T]) -> T:
        """Run ``fn(history)`` in the worker thread (the History lives there)."""
        path = self._path_of()
        if path is None:
            raise LookupError("the event log is off (see Settings, Database)")

        def work() -> T:
            if self._history is None or self._history_path != path:
                if self._history is not None:
                    with contextlib.suppress(Exception):
                        self._history.close()
                self._history = History.open(path)
                self._history_path = path
            return fn(self._history)

        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    def close_history(self) -> None:
        """Close the file and the worker thread."""

        def close() -> None:
            if self._history is not None:
                self._history.close()
                self._history = None

        with contextlib.suppress(Exception):
            self._executor.submit(close).result(timeout=5)
        self._executor.shutdown(wait=False)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        self.last_task = asyncio.ensure_future(coro)
        return self.last_task

    # -- searching -------------------------------------------------------------------------------

    def page(self, step: int) -> None:
        """Go to the newer (-1) or older (+1) page."""
        self.offset = max(0, self.offset + step * PAGE)
        self.refresh()

    def refresh(self, reset: bool = False) -> asyncio.Task[Any]:
        """Run the search with the fields as they are."""
        if reset:
            self.offset = 0
        return self._spawn(self._search())

    def _criteria(self) -> dict[str, Any]:
        criteria: dict[str, Any] = {"limit": PAGE, "offset": self.offset}
        if self.party.text().strip():
            criteria["party"] = self.party.text().strip()
        if self.state.currentIndex() > 0:
            criteria["state"] = self.state.currentText()
        if self.status.text().strip():
            criteria["status"] = self.status.text().strip()
        for name, edit in (("since", self.since), ("until", self.until)):
            if edit.text().strip():
                criteria[name] = parse_when(edit.text().strip())
        return criteria

    async def _search(self) -> None:
        try:
            criteria = self._criteria()
            words = self.text.text().strip()

            def query(history: Any) -> list[dict[str, Any]]:
                if words:
                    keys: list[str] = []
                    for hit in history.search(words, limit=500):
                        key = hit.get("session_key")
                        if key and key not in keys:
                            keys.append(key)
                    rows = [history.session(k) for k in keys]
                    rows = [r for r in rows if r]
                    return rows[criteria["offset"] : criteria["offset"] + PAGE]
                return history.sessions(**criteria)

            rows = await self._in_worker(query)
        except (ValueError, LookupError) as error:
            self.message.setText(str(error))
            return
        except Exception as error:  # StoreError and friends: say it, keep the window
            self.message.setText(f"The event log cannot be read: {error}")
            return
        self.model.set_rows(rows)
        first = self.offset + 1 if rows else 0
        self.page_label.setText(f"{first}–{self.offset + len(rows)}")
        self.previous_button.setEnabled(self.offset > 0)
        self.next_button.setEnabled(len(rows) == PAGE)
        self.message.setText(
            f"{len(rows)} session(s) on this page; right-click one to export it."
            if rows
            else "No session matches."
        )

    # -- one session -----------------------------------------------------------------------------

    def _context_menu(self, position: Any) -> None:
        index = self.table.indexAt(position)
        key = self.model.key_at(index.row()) if index.isValid() else None
        if key is None:
            return
        menu = QMenu(self)
        menu.addAction("Show &ladder", lambda: self.open_ladder(key))
        self.export_menu(menu, key)
        menu.popup(self.table.viewport().mapToGlobal(position))

    def export_menu(self, menu: QMenu, key: str) -> None:
        """Add "Export as ..." entries for session ``key`` to a menu."""
        for fmt in FORMATS:
            title, _ = EXPORTS.get(fmt, (fmt, f".{fmt}"))
            menu.addAction(f"Export as {title}…", lambda f=fmt: self.ask_export(key, f))

    def ask_export(self, key: str, fmt: str) -> None:
        """Ask where, then export."""
        title, suffix = EXPORTS.get(fmt, (fmt, f".{fmt}"))
        name = key.replace("/", "_") + suffix
        target, _ = QFileDialog.getSaveFileName(self, f"Export as {title}", name)
        if target:
            self._spawn(self.export(key, fmt, Path(target)))

    async def export(self, key: str, fmt: str, target: Path) -> bool:
        """Export session ``key`` to ``target``; the result goes to the status line."""
        try:
            await self._in_worker(lambda history: export_session(history, key, fmt, target))
        except Exception as error:
            self.message.setText(f"Could not export {key}: {error}")
            return False
        self.message.setText(f"Exported {key} as {EXPORTS.get(fmt, (fmt,))[0]} to {target}")
        return True

    def open_ladder(self, key: str | None) -> asyncio.Task[Any] | None:
        """A window with the logged ladder of a session."""
        if not key:
            return None
        return self._spawn(self._open_ladder(key))

    async def _open_ladder(self, key: str) -> None:
        try:
            rows = await self._in_worker(lambda history: history.ladder(key))
        except Exception as error:
            self.message.setText(f"Cannot read the ladder of {key}: {error}")
            return
        items = []
        for row in rows:
            data = row.get("data") or b""
            record = MessageRecord(
                row["time"],
                row["direction"],
                row["transport"],
                row["local"],
                row["remote"],
                bytes(data),
            )
            items.append(MessageItem(record, split_message(record.data), False))
        dialog = LadderDialog(key, items, self)
        self.forms.append(dialog)
        dialog.finished.connect(lambda _=0, d=dialog: self.forms.remove(d))
        dialog.show()


class LadderDialog(QDialog):
    """A logged session's ladder with the raw message under it."""

    def __init__(self, key: str, items: list[MessageItem], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Ladder — {key}")
        self.setAccessibleName(f"Ladder of {key}")
        from PySide6.QtWidgets import QPlainTextEdit

        from .details import mono_font

        layout = QVBoxLayout(self)
        splitter = QSplitter(Qt.Orientation.Vertical)
        self.ladder = LadderView()
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.ladder)
        self.raw = QPlainTextEdit()
        self.raw.setReadOnly(True)
        self.raw.setFont(mono_font())
        splitter.addWidget(scroll)
        splitter.addWidget(self.raw)
        layout.addWidget(splitter)
        self.ladder.set_messages(items)
        self.ladder.messageClicked.connect(lambda row: self.raw.setPlainText(describe(items[row])))
        self.resize(900, 640)


def make_history_widget(window: Any) -> QWidget:
    """The history pane for the window's event log (or a note when there is none)."""
    if History is None:
        label = QLabel("History needs the event log (engine.store), which is not installed.")
        label.setWordWrap(True)
        return label

    def path_of() -> Path | None:
        console = getattr(window, "console", None)
        event_log = getattr(console, "event_log", None)
        status = getattr(console, "store_status", None)
        if event_log is not None and getattr(status, "ok", False):
            return Path(event_log.path)
        return None

    return HistoryPane(path_of, window)
