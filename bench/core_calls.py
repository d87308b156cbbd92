"""CPU per call in the pure UA core, without sockets: SIPp's uac call flow fed in memory.

Each call is SIPp's built-in uac: INVITE (with SDP), ACK, BYE, each with fresh Call-ID, tags and
branches; the core auto-answers. The clock moves by 1/RATE per call and the core's timers fire
when due, so that after 32 s of simulated time the ended calls' transactions expire as fast as
new ones come, as in a server at that rate (the timer work is counted). Prints microseconds of
core time per call, and where it goes with --profile.

Run: .venv/bin/python bench/core_calls.py [--calls N] [--rate R] [--profile]
"""

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.sip import Target
from engine.sip.ids import CountingIds
from engine.ua.config import UaConfig
from engine.ua.core import UserAgent
from engine.ua.policy import IncomingPolicy

PEER = Target("udp", "127.0.0.1", 5061)
SDP = (
    "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)
HEAD = (
    "{method} sip:service@127.0.0.1:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-{n}-{step}\r\n"
    "From: sipp <sip:sipp@127.0.0.1:5061>;tag={n}SIPpTag001\r\n"
    "To: service <sip:service@127.0.0.1:5060>{to_tag}\r\n"
    "Call-ID: {n}-4242@127.0.0.1\r\n"
    "CSeq: {cseq} {method}\r\n"
    "Contact: sip:sipp@127.0.0.1:5061\r\n"
    "Max-Forwards: 70\r\n"
    "Subject: Performance Test\r\n"
)


def message(method: str, n: int, step: int, cseq: int, to_tag: str = "", body: str = "") -> bytes:
    head = HEAD.format(method=method, n=n, step=step, cseq=cseq, to_tag=to_tag)
    if body:
        head += "Content-Type: application/sdp\r\n"
    return (head + f"Content-Length: {len(body)}\r\n\r\n" + body).encode()


def run(calls: int, rate: float = 1000.0) -> float:
    ua = UserAgent(
        UaConfig(
            local=(Target("udp", "127.0.0.1", 5060),),
            policy=IncomingPolicy.from_shortcut("auto-answer"),
        ),
        CountingIds("bench"),
    )
    now = 1000.0
    spent = 0.0
    for n in range(calls):
        invite = message("INVITE", n, 1, 1, body=SDP)
        t0 = time.perf_counter()
        ua.receive(invite, PEER, now)
        out = ua.datagrams_to_send()
        spent += time.perf_counter() - t0
        ok = next(o.data for o in out if o.data.startswith(b"SIP/2.0 200"))
        tag = ok.split(b"To: ", 1)[1].split(b"\r\n", 1)[0].split(b";tag=", 1)[1].decode()
        ack = message("ACK", n, 2, 1, to_tag=f";tag={tag}")
        bye = message("BYE", n, 3, 2, to_tag=f";tag={tag}")
        t0 = time.perf_counter()
        ua.receive(ack, PEER, now)
        ua.receive(bye, PEER, now)
        ua.datagrams_to_send()
        while ua.next_event() is not None:
            pass
        now += 1 / rate
        deadline = ua.get_timer()
        if deadline is not None and deadline <= now:
            ua.handle_timer(now)
            ua.datagrams_to_send()
        spent += time.perf_counter() - t0
    assert len(ua) == 0, "every call must have ended"
    return spent / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=40000)
    parser.add_argument("--rate", type=float, default=1000.0, help="calls per simulated second")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    run(200)  # warm up
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        run(args.calls, args.rate)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    else:
        spent = min(run(args.calls, args.rate) for _ in range(3))
        print(f"core CPU per call (INVITE, ACK, BYE) at {args.rate:g} calls/s: {spent:.0f} us")


if __name__ == "__main__":
    main()
