"""The floor under the engine: what asyncio's UDP machinery alone costs per SIPp call.

A canned responder does no SIP work: it answers SIPp's uac INVITE and BYE with a 200 built by
slicing the request's lines, and ignores the ACK. It runs two ways, in a fresh process each:

- ``protocol``: an asyncio ``DatagramProtocol`` from ``loop.create_datagram_endpoint``
  (how the engine's UDP listener worked before);
- ``reader``: a non-blocking socket watched with ``loop.add_reader``, reading every datagram
  already queued per wake-up, and answering with ``sock.sendto`` (how it works now,
  engine/transport/udp.py).

For each, SIPp places RATE x SECONDS calls and the responder's CPU time (utime + stime of
/proc/PID/stat) is divided by the calls. Everything stays on 127.0.0.1.

    .venv/bin/python bench/udp_floor.py [--rate 1000] [--seconds 10]
"""

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from child_processes import (
    HOST,
    ROOT,
    free_udp_port,
    sipp_missing,
    spawn,
    stop,
    udp_port_bound,
    work_folder,
)

MODES = ("protocol", "reader")
KEPT = (b"via:", b"from", b"to: ", b"call", b"cseq")


def answer(data: bytes) -> bytes | None:
    """A 200 for anything but an ACK, with Via, From, To (tagged), Call-ID and CSeq copied."""
    if data.startswith(b"ACK"):
        return None
    lines = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]
    kept = [line + b";tag=floor" if line.startswith(b"To:") else line
            for line in lines if line[:4].lower() in KEPT]  # fmt: skip
    head = b"\r\n".join([b"SIP/2.0 200 OK", *kept, b"Contact: <sip:floor@127.0.0.1>"])
    return head + b"\r\nContent-Length: 0\r\n\r\n"


class Responder(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple) -> None:  # type: ignore[override]
        out = answer(data)
        if out:
            self.transport.sendto(out, addr)  # type: ignore[attr-defined]


async def serve(mode: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    if mode == "protocol":
        await loop.create_datagram_endpoint(Responder, local_addr=(HOST, port))
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((HOST, port))
        sock.setblocking(False)

        def readable() -> None:
            for _ in range(64):
                try:
                    data, addr = sock.recvfrom(65536)
                except BlockingIOError:
                    return
                out = answer(data)
                if out:
                    sock.sendto(out, addr)

        loop.add_reader(sock.fileno(), readable)
    await asyncio.Event().wait()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(mode: str, rate: int, seconds: int, work: Path) -> float:
    port = free_udp_port()
    log = work / f"{mode}.log"
    server = spawn([sys.executable, __file__, "--serve", mode, str(port)], log, ROOT)
    try:
        deadline = time.monotonic() + 10
        while not udp_port_bound(port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {mode} responder did not start (see {log})")
            time.sleep(0.05)
        before = cpu_seconds(server.pid)
        calls = rate * seconds
        sipp = subprocess.run(
            ["sipp", f"{HOST}:{port}", "-sn", "uac", "-i", HOST, "-p", str(free_udp_port()),
             "-r", str(rate), "-m", str(calls), "-l", str(calls), "-nostdin",
             "-timeout", f"{seconds * 6}s"],
            cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
        )  # fmt: skip
        spent = cpu_seconds(server.pid) - before
        if sipp.returncode != 0:
            print(f"  {mode}: SIPp exited with {sipp.returncode} (some calls failed)")
        return spent / calls * 1e6
    finally:
        stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--serve", nargs=2, metavar=("MODE", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve[0], int(args.serve[1])))
        return
    if sipp_missing("udp_floor"):
        sys.exit(2)
    with work_folder("udp-floor", None) as work:
        print(f"canned 200 responder, SIPp uac at {args.rate} calls/s for {args.seconds} s")
        for mode in MODES:
            cost = measure(mode, args.rate, args.seconds, work)
            print(f"  {mode:9} {cost:6.0f} us of responder CPU per call")


if __name__ == "__main__":
    main()
