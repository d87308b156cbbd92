"""A minimal writer of the classic libpcap file format, for SIP messages.

The format is the one documented by tcpdump and Wireshark ("libpcap file format"): a 24-byte
global header (magic ``0xa1b2c3d4``, version 2.4, link type 1 = Ethernet), then for each packet
a 16-byte record header (seconds, microseconds, captured and original length) and the frame.

Each SIP message becomes one Ethernet frame holding an IPv4 or IPv6 packet with a UDP datagram or
a TCP segment, between the message's real addresses and ports, at the time it was logged.
Checksums are computed, so Wireshark, tshark and sngrep read the file without complaint. A
message over TCP is one segment (as captured on the loopback interface, whose MTU is 64 KiB);
sequence numbers run on per direction. TLS messages are written as the plain text they carried,
over TCP.
"""

import hashlib
import ipaddress
import struct
from dataclasses import dataclass
from typing import BinaryIO

LINKTYPE_ETHERNET = 1
_MAGIC = 0xA1B2C3D4
_SNAPLEN = 262144
_TCP_PSH_ACK = 0x18


@dataclass(frozen=True, slots=True)
class Endpoint:
    """An IP address and port."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> tuple[str, "Endpoint"]:
        """``udp:1.2.3.4:5060`` or ``tcp:[::1]:5060`` -> ("udp", Endpoint)."""
        transport, _, rest = text.partition(":")
        if rest.startswith("["):
            host, _, port = rest[1:].partition("]:")
        else:
            host, _, port = rest.rpartition(":")
        return transport.lower(), cls(host, int(port))


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _mac(address: bytes) -> bytes:
    """A locally administered MAC address derived from an IP address."""
    return b"\x02" + hashlib.blake2s(address, digest_size=5).digest()


class PcapWriter:
    """Writes SIP messages as packets to a binary file."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._ip_id = 0
        self._tcp_seq: dict[tuple[bytes, int, bytes, int], int] = {}
        out.write(struct.pack("<IHHiIII", _MAGIC, 2, 4, 0, 0, _SNAPLEN, LINKTYPE_ETHERNET))

    def write(
        self, time: float, transport: str, source: Endpoint, destination: Endpoint, data: bytes
    ) -> None:
        """One message from ``source`` to ``destination`` at Unix time ``time``."""
        src = ipaddress.ip_address(source.host)
        dst = ipaddress.ip_address(destination.host)
        if src.version != dst.version:
            raise ValueError(f"cannot mix IPv{src.version} and IPv{dst.version} in one packet")
        src_b, dst_b = src.packed, dst.packed
        pseudo_prefix = src_b + dst_b
        if transport == "udp":
            proto = 17
            length = 8 + len(data)
            header = struct.pack("!HHHH", source.port, destination.port, length, 0)
            pseudo = pseudo_prefix + (
                struct.pack("!BBH", 0, proto, length)
                if src.version == 4
                else struct.pack("!IxxxB", length, proto)
            )
            checksum = _checksum(pseudo + header + data) or 0xFFFF
            segment = header[:6] + struct.pack("!H", checksum) + data
        else:
            proto = 6
            flow = (src_b, source.port, dst_b, destination.port)
            back = (dst_b, destination.port, src_b, source.port)
            seq = self._tcp_seq.get(flow, 1)
            ack = self._tcp_seq.get(back, 1)
            self._tcp_seq[flow] = (seq + len(data)) & 0xFFFFFFFF
            header = struct.pack(
                "!HHIIBBHHH", source.port, destination.port, seq, ack, 5 << 4, _TCP_PSH_ACK,
                65535, 0, 0,
            )  # fmt: skip
            length = len(header) + len(data)
            pseudo = pseudo_prefix + (
                struct.pack("!BBH", 0, proto, length)
                if src.version == 4
                else struct.pack("!IxxxB", length, proto)
            )
            checksum = _checksum(pseudo + header + data)
            segment = header[:16] + struct.pack("!H", checksum) + header[18:] + data
        if src.version == 4:
            self._ip_id = (self._ip_id + 1) & 0xFFFF
            total = 20 + len(segment)
            if total > 0xFFFF:
                raise ValueError("message too large for one IPv4 packet")
            ip = struct.pack(
                "!BBHHHBBH4s4s", 0x45, 0, total, self._ip_id, 0x4000, 64, proto, 0, src_b, dst_b
            )
            ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
            ethertype = 0x0800
        else:
            ip = struct.pack("!IHBB16s16s", 6 << 28, len(segment), proto, 64, src_b, dst_b)
            ethertype = 0x86DD
        frame = _mac(dst_b) + _mac(src_b) + struct.pack("!H", ethertype) + ip + segment
        seconds = int(time)
        micros = min(round((time - seconds) * 1_000_000), 999_999)
        self._out.write(struct.pack("<IIII", seconds, micros, len(frame), len(frame)))
        self._out.write(frame)
