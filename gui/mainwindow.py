"""The main window: sessions table, details pane, event log and accounts docks, status bar,
actions."""

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QByteArray, QItemSelectionModel, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDockWidget,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPushButton,
    QSplitter,
    QSystemTrayIcon,
    QTableView,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from engine.api import RegistrationEvent
from engine.api.sdp import OfferError, set_direction

from .accounts import AccountsView, summary
from .assets import icon
from .details import SessionDetails
from .forms import (
    REASONS,
    AnswerForm,
    OriginateForm,
    ReinviteForm,
    ReplyForm,
    RequestForm,
    answer_for,
    explain,
)
from .hub import SessionData, SessionHub, State
from .models import KEY_ROLE, EventTableModel, SessionFilterProxy, SessionTableModel
from .notify import IncomingCallBar, ProblemBar

if TYPE_CHECKING:
    from .app import Console

STATE_FILTERS: dict[str, tuple[str, ...] | None] = {
    "All sessions": None,
    "Live": State.LIVE,
    "Waiting (incoming)": (State.INCOMING,),
    "Established": (State.ESTABLISHED,),
    "On hold": (State.ON_HOLD, State.HELD),
    "Ringing / calling": (State.CALLING, State.RINGING),
    "Ended": State.ENDED_STATES,
    "Failed / rejected": (State.FAILED, State.REJECTED),
}

ESTABLISHED_STATES = (State.ESTABLISHED, State.ON_HOLD, State.HELD)


class MainWindow(QMainWindow):
    """The operator console."""

    closed = Signal()

    def __init__(self, hub: SessionHub, console: "Console | None" = None) -> None:
        super().__init__()
        self.hub = hub
        self.console = console
        self.setWindowTitle("UA Console")
        self.setWindowIcon(icon("app"))
        self.setObjectName("MainWindow")
        self.forms: list[QWidget] = []
        self._closing = False
        self._subscribed_logs: set[int] = set()

        # Models
        self.sessions_model = SessionTableModel(hub, self)
        self.proxy = SessionFilterProxy(self)
        self.proxy.setSourceModel(self.sessions_model)
        self.events_model = EventTableModel(capacity=20000, parent=self)
        hub.eventsAppended.connect(self._on_events)
        hub.registrationEvents.connect(self._on_events)

        # Central area: banners, filter bar, table | details
        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(6, 6, 6, 0)
        self.problem_bar = ProblemBar()
        self.problem_bar.fixRequested.connect(lambda: self.open_settings(tab=0))
        self.problem_bar.retryRequested.connect(self._retry)
        outer.addWidget(self.problem_bar)
        self.incoming_bar = IncomingCallBar(hub)
        self.incoming_bar.answerRequested.connect(self.quick_answer)
        self.incoming_bar.answerWithFormRequested.connect(self.open_answer)
        self.incoming_bar.rejectRequested.connect(lambda key: self.reject_keys([key], 486))
        self.incoming_bar.showRequested.connect(self.select_key)
        outer.addWidget(self.incoming_bar)
        self.notice = QLabel()
        self.notice.setObjectName("notice")
        self.notice.setWordWrap(True)
        self.notice.setAccessibleName("Last action result")
        self.notice.setStyleSheet(
            "QLabel#notice { color: #8a1c17; background: #fdecea; border: 1px solid #f3b8b3;"
            " border-radius: 4px; padding: 5px; }"
        )
        self.notice.hide()
        self._notice_timer = QTimer(self)
        self._notice_timer.setSingleShot(True)
        self._notice_timer.timeout.connect(self.notice.hide)
        outer.addWidget(self.notice)

        bar = QHBoxLayout()
        self.filter_text = QLineEdit()
        self.filter_text.setPlaceholderText("Filter: key, From, To, Request-URI, Call-ID  (Ctrl+F)")
        self.filter_text.setClearButtonEnabled(True)
        self.filter_text.setAccessibleName("Filter sessions by text")
        self.filter_text.textChanged.connect(self.proxy.set_text)
        self.filter_state = QComboBox()
        self.filter_state.addItems(list(STATE_FILTERS))
        self.filter_state.setAccessibleName("Filter sessions by state")
        self.filter_state.currentTextChanged.connect(
            lambda name: self.proxy.set_states(STATE_FILTERS.get(name))
        )
        self.count_label = QLabel()
        self.count_label.setAccessibleName("Sessions shown")
        bar.addWidget(self.filter_text, 3)
        bar.addWidget(self.filter_state, 1)
        bar.addWidget(self.count_label)
        outer.addLayout(bar)

        self.table = QTableView()
        self.table.setObjectName("sessions")
        self.table.setAccessibleName("Sessions")
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setAlternatingRowColors(False)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for column, width in enumerate((150, 56, 220, 220, 100, 70, 170, 50)):
            self.table.setColumnWidth(column, width)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.table.doubleClicked.connect(lambda _: self.details.show_ladder())
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.table.selectionModel().currentRowChanged.connect(self._selection_changed)

        self.details = SessionDetails(hub)
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("mainSplitter")
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(self.details)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        outer.addWidget(self.splitter, 1)
        self.setCentralWidget(central)

        # Event log dock
        self.log_dock = QDockWidget("Event log", self)
        self.log_dock.setObjectName("eventLogDock")
        self.log_tabs = QTabWidget()
        self.log_view = QTableView()
        self.log_view.setModel(self.events_model)
        self.log_view.setAccessibleName("Live events")
        self.log_view.verticalHeader().hide()
        self.log_view.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.log_view.setWordWrap(False)
        self.log_view.verticalHeader().setDefaultSectionSize(22)
        self.log_view.horizontalHeader().setStretchLastSection(True)
        self.log_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.log_view.doubleClicked.connect(self._log_double_clicked)
        for column, width in enumerate((96, 56, 160, 90, 46, 80, 52, 120)):
            self.log_view.setColumnWidth(column, width)
        self.log_tabs.addTab(self.log_view, "Live")
        self.history = self._history_widget()
        self.log_tabs.addTab(self.history, "History")
        self.log_tabs.currentChanged.connect(self._log_tab_changed)
        self.log_dock.setWidget(self.log_tabs)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.log_dock)

        # Accounts dock, a tab next to the event log
        self.act_register = self._action(
            "Re&gister account",
            self.register_selected,
            "Ctrl+Shift+G",
            tip="Register the selected account now (or refresh its registration)",
        )
        self.act_unregister = self._action(
            "U&nregister account",
            lambda: self.register_selected(unregister=True),
            "Ctrl+Shift+U",
            tip="Remove the selected account's binding at its registrar",
        )
        self.accounts_view = AccountsView(hub, self.act_register, self.act_unregister)
        self.accounts_view.editRequested.connect(lambda: self.open_settings(tab="accounts"))
        self.accounts_dock = QDockWidget("Accounts", self)
        self.accounts_dock.setObjectName("accountsDock")
        self.accounts_dock.setWidget(self.accounts_view)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.accounts_dock)
        self.tabifyDockWidget(self.log_dock, self.accounts_dock)
        self.log_dock.raise_()

        # Status bar
        self.status_listeners = QLabel()
        self.status_listeners.setAccessibleName("Listeners")
        self.status_active = QLabel()
        self.status_active.setAccessibleName("Active sessions")
        self.status_rate = QLabel()
        self.status_rate.setAccessibleName("Calls per second")
        self.status_store = QLabel()
        self.status_store.setAccessibleName("Event log")
        self.status_mi = QLabel()
        self.status_mi.setAccessibleName("Control API")
        self.status_accounts = QPushButton()
        self.status_accounts.setObjectName("statusAccounts")
        self.status_accounts.setFlat(True)
        self.status_accounts.setAccessibleName("Accounts")
        self.status_accounts.setToolTip("Show the accounts (Ctrl+2)")
        self.status_accounts.setCursor(Qt.CursorShape.PointingHandCursor)
        self.status_accounts.clicked.connect(self.show_accounts)
        self.status_accounts.hide()
        self.status_lost = QLabel()
        self.status_lost.setAccessibleName("Events lost")
        self.status_lost.setStyleSheet("color: #b3261e; font-weight: bold;")
        for label in (
            self.status_listeners,
            self.status_accounts,
            self.status_mi,
            self.status_store,
            self.status_active,
            self.status_rate,
        ):
            self.statusBar().addPermanentWidget(label)
        self.statusBar().addPermanentWidget(self.status_lost)
        self.status_lost.hide()
        hub.statsChanged.connect(self.update_status)
        hub.backendChanged.connect(self.backend_changed)
        hub.sessionsChanged.connect(self._sessions_changed)
        hub.incomingCalls.connect(self._ring)
        hub.resynced.connect(self._resynced)
        hub.registrationsFailed.connect(self._registrations_failed)

        self._build_actions()
        self.tray: QSystemTrayIcon | None = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.tray = QSystemTrayIcon(icon("app"), self)
            self.tray.setToolTip("UA Console")
            self.tray.messageClicked.connect(self._raise)
            self.tray.show()
        self.resize(1280, 860)
        self.restore_layout()
        self.update_status()
        self.update_actions()

    # -- construction ----------------------------------------------------------------------------

    def _history_widget(self) -> QWidget:
        from .history import make_history_widget

        return make_history_widget(self)

    def _action(
        self,
        text: str,
        slot: Callable[[], Any],
        shortcut: str | QKeySequence.StandardKey | None = None,
        icon_name: str | None = None,
        tip: str = "",
    ) -> QAction:
        action = QAction(text, self)
        if icon_name:
            action.setIcon(icon(icon_name))
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        plain = text.replace("&", "").rstrip("…")
        action.setToolTip(f"{plain} ({action.shortcut().toString()})" if shortcut else plain)
        if tip:
            action.setStatusTip(tip)
        action.triggered.connect(lambda _=False: slot())
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        a = self._action
        self.act_originate = a(
            "&Originate…", self.open_originate, "Ctrl+N", "originate", "Place a call"
        )
        self.act_answer = a(
            "&Answer…",
            self.open_answer,
            "Ctrl+Shift+A",
            "answer",
            "Answer the selected incoming call (200 with an SDP answer)",
        )
        self.act_reject = a(
            "Reject (&486 Busy)",
            lambda: self.reject_selected(486),
            "Ctrl+Shift+B",
            "reject",
            "Reject with 486 Busy Here",
        )
        self.act_decline = a(
            "&Decline (603)",
            lambda: self.reject_selected(603),
            "Ctrl+Shift+D",
            "reject",
            "Reject with 603 Decline",
        )
        self.act_reply = a(
            "&Reply…",
            self.open_reply,
            "Ctrl+Shift+R",
            "reply",
            "Answer a pending request with any code",
        )
        self.act_hold = a(
            "&Hold",
            self.hold_selected,
            "Ctrl+H",
            "hold",
            "Put the call on hold (re-INVITE with a=sendonly)",
        )
        self.act_resume = a(
            "Res&ume",
            self.resume_selected,
            "Ctrl+Shift+H",
            "resume",
            "Take the call off hold (re-INVITE with a=sendrecv)",
        )
        self.act_reinvite = a(
            "Re-&INVITE…",
            self.open_reinvite,
            "Ctrl+I",
            "reinvite",
            "Send a re-INVITE with a new SDP",
        )
        self.act_update = a(
            "&UPDATE…",
            lambda: self.open_reinvite("UPDATE"),
            "Ctrl+U",
            "reinvite",
            "Send an UPDATE with a new SDP",
        )
        self.act_request = a(
            "Send &request…",
            self.open_request,
            "Ctrl+M",
            "request",
            "INFO (DTMF), MESSAGE, OPTIONS, NOTIFY, REFER",
        )
        self.act_hangup = a(
            "Hang &up", self.hangup_selected, "Ctrl+E", "hangup", "End the selected sessions"
        )
        self.act_settings = a(
            "&Settings…", self.open_settings, QKeySequence.StandardKey.Preferences, "settings"
        )
        if self.act_settings.shortcut().isEmpty():
            self.act_settings.setShortcut(QKeySequence("Ctrl+,"))
        self.act_filter = a("&Filter sessions", self._focus_filter, "Ctrl+F")
        self.act_table = a("Go to the &table", self.table.setFocus, "Ctrl+1")
        self.act_ladder = a("Show the &ladder", self.details.show_ladder, "Ctrl+L")
        self.act_log = self.log_dock.toggleViewAction()
        self.act_log.setShortcut(QKeySequence("Ctrl+J"))
        self.act_accounts = a(
            "&Accounts", self.show_accounts, "Ctrl+2", tip="Show the accounts and registrations"
        )
        self.act_quit = a("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.act_about = a("&About UA Console", self._about)
        self.act_connect = a(
            "&Connect to a remote engine…",
            self.open_connect,
            "Ctrl+Shift+K",
            tip="Drive another uaconsole serve or OpenSIPS 3.4 over MI",
        )
        self.act_embedded = a("Use the &embedded engine", self._use_embedded)

        menu = self.menuBar()
        calls = menu.addMenu("&Call")
        for action in (
            self.act_originate,
            self.act_answer,
            self.act_reject,
            self.act_decline,
            self.act_reply,
            None,
            self.act_hold,
            self.act_resume,
            self.act_reinvite,
            self.act_update,
            self.act_request,
            None,
            self.act_hangup,
            None,
            self.act_quit,
        ):
            calls.addSeparator() if action is None else calls.addAction(action)
        view = menu.addMenu("&View")
        for action in (
            self.act_filter,
            self.act_table,
            self.act_ladder,
            self.act_log,
            self.act_accounts,
        ):
            view.addAction(action)
        engine = menu.addMenu("&Engine")
        for action in (
            self.act_accounts,
            self.act_register,
            self.act_unregister,
            None,
            self.act_connect,
            self.act_embedded,
        ):
            engine.addSeparator() if action is None else engine.addAction(action)
        tools = menu.addMenu("&Tools")
        tools.addAction(self.act_settings)
        menu.addMenu("&Help").addAction(self.act_about)

        toolbar = QToolBar("Actions")
        toolbar.setObjectName("actionsToolbar")
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for action in (
            self.act_originate,
            self.act_answer,
            self.act_reject,
            None,
            self.act_hold,
            self.act_resume,
            self.act_reinvite,
            self.act_request,
            None,
            self.act_hangup,
            None,
            self.act_settings,
        ):
            toolbar.addSeparator() if action is None else toolbar.addAction(action)
        self.addToolBar(toolbar)

    # -- layout persistence ----------------------------------------------------------------------

    def restore_layout(self) -> None:
        """Geometry, docks, splitter and column widths from QSettings."""
        settings = QSettings()
        for name, restore in (
            ("window/geometry", self.restoreGeometry),
            ("window/state", self.restoreState),
            ("window/splitter", self.splitter.restoreState),
            ("window/sessionsHeader", self.table.horizontalHeader().restoreState),
        ):
            value = settings.value(name)
            if isinstance(value, QByteArray | bytes):
                restore(value)

    def save_layout(self) -> None:
        """Keep the layout for the next start."""
        settings = QSettings()
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/state", self.saveState())
        settings.setValue("window/splitter", self.splitter.saveState())
        settings.setValue("window/sessionsHeader", self.table.horizontalHeader().saveState())

    def _log_tab_changed(self, index: int) -> None:
        refresh = getattr(self.history, "refresh", None)
        if self.log_tabs.widget(index) is self.history and refresh is not None:
            refresh(reset=True)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_layout()
        close_history = getattr(self.history, "close_history", None)
        if close_history is not None:
            close_history()
        for form in list(self.forms):
            form.close()
        if self.tray is not None:
            self.tray.hide()
        self._closing = True
        self.closed.emit()
        super().closeEvent(event)

    # -- selection -------------------------------------------------------------------------------

    def selected_keys(self) -> list[str]:
        """Keys of the selected rows (the current one when nothing is selected)."""
        rows = self.table.selectionModel().selectedRows()
        keys = [self.proxy.key_at(index.row()) for index in rows]
        if not keys and self.details.key:
            keys = [self.details.key]
        return [k for k in keys if k]

    def current(self) -> SessionData | None:
        """The session in the details pane."""
        return self.details.session()

    def select_key(self, key: str) -> None:
        """Select and show a session."""
        row = self.sessions_model.row_of(key)
        if row < 0:
            return
        proxy_index = self.proxy.mapFromSource(self.sessions_model.index(row, 0))
        if not proxy_index.isValid():
            self.filter_text.clear()
            self.filter_state.setCurrentIndex(0)
            proxy_index = self.proxy.mapFromSource(self.sessions_model.index(row, 0))
        self.table.selectionModel().setCurrentIndex(
            proxy_index,
            QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows,
        )
        self.table.scrollTo(proxy_index)
        self.details.show_session(key)
        self.update_actions()

    def _selection_changed(self, *_: Any) -> None:
        index = self.table.selectionModel().currentIndex()
        key = self.proxy.key_at(index.row()) if index.isValid() else None
        rows = self.table.selectionModel().selectedRows()
        if rows and (key is None or not self.table.selectionModel().isRowSelected(index.row())):
            key = self.proxy.key_at(rows[0].row())
        self.details.show_session(key)
        self.update_actions()

    def _sessions_changed(self, keys: list[str]) -> None:
        if self.details.key in keys:
            self.update_actions()

    def update_actions(self) -> None:
        """Enable what makes sense for the selected session(s)."""
        s = self.current()
        state = s.state if s else None
        incoming = state == State.INCOMING
        established = state in ESTABLISHED_STATES
        live = any(
            (x := self.hub.sessions.get(k)) is not None and not x.is_ended
            for k in self.selected_keys()
        )
        self.act_answer.setEnabled(incoming)
        self.act_reject.setEnabled(incoming)
        self.act_decline.setEnabled(incoming)
        self.act_reply.setEnabled(s is not None and not s.is_ended)
        self.act_hold.setEnabled(established and state != State.ON_HOLD)
        self.act_resume.setEnabled(established and state == State.ON_HOLD)
        self.act_reinvite.setEnabled(established)
        self.act_update.setEnabled(s is not None and not s.is_ended and state != State.INCOMING)
        self.act_request.setEnabled(established)
        self.act_hangup.setEnabled(live)

    def _context_menu(self, position: Any) -> None:
        index = self.table.indexAt(position)
        if index.isValid() and not self.table.selectionModel().isRowSelected(index.row()):
            self.table.selectRow(index.row())
        menu = QMenu(self)
        for action in (
            self.act_answer,
            self.act_reject,
            self.act_decline,
            self.act_reply,
            None,
            self.act_hold,
            self.act_resume,
            self.act_reinvite,
            self.act_update,
            self.act_request,
            None,
            self.act_hangup,
            None,
            self.act_ladder,
        ):
            menu.addSeparator() if action is None else menu.addAction(action)
        export = getattr(self.history, "export_menu", None)
        if export is not None and self.current() is not None:
            menu.addSeparator()
            export(menu, self.current().key)  # type: ignore[union-attr]
        menu.popup(self.table.viewport().mapToGlobal(position))

    def _focus_filter(self) -> None:
        self.filter_text.setFocus()
        self.filter_text.selectAll()

    # -- reporting -------------------------------------------------------------------------------

    def say(self, text: str, *, error: bool = True) -> None:
        """Show the result of an action without a form (errors stay 15 s)."""
        colour = ("#8a1c17", "#fdecea", "#f3b8b3") if error else ("#145c2c", "#e6f4ea", "#a8d5b5")
        self.notice.setStyleSheet(
            f"QLabel#notice {{ color: {colour[0]}; background: {colour[1]};"
            f" border: 1px solid {colour[2]}; border-radius: 4px; padding: 5px; }}"
        )
        self.notice.setText(text)
        self.notice.show()
        self._notice_timer.start(15000 if error else 5000)

    def update_status(self) -> None:
        """Listeners, accounts, active sessions, calls per second, events lost."""
        backend = self.hub.backend
        if backend is None:
            self.status_listeners.setText("No engine")
        elif backend.start_error:
            self.status_listeners.setText("<b style='color:#b3261e'>Not listening</b>")
        elif getattr(backend, "url", None):
            self.status_listeners.setText(f"Connected to {backend.description}")
        else:
            listeners = ", ".join(backend.listeners) or "no listeners"
            self.status_listeners.setText(f"Listening on {listeners}")
        self.status_active.setText(f"Active: {self.hub.active_count}")
        accounts = summary(self.hub)
        failed = any(a.failed for a in self.hub.accounts.values())
        if accounts != self.status_accounts.text() or failed != self.status_accounts.property(
            "failed"
        ):
            self.status_accounts.setText(accounts)
            self.status_accounts.setProperty("failed", failed)
            self.status_accounts.setStyleSheet(
                "QPushButton#statusAccounts { color: #b3261e; font-weight: bold; border: none;"
                " padding: 0 4px; }"
                if failed
                else "QPushButton#statusAccounts { border: none; padding: 0 4px; }"
            )
            self.status_accounts.setAccessibleDescription(
                "Some registrations failed; click to see why" if failed else ""
            )
        self.status_accounts.setVisible(bool(accounts))
        failures = sum(a.failed for a in self.hub.accounts.values())
        title = f"Accounts ({failures} failed)" if failures else "Accounts"
        if self.accounts_dock.windowTitle() != title:
            self.accounts_dock.setWindowTitle(title)
        self.status_rate.setText(f"{self.hub.calls_per_second():.1f} calls/s")
        lost = self.hub.events_lost + self.hub.messages_lost
        if lost:
            self.status_lost.setText(
                f"Lost: {self.hub.events_lost} events, {self.hub.messages_lost} messages"
            )
            self.status_lost.setToolTip(
                "The console fell behind the engine and skipped these; the database has them all"
            )
        self.status_lost.setVisible(bool(lost))
        shown, total = self.proxy.rowCount(), self.sessions_model.rowCount()
        self.count_label.setText(f"{shown} of {total}" if shown != total else f"{total} sessions")

    def backend_changed(self) -> None:
        """A new backend (or a restart): banners and title."""
        backend = self.hub.backend
        if backend is not None and backend.start_error and getattr(backend, "url", None):
            self.problem_bar.show_problem(
                f"<b>Not connected.</b> {_escape(backend.start_error)}<br>"
                "Check that the server runs and that its MI listener is reachable (Engine, "
                "Connect to a remote engine), or go back to the embedded engine."
            )
        elif backend is not None and backend.start_error:
            self.problem_bar.show_problem(
                f"<b>The engine is not listening.</b> {_escape(backend.start_error)}<br>"
                "Calls cannot be placed or received until a listener opens: change the "
                "address or port in Settings (for example port 0 for any free port), or "
                "close what uses it and retry."
            )
        else:
            problem = getattr(self.console, "config_problem", None)
            self.problem_bar.show_problem(
                f"<b>The configuration file has a problem</b>: {_escape(problem)}. "
                "The engine runs with the default settings; fix it in Settings."
                if problem
                else None
            )
        console = self.console
        mi_url = getattr(console, "mi_url", None)
        mi_problem = getattr(console, "mi_problem", None)
        self.status_mi.setText(f"MI {mi_url}" if mi_url else "")
        self.status_mi.setVisible(bool(mi_url))
        if mi_problem and not (backend is not None and backend.start_error):
            self.say(
                f"{mi_problem[:1].upper()}{mi_problem[1:]}. Change it in Settings, Control API."
            )
        event_log = getattr(console, "event_log", None)
        if event_log is not None and id(event_log) not in self._subscribed_logs:
            event_log.subscribe(lambda _status: self.update_store_status())
            self._subscribed_logs.add(id(event_log))
        self.update_store_status()
        title = "UA Console"
        if backend is not None and backend.listeners:
            title += f" — {backend.listeners[0]}"
        self.setWindowTitle(title)
        self.update_status()

    def update_store_status(self) -> None:
        """The event log's health in the status bar."""
        status = getattr(self.console, "store_status", None)
        event_log = getattr(self.console, "event_log", None)
        if event_log is not None:
            status = getattr(event_log, "status", status)
        if status is None:
            self.status_store.setText("No event log")
            self.status_store.setToolTip("History is off")
            return
        if not getattr(status, "ok", True):
            self.status_store.setText("<b style='color:#b3261e'>Event log off</b>")
        elif getattr(status, "rows_lost", 0):
            self.status_store.setText(
                f"<b style='color:#b3261e'>Event log: {status.rows_lost} rows lost</b>"
            )
        else:
            self.status_store.setText("Event log on")
        self.status_store.setToolTip(getattr(status, "summary", ""))

    def _on_events(self, events: list[Any]) -> None:
        view = self.log_view
        bar = view.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 2
        self.events_model.append(events)
        if at_bottom:
            view.scrollToBottom()

    def _log_double_clicked(self, index: Any) -> None:
        """A session's event shows the session; an account's, the account."""
        event = self.events_model.event_at(index.row())
        if isinstance(event, RegistrationEvent):
            self.show_accounts()
            self.accounts_view.select(event.account)
        else:
            self.select_key(str(index.data(KEY_ROLE)))

    def _ring(self, keys: list[str]) -> None:
        """An incoming call: window alert, tray message."""
        QApplication.alert(self, 0)
        if self.tray is not None and keys:
            s = self.hub.sessions.get(keys[0])
            if s is not None:
                self.tray.showMessage(
                    "Incoming call",
                    f"From {s.from_ or 'unknown'}",
                    QSystemTrayIcon.MessageIcon.Information,
                    8000,
                )
        if self.details.key is None and keys:
            self.select_key(keys[0])

    def _raise(self) -> None:
        self.showNormal()
        self.raise_()
        self.activateWindow()

    # -- actions ---------------------------------------------------------------------------------

    def _open(self, form: QWidget) -> QWidget:
        self.forms.append(form)
        form.finished.connect(lambda _=0, f=form: self._forget(f))  # type: ignore[attr-defined]
        form.show()
        form.raise_()
        form.activateWindow()
        return form

    def _forget(self, form: QWidget) -> None:
        if form in self.forms:
            self.forms.remove(form)
        form.deleteLater()

    def open_originate(self) -> OriginateForm:
        """The Originate form."""
        identity = self.console.gui if self.console is not None else {}
        accounts = [(a.name, a.aor) for a in self.hub.accounts.values()]
        backend = self.hub.backend
        form = OriginateForm(
            self.hub,
            self,
            identity={k: str(v) for k, v in identity.items()},
            accounts=accounts,
            listeners=backend.listeners if backend else [],
        )
        form.done.connect(self.select_key)
        self._open(form)
        return form

    def _key_for(self, key: str | None) -> str | None:
        if key:
            return key
        keys = self.selected_keys()
        if not keys:
            self.say("Select a session in the table first.")
            return None
        return keys[0]

    def open_answer(self, key: str | None = None) -> AnswerForm | None:
        """The Answer form (SDP answer generated from the offer, editable)."""
        key = self._key_for(key)
        if key is None:
            return None
        form = AnswerForm(self.hub, key, self)
        form.done.connect(lambda _k: self.update_actions())
        self._open(form)
        return form  # type: ignore[return-value]

    def open_reply(self, key: str | None = None, code: int = 180) -> ReplyForm | None:
        """The Reply form (any code)."""
        key = self._key_for(key)
        if key is None:
            return None
        form = ReplyForm(self.hub, key, self, code=code)
        self._open(form)
        return form

    def open_reinvite(self, method: str = "INVITE", key: str | None = None) -> ReinviteForm | None:
        """The re-INVITE / UPDATE form with Hold and Resume."""
        key = self._key_for(key)
        if key is None:
            return None
        form = ReinviteForm(self.hub, key, self, method=method)
        self._open(form)
        return form

    def open_request(self, key: str | None = None, method: str = "INFO") -> RequestForm | None:
        """The form for INFO, MESSAGE, OPTIONS, NOTIFY, REFER."""
        key = self._key_for(key)
        if key is None:
            return None
        form = RequestForm(self.hub, key, self, method=method)
        self._open(form)
        return form

    def quick_answer(self, key: str) -> asyncio.Task[Any]:
        """Answer at once: 200 with the generated SDP answer."""
        return self.hub.spawn(self._quick_answer(key))

    async def _quick_answer(self, key: str) -> None:
        backend = self.hub.backend
        if backend is None:
            return
        sdp, _ = answer_for(self.hub, self.hub.sessions.get(key))
        try:
            await backend.reply(key, "INVITE", 200, "OK", body=sdp)
        except Exception as error:
            self.say(explain(error))
            return
        self.select_key(key)

    def reject_selected(self, code: int) -> None:
        """Reject the selected incoming calls."""
        keys = [
            k
            for k in self.selected_keys()
            if (s := self.hub.sessions.get(k)) is not None and s.state == State.INCOMING
        ]
        if not keys:
            self.say("Select an incoming call that has not been answered.")
            return
        self.reject_keys(keys, code)

    def reject_keys(self, keys: list[str], code: int) -> asyncio.Task[Any]:
        """Reply ``code`` to the INVITE of each session."""

        async def run() -> None:
            backend = self.hub.backend
            if backend is None:
                return
            for key in keys:
                try:
                    await backend.reply(key, "INVITE", code, REASONS.get(code, ""))
                except Exception as error:
                    self.say(explain(error))

        return self.hub.spawn(run())

    def hold_selected(self) -> asyncio.Task[Any] | None:
        """Re-INVITE with the last local SDP set to sendonly."""
        return self._redirect("sendonly")

    def resume_selected(self) -> asyncio.Task[Any] | None:
        """Re-INVITE with the last local SDP set to sendrecv."""
        return self._redirect("sendrecv")

    def _redirect(self, direction: str) -> asyncio.Task[Any] | None:
        s = self.current()
        if s is None or s.state not in ESTABLISHED_STATES:
            self.say("Select an established call first.")
            return None
        sdp = s.last_local_sdp
        if not sdp:
            self.say("This call has no SDP of ours to change; use Re-INVITE… to write one.")
            return None

        async def run() -> None:
            backend = self.hub.backend
            if backend is None:
                return
            try:
                body = set_direction(sdp.replace("\r\n", "\n").replace("\n", "\r\n"), direction)
                await backend.update(s.key, "INVITE", body=body)
            except (OfferError, ValueError) as error:
                self.say(f"Cannot change the SDP: {error}")
            except Exception as error:
                self.say(explain(error))

        return self.hub.spawn(run())

    def hangup_selected(self) -> asyncio.Task[Any] | None:
        """Terminate every selected live session."""
        keys = [
            k
            for k in self.selected_keys()
            if (s := self.hub.sessions.get(k)) is not None and not s.is_ended
        ]
        if not keys:
            self.say("Select a live session first.")
            return None

        async def run() -> None:
            backend = self.hub.backend
            if backend is None:
                return
            failed = 0
            for key in keys:
                try:
                    await backend.terminate(key)
                except Exception as error:
                    failed += 1
                    self.say(explain(error))
            if len(keys) > 1 and not failed:
                self.say(f"Ended {len(keys)} sessions.", error=False)

        return self.hub.spawn(run())

    def open_settings(self, tab: int | str = 0) -> QWidget | None:
        """The settings dialog (writes the TOML file; the engine restarts when needed), at a
        page given by its index or name ("accounts")."""
        if self.console is None:
            return None
        from .settings import SettingsDialog

        dialog = SettingsDialog(self.console.config_path, self.console.document, self)
        if isinstance(tab, str):
            dialog.show_page(tab)
        else:
            dialog.tabs.setCurrentIndex(tab)
        dialog.saved.connect(self._settings_saved)
        self._open(dialog)
        return dialog

    def _settings_saved(self, document: dict[str, Any]) -> None:
        if self.console is None:
            return
        if self.console.needs_restart(document):
            live = self.hub.active_count
            if live and not self._confirm_restart(live):
                self.console.document = document
                self.say(
                    "Saved. The engine keeps its old settings until the next start.", error=False
                )
                return
            self.hub.spawn(self.console.restart(document))
        else:
            self.console.apply_document(document)
        self.say("Settings saved.", error=False)

    def _confirm_restart(self, live: int) -> bool:
        answer = QMessageBox.question(
            self,
            "Restart the engine?",
            f"The new settings need an engine restart, which ends {live} live session(s). "
            "Restart now?",
        )
        return answer == QMessageBox.StandardButton.Yes

    def _retry(self) -> None:
        if self.console is not None:
            self.hub.spawn(self.console.restart(self.console.document))

    # -- accounts --------------------------------------------------------------------------------

    def show_accounts(self) -> None:
        """Bring the Accounts view to the front and focus its table."""
        self.accounts_dock.show()
        self.accounts_dock.raise_()
        target = self.accounts_view.table if self.hub.accounts else self.accounts_view.edit_button
        target.setFocus()

    def register_selected(self, unregister: bool = False) -> asyncio.Task[Any] | None:
        """Register (or unregister) the account selected in the Accounts view."""
        name = self.accounts_view.current_name()
        if name is None:
            self.show_accounts()
            self.say(
                "Select an account in the Accounts view first."
                if self.hub.accounts
                else "There are no accounts: add one in Settings, Accounts."
            )
            return None

        async def run() -> None:
            backend = self.hub.backend
            if backend is None:
                return
            try:
                if unregister:
                    await backend.unregister(name)
                else:
                    await backend.register(name)
            except Exception as error:
                self.say(explain(error))
                return
            self.hub.refresh_registrations()

        return self.hub.spawn(run())

    def _registrations_failed(self, names: list[str]) -> None:
        """A registration failed: say so once (the row stays red until it recovers)."""
        parts = []
        for name in names:
            account = self.hub.accounts.get(name)
            if account is not None:
                parts.append(f"{name} ({account.last_reply or 'no answer'})")
        if parts:
            self.say(
                f"Registration failed: {', '.join(parts)}. The engine retries; the Accounts "
                "view (Ctrl+2) says why."
            )

    def _resynced(self, missed: int) -> None:
        if missed:
            self.say(
                f"The event stream lost {missed} event(s) (a reconnect or a slow console); the "
                "table was brought up to date from the engine's session list."
            )

    def open_connect(self) -> QWidget | None:
        """Ask for a remote engine's MI URL (and token), then connect."""
        if self.console is None:
            return None
        dialog = ConnectDialog(self)
        dialog.chosen.connect(
            lambda url, token: self.hub.spawn(self.console.connect_remote(url, token or None))  # type: ignore[union-attr]
        )
        self._open(dialog)
        return dialog

    def _use_embedded(self) -> None:
        if self.console is not None and self.console.remote is not None:
            self.hub.spawn(self.console.use_embedded())

    def _about(self) -> None:
        QMessageBox.about(
            self,
            "About UA Console",
            "UA Console — a SIP user agent driven by an OpenSIPS-compatible API, "
            "with this operator console.",
        )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class ConnectDialog(QDialog):
    """The MI URL and token of a remote engine."""

    chosen = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Connect to a remote engine")
        self.setAccessibleName("Connect to a remote engine")
        form = QFormLayout(self)
        note = QLabel(
            "A running <code>uaconsole serve</code> or an OpenSIPS 3.4 server with "
            "b2b_entities and mi_http. Events come over its WebSocket (UA Console) or an "
            "event_subscribe to this machine (OpenSIPS)."
        )
        note.setWordWrap(True)
        form.addRow(note)
        self.url = QLineEdit(str(QSettings().value("remote/url", "http://127.0.0.1:8888/mi")))
        self.url.setAccessibleName("MI URL")
        form.addRow("MI &URL:", self.url)
        self.token = QLineEdit()
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setAccessibleName("Bearer token")
        self.token.setPlaceholderText("optional bearer token")
        form.addRow("&Token:", self.token)
        self.problem = QLabel()
        self.problem.setStyleSheet("color: #b3261e")
        form.addRow(self.problem)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("&Connect")
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.url.textChanged.connect(self._check)
        self._ok = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self._check()

    def _check(self) -> None:
        url = self.url.text().strip()
        bad = not url.startswith(("http://", "https://")) or len(url) < 10
        self.problem.setText("The URL begins with http:// or https://" if bad else "")
        self._ok.setEnabled(not bad)

    def _accept(self) -> None:
        QSettings().setValue("remote/url", self.url.text().strip())
        self.chosen.emit(self.url.text().strip(), self.token.text().strip())
        self.accept()
