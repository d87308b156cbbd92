"""Every (state, input) pair of the four transaction tables, walked through TransactionLayer.

A driver holds one transaction and can feed it any input of its machine through the layer's
public methods. The exhaustive walk visits every reachable (state, running timers) situation over
UDP and over TCP and tries every input there; the hypothesis walk mixes four transactions, the
clock and unrelated traffic at random. Both check the layer against the tables: an input with an
entry moves to the entry's state (and on through the timers that fire at once on reliable
transports); a local input without one raises LocalProtocolError and changes nothing; a remote
input never raises.
"""

from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.sip import LocalProtocolError, RequestReceived, TransactionLayer
from engine.sip.ids import CountingIds
from engine.sip.target import Target
from engine.sip.transaction import (
    INVITE_CLIENT,
    INVITE_SERVER,
    MACHINES,
    NON_INVITE_SERVER,
    Action,
    Input,
    InputKind,
    Machine,
    State,
    table_problems,
)
from tests.sip.helpers import build_request, build_response, drain_events, reparse

RECEIVED_STATUS = {Input.RECV_1XX: 180, Input.RECV_2XX: 200, Input.RECV_3XX_6XX: 486}
SENT_STATUS = {Input.SEND_1XX: 180, Input.SEND_2XX: 200, Input.SEND_3XX_6XX: 486}
#: RFC 3261 section 17: these timers are zero on reliable transports, so they fire at once.
ZERO_WHEN_RELIABLE = {
    Action.START_D: Input.TIMER_D,
    Action.START_I: Input.TIMER_I,
    Action.START_J: Input.TIMER_J,
    Action.START_K: Input.TIMER_K,
}


def machine_id(machine: Machine) -> str:
    return machine.name.replace(" ", "-")


class World:
    """One layer and its clock, shared by drivers."""

    def __init__(self) -> None:
        self.layer = TransactionLayer(CountingIds("walk"))
        self.now = 0.0
        self.requests: dict[str, object] = {}  # server key -> request, from RequestReceived

    def drain(self) -> list[object]:
        events = drain_events(self.layer)
        for event in events:
            if isinstance(event, RequestReceived):
                assert event.key not in self.requests, "a request was passed up twice"
                self.requests[event.key] = event.request
        self.layer.datagrams_to_send()
        return events


class Driver:
    """One transaction of ``machine`` over ``transport``, and a way to feed it any input."""

    def __init__(self, world: World, machine: Machine, transport: str, n: int = 0) -> None:
        self.world, self.machine = world, machine
        self.reliable = transport == "tcp"
        self.branch = f"z9hG4bK-walk-{n}"
        self.via = f"SIP/2.0/{transport.upper()} 192.0.2.1:5060;branch={self.branch}"
        method = "INVITE" if machine in (INVITE_CLIENT, INVITE_SERVER) else "OPTIONS"
        self.request = build_request(method, via=self.via, call_id=f"walk-{n}")
        self.created = world.now
        self.cancelled = False
        layer = world.layer
        if machine.is_client:
            self.peer = Target(transport, "192.0.2.2", 5060)
            self.key = layer.send_request(self.request, self.peer, world.now)
            world.drain()
        else:
            self.peer = Target(transport, "192.0.2.1", 5060)
            layer.receive(self.request, self.peer, world.now)
            [event] = [e for e in world.drain() if isinstance(e, RequestReceived)]
            self.key = event.key

    def state(self) -> State:
        return self.world.layer.state(self.key) or State.TERMINATED

    def deliverable(self, input_: Input) -> bool:
        """Timers can only be made to fire when they run, and first of this transaction's."""
        if input_.kind is not InputKind.TIMER:
            return True
        deadlines = self.world.layer.deadlines(self.key)
        if input_ not in deadlines:
            return False
        return all(deadlines[input_] < d for t, d in deadlines.items() if t is not input_)

    def refused_by_precondition(self, input_: Input) -> bool:
        """The two commands refused before the table is asked: a second CANCEL of the same
        INVITE, and (RFC 4320) a 100 to a non-INVITE over UDP before the client's timer E
        reaches T2."""
        if input_ is Input.CANCEL:
            return self.cancelled
        return (
            self.machine is NON_INVITE_SERVER
            and input_ is Input.SEND_1XX
            and not self.reliable
            and self.world.now < self.created + 3.5
        )

    def deliver(self, input_: Input) -> None:
        world, layer = self.world, self.world.layer
        if input_ in RECEIVED_STATUS:
            response = build_response(self.request, RECEIVED_STATUS[input_])
            layer.receive(response, self.peer, world.now)
        elif input_ is Input.RECV_REQUEST:
            layer.receive(reparse(self.request), self.peer, world.now)
        elif input_ is Input.RECV_ACK:
            ack = build_request(
                "ACK",
                via=self.via,
                call_id=self.request.call_id,
                to="Bob <sip:bob@example.com>;tag=bob-tag",
            )
            layer.receive(ack, self.peer, world.now)
        elif input_ is Input.CANCEL:
            layer.send_cancel(self.key, world.now)
            self.cancelled = True
        elif input_ in SENT_STATUS:
            status = SENT_STATUS[input_]
            if self.machine is NON_INVITE_SERVER and status == 180:
                status = 100  # RFC 4320: the only provisional response to a non-INVITE
            response = build_response(self.request, status, to_tag=None if status == 100 else "t")
            layer.respond(self.key, response, world.now)
        else:
            deadline = layer.deadlines(self.key)[input_]
            assert deadline >= world.now, "time went backwards"
            world.now = deadline
            layer.handle_timer(deadline)
        world.drain()


def expected_state(machine: Machine, state: State, input_: Input, reliable: bool) -> State:
    """The table's next state, then on through timers that are zero on this transport."""
    next_state, actions = machine.table[(state, input_)]
    if reliable:
        for action in actions:
            if action in ZERO_WHEN_RELIABLE:
                next_state = machine.table[(next_state, ZERO_WHEN_RELIABLE[action])][0]
    return next_state


def check_step(driver: Driver, input_: Input) -> str:
    """Feed one input and check the layer against the table; say what happened."""
    machine, before = driver.machine, driver.state()
    transition = machine.table.get((before, input_))
    if transition is None or driver.refused_by_precondition(input_):
        assert input_.kind is InputKind.LOCAL, f"{input_} has no entry in {before}"
        with pytest.raises(LocalProtocolError):
            driver.deliver(input_)
        assert driver.state() is before
        return "refused"
    driver.deliver(input_)  # never raises: the entry exists
    assert driver.state() is expected_state(machine, before, input_, driver.reliable)
    return "taken"


def check_invariants(world: World, drivers: list[Driver]) -> None:
    for driver in drivers:
        state = driver.state()
        assert state in driver.machine.states
        for timer, deadline in world.layer.deadlines(driver.key).items():
            assert (state, timer) in driver.machine.table, f"{timer} runs in {state}"
            assert deadline > world.now
    timer = world.layer.get_timer()
    assert timer is None or timer > world.now


# -- the tables themselves -------------------------------------------------------------------------


@pytest.mark.parametrize("machine", MACHINES, ids=machine_id)
def test_tables_are_sound(machine):
    assert table_problems(machine) == []
    for state in machine.states:
        for input_ in machine.inputs:
            if input_.kind is InputKind.REMOTE:
                assert (state, input_) in machine.table


def test_table_problems_finds_a_missing_remote_entry_and_a_timer_firing_into_a_hole():
    table = dict(INVITE_SERVER.table)
    del table[(State.CONFIRMED, Input.RECV_ACK)]
    del table[(State.COMPLETED, Input.TIMER_H)]
    broken = Machine(
        INVITE_SERVER.name,
        INVITE_SERVER.initial,
        INVITE_SERVER.start,
        INVITE_SERVER.states,
        INVITE_SERVER.inputs,
        table,
    )
    assert table_problems(broken) == [
        "INVITE server: RECV_ACK missing in CONFIRMED",
        "INVITE server: TIMER_H may fire in COMPLETED",
    ]


# -- every pair, exhaustively ----------------------------------------------------------------------


def replay(machine: Machine, transport: str, path: tuple[Input, ...]) -> Driver:
    driver = Driver(World(), machine, transport)
    for input_ in path:
        driver.deliver(input_)
    return driver


@pytest.mark.parametrize("machine", MACHINES, ids=machine_id)
def test_every_state_input_pair_through_the_layer(machine):
    taken: set[tuple[State, Input]] = set()
    refused: set[tuple[State, Input]] = set()
    for transport in ("udp", "tcp"):
        seen = set()
        paths: deque[tuple[Input, ...]] = deque([()])
        while paths:
            path = paths.popleft()
            start = replay(machine, transport, path)
            situation = (start.state(), frozenset(start.world.layer.deadlines(start.key)))
            if situation in seen:
                continue
            seen.add(situation)
            check_invariants(start.world, [start])
            for input_ in machine.inputs:
                driver = replay(machine, transport, path)
                if not driver.deliverable(input_):
                    continue
                state = driver.state()
                outcome = check_step(driver, input_)
                (taken if outcome == "taken" else refused).add((state, input_))
                if outcome == "taken":
                    paths.append((*path, input_))
    assert taken == set(machine.table)
    local_holes = {
        (state, input_)
        for state in machine.states
        for input_ in machine.inputs
        if input_.kind is InputKind.LOCAL and (state, input_) not in machine.table
    }
    assert local_holes <= refused
    assert refused - local_holes <= {
        (State.TRYING, Input.SEND_1XX),  # RFC 4320, over UDP
        (State.CALLING, Input.CANCEL),  # a second CANCEL
        (State.PROCEEDING, Input.CANCEL),
    }


# -- random walks ----------------------------------------------------------------------------------

NOISE = [
    lambda: build_response(build_request("INVITE", via="SIP/2.0/UDP h;branch=z9hG4bK-x"), 200),
    lambda: build_response(build_request("BYE", via="SIP/2.0/UDP h;branch=z9hG4bK-walk-0"), 481),
    lambda: build_request("ACK", via="SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-walk-2"),
    lambda: build_request("ACK", via="SIP/2.0/UDP 192.0.2.1:5060", to="<sip:b@h>;tag=t"),
    lambda: build_request("CANCEL", via="SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-walk-2"),
    lambda: build_request("OPTIONS", via="SIP/2.0/UDP 192.0.2.1:5060;branch=old", call_id="n"),
    lambda: build_request("INFO", via="SIP/2.0/UDP 192.0.2.1", from_="<sip:a@bad!host>;tag=1"),
]

INPUT_STEP = st.tuples(st.just("input"), st.integers(0, 3), st.integers(0, 20))
WAIT_STEP = st.tuples(st.just("wait"), st.sampled_from([0.0, 0.1, 0.3, 1.0, 4.0, 6.0, 33.0]))
NOISE_STEP = st.tuples(st.just("noise"), st.integers(0, len(NOISE) - 1))
STEPS = st.lists(
    st.one_of(INPUT_STEP, INPUT_STEP, INPUT_STEP, WAIT_STEP, NOISE_STEP), min_size=20, max_size=100
)


@settings(max_examples=300, deadline=None)
@given(transport=st.sampled_from(["udp", "tcp"]), steps=STEPS)
def test_random_walks_agree_with_the_tables_and_leave_nothing_behind(transport, steps):
    world = World()
    drivers = [Driver(world, machine, transport, n) for n, machine in enumerate(MACHINES)]
    for step in steps:
        if step[0] == "input":
            driver = drivers[step[1]]
            input_ = driver.machine.inputs[step[2] % len(driver.machine.inputs)]
            if driver.deliverable(input_):
                check_step(driver, input_)
        elif step[0] == "wait":
            world.now += step[1]
            world.layer.handle_timer(world.now)
            world.drain()
        else:
            world.layer.receive(NOISE[step[1]](), Target("udp", "192.0.2.9", 5060), world.now)
            world.drain()
        check_invariants(world, drivers)

    # After a long wait only transactions waiting for their TU or their peer are left; answer
    # them all and wait again: nothing may remain.
    world.now += 1000.0
    world.layer.handle_timer(world.now)
    world.drain()
    assert world.layer.get_timer() is None
    for driver in drivers:
        if driver.machine is INVITE_CLIENT and driver.state() is State.PROCEEDING:
            check_step(driver, Input.RECV_3XX_6XX)
    for key, request in list(world.requests.items()):
        state = world.layer.state(key)
        if state in (State.TRYING, State.PROCEEDING):
            world.layer.respond(key, build_response(request, 486), world.now)
    world.now += 1000.0
    world.layer.handle_timer(world.now)
    world.drain()
    assert len(world.layer) == 0
    assert world.layer.get_timer() is None
