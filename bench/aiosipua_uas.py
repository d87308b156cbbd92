"""A minimal auto-answer UAS written with aiosipua 0.7.1: the reference peer of ``bench/cps.py``.

Every initial INVITE is answered 200 OK with an SDP answer negotiated from the offer (first
common codec of PCMU/PCMA, this host's address, an even RTP port from 20000-29998 that is only
written in the SDP, never opened); an offer with no common codec gets 488. ACK, BYE, CANCEL and
the 2xx retransmission until the ACK are aiosipua's own. Listens on UDP only, prints one line
``aiosipua UAS listening on udp:HOST:PORT`` when ready, and stops on SIGINT or SIGTERM.

    .venv/bin/python bench/aiosipua_uas.py [--listen 127.0.0.1:5060] [--log-level warning]
"""

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from aiosipua import IncomingCall, SdpNegotiationError, SipUAS, UdpSipTransport, negotiate_sdp

RTP_FIRST, RTP_LAST = 20000, 29998


def host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


class AutoAnswer:
    """The on_invite callback: answer at once, with a fresh RTP port in the SDP."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.next_port = RTP_FIRST
        self.answered = 0

    def rtp_port(self) -> int:
        port = self.next_port
        self.next_port = port + 2 if port + 2 <= RTP_LAST else RTP_FIRST
        return port

    def __call__(self, call: IncomingCall) -> None:
        if call.sdp_offer is None:
            call.accept()
        else:
            try:
                answer, _ = negotiate_sdp(call.sdp_offer, self.host, self.rtp_port())
            except SdpNegotiationError:
                call.reject(488, "Not Acceptable Here")
                return
            call.accept(answer)
        self.answered += 1


async def serve(host: str, port: int) -> int:
    transport = UdpSipTransport(local_addr=(host, port))
    uas = SipUAS(transport, user_agent="aiosipua-bench")
    answer = AutoAnswer(host)
    uas.on_invite = answer
    await uas.start()
    udp = transport._udp_transport  # the bound address (port 0)
    bound = udp.get_extra_info("sockname") if udp is not None else (host, port)
    print(f"aiosipua UAS listening on udp:{bound[0]}:{bound[1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await uas.stop()
    logging.getLogger("aiosipua_uas").info("answered %d calls", answer.answered)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--listen",
        type=host_port,
        default=("127.0.0.1", 5060),
        metavar="HOST:PORT",
        help="UDP address to listen on (default 127.0.0.1:5060; port 0 picks a free one)",
    )
    parser.add_argument(
        "--log-level", default="warning", choices=("debug", "info", "warning", "error")
    )
    args = parser.parse_args()
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return asyncio.run(serve(*args.listen))


if __name__ == "__main__":
    sys.exit(main())
