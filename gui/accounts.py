"""The Accounts view: one row per account of the engine, its registration, Register/Unregister.

The model reads the hub's copies (:class:`AccountData`), takes its changes in batches from the
hub's signals, and ticks once a second so that "expires in" and "retry in" count down. A
failed registration turns its row red with the registrar's answer; the line under the table says
what to do about it.
"""

import time
from datetime import datetime
from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QAction, QColor, QIcon, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from .hub import AccountData, AccountState, SessionHub
from .models import format_duration
from .tablemodel import BLUE, GREEN, GREY, RED, Index, KeyedRowsModel, brushes

#: Background and text colours for each state (those of the sessions table).
ACCOUNT_COLOURS: dict[str, tuple[str, str]] = {
    AccountState.REGISTERED: GREEN,
    AccountState.REGISTERING: BLUE,
    AccountState.UNREGISTERING: BLUE,
    AccountState.FAILED: RED,
    AccountState.RETRYING: RED,
    AccountState.UNREGISTERED: GREY,
}
_BRUSHES = brushes(ACCOUNT_COLOURS)
_DOTS: dict[str, QIcon] = {}

#: A role that gives the account name of a row.
NAME_ROLE = Qt.ItemDataRole.UserRole + 3


def _dot(state: str) -> QIcon:
    """A filled circle in the state's text colour (the state is in words next to it too)."""
    found = _DOTS.get(state)
    if found is None:
        pixmap = QPixmap(12, 12)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(ACCOUNT_COLOURS[state][1]))
        painter.drawEllipse(1, 1, 10, 10)
        painter.end()
        found = _DOTS[state] = QIcon(pixmap)
    return found


def advice(account: AccountData) -> str:
    """What a person can do about a failed registration, by the registrar's answer."""
    status = account.last_status
    if status in (401, 407, 403):
        return "Check the user name, password and realm in Settings, Accounts."
    if status == 408:
        return (
            "The registrar did not answer: check its address, the transport and that it is "
            "reachable from here."
        )
    if status in (404, 604):
        return "The registrar does not know this address of record: check the AoR."
    if status == 423:
        return "The registrar wants a longer expiry: raise it in Settings, Accounts."
    if 500 <= status < 600:
        return "The registrar has a problem of its own; the engine keeps retrying."
    return "The engine keeps retrying, waiting longer after each failure."


def describe_state(account: AccountData, now: float) -> str:
    """One sentence about the registration, for the tooltip and the line under the table."""
    state = account.state
    if state == AccountState.FAILED:
        text = f"Registration failed: {account.last_reply or 'no answer'}"
        if account.failures > 1:
            text += f" ({account.failures} failures in a row)"
        retry = account.retry_in(now)
        text += f". Retrying in {format_duration(retry)}." if retry is not None else "."
        return text
    if state == AccountState.REGISTERED:
        text = f"Registered at {account.registrar or 'the registrar'}"
        if account.expires_at is not None:
            until = datetime.fromtimestamp(account.expires_at).strftime("%H:%M:%S")
            text += f" until {until}"
        retry = account.retry_in(now)
        if retry is not None:
            text += f", refreshed in {format_duration(retry)}"
        return text + "."
    if state == AccountState.REGISTERING and account.failed:
        text = f"Registration failed: {account.last_reply or 'no answer'}"
        if account.failures > 1:
            text += f" ({account.failures} failures in a row)"
        return text + f". Trying again at {account.registrar or 'the registrar'}…"
    if state == AccountState.REGISTERING:
        return f"Registering at {account.registrar or 'the registrar'}…"
    if state == AccountState.UNREGISTERING:
        return "Removing the binding…"
    if account.last_event == "UNREGISTERED":
        return "Not registered (unregistered)."
    return "Not registered."


class AccountTableModel(KeyedRowsModel[AccountData]):
    """One row per account the hub knows, in the engine's order."""

    COLUMNS = (
        "Account",
        "Address of record",
        "State",
        "Expires in",
        "Failures",
        "Public address",
        "Last reply",
    )
    HEADER_TIPS = (
        "The account's name (the name of its [[accounts]] table)",
        "The address of record the account registers",
        "Where the registration stands",
        "Time until the binding lapses; after a failure, time until the next attempt",
        "Failed attempts in a row",
        "Our address as the registrar sees it (Via received and rport), behind NAT",
        "The registrar's last answer to a REGISTER (408: no answer)",
    )
    NAME, AOR, STATE, EXPIRES, FAILURES, PUBLIC, REPLY = range(7)

    def __init__(self, hub: SessionHub, parent: Any = None) -> None:
        super().__init__(lambda account: account.name, parent)
        self.hub = hub
        self._take_added(hub.accounts, hub.accounts)
        hub.accountsAdded.connect(self._on_added)
        hub.accountsChanged.connect(self._on_changed)
        hub.accountsRemoved.connect(self._on_removed)

    # -- the Qt model interface ------------------------------------------------------------------

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        cell = self._cell_at(index)
        if cell is None:
            return None
        row, column = cell
        account = self._rows[row]
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(account, column)
        if role == Qt.ItemDataRole.BackgroundRole:
            return _BRUSHES[account.shown_state][0]
        if role == Qt.ItemDataRole.ForegroundRole:
            return _BRUSHES[account.shown_state][1]
        if role == Qt.ItemDataRole.DecorationRole and column == self.STATE:
            return _dot(account.shown_state)
        if role == Qt.ItemDataRole.FontRole and column == self.STATE and account.failed:
            font = QApplication.font()
            font.setBold(True)
            return font
        if role == NAME_ROLE:
            return account.name
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == self.AOR:
                return f"{account.aor}\nRegistrar: {account.registrar}\nContact: {account.contact}"
            return describe_state(account, self._now)
        if role == Qt.ItemDataRole.AccessibleTextRole:
            if column == self.STATE and account.failed:
                return f"{account.shown_state}: {account.last_reply}"
            return self._display(account, column)
        if role == Qt.ItemDataRole.TextAlignmentRole and column in (self.EXPIRES, self.FAILURES):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _display(self, account: AccountData, column: int) -> str:
        if column == self.NAME:
            return account.name
        if column == self.AOR:
            return account.aor
        if column == self.STATE:
            return account.shown_state
        if column == self.EXPIRES:
            return self._expires_text(account)
        if column == self.REPLY:
            return account.last_reply
        if column == self.PUBLIC:
            return account.public_address
        if column == self.FAILURES:
            return str(account.failures)
        return ""

    def _expires_text(self, account: AccountData) -> str:
        if account.state == AccountState.REGISTERED:
            left = account.expires_in(self._now)
            return format_duration(left) if left is not None else ""
        if account.state == AccountState.FAILED:
            retry = account.retry_in(self._now)
            return f"retry in {format_duration(retry)}" if retry is not None else ""
        if account.state in (AccountState.REGISTERING, AccountState.UNREGISTERING):
            return "trying…" if account.failed else "…"
        return ""

    # -- access ----------------------------------------------------------------------------------

    def account_at(self, row: int) -> AccountData | None:
        """The account of a row."""
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def row_of(self, name: str) -> int:
        """The row of an account, -1 when absent."""
        return self._row_of.get(name, -1)

    # -- updates from the hub --------------------------------------------------------------------

    def _on_added(self, names: list[str]) -> None:
        self._take_added(names, self.hub.accounts)

    def _on_changed(self, names: list[str]) -> None:
        self._now = time.time()
        self._show_changed(names)

    def _on_removed(self, names: list[str]) -> None:
        self._take_removed(names)

    def _tick(self) -> None:
        """Once a second: the countdowns move on."""
        if self._rows:
            column = self.EXPIRES
            self.dataChanged.emit(self.index(0, column), self.index(len(self._rows) - 1, column))


class _KeepColoursDelegate(QStyledItemDelegate):
    """Draws a selected row in its state colour with a frame, so that a selected failed row
    stays red (the usual selection fill would hide it)."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        plain = QStyleOptionViewItem(option)
        plain.state &= ~QStyle.StateFlag.State_Selected
        plain.state &= ~QStyle.StateFlag.State_HasFocus
        super().paint(painter, plain, index)
        if not selected:
            return
        painter.save()
        painter.setPen(QPen(QColor("#0b57d0"), 2))
        rect = option.rect.adjusted(0, 1, 0, -1)
        painter.drawLine(rect.topLeft(), rect.topRight())
        painter.drawLine(rect.bottomLeft(), rect.bottomRight())
        if index.column() == 0:
            painter.drawLine(rect.topLeft(), rect.bottomLeft())
        if index.column() == index.model().columnCount() - 1:
            painter.drawLine(rect.topRight(), rect.bottomRight())
        painter.restore()


def summary(hub: SessionHub) -> str:
    """``Accounts: 1 registered, 1 failed`` (empty when there are none)."""
    counts = hub.account_counts()
    if not counts:
        return ""
    # an account retrying after failures has not recovered: it counts as failed
    counts[AccountState.FAILED] = counts.get(AccountState.FAILED, 0) + counts.pop(
        AccountState.RETRYING, 0
    )
    parts = [
        f"{counts[state]} {label}"
        for state, label in (
            (AccountState.REGISTERED, "registered"),
            (AccountState.FAILED, "failed"),
            (AccountState.REGISTERING, "registering"),
            (AccountState.UNREGISTERING, "unregistering"),
            (AccountState.UNREGISTERED, "not registered"),
        )
        if counts.get(state)
    ]
    return "Accounts: " + ", ".join(parts)


class AccountsView(QWidget):
    """The accounts table with Register and Unregister (buttons, context menu, shortcuts)."""

    #: The operator asked to edit the accounts (Settings, Accounts).
    editRequested = Signal()
    #: The current account changed (its name, or "").
    currentChanged = Signal(str)

    def __init__(
        self,
        hub: SessionHub,
        register: QAction,
        unregister: QAction,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.hub = hub
        self.act_register = register
        self.act_unregister = unregister
        self.setObjectName("accountsView")
        self.setAccessibleName("Accounts view")
        self.model = AccountTableModel(hub, self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)

        bar = QHBoxLayout()
        for action in (register, unregister):
            button = QToolButton()
            button.setDefaultAction(action)
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
            button.setAccessibleName(action.text().replace("&", ""))
            bar.addWidget(button)
        self.edit_button = QPushButton("&Edit accounts…")
        self.edit_button.setAccessibleName("Edit accounts in Settings")
        self.edit_button.setToolTip("Add, change or remove accounts (Settings, Accounts)")
        self.edit_button.setAutoDefault(False)
        self.edit_button.clicked.connect(self.editRequested)
        bar.addWidget(self.edit_button)
        bar.addStretch()
        self.counts = QLabel()
        self.counts.setAccessibleName("Accounts summary")
        bar.addWidget(self.counts)
        layout.addLayout(bar)

        self.table = QTableView()
        self.table.setObjectName("accounts")
        self.table.setAccessibleName("Accounts")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for column, width in enumerate((110, 200, 130, 100, 64, 150, 170)):
            self.table.setColumnWidth(column, width)
        self.table.setItemDelegate(_KeepColoursDelegate(self.table))
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.table.doubleClicked.connect(lambda _: self.editRequested.emit())
        self.table.selectionModel().currentRowChanged.connect(self._current_changed)
        layout.addWidget(self.table, 1)

        self.empty = QLabel(
            "No accounts. An account registers the console at a PBX or registrar so that it "
            "receives calls, and places calls with its identity: <b>Edit accounts…</b> "
            "(Settings, Accounts) adds one."
        )
        self.empty.setWordWrap(True)
        self.empty.setAccessibleName("No accounts")
        layout.addWidget(self.empty)
        self.detail = QLabel()
        self.detail.setObjectName("accountDetail")
        self.detail.setWordWrap(True)
        self.detail.setAccessibleName("Selected account")
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.detail)

        for signal in (hub.accountsAdded, hub.accountsChanged, hub.accountsRemoved):
            signal.connect(self.refresh)
        self.model.dataChanged.connect(self._tick_detail)
        self.refresh()

    # -- selection -------------------------------------------------------------------------------

    def current_name(self) -> str | None:
        """The selected account, or the only one when there is just one."""
        index = self.table.selectionModel().currentIndex()
        if index.isValid():
            account = self.model.account_at(index.row())
            if account is not None:
                return account.name
        if self.model.rowCount() == 1:
            account = self.model.account_at(0)
            return account.name if account else None
        return None

    def current(self) -> AccountData | None:
        """The selected account's record."""
        name = self.current_name()
        return self.hub.accounts.get(name) if name else None

    def select(self, name: str) -> None:
        """Make ``name`` the current account."""
        row = self.model.row_of(name)
        if row >= 0:
            self.table.selectRow(row)
            self.table.setCurrentIndex(self.model.index(row, 0))

    def _current_changed(self, *_: Any) -> None:
        self.refresh()
        self.currentChanged.emit(self.current_name() or "")

    # -- display ---------------------------------------------------------------------------------

    def refresh(self, *_: Any) -> None:
        """The summary, the empty-state hint, the line about the current account, actions."""
        has_rows = self.model.rowCount() > 0
        self.table.setVisible(has_rows)
        self.empty.setVisible(not has_rows)
        text = summary(self.hub)
        failed = any(a.failed for a in self.hub.accounts.values())
        self.counts.setText(f"<b style='color:#b3261e'>{text}</b>" if failed else text)
        self._update_detail()
        self.update_actions()

    def _tick_detail(self, top_left: QModelIndex, *_: Any) -> None:
        if top_left.column() == AccountTableModel.EXPIRES:
            self._update_detail()

    def _update_detail(self) -> None:
        account = self.current()
        if account is None:
            self.detail.setText(
                "Select an account to register or unregister it." if self.hub.accounts else ""
            )
            self.detail.setStyleSheet("")
            return
        now = time.time()
        text = f"<b>{_escape(account.name)}</b> — {_escape(describe_state(account, now))}"
        if account.failed:
            text += f" {_escape(advice(account))}"
            self.detail.setStyleSheet(
                "QLabel#accountDetail { color: #8a1c17; background: #fdecea;"
                " border: 1px solid #f3b8b3; border-radius: 4px; padding: 4px; }"
            )
        else:
            if account.contact:
                text += f" Contact {_escape(account.contact)}."
            self.detail.setStyleSheet("QLabel#accountDetail { padding: 4px; }")
        if self.detail.text() != text:
            self.detail.setText(text)

    def update_actions(self) -> None:
        """Register needs an account; Unregister one that is (being) registered."""
        account = self.current()
        self.act_register.setEnabled(
            account is not None and account.state != AccountState.REGISTERING
        )
        self.act_unregister.setEnabled(
            account is not None
            and account.state in (AccountState.REGISTERED, AccountState.REGISTERING)
        )

    def _context_menu(self, position: Any) -> None:
        index = self.table.indexAt(position)
        if index.isValid():
            self.table.selectRow(index.row())
            self.table.setCurrentIndex(index)
        menu = QMenu(self)
        menu.addAction(self.act_register)
        menu.addAction(self.act_unregister)
        menu.addSeparator()
        account = self.current()
        if account is not None:
            copy = menu.addAction("&Copy address of record")
            copy.triggered.connect(lambda: QApplication.clipboard().setText(account.aor))
        edit = menu.addAction("&Edit accounts…")
        edit.triggered.connect(self.editRequested)
        menu.popup(self.table.viewport().mapToGlobal(position))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
