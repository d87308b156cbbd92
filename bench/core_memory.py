"""Python memory per established session in the pure core (tracemalloc), no sockets.

Feeds SIPp's uac INVITE and ACK for N calls to an auto-answering core, lets every transaction
expire (80 s on the manual clock), and prints the bytes still allocated per session and the
lines that hold them. RSS (bench/memory.py) is higher: it counts the transactions alive at the
time and what the allocator keeps. Run: .venv/bin/python bench/core_memory.py
"""

import gc
import sys
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import core_calls as cc

from engine.sip import Target
from engine.sip.ids import CountingIds
from engine.ua.config import UaConfig
from engine.ua.core import UserAgent
from engine.ua.policy import IncomingPolicy


def main(calls: int = 5000) -> None:
    ua = UserAgent(
        UaConfig(
            local=(Target("udp", "127.0.0.1", 5060),),
            policy=IncomingPolicy.from_shortcut("auto-answer"),
        ),
        CountingIds("m"),
    )
    now = 1000.0
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.take_snapshot()
    N = calls
    for n in range(N):
        ua.receive(cc.message("INVITE", n, 1, 1, body=cc.SDP), cc.PEER, now)
        out = ua.datagrams_to_send()
        ok = next(o.data for o in out if o.data.startswith(b"SIP/2.0 200"))
        tag = ok.split(b"To: ", 1)[1].split(b"\r\n", 1)[0].split(b";tag=", 1)[1].decode()
        ua.receive(cc.message("ACK", n, 2, 1, to_tag=f";tag={tag}"), cc.PEER, now)
        while ua.next_event():
            pass
    for t in range(1, 80):
        ua.handle_timer(now + t)
    ua.datagrams_to_send()
    while ua.next_event():
        pass
    gc.collect()
    snap = tracemalloc.take_snapshot()
    stats = snap.compare_to(base, "lineno")
    total = sum(s.size_diff for s in stats)
    print(f"sessions {len(ua)} txns {len(ua.txn)}: {total / N / 1024:.2f} KiB per session")
    for s in stats[:12]:
        print(f"{s.size_diff / N:8.0f} B  {s.traceback}")


if __name__ == "__main__":
    main()
