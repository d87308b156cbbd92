"""Accounts in the console.

- The accounts model under qtmodeltester; registration events reach it (and the live event
  log) and never the sessions.
- Against the real Kamailio registrar of tests/kamailio (users alice and bob, password
  "secret"): alice registers (a green row), bob with a wrong password fails (a red row with
  401, counted in the status bar, whose button opens the view); Unregister and Register from
  the view; a call placed from an account through Kamailio as outbound proxy to SIPp; the same
  view over a remote engine's MI.
- The Settings page that writes the ``[[accounts]]`` tables.
"""

import asyncio
import logging
import stat
import time
import tomllib
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMenu, QToolButton

from engine.api import EngineConfig, RegistrationEvent, RegistrationInfo, RegistrationState
from gui.accounts import AccountTableModel, summary
from gui.hub import AccountState, SessionHub, State
from gui.models import EventTableModel
from gui.settings import SettingsDialog, load_document
from tests.gui.conftest import SCENARIOS, free_udp_port, screenshot, wait_until, write_config
from tests.gui.test_models import event, feed
from tests.kamailio.conftest import DOMAIN, account

NOW = time.time()
STATE, EXPIRES, REPLY, PUBLIC = (
    AccountTableModel.STATE,
    AccountTableModel.EXPIRES,
    AccountTableModel.REPLY,
    AccountTableModel.PUBLIC,
)
WRONG_PASSWORD = "wrong-Pa55word"


def info(name: str, state: RegistrationState, **values: Any) -> RegistrationInfo:
    fields: dict[str, Any] = {
        "account": name,
        "aor": f"sip:{name}@{DOMAIN}",
        "registrar": "sip:127.0.0.1:5070",
        "state": state,
        "contact": f"<sip:{name}@127.0.0.1:5062>",
        "expires": 0,
        "expires_at": None,
        "last_status": 0,
        "last_reason": "",
        "next_attempt": None,
    }
    fields.update(values)
    return RegistrationInfo(**fields)


def registration(name: str, kind: str, seq: int, status: int, reason: str) -> RegistrationEvent:
    return RegistrationEvent(
        account=name,
        event_type=kind,
        status=status,
        reason=reason,
        expires=300 if kind in ("REGISTERED", "REFRESHED") else 0,
        aor=f"sip:{name}@{DOMAIN}",
        seq=seq,
        time=NOW + seq * 0.001,
        origin="remote",
    )


def row_colour(model: AccountTableModel, name: str) -> str:
    return model.index(model.row_of(name), 0).data(Qt.ItemDataRole.BackgroundRole).color().name()


def in_front(widget: Any) -> bool:
    """True when the widget shows (a dock behind another tab is moved off the window)."""
    return not widget.visibleRegion().isEmpty()


# -- the model, without an engine ------------------------------------------------------------------


def test_account_model_passes_qtmodeltester_and_follows_events(qtmodeltester: Any) -> None:
    now = time.time()
    hub = SessionHub()
    hub.take_registrations(
        [
            info("alice", RegistrationState.REGISTERED, expires=300, expires_at=now + 300),
            info("bob", RegistrationState.REGISTERING),
        ]
    )
    model = AccountTableModel(hub)
    qtmodeltester.check(model, force_py=True)  # stays connected: checks every change below
    sessions: list[Any] = []
    registrations: list[Any] = []
    failed: list[str] = []
    hub.eventsAppended.connect(sessions.extend)
    hub.registrationEvents.connect(registrations.extend)
    hub.registrationsFailed.connect(failed.extend)

    call = event("k1", "NEW", 1)
    refused = registration("bob", "FAILED", 2, 401, "Unauthorized")
    feed(hub, [call, refused])
    assert sessions == [call] and registrations == [refused] and failed == ["bob"]
    assert list(hub.sessions) == ["k1"]  # a registration event is never a session
    bob = model.row_of("bob")
    assert model.index(bob, STATE).data() == AccountState.FAILED
    assert model.index(bob, REPLY).data() == "401 Unauthorized"
    assert model.index(bob, STATE).data(Qt.ItemDataRole.AccessibleTextRole) == (
        "Failed: 401 Unauthorized"
    )
    assert row_colour(model, "bob") == "#fde2e1" and row_colour(model, "alice") == "#dcf5e3"
    assert model.index(model.row_of("alice"), EXPIRES).data() in ("5:00", "4:59")
    assert summary(hub) == "Accounts: 1 registered, 1 failed"

    # the retry: REGISTERING after a failure shows as Retrying, still red, still counted failed
    hub.take_registrations(
        [
            info("alice", RegistrationState.REGISTERED, expires=300, expires_at=now + 300),
            info("bob", RegistrationState.REGISTERING, failures=1, last_status=408),
        ]
    )
    assert model.index(bob, STATE).data() == AccountState.RETRYING
    assert row_colour(model, "bob") == "#fde2e1"
    assert summary(hub) == "Accounts: 1 registered, 1 failed"
    feed(hub, [registration("bob", "FAILED", 3, 408, "Request Timeout")])
    assert failed == ["bob"]  # said once, not at every retry
    feed(hub, [registration("bob", "REGISTERED", 4, 200, "OK")])
    assert model.index(bob, STATE).data() == AccountState.REGISTERED
    assert summary(hub) == "Accounts: 2 registered"
    feed(hub, [registration("bob", "FAILED", 5, 503, "Service Unavailable")])
    assert failed == ["bob", "bob"]  # a new failure after a recovery is said again

    # a snapshot without bob and with carol: rows removed and added
    hub.take_registrations(
        [
            info("alice", RegistrationState.REGISTERED, expires=300, expires_at=now + 300),
            info("carol", RegistrationState.UNREGISTERED),
        ]
    )
    assert [model.index(r, 0).data() for r in range(model.rowCount())] == ["alice", "carol"]
    assert summary(hub) == "Accounts: 1 registered, 1 not registered"

    log = EventTableModel()
    log.append([call, refused])
    qtmodeltester.check(log, force_py=True)
    assert [log.index(1, c).data() for c in (2, 3, 4, 6, 7)] == [
        "account bob", "FAILED", "REG", "401", "Unauthorized",
    ]  # fmt: skip


# -- against Kamailio --------------------------------------------------------------------------


def test_accounts_register_fail_and_unregister_from_the_view(
    registrar: Any, make_console: Any, run: Any, qtbot: Any, tmp_path: Path, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    write_config(
        tmp_path,
        {
            "accounts": [
                account(registrar, expires=300),
                account(
                    registrar,
                    name="bob",
                    aor=f"sip:bob@{DOMAIN}",
                    username="bob",
                    password=WRONG_PASSWORD,
                ),
            ]
        },
    )
    console = make_console()
    window, hub = console.window, console.hub
    view = window.accounts_view
    model = view.model

    def state(name: str) -> str | None:
        found = hub.accounts.get(name)
        return found.state if found else None

    async def scenario() -> None:
        await wait_until(lambda: state("alice") == AccountState.REGISTERED, what="alice")
        await wait_until(lambda: state("bob") == AccountState.FAILED, what="bob's failure")
        alice = model.row_of("alice")
        assert model.index(alice, PUBLIC).data().startswith("127.0.0.1:")
        assert model.index(alice, EXPIRES).data().startswith(("5:00", "4:5"))
        assert row_colour(model, "alice") == "#dcf5e3"
        bob = model.row_of("bob")
        assert model.index(bob, REPLY).data() == "401 Unauthorized"
        assert model.index(bob, EXPIRES).data().startswith("retry in 0:0")
        assert row_colour(model, "bob") == "#fde2e1"
        # the failure is visible without opening anything: status bar and a notice
        window.update_status()
        assert window.status_accounts.isVisible()
        assert window.status_accounts.text() == "Accounts: 1 registered, 1 failed"
        assert "bob (401 Unauthorized)" in window.notice.text() and window.notice.isVisible()
        # the status bar opens the view (a tab behind the event log)
        window.log_dock.raise_()
        assert not in_front(window.accounts_dock)
        qtbot.mouseClick(window.status_accounts, Qt.MouseButton.LeftButton)
        assert in_front(window.accounts_dock) and view.table.hasFocus()
        # the live event log has the registration events too
        rows = [window.events_model.event_at(r) for r in range(window.events_model.rowCount())]
        (row,) = [
            r for r, e in enumerate(rows) if isinstance(e, RegistrationEvent) and e.account == "bob"
        ][:1]
        # ... and a double-click on one shows its account
        view.select("alice")
        window.log_dock.raise_()
        window._log_double_clicked(window.events_model.index(row, 0))
        assert in_front(window.accounts_dock) and view.current_name() == "bob"

        assert window.accounts_dock.windowTitle() == "Accounts (1 failed)"
        view.select("bob")
        view._context_menu(view.table.visualRect(model.index(model.row_of("bob"), 0)).center())
        (menu,) = view.findChildren(QMenu)
        assert [a.text() for a in menu.actions() if a.text()][:2] == [
            "Re&gister account",
            "U&nregister account",
        ]
        menu.close()
        menu.deleteLater()
        assert "401 Unauthorized" in view.detail.text()
        assert "Check the user name, password and realm" in view.detail.text()
        assert window.act_register.isEnabled() and not window.act_unregister.isEnabled()
        await asyncio.sleep(0.2)  # the layout takes the new line under the table
        screenshot(window.accounts_dock, "accounts")
        screenshot(window, "main-window-accounts")

        # Unregister alice from the view's context menu action, then Register with the button
        view.select("alice")
        assert window.act_unregister.isEnabled()
        assert await registrar.contacts("alice")
        window.act_unregister.trigger()
        await wait_until(lambda: state("alice") == AccountState.UNREGISTERED, what="unregister")
        assert await registrar.contacts("alice") == {}
        # the state may come first from a refreshed snapshot, the event a moment later
        await wait_until(
            lambda: hub.accounts["alice"].last_event == "UNREGISTERED", what="the event"
        )
        assert "1 not registered" in window.status_accounts.text()
        buttons = {b.accessibleName(): b for b in view.findChildren(QToolButton)}
        qtbot.mouseClick(buttons["Register account"], Qt.MouseButton.LeftButton)
        await wait_until(lambda: state("alice") == AccountState.REGISTERED, what="register")
        assert await registrar.contacts("alice")

    run(scenario(), timeout=40)
    assert WRONG_PASSWORD not in caplog.text and "secret" not in caplog.text


def test_originate_from_an_account_through_kamailio(
    registrar: Any, make_console: Any, sipp: Any, run: Any, tmp_path: Path
) -> None:
    write_config(
        tmp_path,
        {"accounts": [account(registrar, outbound_proxy=f"{registrar.uri};lr", register=False)]},
    )
    console = make_console()
    window = console.window
    port = free_udp_port()
    peer = sipp("-sf", str(SCENARIOS / "uas_record_route.xml"), "-p", str(port), "-m", "1")

    async def scenario() -> None:
        await wait_until(lambda: "alice" in console.hub.accounts, what="the account")
        form = window.open_originate()
        assert [form.account.itemText(i) for i in range(form.account.count())] == [
            "No account",
            f"alice (sip:alice@{DOMAIN})",
        ]
        form.ruri.setText(f"sip:service@127.0.0.1:{port}")
        assert form.from_.uri.text()  # the console's default identity, for no account
        form.select_account("alice")
        assert form.from_.uri.text() == ""  # ... makes way for the account's identity
        assert not form.revalidate()
        await form._run()
        assert form.error.isHidden(), form.error.text()
        s = await wait_until(lambda: next(iter(console.hub.sessions.values()), None))
        await wait_until(lambda: s.state == State.ESTABLISHED, what="the answer")
        assert f"sip:alice@{DOMAIN}" in s.from_
        out = [m for m in s.messages if m.record.direction == "out" and m.text.method == "INVITE"]
        assert len(out) >= 2 and {m.record.remote for m in out} == {f"udp:{registrar.address}"}
        assert 'username="alice"' in (out[-1].text.header("proxy-authorization") or "")
        replies = [m.text.status for m in s.messages if m.record.direction == "in"]
        assert 407 in replies and 200 in replies
        window.select_key(s.key)
        await window.hangup_selected()
        await wait_until(lambda: s.is_ended, what="the end")
        assert await peer.wait() == 0, peer.output()
        # the ACK of the 200 and the BYE (in the dialog with SIPp: its To tag) followed
        # Kamailio's Record-Route
        for method in ("ACK", "BYE"):
            (sent,) = [
                m
                for m in s.messages
                if m.text.is_request
                and m.text.method == method
                and "SIPpTag" in (m.text.header("to") or "")
            ]
            assert sent.record.remote == f"udp:{registrar.address}", method
            assert (sent.text.header("route") or "").startswith(f"<{registrar.uri};lr")

    run(scenario(), timeout=40)


def test_remote_console_shows_and_drives_registrations(
    registrar: Any, make_console: Any, sipp: Any, run: Any, tmp_path: Path
) -> None:
    proxy = f"{registrar.uri};lr"
    write_config(tmp_path, {"accounts": [account(registrar, expires=300, outbound_proxy=proxy)]})
    server = make_console("--mi-listen", "127.0.0.1:0")
    server.args.no_mi = False
    if server.mi_url is None:  # the fixture passes --no-mi: start the MI listener now
        run(server.restart(server.document))
    assert server.mi_url, server.mi_problem
    console = make_console("--remote", server.mi_url)
    hub = console.hub
    window = console.window

    def state() -> str | None:
        found = hub.accounts.get("alice")
        return found.state if found else None

    async def scenario() -> None:
        await wait_until(lambda: state() == AccountState.REGISTERED, what="alice over MI")
        window.accounts_view.select("alice")
        await window.register_selected(unregister=True)
        await wait_until(lambda: state() == AccountState.UNREGISTERED, what="unregister")
        assert await registrar.contacts("alice") == {}

        # the server's E_UA_REGISTRATION comes over the WebSocket, to the live event log
        def unregistered_row() -> bool:
            log = window.events_model
            rows = [log.event_at(r) for r in range(log.rowCount())]
            return any(
                isinstance(e, RegistrationEvent) and e.event_type == "UNREGISTERED" for e in rows
            )

        await wait_until(unregistered_row, what="the UNREGISTERED event in the log")
        await window.register_selected()
        await wait_until(lambda: state() == AccountState.REGISTERED, what="register")

        # a call from the account, placed over MI (account=alice, From: the account's AoR)
        port = free_udp_port()
        peer = sipp("-sf", str(SCENARIOS / "uas_record_route.xml"), "-p", str(port), "-m", "1")
        form = window.open_originate()
        form.ruri.setText(f"sip:service@127.0.0.1:{port}")
        form.select_account("alice")
        await form._run()
        assert form.error.isHidden(), form.error.text()
        s = await wait_until(lambda: next(iter(hub.sessions.values()), None))
        await wait_until(lambda: s.state == State.ESTABLISHED, what="the answer, over MI")
        served = next(iter(server.hub.sessions.values()))
        assert f"sip:alice@{DOMAIN}" in served.from_
        window.select_key(s.key)
        await window.hangup_selected()
        await wait_until(lambda: s.is_ended, what="the end")
        assert await peer.wait() == 0, peer.output()

    run(scenario(), timeout=40)


# -- Settings ----------------------------------------------------------------------------------


def test_settings_accounts_page_writes_the_accounts_tables(
    qtbot: Any, tmp_path: Path, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "uaconsole.toml"
    dialog = SettingsDialog(path, load_document(path, create=True))
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.show_page("accounts")
    assert dialog.tabs.currentWidget().objectName() == "accounts"
    assert not dialog.account_form.isEnabled()  # nothing to edit yet
    qtbot.mouseClick(dialog.add_account_button, Qt.MouseButton.LeftButton)
    fields = dialog.account_fields

    def type_into(key: str, text: str) -> None:
        fields[key].selectAll()
        qtbot.keyClicks(fields[key], text)

    type_into("name", "alice")
    type_into("aor", "alice@pbx.example.com")
    assert fields["aor"].property("invalid") is True
    assert "address of record" in dialog.account_problem.text()
    dialog.save()
    assert not dialog.error.isHidden() and dialog.error.text().startswith("Accounts, alice")
    assert not path.read_text().count("[[accounts]]")
    type_into("aor", "sip:alice@pbx.example.com")
    type_into("registrar", "sip:pbx.example.com:5080")
    type_into("password", "s3cret-pw")
    type_into("display_name", "Alice")
    dialog.account_expires.setValue(600)
    dialog.account_transport.setCurrentText("tcp")
    dialog.account_keepalive.setValue(0)
    assert dialog.account_problem.isHidden(), dialog.account_problem.text()
    assert dialog.account_list.item(0).text() == "alice (sip:alice@pbx.example.com)"
    qtbot.wait(50)
    screenshot(dialog, "settings-accounts")
    dialog.save()
    assert dialog.error.isHidden(), dialog.error.text()
    saved = tomllib.loads(path.read_text())
    assert saved["accounts"] == [
        {
            "name": "alice",
            "aor": "sip:alice@pbx.example.com",
            "registrar": "sip:pbx.example.com:5080",
            "password": "s3cret-pw",
            "display_name": "Alice",
            "expires": 600,
            "transport": "tcp",
            "keepalive": 0,
        }
    ]
    config = EngineConfig.from_dict(saved)
    (alice,) = config.accounts
    assert (alice.expires, alice.transport, alice.keepalive, alice.register) == (
        600,
        "tcp",
        0,
        True,
    )
    assert alice.credentials[0].username == "alice"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "s3cret-pw" not in caplog.text

    # an engine-side problem the form cannot show is named by account and key, and nothing
    # is written; the value (it may be a password) is not repeated
    saved["accounts"][0]["transport"] = "sctp"
    before = path.read_text()
    dialog = SettingsDialog(path, saved)
    qtbot.addWidget(dialog)
    assert fields is not dialog.account_fields
    assert dialog.account_fields["password"].text() == "s3cret-pw"
    assert (
        dialog.account_fields["password"].echoMode()
        == dialog.account_fields["password"].EchoMode.Password
    )
    dialog.save()
    assert "Accounts, alice (sip:alice@pbx.example.com): transport: must be one of" in (
        dialog.error.text()
    )
    assert path.read_text() == before
    # removing the account removes its table
    dialog.remove_account()
    dialog.save()
    assert dialog.error.isHidden(), dialog.error.text()
    assert "accounts" not in tomllib.loads(path.read_text())
