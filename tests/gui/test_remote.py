"""The console driving a remote engine over MI: a second console's engine, reached at its MI URL,
with its WebSocket event stream; the same window, forms and table."""

from typing import Any

from gui.hub import State
from tests.gui.conftest import free_udp_port, wait_until


def test_remote_engine_places_and_ends_a_call(make_console: Any, sipp: Any, run: Any) -> None:
    server = make_console("--mi-listen", "127.0.0.1:0")
    server.args.no_mi = False
    if server.mi_url is None:  # the fixture passes --no-mi: start the MI listener now
        run(server.restart(server.document))
    url = server.mi_url
    assert url, server.mi_problem
    console = make_console("--remote", url)
    window = console.window
    assert console.backend.start_error is None, console.backend.start_error
    assert "Connected to" in window.status_listeners.text()
    port = free_udp_port()
    peer = sipp("-sn", "uas", "-p", str(port), "-m", "1")

    async def scenario() -> None:
        form = window.open_originate()
        form.ruri.setText(f"sip:service@127.0.0.1:{port}")
        form.sdp.template.setCurrentText(form.sdp.GENERATED)
        await form._run()
        assert form.error.isHidden(), form.error.text()
        s = await wait_until(lambda: next(iter(console.hub.sessions.values()), None))
        await wait_until(lambda: s.state == State.ESTABLISHED, what="the answer, via events")
        window.select_key(s.key)
        await window.hangup_selected()
        await wait_until(lambda: s.is_ended, what="the end")
        assert await peer.wait() == 0, peer.output()
        # the server's own window saw the same call
        assert any(x.is_ended for x in server.hub.sessions.values())

    run(scenario(), timeout=40)
