"""Table models over the hub's copies of engine data: sessions, events.

Each model brackets every change (beginInsertRows/endInsertRows, beginRemoveRows/endRemoveRows,
dataChanged over contiguous runs of rows, layoutChanged when sorting) and receives its changes
in batches from the hub, so a burst of events is one update per model.

Sorting happens in the sessions model itself (a Python sort of 10,000 rows takes milliseconds,
where a QSortFilterProxyModel would call back into Python for every comparison); the proxy on
top only filters, by text and by state.
"""

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QBrush, QColor

from engine.api import RegistrationEvent, SessionEvent

from .hub import SessionData, SessionHub, State
from .tablemodel import (
    BLUE,
    GREEN,
    GREY,
    PURPLE,
    RED,
    YELLOW,
    ColumnsModel,
    Index,
    KeyedRowsModel,
    brushes,
    runs,
)

#: Background and text colours for each state.
STATE_COLOURS: dict[str, tuple[str, str]] = {
    State.INCOMING: YELLOW,
    State.CALLING: BLUE,
    State.RINGING: BLUE,
    State.ESTABLISHED: GREEN,
    State.ON_HOLD: PURPLE,
    State.HELD: PURPLE,
    State.FAILED: RED,
    State.REJECTED: RED,
    State.CANCELLED: GREY,
    State.ENDED: GREY,
}
_BRUSHES = brushes(STATE_COLOURS)

#: A role that gives the raw value to sort on.
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
#: A role that gives the session key of a row.
KEY_ROLE = Qt.ItemDataRole.UserRole + 2


def format_duration(seconds: float) -> str:
    """``0:07``, ``12:03``, ``1:02:03``."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def short_party(text: str) -> str:
    """A From/To header value without its tag parameter, for the table."""
    head, _, _ = text.partition(";tag=")
    return head


class SessionTableModel(KeyedRowsModel[SessionData]):
    """One row per session the hub knows."""

    COLUMNS = ("Key", "Dir", "From", "To", "State", "Duration", "Last event", "Final")
    HEADER_TIPS = (
        "The session key (its Call-ID for a call placed here)",
        "Direction: in for a call received, out for a call placed",
        "The From header of the initial INVITE",
        "The To header of the initial INVITE",
        "The state of the session",
        "Time since answer (or since the start while unanswered)",
        "The last event the engine reported",
        "The final status of the initial INVITE",
    )
    KEY, DIRECTION, FROM, TO, STATE, DURATION, LAST_EVENT, FINAL = range(8)
    #: Columns whose values change during a session: a sort by them is redone once a second.
    MUTABLE = frozenset({STATE, DURATION, LAST_EVENT, FINAL, FROM, TO})

    def __init__(self, hub: SessionHub, parent: Any = None) -> None:
        super().__init__(lambda s: s.key, parent)
        self.hub = hub
        self._sort_column = -1
        self._sort_order = Qt.SortOrder.AscendingOrder
        self._sort_dirty = False
        hub.sessionsAdded.connect(self._on_added)
        hub.sessionsChanged.connect(self._on_changed)
        hub.sessionsRemoved.connect(self._on_removed)
        self._take_added(hub.sessions, hub.sessions)

    # -- the Qt model interface ------------------------------------------------------------------

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        cell = self._cell_at(index)
        if cell is None:
            return None
        row, column = cell
        s = self._rows[row]
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(s, column)
        if role == Qt.ItemDataRole.BackgroundRole:
            return _BRUSHES[s.state][0]
        if role == Qt.ItemDataRole.ForegroundRole:
            return _BRUSHES[s.state][1]
        if role == SORT_ROLE:
            return self._sort_value(s, column)
        if role == KEY_ROLE:
            return s.key
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == self.KEY:
                return s.key
            if column in (self.FROM, self.TO):
                return s.from_ if column == self.FROM else s.to
            if column == self.STATE and s.ended_by:
                return f"{s.state} ({s.ended_by})"
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (self.DURATION, self.FINAL):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return self._display(s, column)
        return None

    def _display(self, s: SessionData, column: int) -> str:
        if column == self.KEY:
            return s.key
        if column == self.DIRECTION:
            return "← in" if s.direction == "in" else "→ out"
        if column == self.FROM:
            return short_party(s.from_)
        if column == self.TO:
            return short_party(s.to)
        if column == self.STATE:
            return s.state
        if column == self.DURATION:
            return format_duration(s.duration(self._now))
        if column == self.LAST_EVENT:
            return s.last_event
        if column == self.FINAL:
            return str(s.final_status) if s.final_status else ""
        return ""

    def _sort_value(self, s: SessionData, column: int) -> Any:
        if column == self.DURATION:
            return s.duration(self._now)
        if column == self.FINAL:
            return s.final_status
        if column == self.KEY:
            return s.created
        if column == self.STATE:
            return State.ALL.index(s.state)
        return self._display(s, column).lower()

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self._sort_column = column
        self._sort_order = order
        self._resort()

    def _resort(self) -> None:
        self._sort_dirty = False
        column = self._sort_column
        if not (0 <= column < len(self.COLUMNS)) or not self._rows:
            return
        self.layoutAboutToBeChanged.emit()
        old_persistent = self.persistentIndexList()
        old_keys = [(self._rows[i.row()].key, i.column()) for i in old_persistent]
        reverse = self._sort_order == Qt.SortOrder.DescendingOrder
        self._rows.sort(key=lambda s: self._sort_value(s, column), reverse=reverse)
        self._reindex()
        new_persistent = [self.index(self._row_of[key], col) for key, col in old_keys]
        self.changePersistentIndexList(old_persistent, new_persistent)
        self.layoutChanged.emit()

    # -- access ----------------------------------------------------------------------------------

    def session_at(self, row: int) -> SessionData | None:
        """The session of a row of this model."""
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def row_of(self, key: str) -> int:
        """The row of a session key, -1 when absent."""
        return self._row_of.get(key, -1)

    # -- updates from the hub --------------------------------------------------------------------

    def _on_added(self, keys: list[str]) -> None:
        if not self._take_added(keys, self.hub.sessions):
            return
        newest_last = self._sort_order == Qt.SortOrder.AscendingOrder
        if self._sort_column >= 0 and (self._sort_column != self.KEY or not newest_last):
            self._sort_dirty = True

    def _on_changed(self, keys: list[str]) -> None:
        rows = self._show_changed(keys)
        if rows and self._sort_column in self.MUTABLE:
            self._sort_dirty = True

    def _on_removed(self, keys: list[str]) -> None:
        self._take_removed(keys)

    def _tick(self) -> None:
        """Once a second: durations of live sessions move on; a stale sort is redone."""
        rows = [i for i, s in enumerate(self._rows) if not s.is_ended]
        index = self.DURATION
        for first, end in runs(rows):
            self.dataChanged.emit(self.index(first, index), self.index(end, index))
        if self._sort_dirty or (rows and self._sort_column == self.DURATION):
            self._resort()


class SessionFilterProxy(QSortFilterProxyModel):
    """Filters the sessions table by text (key, parties, Request-URI, Call-ID) and by state.

    Sorting is handed to the source model (see the module's docstring).
    """

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._text = ""
        self._states: frozenset[str] | None = None
        self.setDynamicSortFilter(False)

    def set_text(self, text: str) -> None:
        """Show only sessions whose key, parties, Request-URI or Call-ID contain ``text``."""
        self._refilter(lambda: setattr(self, "_text", text.strip().lower()))

    def set_states(self, states: Iterable[str] | None) -> None:
        """Show only sessions in these states (None: all)."""
        chosen = None if states is None else frozenset(states)
        self._refilter(lambda: setattr(self, "_states", chosen))

    def _refilter(self, change: Callable[[], None]) -> None:
        """Change the filter between beginFilterChange and endFilterChange (Qt 6.10+)."""
        begin = getattr(self, "beginFilterChange", None)
        if begin is None:  # older Qt
            change()
            self.invalidateFilter()
            return
        begin()
        change()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        model = self.sourceModel()
        if not isinstance(model, SessionTableModel):
            return True
        s = model.session_at(source_row)
        if s is None:
            return False
        if self._states is not None and s.state not in self._states:
            return False
        if self._text:
            text = self._text
            return any(text in v.lower() for v in (s.key, s.from_, s.to, s.ruri, s.callid))
        return True

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        model = self.sourceModel()
        if model is not None:
            model.sort(column, order)

    def key_at(self, row: int) -> str | None:
        """The session key of a row of the proxy."""
        value = self.index(row, 0).data(KEY_ROLE)
        return value if isinstance(value, str) else None


def _event_time(value: float) -> str:
    return datetime.fromtimestamp(value).strftime("%H:%M:%S.%f")[:-3]


#: An event log row: a session's event, or an account's (Key "account NAME", Side "REG").
LogEvent = SessionEvent | RegistrationEvent


class EventTableModel(ColumnsModel):
    """Event rows (SessionEvent, RegistrationEvent), newest last, at most ``capacity`` of them
    (the oldest go first)."""

    COLUMNS = ("Time", "Seq", "Key", "Event", "Side", "Method", "Status", "Reason", "Origin")

    def __init__(self, capacity: int = 20000, parent: Any = None) -> None:
        super().__init__(parent)
        self.capacity = capacity
        self._items: list[LogEvent] = []
        #: Optional filter: only events of this session key are appended.
        self.only_key: str | None = None

    def _count(self) -> int:
        return len(self._items)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._items):
            return None
        event = self._items[index.row()]
        column = index.column()
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.AccessibleTextRole):
            return self._cell(event, column)
        if role == KEY_ROLE:
            return event.key if isinstance(event, SessionEvent) else ""
        if role == Qt.ItemDataRole.ForegroundRole and column == 3:
            colour = _EVENT_COLOURS.get(event.event_type)
            return QBrush(QColor(colour)) if colour else None
        return None

    def _cell(self, event: LogEvent, column: int) -> Any:
        if isinstance(event, RegistrationEvent):
            return _registration_cell(event, column)
        values: tuple[Callable[[SessionEvent], Any], ...] = (
            lambda e: _event_time(e.time),
            lambda e: str(e.seq),
            lambda e: e.key,
            lambda e: e.event_type,
            lambda e: e.entity_type,
            lambda e: e.method,
            lambda e: str(e.status) if e.status else "",
            lambda e: e.reason or "",
            lambda e: e.origin,
        )
        return values[column](event) if 0 <= column < len(values) else None

    def event_at(self, row: int) -> LogEvent | None:
        """The event of a row."""
        return self._items[row] if 0 <= row < len(self._items) else None

    def set_events(self, events: Sequence[LogEvent]) -> None:
        """Replace every row."""
        self.beginResetModel()
        self._items = list(events[-self.capacity :])
        self.endResetModel()

    def append(self, events: Sequence[LogEvent]) -> None:
        """Add rows at the end, dropping the oldest beyond the capacity."""
        if self.only_key is not None:
            events = [e for e in events if getattr(e, "key", None) == self.only_key]
        if not events:
            return
        events = list(events[-self.capacity :])
        overflow = len(self._items) + len(events) - self.capacity
        if overflow > 0:
            self.beginRemoveRows(QModelIndex(), 0, overflow - 1)
            del self._items[:overflow]
            self.endRemoveRows()
        first = len(self._items)
        self.beginInsertRows(QModelIndex(), first, first + len(events) - 1)
        self._items.extend(events)
        self.endInsertRows()


def _registration_cell(event: RegistrationEvent, column: int) -> Any:
    values = (
        _event_time(event.time),
        str(event.seq),
        f"account {event.account}",
        event.event_type,
        "REG",
        "REGISTER",
        str(event.status) if event.status else "",
        event.reason,
        event.origin,
    )
    return values[column] if 0 <= column < len(values) else None


_EVENT_COLOURS = {
    "NEW": "#9a6200",
    "EARLY": "#0b3c80",
    "ANSWERED": "#145c2c",
    "REJECTED": "#a3231c",
    "UPDATED": "#4b2a86",
    "TERMINATED": "#555555",
    "REGISTERED": "#145c2c",
    "REFRESHED": "#145c2c",
    "UNREGISTERED": "#555555",
    "FAILED": "#a3231c",
}
