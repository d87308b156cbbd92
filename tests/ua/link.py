"""Two (or more) UA cores joined by an in-memory network, on a manual clock.

Nothing here sleeps or runs an event loop: ``run`` delivers queued messages and moves the clock
to the next timer until nothing is left to do (or a time limit), exactly as the asyncio adapter
would, so tests assert exact times and exact messages.
"""

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from engine.sip import Target, parse_message
from engine.sip.ids import CountingIds
from engine.ua.config import UaConfig
from engine.ua.core import UserAgent
from engine.ua.events import SessionEvent
from engine.ua.policy import IncomingPolicy


@dataclass
class Wire:
    """One message seen on the in-memory network."""

    time: float
    source: Target
    target: Target
    data: bytes

    @property
    def first_line(self) -> str:
        return self.data.split(b"\r\n", 1)[0].decode()


@dataclass
class Node:
    name: str
    ua: UserAgent
    address: Target
    events: list[SessionEvent] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    def kinds(self, key: str | None = None) -> list[str]:
        return [e.event_type for e in self.events if key is None or e.key == key]


class Script:
    """A peer played by the test: ``handler(message, source, now)`` returns bytes to send back."""

    def __init__(self, name: str, address: Target, handler) -> None:
        self.name = name
        self.address = address
        self.handler = handler
        self.outbox: list[tuple[bytes, Target]] = []
        self.received: list = []

    def receive(self, data: bytes, source: Target, now: float) -> None:
        message = parse_message(data)
        self.received.append(message)
        for reply in self.handler(message, source, now) or ():
            self.outbox.append((reply, source))

    def send(self, data: bytes, target: Target) -> None:
        self.outbox.append((data, target))


class Network:
    """Delivers what each core sends to the core listening at the destination."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.nodes: dict[tuple[str, int], Node] = {}
        self.scripts: dict[tuple[str, int], Script] = {}
        self.wire: list[Wire] = []
        #: Return False to lose a message in transit.
        self.deliver_if: Callable[[Wire], bool] = lambda wire: True

    def add(
        self,
        name: str,
        host: str,
        *,
        incoming: str = "manual",
        flags: str = "",
        policy: IncomingPolicy | None = None,
        **config,
    ) -> Node:
        """A core at ``host``:5060 whose incoming calls follow ``policy``, or the shortcut
        ``incoming`` with session ``flags``."""
        address = Target("udp", host, 5060)
        if policy is None:
            policy = IncomingPolicy.from_shortcut(incoming)
            if flags:
                policy = IncomingPolicy((), replace(policy.default, flags=flags))
        ua = UserAgent(UaConfig(local=(address,), policy=policy, **config), CountingIds(name))
        node = Node(name, ua, address)
        self.nodes[(host, 5060)] = node
        return node

    def add_script(self, name: str, host: str, handler) -> Script:
        """A peer at ``host``:5060 played by ``handler``."""
        script = Script(name, Target("udp", host, 5060), handler)
        self.scripts[(host, 5060)] = script
        return script

    def _send(self, source: Target, target: Target, data: bytes) -> None:
        wire = Wire(self.now, source, target, data)
        self.wire.append(wire)
        if not self.deliver_if(wire):
            return
        key = (target.host, target.port)
        if key in self.nodes:
            self.nodes[key].ua.receive(data, source, self.now)
        elif key in self.scripts:
            self.scripts[key].receive(data, source, self.now)

    def _drain(self) -> bool:
        moved = False
        for script in list(self.scripts.values()):
            while script.outbox:
                moved = True
                data, target = script.outbox.pop(0)
                self._send(script.address, target, data)
        for node in list(self.nodes.values()):
            for out in node.ua.datagrams_to_send():
                moved = True
                self._send(node.address, out.target, out.data)
            while (event := node.ua.next_event()) is not None:
                node.events.append(event)
            while (notice := node.ua.next_notice()) is not None:
                node.notices.append(f"{notice.level}: {notice.message}")
        return moved

    def run(self, until: float | None = None, step_limit: int = 100000) -> None:
        """Deliver and fire timers until quiet, or until the clock would pass ``until``."""
        for _ in range(step_limit):
            if self._drain():
                continue
            deadlines = [d for n in self.nodes.values() if (d := n.ua.get_timer()) is not None]
            if not deadlines:
                return
            when = min(deadlines)
            if until is not None and when > until:
                self.now = until
                return
            self.now = max(self.now, when)
            for node in list(self.nodes.values()):
                deadline = node.ua.get_timer()
                if deadline is not None and deadline <= self.now:
                    node.ua.handle_timer(self.now)
        raise AssertionError("the network never went quiet")

    def advance(self, seconds: float) -> None:
        """Run for ``seconds`` of simulated time."""
        self.run(until=self.now + seconds)

    def lines(self, source: Node | None = None) -> list[str]:
        """First lines of the messages seen, optionally only those a node sent."""
        return [w.first_line for w in self.wire if source is None or w.source == source.address]

    def methods(self) -> list[str]:
        """Each message as METHOD or status code, in order."""
        out = []
        for w in self.wire:
            m = parse_message(w.data)
            out.append(str(m.status) if hasattr(m, "status") else m.method)  # type: ignore[union-attr]
        return out
