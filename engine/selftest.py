"""``uaconsole --self-test``: prove that an installed copy can place, answer, modify and end a
call, and log it.

Two engines on free UDP ports of 127.0.0.1 (nothing leaves the machine): a caller, and a called
engine that answers by itself (an incoming rule with an automatic 200 and an SDP answer). Each
writes its own SQLite event log in a temporary folder. The caller places a call, the called
engine answers, the caller puts it on hold with a re-INVITE (the called side answers that one
as a controller would), the caller hangs up; then both logs are read back through
:class:`engine.store.History`.

One line per step: ``ok   STEP (detail)``, ``FAIL STEP: REASON``, and ``skip STEP`` for the steps
after a failure; the exit code is 0 only if every step passed. No window, no display, no network
beyond loopback; a few hundred milliseconds on a quiet machine, 5 s at most per step.

Run it from source with ``python -m engine.selftest``; ``uaconsole --self-test`` adds the
console's checks (see ``gui.selftest``).
"""

import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from engine.api import Engine, EngineConfig, Gap, SessionEvent
from engine.api.loops import use_selector_loop
from engine.api.sdp import answer_sdp, offer_sdp, set_direction
from engine.store import EventLog, History

#: The longest any one step may take.
STEP_TIMEOUT = 5.0
#: The user part the called engine's rule answers.
CALLED_USER = "selftest"
HOST = "127.0.0.1"


class StepFailed(Exception):
    """A step did not do what it should; the message says what happened instead."""


@dataclass
class Side:
    """One engine of the test, its event log and every event it published."""

    name: str
    engine: Engine
    log: EventLog
    #: Set whenever either side gets an event (one Event shared by both sides).
    changed: asyncio.Event
    events: list[SessionEvent] = field(default_factory=list)
    port: int = 0

    async def collect(self) -> None:
        async for event in self.engine.events():
            if isinstance(event, Gap) or not isinstance(event, SessionEvent):
                continue
            self.events.append(event)
            self.changed.set()

    async def wait_for(
        self,
        what: str,
        match: Callable[[SessionEvent], bool],
        after: int = 0,
        give_up: Callable[[], str | None] = lambda: None,
    ) -> SessionEvent:
        """The first event from index ``after`` on that ``match``es; StepFailed naming ``what``
        and the events seen instead if none comes within the step's time, or at once when
        ``give_up()`` returns a reason."""

        async def look() -> SessionEvent:
            while True:
                for event in self.events[after:]:
                    if match(event):
                        return event
                reason = give_up()
                if reason:
                    raise StepFailed(f"the {self.name} saw no {what}: {reason}")
                self.changed.clear()
                await self.changed.wait()

        try:
            return await asyncio.wait_for(look(), STEP_TIMEOUT)
        except TimeoutError:
            seen = ", ".join(_describe(e) for e in self.events[after:]) or "nothing"
            raise StepFailed(
                f"the {self.name} saw no {what} within {STEP_TIMEOUT:g} s (saw: {seen})"
            ) from None


def _describe(event: SessionEvent) -> str:
    status = f" {event.status}" if event.status else ""
    return f"{event.event_type} {event.method}{status}"


def called_config(port: int = 0) -> EngineConfig:
    """The called engine: answers calls to ``selftest`` with 200 and an SDP answer (flag b, so
    that its events carry bodies), refuses anything else."""
    return EngineConfig.from_dict(
        {
            "engine": {"listen": [f"udp:{HOST}:{port}"], "user_agent": "UA Console self-test"},
            "incoming": {
                "default": "reject:403",
                "rule": [
                    {
                        "name": "self-test",
                        "match": {"ruri_user": f"^{CALLED_USER}$"},
                        "action": "session",
                        "flags": "b",
                        "replies": [{"code": 200, "answer_offer": True}],
                    }
                ],
            },
        }
    )


def caller_config(port: int = 0) -> EngineConfig:
    """The calling engine: rejects incoming calls (it receives none)."""
    return EngineConfig.from_dict(
        {
            "engine": {"listen": [f"udp:{HOST}:{port}"], "user_agent": "UA Console self-test"},
            "incoming": {"default": "reject:403"},
        }
    )


class SelfTest:
    """The steps, in order, with what they share. ``await run()``: True if all passed."""

    def __init__(self, out: TextIO | None = None, folder: Path | None = None) -> None:
        self.out = out or sys.stdout
        self.folder = folder
        self.caller: Side | None = None
        self.called: Side | None = None
        self.caller_key = ""
        self.called_key = ""
        self.offer = ""
        self.passed: list[str] = []
        self.failed: str | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def steps(self) -> list[tuple[str, Callable[[], Awaitable[str]]]]:
        """(name, coroutine function returning the detail) of every step, in order."""
        return [
            ("start two engines on loopback", self.start),
            ("place a call", self.place_call),
            ("answer it", self.answer),
            ("re-INVITE to hold the call", self.hold),
            ("hang up", self.hang_up),
            ("stop the engines and close the event logs", self.stop),
            ("find the call in the event log", self.check_log),
        ]

    def say(self, line: str) -> None:
        print(line, file=self.out, flush=True)

    async def run(self) -> bool:
        """Every step, one line each; stops at the first failure (cleaning up all the same)."""
        steps = self.steps()
        try:
            for index, (name, step) in enumerate(steps):
                try:
                    detail = await asyncio.wait_for(step(), STEP_TIMEOUT + 1)
                except StepFailed as error:
                    self._fail(name, str(error), steps[index + 1 :])
                    return False
                except TimeoutError:
                    self._fail(name, f"took more than {STEP_TIMEOUT + 1:g} s", steps[index + 1 :])
                    return False
                except Exception as error:  # a bug or a broken install: say what, do not crash
                    reason = f"{type(error).__name__}: {error}"
                    self._fail(name, reason, steps[index + 1 :])
                    return False
                self.passed.append(name)
                self.say(f"ok   {name}" + (f" ({detail})" if detail else ""))
            return True
        finally:
            await self._clean_up()

    def _fail(self, name: str, reason: str, rest: Iterable[tuple[str, object]]) -> None:
        self.failed = name
        self.say(f"FAIL {name}: {reason}")
        for later, _ in rest:
            self.say(f"skip {later}")

    # -- the steps -------------------------------------------------------------------------------

    async def start(self) -> str:
        if self.folder is None:
            raise StepFailed("no folder for the event logs")
        sides = []
        changed = asyncio.Event()
        for name, config in (("called engine", called_config()), ("caller", caller_config())):
            engine = Engine(config)
            log = EventLog(self.folder / f"{name.split()[0]}.db", interval=0.02)
            side = Side(name, engine, log, changed)
            # The event log first, as `uaconsole serve` does, to miss nothing.
            status = await log.start(engine)
            if not status.ok:
                raise StepFailed(f"the {name}'s event log cannot be used: {status.error}")
            self._tasks.append(asyncio.create_task(side.collect()))
            listeners = await engine.start()
            side.port = listeners[0].port
            sides.append(side)
            if name == "called engine":
                self.called = side
            else:
                self.caller = side
        return ", ".join(f"{s.name} on udp:{HOST}:{s.port}" for s in sides)

    async def place_call(self) -> str:
        caller, called = self._sides()
        self.offer = offer_sdp(address=HOST, rtp_port=40000, session_id=int(time.time()))
        uri = f"sip:{CALLED_USER}@{HOST}:{called.port}"
        self.caller_key = await caller.engine.client_start(
            uri,
            f"Self-test <{uri}>",
            f"UA Console <sip:uaconsole@{HOST}:{caller.port}>",
            body=self.offer,
            content_type="application/sdp",
            flags="b",
        )

        def refused() -> str | None:
            for e in caller.events:
                if e.key == self.caller_key and e.event_type in ("REJECTED", "TERMINATED"):
                    return f"the call was refused {e.status} {e.reason}"
            return None

        new = await called.wait_for(
            "incoming INVITE",
            lambda e: e.event_type == "NEW" and e.method == "INVITE",
            give_up=refused,
        )
        self.called_key = new.key
        return f"INVITE from udp:{HOST}:{caller.port} reached udp:{HOST}:{called.port}"

    async def answer(self) -> str:
        caller, called = self._sides()
        answered = await caller.wait_for(
            "200 OK to the INVITE",
            lambda e: e.key == self.caller_key and e.event_type == "ANSWERED",
        )
        if answered.status != 200:
            raise StepFailed(f"the call was answered {answered.status} {answered.reason}")
        if not answered.body or "m=audio" not in answered.body:
            raise StepFailed(f"the 200 OK carries no SDP answer (body {answered.body!r})")
        await _until(
            lambda: (
                _state(caller.engine, self.caller_key) == "ESTABLISHED"
                and _state(called.engine, self.called_key) == "ESTABLISHED"
            ),
            lambda: (
                "both sessions ESTABLISHED (the ACK arrived), they are "
                f"{_state(caller.engine, self.caller_key)} and "
                f"{_state(called.engine, self.called_key)}"
            ),
        )
        return "200 OK with an SDP answer, ACK, both sessions established"

    async def hold(self) -> str:
        caller, called = self._sides()
        hold_offer = set_direction(self.offer, "sendonly")
        mark_caller, mark_called = len(caller.events), len(called.events)
        await caller.engine.update(
            self.caller_key, "INVITE", body=hold_offer, content_type="application/sdp"
        )
        reinvite = await called.wait_for(
            "re-INVITE",
            lambda e: (
                e.key == self.called_key and e.event_type == "UPDATED" and e.method == "INVITE"
            ),
            after=mark_called,
        )
        if not reinvite.body or "a=sendonly" not in reinvite.body:
            raise StepFailed(f"the re-INVITE does not offer sendonly (body {reinvite.body!r})")
        answer = answer_sdp(
            reinvite.body, address=HOST, rtp_port=40002, session_id=int(time.time())
        )
        await called.engine.reply(
            self.called_key, "INVITE", 200, "OK", body=answer, content_type="application/sdp"
        )
        answered = await caller.wait_for(
            "200 OK to the re-INVITE",
            lambda e: e.key == self.caller_key and e.event_type in ("ANSWERED", "REJECTED"),
            after=mark_caller,
        )
        if answered.status != 200:
            raise StepFailed(f"the re-INVITE was answered {answered.status} {answered.reason}")
        if not answered.body or "a=recvonly" not in answered.body:
            raise StepFailed(f"the answer to the hold is not recvonly (body {answered.body!r})")
        await _until(
            lambda: _state(caller.engine, self.caller_key) == "ESTABLISHED",
            lambda: (
                f"the caller's session ESTABLISHED again, it is "
                f"{_state(caller.engine, self.caller_key)}"
            ),
        )
        return "sendonly offered, recvonly answered"

    async def hang_up(self) -> str:
        caller, called = self._sides()
        mark_caller, mark_called = len(caller.events), len(called.events)
        await caller.engine.terminate(self.caller_key)
        ended = await called.wait_for(
            "BYE",
            lambda e: e.key == self.called_key and e.event_type == "TERMINATED",
            after=mark_called,
        )
        await caller.wait_for(
            "end of the call",
            lambda e: e.key == self.caller_key and e.event_type == "TERMINATED",
            after=mark_caller,
        )
        await _until(
            lambda: not caller.engine.sessions() and not called.engine.sessions(),
            lambda: (
                f"no session left, there are {len(caller.engine.sessions())} and "
                f"{len(called.engine.sessions())}"
            ),
        )
        if ended.method != "BYE" or ended.origin != "remote":
            raise StepFailed(
                f"the called session ended by {ended.method} ({ended.origin}), not BYE"
            )
        return "BYE reached the called engine, both sessions ended"

    async def stop(self) -> str:
        rows = []
        for side in self._sides():
            await side.engine.stop()
            status = await side.log.stop()
            if not status.ok:
                raise StepFailed(f"the {side.name}'s event log failed: {status.error}")
            if status.rows_lost:
                raise StepFailed(f"the {side.name}'s event log lost {status.rows_lost} rows")
            if not status.rows_written:
                raise StepFailed(f"the {side.name}'s event log wrote nothing")
            rows.append(f"{status.rows_written} rows")
        return " and ".join(rows) + " written"

    async def check_log(self) -> str:
        caller, called = self._sides()
        found = []
        for side, key, entity in (
            (caller, self.caller_key, "UAC"),
            (called, self.called_key, "UAS"),
        ):
            found.append(_check_history(side, key, entity))
        return "; ".join(found)

    # -- helpers ---------------------------------------------------------------------------------

    def _sides(self) -> tuple[Side, Side]:
        if self.caller is None or self.called is None:
            raise StepFailed("the engines did not start")
        return self.caller, self.called

    async def _clean_up(self) -> None:
        for side in (self.caller, self.called):
            if side is None:
                continue
            with contextlib.suppress(Exception):
                if side.engine.running:
                    await side.engine.stop(timeout=1.0)
            with contextlib.suppress(Exception):
                if side.log.status.running:
                    await side.log.stop()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _state(engine: Engine, key: str) -> str:
    try:
        return engine.session(key).state_name
    except Exception:
        return "gone"


async def _until(condition: Callable[[], bool], what: Callable[[], str]) -> None:
    deadline = time.monotonic() + STEP_TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise StepFailed(f"expected {what()}")
        await asyncio.sleep(0.01)


def _check_history(side: Side, key: str, entity: str) -> str:
    """The session ``key`` in ``side``'s log, with its events and messages; what was found."""
    history = History.open(side.log.path)
    try:
        session = history.session(key)
        if session is None:
            raise StepFailed(f"the {side.name}'s log has no session {key}")
        problems = []
        if session["entity_type"] != entity:
            problems.append(f"entity {session['entity_type']} instead of {entity}")
        if session["state"] != "TERMINATED":
            problems.append(f"state {session['state']} instead of TERMINATED")
        if session["final_status"] != 200:
            problems.append(f"final status {session['final_status']} instead of 200")
        types = [row["event_type"] for row in history.events(key)]
        wanted = ["ANSWERED", "TERMINATED"] if entity == "UAC" else ["NEW", "TERMINATED"]
        if entity == "UAS":
            wanted.insert(1, "UPDATED")  # the re-INVITE
        missing = [t for t in wanted if t not in types]
        if missing:
            problems.append(f"no {', '.join(missing)} event (has {', '.join(types) or 'none'})")
        if entity == "UAC" and types.count("ANSWERED") < 2:
            problems.append("not two ANSWERED events (call and re-INVITE)")
        lines = [row["first_line"].split(" ", 1)[0] for row in history.ladder(key)]
        methods = [m for m in lines if m != "SIP/2.0"]
        for method, count in (("INVITE", 2), ("ACK", 2), ("BYE", 1)):
            if methods.count(method) < count:
                problems.append(f"{methods.count(method)} {method} messages instead of {count}")
        if problems:
            raise StepFailed(f"the {side.name}'s log of {key}: " + "; ".join(problems))
        return f"{entity} session: {len(types)} events, {len(lines)} messages"
    finally:
        history.close()


async def run_self_test(
    out: TextIO | None = None,
    extra_steps: Iterable[tuple[str, Callable[[], str]]] = (),
) -> int:
    """Run the engine's steps, then ``extra_steps`` (name, function returning the detail or
    raising StepFailed); print a closing line; the exit code."""
    out = out or sys.stdout
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="uaconsole-selftest-") as folder:
        test = SelfTest(out, Path(folder))
        ok = await test.run()
    steps = len(test.passed)
    extras = list(extra_steps)
    if not ok:
        for name, _ in extras:
            print(f"skip {name}", file=out, flush=True)
    else:
        for index, (name, check) in enumerate(extras):
            try:
                detail = check()
            except Exception as error:  # StepFailed or whatever broke
                reason = str(error) if isinstance(error, StepFailed) else repr(error)
                test._fail(name, reason, extras[index + 1 :])
                ok = False
                break
            steps += 1
            print(f"ok   {name}" + (f" ({detail})" if detail else ""), file=out, flush=True)
    elapsed = time.monotonic() - began
    if ok:
        print(f"self-test passed: {steps} steps in {elapsed:.2f} s", file=out, flush=True)
        return 0
    print(f"self-test FAILED at: {test.failed} ({elapsed:.2f} s)", file=out, flush=True)
    return 1


def main(argv: list[str] | None = None) -> int:
    """``python -m engine.selftest``: the engine's steps only."""
    use_selector_loop()
    return asyncio.run(run_self_test())


if __name__ == "__main__":
    sys.exit(main())
