"""Flows turned back into the packets they count, written as a classic libpcap file (Ethernet, microseconds),
built with numpy in one byte buffer: no Python object per packet.

Each packet is an Ethernet frame with an IPv4 header (correct total length, identification, fragment offset and
header checksum) and its TCP or UDP header (ports, TCP flags and sequence numbers; the transport checksum is not
computed) or ICMP header; later fragments of a fragmented datagram carry no transport header. The payload is
not captured: frames are cut at :data:`SNAPLEN` bytes, as ``tcpdump -s 96`` would, so the original length of
every packet is recorded and its headers are whole. IPv6 flows are left out (stated in the truth).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

from floodwitness.simulate.flowtable import ACK, FIN, ICMP, PSH, SYN, TCP, UDP, Flows

if TYPE_CHECKING:
    from pathlib import Path

SNAPLEN: Final = 96
LINKTYPE_ETHERNET: Final = 1
_ROUTER_MAC: Final = bytes.fromhex("00005e0001c8")
_SERVER_MAC: Final = bytes.fromhex("525400a1b2c3")
U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]


@dataclass
class Packets:
    """One row per packet."""

    t: npt.NDArray[np.float64]
    src: I64
    dst: I64
    sport: I64
    dport: I64
    proto: I64
    flags: I64
    length: I64  # IP total length
    ipid: I64
    frag: I64  # flags and fragment offset field (MF 0x2000 | offset in 8-byte units)
    seq: I64
    udp_length: I64  # the whole datagram's UDP length (also on its first fragment)

    def __len__(self) -> int:
        return int(self.t.shape[0])


def per_second(flows: Flows, n_sec: int) -> npt.NDArray[np.float64]:
    """Packets per second of ``flows`` (each flow's packets spread evenly over its seconds)."""
    lo = np.clip(np.floor(flows.start).astype(np.int64), 0, n_sec)
    hi = np.clip(np.floor(flows.end).astype(np.int64) + 1, 1, n_sec + 1)
    rate = (flows.packets * flows.nfrag) / np.maximum(hi - lo, 1)
    delta = np.zeros(n_sec + 2)
    np.add.at(delta, lo, rate)
    np.add.at(delta, hi, -rate)
    return np.cumsum(delta)[:n_sec]


def window(load: npt.NDArray[np.float64], center: int, budget: int, most: int) -> tuple[int, int]:
    """The widest window of seconds ``[lo, hi)`` around ``center`` (up to ``most`` seconds each side) whose packets
    stay within ``budget``."""
    n = load.shape[0]
    cum = np.concatenate([[0.0], np.cumsum(load)])
    best = (center, min(center + 1, n))
    for half in range(1, most + 1):
        lo, hi = max(0, center - half), min(n, center + half)
        if cum[hi] - cum[lo] > budget:
            break
        best = (lo, hi)
    return best


def expand(flows: Flows, lo: float, hi: float, rng: np.random.Generator) -> Packets:
    """The IPv4 packets of ``flows`` that fall in ``[lo, hi)`` seconds: each flow's datagrams evenly spaced from its
    start to its end, a fragmented datagram as its fragments, TCP sessions opening with SYN (SYN-ACK from the
    server side) and closing with FIN."""
    live = (flows.src >= 0) & (flows.dst >= 0) & (flows.end >= lo) & (flows.start < hi)
    f = flows.take(live)
    p = np.maximum(f.packets, 1)
    span = np.maximum(f.end - f.start, 0.0)
    step = np.where(p > 1, span / np.maximum(p - 1, 1), 0.0)
    j0 = np.where(step > 0, np.ceil((lo - f.start) / np.where(step > 0, step, 1.0)), 0).clip(0, None).astype(np.int64)
    j1 = np.where(step > 0, np.ceil((hi - f.start) / np.where(step > 0, step, 1.0)), p).clip(None, p).astype(np.int64)
    j1 = np.where((step == 0) & ((f.start < lo) | (f.start >= hi)), 0, j1)
    j0 = np.minimum(j0, j1)
    count = (j1 - j0) * f.nfrag
    row = np.repeat(np.arange(len(f)), count)
    k = np.arange(row.shape[0]) - np.repeat(np.cumsum(count) - count, count)
    fragn = f.nfrag[row].astype(np.int64)
    j = j0[row] + k // fragn  # datagram index within the flow
    part = k % fragn  # fragment index within the datagram
    t = f.start[row] + j * step[row] + part * 1e-5
    size = _sizes(f, row, j, p)
    length = np.where(fragn > 1, np.where(part < fragn - 1, 1500, 20 + (size - 20) - 1480 * (fragn - 1)), size)
    frag = np.where(fragn > 1, np.where(part < fragn - 1, 0x2000, 0) | (part * 185), 0)
    flags = _packet_flags(f, row, j, p)
    seq = (f.src[row] * 2654435761 + f.sport[row].astype(np.int64) * 40503) % (1 << 32) + j * 1448
    ipid = (rng.integers(0, 65536, size=len(f))[row] + j) % 65536
    order = np.argsort(t, kind="stable")
    cols = {"t": t, "src": f.src[row], "dst": f.dst[row], "sport": f.sport[row].astype(np.int64),
            "dport": f.dport[row].astype(np.int64), "proto": f.proto[row].astype(np.int64), "flags": flags,
            "length": length.astype(np.int64), "ipid": ipid, "frag": frag.astype(np.int64), "seq": seq % (1 << 32),
            "udp_length": size - 20}
    return Packets(**{name: v[order] for name, v in cols.items()})


def _sizes(f: Flows, row: I64, j: I64, p: I64) -> I64:
    """IP length of each datagram: a TCP session's first and last packets are bare (40 bytes), the rest share the
    remaining bytes; other flows share their bytes evenly (the remainder on the first datagrams)."""
    session = (f.proto == TCP) & ((f.flags & (SYN | FIN)) == (SYN | FIN)) & (p >= 3)
    body = np.where(session, f.bytes - 80, f.bytes)
    n_body = np.where(session, p - 2, p)
    each, rem = body // np.maximum(n_body, 1), body % np.maximum(n_body, 1)
    i = np.where(session[row], j - 1, j)
    size = each[row] + (i < rem[row])
    edge = session[row] & ((j == 0) | (j == p[row] - 1))
    return np.where(edge, 40, size).astype(np.int64)


def _packet_flags(f: Flows, row: I64, j: I64, p: I64) -> I64:
    flow_flags = f.flags[row].astype(np.int64)
    first, last = j == 0, (j == p[row] - 1) & (p[row] > 1)
    server = f.sport[row] < f.dport[row]
    opening = np.where(server, SYN | ACK, SYN)
    out = flow_flags & ~(SYN | FIN)
    out = np.where(((flow_flags & PSH) != 0) & (j % 2 == 1), out, out & ~PSH)
    out = np.where(first & ((flow_flags & SYN) != 0), opening & (flow_flags | SYN), out)
    out = np.where(last & ((flow_flags & FIN) != 0), FIN | (flow_flags & ACK), out)
    return np.where(f.proto[row] == TCP, np.where(out == 0, flow_flags, out), 0)


def _put(buf: U8, at: I64, value: I64, width: int) -> None:
    """Write ``value`` big-endian, ``width`` bytes, at each offset ``at``."""
    for b in range(width):
        buf[at + b] = (value >> (8 * (width - 1 - b))) & 255


def _put_le(buf: U8, at: I64, value: I64) -> None:
    for b in range(4):
        buf[at + b] = (value >> (8 * b)) & 255


def _checksum(words: list[I64]) -> I64:
    total = np.sum(np.stack(words), axis=0)
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return np.asarray(~total & 0xFFFF, dtype=np.int64)


def _transport(buf: U8, l4: I64, pk: Packets, first: npt.NDArray[np.bool_]) -> None:
    """TCP and UDP headers with their checksums (over the pseudo-header, the header and a zero payload: the
    payload is not captured, and zeros are what it is taken to be)."""
    tcp = first & (pk.proto == TCP)
    at, seq = l4[tcp], pk.seq[tcp]
    ack = np.where((pk.flags[tcp] & ACK) != 0, (seq * 7 + 1) % (1 << 32), 0)
    word6 = 0x5000 | pk.flags[tcp]
    window = np.full(at.shape[0], 64240, dtype=np.int64)
    _put(buf, at + 4, seq, 4)
    _put(buf, at + 8, ack, 4)
    _put(buf, at + 12, word6, 2)
    _put(buf, at + 14, window, 2)
    src, dst, tlen = pk.src[tcp], pk.dst[tcp], pk.length[tcp] - 20
    _put(buf, at + 16, _checksum([src >> 16, src & 0xFFFF, dst >> 16, dst & 0xFFFF, np.full_like(src, TCP), tlen,
                                  pk.sport[tcp], pk.dport[tcp], seq >> 16, seq & 0xFFFF, ack >> 16, ack & 0xFFFF,
                                  word6, window]), 2)
    udp = first & (pk.proto == UDP)
    at, ulen = l4[udp], pk.udp_length[udp]
    _put(buf, at + 4, ulen, 2)
    src, dst = pk.src[udp], pk.dst[udp]
    sum_ = _checksum([src >> 16, src & 0xFFFF, dst >> 16, dst & 0xFFFF, np.full_like(src, UDP), ulen,
                      pk.sport[udp], pk.dport[udp], ulen])
    _put(buf, at + 6, np.where(sum_ == 0, 0xFFFF, sum_), 2)


def write_pcap(path: Path, pk: Packets, t0_epoch: float) -> int:
    """Write ``pk`` (time ordered) as a libpcap file; returns the number of packets."""
    n = len(pk)
    wire = 14 + pk.length
    cap = np.minimum(wire, SNAPLEN)
    rec = 16 + cap
    off = np.concatenate([[0], np.cumsum(rec)[:-1]]).astype(np.int64) if n else np.zeros(0, dtype=np.int64)
    buf = np.zeros(int(rec.sum()), dtype=np.uint8)
    ts = np.round((t0_epoch + pk.t) * 1e6).astype(np.int64)
    _put_le(buf, off, ts // 1_000_000)
    _put_le(buf, off + 4, ts % 1_000_000)
    _put_le(buf, off + 8, cap)
    _put_le(buf, off + 12, wire)
    eth = off + 16
    for i, byte in enumerate(_ROUTER_MAC + _SERVER_MAC + b"\x08\x00"):
        buf[eth + i] = byte  # (the same two MACs on every frame: the capture sits on the server's uplink)
    ip = eth + 14
    ttl = 40 + ((pk.src * 2654435761) >> 13) % 88
    words = [np.full(n, 0x4500, dtype=np.int64), pk.length, pk.ipid, pk.frag, (ttl << 8) | pk.proto,
             pk.src >> 16, pk.src & 0xFFFF, pk.dst >> 16, pk.dst & 0xFFFF]
    for k, value in enumerate(words[:5]):
        _put(buf, ip + 2 * k, value, 2)
    _put(buf, ip + 10, _checksum(words), 2)
    _put(buf, ip + 12, pk.src, 4)
    _put(buf, ip + 16, pk.dst, 4)
    l4 = ip + 20
    first = (pk.frag & 0x1FFF) == 0
    ported = first & np.isin(pk.proto, (TCP, UDP))
    _put(buf, l4[ported], pk.sport[ported], 2)
    _put(buf, l4[ported] + 2, pk.dport[ported], 2)
    _transport(buf, l4, pk, first)
    icmp = first & (pk.proto == ICMP)
    _put(buf, l4[icmp], pk.dport[icmp], 2)  # type and code
    header = np.array([0xA1B2C3D4, 0x00040002, 0, 0, SNAPLEN, LINKTYPE_ETHERNET], dtype="<u4").tobytes()
    with path.open("wb") as fh:
        fh.write(header)
        fh.write(buf.tobytes())
    return n
