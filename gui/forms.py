"""The action forms: each turns into one engine.api call; errors come back next to the form.

Every form checks its fields as the user types (a bad URI or header line is outlined in red and
explained under the form, and Send stays disabled), sends on Enter or Ctrl+Return, keeps the
dialog open with the engine's answer in words when a command is refused, and closes when the
command was carried out.
"""

from collections.abc import Callable

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from engine.api import CommandError
from engine.api.sdp import OfferError, answer_sdp, offer_sdp, set_direction

from . import validate
from .assets import fill_template, sdp_templates
from .details import mono_font
from .hub import SessionData, SessionHub, media_direction
from .sipmsg import header_block, parse_header_lines

#: Reason phrases of RFC 3261 (and a few later RFCs) for the reply forms.
REASONS = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    199: "Early Dialog Terminated",
    200: "OK",
    202: "Accepted",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    493: "Undecipherable",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}

INVALID_STYLE = """
QLineEdit[invalid="true"], QPlainTextEdit[invalid="true"], QComboBox[invalid="true"] {
    border: 2px solid #b3261e; background: #fff6f5;
}
QLabel#problem { color: #8a5a00; }
QLabel#error { color: #b3261e; background: #fdecea; border: 1px solid #f3b8b3;
               border-radius: 4px; padding: 6px; }
"""

#: What a person can do about each engine refusal (by message).
_ADVICE = {
    "Failed to send reply": "Nothing is waiting for that reply: the call may have been answered, "
    "cancelled or ended already.",
    "Failed to send sequential request": "The session cannot send that request now: it may not "
    "be answered yet, have a request of its own pending, or have ended.",
    "Failed to terminate session": "The session has ended already.",
    "Failed to initialize session": "Check the Request-URI, From, To and proxy.",
    "Non-local socket specified": "Pick one of the listeners shown in the status bar.",
    "Bad extra_headers": "Write one 'Name: value' per line.",
}


def explain(error: BaseException) -> str:
    """An engine error in words a person can act on."""
    if isinstance(error, CommandError):
        text = f"The engine refused: {error.message} ({error.code})"
        if error.detail:
            text += f" — {error.detail}"
        advice = _ADVICE.get(error.message)
        return f"{text}.\n{advice}" if advice else text + "."
    if isinstance(error, OfferError):
        return f"The SDP cannot be used: {error}"
    return f"Could not send: {error or type(error).__name__}"


class RecentCombo(QComboBox):
    """An editable combo box that remembers the last values sent (in QSettings)."""

    LIMIT = 12

    def __init__(self, field: str, placeholder: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.field = field
        self.setEditable(True)
        self.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.setMinimumContentsLength(32)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.lineEdit().setPlaceholderText(placeholder)
        self.lineEdit().setClearButtonEnabled(True)
        for value in self.recent():
            self.addItem(value)
        self.setCurrentIndex(-1)
        self.setEditText("")

    def recent(self) -> list[str]:
        """The remembered values, newest first."""
        value = QSettings().value(f"recent/{self.field}", [])
        if isinstance(value, str):
            return [value]
        return [str(v) for v in value or []]

    def remember(self) -> None:
        """Put the current text first in the remembered values."""
        text = self.text()
        if not text:
            return
        values = [text] + [v for v in self.recent() if v != text]
        QSettings().setValue(f"recent/{self.field}", values[: self.LIMIT])

    def text(self) -> str:
        """The text typed or picked."""
        return self.currentText().strip()

    def setText(self, text: str) -> None:
        """Put ``text`` in the edit field."""
        self.setEditText(text)


class BodyEdit(QPlainTextEdit):
    """A plain-text editor for bodies and header lines, in a fixed-width font."""

    def __init__(self, name: str, placeholder: str = "", rows: int = 8) -> None:
        super().__init__()
        self.setFont(mono_font())
        self.setAccessibleName(name)
        self.setPlaceholderText(placeholder)
        self.setTabChangesFocus(True)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.setMinimumHeight(self.fontMetrics().lineSpacing() * rows + 12)

    def text(self) -> str:
        """The text."""
        return self.toPlainText()


def _text_of(widget: QWidget) -> str:
    if isinstance(widget, QComboBox):
        return widget.currentText().strip()
    if isinstance(widget, QLineEdit):
        return widget.text().strip()
    if isinstance(widget, QPlainTextEdit):
        return widget.toPlainText().strip()
    return ""


def crlf(text: str) -> str:
    """Text with CRLF line ends and a final CRLF (bodies as SIP sends them)."""
    lines = text.strip("\r\n").splitlines()
    return "".join(line + "\r\n" for line in lines)


class ActionForm(QDialog):
    """A dialog that performs one command; subclasses build fields and ``perform`` it."""

    #: Emitted once the command was carried out (with a session key when there is one).
    done = Signal(str)

    send_text = "&Send"

    def __init__(self, hub: SessionHub, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.hub = hub
        self.setWindowTitle(title)
        self.setAccessibleName(title)
        self.setStyleSheet(INVALID_STYLE)
        self.setModal(False)
        self._checks: list[tuple[QWidget, Callable[[], str | None]]] = []
        self._busy = False
        outer = QVBoxLayout(self)
        self.intro = QLabel()
        self.intro.setWordWrap(True)
        self.intro.hide()
        outer.addWidget(self.intro)
        self.form = QFormLayout()
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        outer.addLayout(self.form)
        self.problem = QLabel()
        self.problem.setObjectName("problem")
        self.problem.setWordWrap(True)
        self.problem.setAccessibleName("Form problems")
        outer.addWidget(self.problem)
        self.error = QLabel()
        self.error.setObjectName("error")
        self.error.setWordWrap(True)
        self.error.setAccessibleName("Error from the engine")
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error.hide()
        outer.addWidget(self.error)
        self.buttons = QDialogButtonBox()
        self.send_button = self.buttons.addButton(
            self.send_text, QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.send_button.setDefault(True)
        self.send_button.setAccessibleName("Send")
        self.send_button.setToolTip("Send (Ctrl+Return)")
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)
        outer.addWidget(self.buttons)
        QShortcut(QKeySequence("Ctrl+Return"), self, activated=self.submit)

    # -- fields and checks -----------------------------------------------------------------------

    def add_row(self, label: str, widget: QWidget, tip: str = "") -> QWidget:
        """Add a labelled field (the label's mnemonic focuses it)."""
        caption = QLabel(label)
        target = widget
        if isinstance(widget, QWidget) and widget.layout() is not None:
            target = widget.findChild(QLineEdit) or widget.findChild(QComboBox) or widget
        caption.setBuddy(target)
        name = label.replace("&", "").rstrip(":")
        if not widget.accessibleName():
            widget.setAccessibleName(name)
        if tip:
            widget.setToolTip(tip)
        self.form.addRow(caption, widget)
        return widget

    def check(self, widget: QWidget, fn: Callable[[], str | None]) -> None:
        """Run ``fn`` whenever a field changes; a text marks ``widget`` as invalid."""
        self._checks.append((widget, fn))
        self._watch(widget)

    def _watch(self, widget: QWidget) -> None:
        def touched(*_: object) -> None:
            widget.setProperty("touched", True)

        if isinstance(widget, QComboBox):
            widget.currentTextChanged.connect(touched)
        elif isinstance(widget, QLineEdit | QPlainTextEdit):
            widget.textChanged.connect(touched)
        if isinstance(widget, QComboBox):
            widget.currentTextChanged.connect(self.revalidate)
        elif isinstance(widget, QLineEdit | QPlainTextEdit):
            widget.textChanged.connect(self.revalidate)
        elif isinstance(widget, QSpinBox):
            widget.valueChanged.connect(self.revalidate)

    def revalidate(self) -> list[str]:
        """Check every field; mark the bad ones; enable Send when all are good."""
        problems: list[str] = []
        for widget, fn in self._checks:
            problem = fn()
            # An empty field the user has not touched yet is explained, not outlined in red.
            bad = problem is not None and (
                bool(_text_of(widget)) or bool(widget.property("touched"))
            )
            if widget.property("invalid") != bad:
                widget.setProperty("invalid", bad)
                widget.style().unpolish(widget)
                widget.style().polish(widget)
            widget.setToolTip(problem or widget.whatsThis())
            if problem:
                problems.append(problem)
        self.problem.setText("\n".join(f"• {p[:1].upper()}{p[1:]}" for p in problems))
        self.problem.setVisible(bool(problems))
        self.send_button.setEnabled(not problems and not self._busy)
        return problems

    # -- sending ---------------------------------------------------------------------------------

    def submit(self) -> None:
        """Send, unless a field is bad or a command is on its way."""
        if self._busy or self.revalidate():
            return
        self.hub.spawn(self._run())

    async def _run(self) -> None:
        self._busy = True
        self.send_button.setEnabled(False)
        self.error.hide()
        try:
            result = await self.perform()
        except Exception as error:  # every refusal is shown next to the form
            self.show_error(explain(error))
            return
        finally:
            self._busy = False
            self.revalidate()
        self.remember()
        self.done.emit(result or "")
        self.accept()

    def show_error(self, text: str) -> None:
        """Show the engine's answer under the form."""
        self.error.setText(text)
        self.error.show()

    async def perform(self) -> str | None:
        """Carry out the command; raise to report a problem."""
        raise NotImplementedError

    def remember(self) -> None:
        """Keep the values sent (RecentCombo fields)."""
        for combo in self.findChildren(RecentCombo):
            combo.remember()


class PartyFields(QWidget):
    """A display name and a URI side by side (the API's ``display name,URI``)."""

    def __init__(self, field: str, what: str, placeholder: str) -> None:
        super().__init__()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.name = QLineEdit()
        self.name.setPlaceholderText("Display name (optional)")
        self.name.setAccessibleName(f"{what} display name")
        self.name.setMaximumWidth(200)
        self.uri = RecentCombo(field, placeholder)
        self.uri.setAccessibleName(f"{what} URI")
        layout.addWidget(self.uri, 3)
        layout.addWidget(self.name, 1)

    def value(self, fallback_uri: str = "") -> str:
        """``display name,URI`` or ``URI``."""
        uri = self.uri.text() or fallback_uri
        name = self.name.text().strip()
        return f"{name},{uri}" if name else uri


class SdpEditor(QWidget):
    """A template picker and an editable SDP body."""

    NONE = "No SDP (the peer offers in its answer)"
    GENERATED = "Generated offer (PCMU, PCMA, telephone-event)"

    def __init__(self, hub: SessionHub, *, with_templates: bool = True) -> None:
        super().__init__()
        self.hub = hub
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.template = QComboBox()
        self.template.setAccessibleName("SDP template")
        self._templates = sdp_templates()
        self.template.addItem(self.GENERATED)
        for name in self._templates:
            self.template.addItem(name)
        self.template.addItem(self.NONE)
        self.template.currentTextChanged.connect(self.apply_template)
        if with_templates:
            layout.addWidget(self.template)
        else:
            self.template.hide()
        self.edit = BodyEdit("SDP body", "v=0\no=- ...", rows=9)
        layout.addWidget(self.edit)

    def apply_template(self, name: str | None = None) -> None:
        """Fill the editor from the chosen template."""
        name = name or self.template.currentText()
        backend = self.hub.backend
        address = backend.media_address() if backend else "127.0.0.1"
        port = backend.rtp_port() if backend else 20000
        if name == self.NONE:
            self.edit.setPlainText("")
        elif name == self.GENERATED:
            self.edit.setPlainText(
                offer_sdp(address=address, rtp_port=port, session_id=_session_id()).replace(
                    "\r\n", "\n"
                )
            )
        elif name in self._templates:
            filled = fill_template(self._templates[name], local_ip=address, rtp_port=port)
            self.edit.setPlainText(filled.replace("\r\n", "\n"))

    def body(self) -> str | None:
        """The SDP with CRLF line ends, None when empty."""
        text = self.edit.text().strip()
        return crlf(text) if text else None


def _session_id() -> int:
    import time

    return int(time.time())


def headers_check(edit: BodyEdit, required: tuple[str, ...] = ()) -> Callable[[], str | None]:
    """A check for an extra-headers editor."""

    def fn() -> str | None:
        pairs, problem = parse_header_lines(edit.text())
        if problem:
            return f"extra headers, {problem}"
        names = {n.lower() for n, _ in pairs}
        for name in required:
            if name.lower() not in names:
                return f"a {name} header is needed (add it under Extra headers)"
        return None

    return fn


# -- Originate -------------------------------------------------------------------------------------


class OriginateForm(ActionForm):
    """Place a call: ``client_start``, from an account (``account=NAME``) or from no account.

    From an account, an empty From is the account's identity, an empty proxy its outbound
    proxy, and its credentials answer the challenges. With no account, the From typed is sent
    and the credentials of Settings answer challenges by realm.
    """

    send_text = "&Call"
    NO_ACCOUNT = "No account"

    def __init__(
        self,
        hub: SessionHub,
        parent: QWidget | None = None,
        *,
        identity: dict[str, str] | None = None,
        accounts: list[tuple[str, str]] | None = None,
        listeners: list[str] | None = None,
    ) -> None:
        super().__init__(hub, "Originate a call", parent)
        identity = identity or {}
        self._identity = identity
        self.ruri = RecentCombo("ruri", "sip:bob@127.0.0.1:5070")
        self.add_row("&Request-URI:", self.ruri, "Where the INVITE goes")
        self.to = PartyFields("to", "To", "same as the Request-URI")
        self.add_row("&To:", self.to)
        self.from_ = PartyFields("from", "From", "sip:operator@127.0.0.1")
        self.from_.uri.setText(identity.get("default_from", ""))
        self.from_.name.setText(identity.get("display_name", ""))
        self.add_row("&From:", self.from_)
        self.proxy = RecentCombo("proxy", "optional: sip:proxy.example.com;lr")
        self.add_row("Outbound &proxy:", self.proxy, "Every request of the call goes there")
        self.account = QComboBox()
        self.account.addItem(self.NO_ACCOUNT, None)
        self.account.setItemData(
            0,
            "The From as typed; the credentials of Settings answer challenges by realm",
            Qt.ItemDataRole.ToolTipRole,
        )
        for name, aor in accounts or []:
            self.account.addItem(f"{name} ({aor})", name)
        self._aors = dict(accounts or [])
        self.account.currentIndexChanged.connect(self._account_picked)
        last = QSettings().value("recent/account", "")
        if isinstance(last, str) and last in self._aors:
            self.select_account(last)
        self.add_row(
            "&Account:",
            self.account,
            "Call from an account: its identity, outbound proxy and credentials",
        )
        self.socket = QComboBox()
        self.socket.addItem("Automatic")
        for listener in listeners or []:
            self.socket.addItem(listener)
        self.add_row("Send f&rom:", self.socket, "The local listener to send from")
        self.flags = QLineEdit()
        self.flags.setPlaceholderText("e.g. t3600 bh  (t<N> limit, b body, h headers in events)")
        self.add_row("F&lags:", self.flags)
        self.sdp = SdpEditor(hub)
        self.add_row("&SDP:", self.sdp)
        self.headers = BodyEdit("Extra headers", "X-Case: 1234\nSubject: test call", rows=3)
        self.headers.setMaximumHeight(self.headers.minimumHeight() + 20)
        self.add_row("E&xtra headers:", self.headers)
        self.check(self.ruri, lambda: validate.uri_problem(self.ruri.text(), what="Request-URI"))
        self.check(
            self.to.uri,
            lambda: validate.uri_problem(self.to.uri.text(), required=False, what="To URI"),
        )
        self.check(self.to.name, lambda: validate.display_name_problem(self.to.name.text()))
        self.check(
            self.from_.uri,
            lambda: validate.uri_problem(
                self.from_.uri.text(), required=self.account_name() is None, what="From URI"
            ),
        )
        self.check(self.from_.name, lambda: validate.display_name_problem(self.from_.name.text()))
        self.check(
            self.proxy,
            lambda: validate.sip_uri_problem(self.proxy.text(), required=False, what="proxy"),
        )
        self.check(self.flags, lambda: validate.flags_problem(self.flags.text()))
        self.check(self.sdp.edit, lambda: validate.sdp_problem(self.sdp.edit.text()))
        self.check(self.headers, headers_check(self.headers))
        self.sdp.apply_template()
        self.ruri.setFocus()
        self.revalidate()
        self.resize(680, 640)

    def account_name(self) -> str | None:
        """The account chosen, None for no account."""
        name = self.account.currentData()
        return name if isinstance(name, str) else None

    def select_account(self, name: str | None) -> None:
        """Choose an account by name (None: no account)."""
        index = self.account.findData(name) if name is not None else 0
        self.account.setCurrentIndex(max(index, 0))

    def _account_picked(self, _index: int) -> None:
        """From an account, the From and proxy left empty are the account's; the console's
        default identity, filled in for calls from no account, would hide it."""
        name = self.account_name()
        defaults = {self._identity.get("default_from", ""), *self._aors.values()}
        if name is not None:
            if self.from_.uri.text() in defaults:
                self.from_.uri.setText("")
            if self.from_.name.text().strip() == self._identity.get("display_name", ""):
                self.from_.name.setText("")
            self.from_.uri.lineEdit().setPlaceholderText(
                f"the account's identity, {self._aors.get(name, '')}"
            )
            self.proxy.lineEdit().setPlaceholderText("the account's outbound proxy, if it has one")
        else:
            if not self.from_.uri.text():
                self.from_.uri.setText(self._identity.get("default_from", ""))
            if not self.from_.name.text():
                self.from_.name.setText(self._identity.get("display_name", ""))
            self.from_.uri.lineEdit().setPlaceholderText("sip:operator@127.0.0.1")
            self.proxy.lineEdit().setPlaceholderText("optional: sip:proxy.example.com;lr")
        self.revalidate()

    async def perform(self) -> str | None:
        backend = self.hub.backend
        if backend is None:
            raise RuntimeError("no engine is attached")
        ruri = self.ruri.text()
        to = self.to.value(fallback_uri=ruri)
        account = self.account_name()
        aor = self._aors.get(account, "") if account is not None else ""
        if account is not None and not self.from_.uri.text():
            # The engine uses the account's identity for an empty From; a display name typed
            # goes with the account's address of record. A remote engine's MI needs a From.
            from_ = self.from_.value(fallback_uri=aor) if self.from_.name.text().strip() else ""
            if not from_ and getattr(backend, "url", None):
                from_ = aor
        else:
            from_ = self.from_.value()
        body = self.sdp.body()
        pairs, _ = parse_header_lines(self.headers.text())
        socket = self.socket.currentText() if self.socket.currentIndex() > 0 else None
        options: dict[str, object] = {"account": account} if account is not None else {}
        key = await backend.client_start(
            ruri,
            to,
            from_,
            proxy=self.proxy.text() or None,
            body=body,
            extra_headers=header_block(pairs),
            flags=self.flags.text().replace(" ", ""),
            socket=socket,
            **options,
        )
        self.hub.note_outgoing(key, ruri, from_ or aor, to)
        QSettings().setValue("recent/account", account or "")
        return key


# -- Answer, Reply, Reject -------------------------------------------------------------------------


class ReplyForm(ActionForm):
    """Answer a pending request with any code: ``ua_session_reply``."""

    def __init__(
        self,
        hub: SessionHub,
        key: str,
        parent: QWidget | None = None,
        *,
        code: int = 200,
        method: str = "INVITE",
        title: str = "Reply",
    ) -> None:
        super().__init__(hub, f"{title} — {key}", parent)
        self.key = key
        self.method = QComboBox()
        self.method.setEditable(True)
        self.method.addItems(
            ["INVITE", "UPDATE", "PRACK", "INFO", "MESSAGE", "OPTIONS", "NOTIFY", "REFER"]
        )
        self.method.setCurrentText(method)
        self.add_row("&Method:", self.method, "The method of the pending request to answer")
        codes = QWidget()
        row = QHBoxLayout(codes)
        row.setContentsMargins(0, 0, 0, 0)
        self.code = QLineEdit(str(code))
        self.code.setMaximumWidth(70)
        self.code.setAccessibleName("Status code")
        self.code.textChanged.connect(self._code_changed)
        row.addWidget(self.code)
        for preset in (180, 183, 200, 486, 603, 480, 404):
            button = QPushButton(str(preset))
            button.setToolTip(f"{preset} {REASONS[preset]}")
            button.setAccessibleName(f"Code {preset} {REASONS[preset]}")
            button.setAutoDefault(False)
            button.clicked.connect(lambda _=False, c=preset: self.code.setText(str(c)))
            row.addWidget(button)
        row.addStretch()
        self.add_row("&Code:", codes)
        self.reason = QLineEdit(REASONS.get(code, ""))
        self.add_row("R&eason:", self.reason)
        self.content_type = QLineEdit()
        self.content_type.setPlaceholderText("application/sdp when a body is given")
        self.add_row("Content &type:", self.content_type)
        self.body = BodyEdit("Body", "optional", rows=8)
        self.add_row("&Body:", self.body)
        self.headers = BodyEdit("Extra headers", "Retry-After: 30", rows=2)
        self.add_row("E&xtra headers:", self.headers)
        self.check(self.code, lambda: validate.code_problem(self.code.text()))
        self.check(self.reason, lambda: validate.reason_problem(self.reason.text()))
        self.check(
            self.content_type,
            lambda: validate.media_type_problem(self.content_type.text()),
        )
        self.check(self.headers, headers_check(self.headers))
        self.check(
            self.method,
            lambda: (
                None
                if self.method.currentText().strip().isalpha()
                else "the method is a word such as INVITE"
            ),
        )
        self.revalidate()
        self.resize(620, 520)

    def _code_changed(self, text: str) -> None:
        if text.isdigit() and int(text) in REASONS:
            known = set(REASONS.values())
            if not self.reason.text() or self.reason.text() in known:
                self.reason.setText(REASONS[int(text)])

    async def perform(self) -> str | None:
        backend = self.hub.backend
        if backend is None:
            raise RuntimeError("no engine is attached")
        body_text = self.body.text().strip()
        body = crlf(body_text) if body_text else None
        content_type = self.content_type.text().strip() or None
        pairs, _ = parse_header_lines(self.headers.text())
        await backend.reply(
            self.key,
            self.method.currentText().strip().upper(),
            int(self.code.text()),
            self.reason.text().strip() or REASONS.get(int(self.code.text()), ""),
            body=body,
            content_type=content_type if body else None,
            extra_headers=header_block(pairs),
        )
        return self.key


class AnswerForm(ReplyForm):
    """Answer an incoming call: 200 with an SDP answer made from the offer (editable)."""

    send_text = "&Answer"

    def __init__(self, hub: SessionHub, key: str, parent: QWidget | None = None) -> None:
        super().__init__(hub, key, parent, code=200, title="Answer")
        self.method.setEnabled(False)
        self.content_type.setText("application/sdp")
        s = hub.sessions.get(key)
        text, note = answer_for(hub, s)
        self.body.setPlainText(text.replace("\r\n", "\n"))
        self.intro.setText(note)
        self.intro.show()
        self.check(self.body, lambda: validate.sdp_problem(self.body.text()))
        self.revalidate()


def answer_for(hub: SessionHub, s: SessionData | None) -> tuple[str, str]:
    """An SDP answer to the session's offer (or an offer when there is none), and a note."""
    backend = hub.backend
    address = backend.media_address() if backend else "127.0.0.1"
    port = backend.rtp_port() if backend else 20000
    offer = s.remote_offer if s is not None else None
    if offer is None and s is not None:
        offer = next((e.body for e in s.events if e.body and e.method == "INVITE"), None)
    if offer:
        try:
            answer = answer_sdp(offer, address=address, rtp_port=port, session_id=_session_id())
            return answer, "The SDP answer below was generated from the caller's offer."
        except OfferError as error:
            return (
                offer_sdp(address=address, rtp_port=port, session_id=_session_id()),
                f"The caller's offer cannot be answered as is ({error}); edit the SDP below, "
                "or reply 488.",
            )
    return (
        offer_sdp(address=address, rtp_port=port, session_id=_session_id()),
        "The caller sent no SDP offer: this 200 carries our offer and the ACK will answer it.",
    )


# -- Re-INVITE and UPDATE ------------------------------------------------------------------------


class ReinviteForm(ActionForm):
    """A re-INVITE or UPDATE with an SDP: hold, resume, or any new description."""

    def __init__(
        self, hub: SessionHub, key: str, parent: QWidget | None = None, method: str = "INVITE"
    ) -> None:
        super().__init__(hub, f"Re-INVITE / UPDATE — {key}", parent)
        self.key = key
        self.method = QComboBox()
        self.method.addItems(["INVITE", "UPDATE"])
        self.method.setCurrentText(method)
        self.add_row("&Method:", self.method, "re-INVITE, or UPDATE (RFC 3311)")
        tools = QWidget()
        row = QHBoxLayout(tools)
        row.setContentsMargins(0, 0, 0, 0)
        self.hold_button = QPushButton("&Hold (sendonly)")
        self.hold_button.setAccessibleName("Hold")
        self.hold_button.setToolTip("Set every live stream to sendonly (RFC 3264 section 8.4)")
        self.resume_button = QPushButton("Res&ume (sendrecv)")
        self.resume_button.setAccessibleName("Resume")
        self.inactive_button = QPushButton("&Inactive")
        self.inactive_button.setAccessibleName("Inactive")
        self.new_button = QPushButton("&New SDP")
        self.new_button.setAccessibleName("New SDP")
        self.new_button.setToolTip("A fresh offer from the SDP templates")
        for button in (self.hold_button, self.resume_button, self.inactive_button, self.new_button):
            button.setAutoDefault(False)
            row.addWidget(button)
        row.addStretch()
        self.add_row("Direction:", tools)
        self.direction = QLabel()
        self.add_row("Now:", self.direction)
        self.sdp = SdpEditor(hub, with_templates=False)
        self.add_row("&SDP:", self.sdp)
        self.headers = BodyEdit("Extra headers", "", rows=2)
        self.add_row("E&xtra headers:", self.headers)
        self.hold_button.clicked.connect(lambda: self.set_direction("sendonly"))
        self.resume_button.clicked.connect(lambda: self.set_direction("sendrecv"))
        self.inactive_button.clicked.connect(lambda: self.set_direction("inactive"))
        self.new_button.clicked.connect(self._new_sdp)
        self.sdp.edit.textChanged.connect(self._show_direction)
        self.check(self.sdp.edit, lambda: validate.sdp_problem(self.sdp.edit.text()))
        self.check(self.headers, headers_check(self.headers))
        s = hub.sessions.get(key)
        current = s.last_local_sdp if s is not None else ""
        if current:
            current = bump_version(current)
            self.sdp.edit.setPlainText(current.replace("\r\n", "\n"))
        else:
            self.sdp.apply_template(SdpEditor.GENERATED)
        self.revalidate()
        self.resize(620, 560)

    def _new_sdp(self) -> None:
        self.sdp.apply_template(SdpEditor.GENERATED)

    def set_direction(self, direction: str) -> None:
        """Rewrite the SDP's media direction (engine.api.sdp.set_direction)."""
        text = self.sdp.edit.text()
        try:
            changed = set_direction(crlf(text), direction)
        except (OfferError, ValueError) as error:
            self.show_error(f"Cannot change the direction: {error}")
            return
        self.error.hide()
        self.sdp.edit.setPlainText(changed.replace("\r\n", "\n"))

    def _show_direction(self) -> None:
        self.direction.setText(media_direction(self.sdp.edit.text()))

    async def perform(self) -> str | None:
        backend = self.hub.backend
        if backend is None:
            raise RuntimeError("no engine is attached")
        pairs, _ = parse_header_lines(self.headers.text())
        await backend.update(
            self.key,
            self.method.currentText(),
            body=self.sdp.body(),
            extra_headers=header_block(pairs),
        )
        return self.key


def bump_version(sdp: str) -> str:
    """The same SDP with the o= version raised by one (as every new offer must be)."""
    lines = sdp.replace("\r\n", "\n").split("\n")
    for i, line in enumerate(lines):
        if line.startswith("o="):
            parts = line.split(" ")
            if len(parts) >= 6 and parts[2].isdigit():
                parts[2] = str(int(parts[2]) + 1)
                lines[i] = " ".join(parts)
            break
    return "\n".join(lines)


# -- Requests in the dialog ------------------------------------------------------------------------

#: Method -> (content type, body, extra headers) filled in when the method is picked.
REQUEST_PRESETS: dict[str, tuple[str, str, str]] = {
    "INFO": ("application/dtmf-relay", "Signal=5\nDuration=160\n", ""),
    "MESSAGE": ("text/plain", "Hello from UA Console\n", ""),
    "OPTIONS": ("", "", ""),
    "NOTIFY": ("message/sipfrag", "SIP/2.0 200 OK\n", "Event: refer\nSubscription-State: active"),
    "REFER": ("", "", "Refer-To: <sip:carol@127.0.0.1>"),
    "UPDATE": ("", "", ""),
}
_REQUIRED_HEADERS = {"REFER": ("Refer-To",), "NOTIFY": ("Event", "Subscription-State")}


class RequestForm(ActionForm):
    """Send a request in the dialog: INFO, MESSAGE, OPTIONS, NOTIFY, REFER."""

    def __init__(
        self, hub: SessionHub, key: str, parent: QWidget | None = None, method: str = "INFO"
    ) -> None:
        super().__init__(hub, f"Send a request — {key}", parent)
        self.key = key
        self.method = QComboBox()
        self.method.addItems(["INFO", "MESSAGE", "OPTIONS", "NOTIFY", "REFER"])
        self.add_row("&Method:", self.method)
        self.dtmf = QLineEdit()
        self.dtmf.setPlaceholderText("a digit 0-9, *, #, A-D: fills the dtmf-relay body")
        self.dtmf.setMaxLength(1)
        self.dtmf.textChanged.connect(self._dtmf)
        self.add_row("&DTMF digit:", self.dtmf)
        self.content_type = QLineEdit()
        self.add_row("Content &type:", self.content_type)
        self.body = BodyEdit("Body", "", rows=7)
        self.add_row("&Body:", self.body)
        self.headers = BodyEdit("Extra headers", "", rows=3)
        self.add_row("E&xtra headers:", self.headers)
        self.method.currentTextChanged.connect(self._preset)
        self.check(
            self.content_type,
            lambda: validate.media_type_problem(
                self.content_type.text(), required=bool(self.body.text().strip())
            ),
        )
        self.check(self.body, lambda: None)
        self.check(
            self.headers,
            lambda: headers_check(
                self.headers, _REQUIRED_HEADERS.get(self.method.currentText(), ())
            )(),
        )
        self.check(
            self.dtmf,
            lambda: (
                None
                if not self.dtmf.text() or self.dtmf.text().upper() in "0123456789*#ABCD"
                else "a DTMF digit is 0-9, *, #, or A-D"
            ),
        )
        self.method.setCurrentText(method)
        self._preset(method)
        self.resize(600, 520)

    def _preset(self, method: str) -> None:
        content_type, body, headers = REQUEST_PRESETS.get(method, ("", "", ""))
        self.content_type.setText(content_type)
        self.body.setPlainText(body)
        self.headers.setPlainText(headers)
        self.dtmf.setEnabled(method == "INFO")
        self.revalidate()

    def _dtmf(self, digit: str) -> None:
        if digit and digit.upper() in "0123456789*#ABCD":
            self.content_type.setText("application/dtmf-relay")
            self.body.setPlainText(f"Signal={digit.upper()}\nDuration=160\n")

    async def perform(self) -> str | None:
        backend = self.hub.backend
        if backend is None:
            raise RuntimeError("no engine is attached")
        body_text = self.body.text().strip()
        pairs, _ = parse_header_lines(self.headers.text())
        await backend.update(
            self.key,
            self.method.currentText(),
            body=crlf(body_text) if body_text else None,
            content_type=(self.content_type.text().strip() or None) if body_text else None,
            extra_headers=header_block(pairs),
        )
        return self.key
