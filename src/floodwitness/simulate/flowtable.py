"""Columnar network flows for the network-level scenarios: one row per unidirectional flow record, as a router's
NetFlow exporter (or nfdump) reports it.

Addresses are integers: an IPv4 address as itself, an IPv6 address as ``-(k + 1)`` where ``k`` indexes a table of
IPv6 texts (:attr:`Flows.v6`, shared by every block of one scenario). Times are seconds from the log's start.
Everything is numpy arrays: millions of flows cost a few dozen bytes each and no Python object per flow.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from collections.abc import Sequence

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
I16 = npt.NDArray[np.int16]
I8 = npt.NDArray[np.int8]

TCP: Final = 6
UDP: Final = 17
ICMP: Final = 1
FIN: Final = 1
SYN: Final = 2
RST: Final = 4
PSH: Final = 8
ACK: Final = 16
#: the flags of a completed TCP connection, either direction
SESSION: Final = FIN | SYN | PSH | ACK

# What a flow is (never written; the truth is computed from it).
BACKGROUND: Final = 0  # the site's ordinary clients (the access log's requests)
NOISE: Final = 1  # the server's own lookups, monitors, scanners, backscatter
BENIGN_BULK: Final = 2  # a large benign transfer
ATTACK: Final = 3  # a vector of the attack (``vector`` says which)


@dataclass
class Flows:
    """A block of flow records, not necessarily in time order."""

    start: F64
    end: F64
    src: I64
    dst: I64
    sport: I32  # 0 for protocols without ports
    dport: I32  # ICMP: type * 256 + code (as nfdump prints it)
    proto: I16
    flags: I16
    packets: I64  # as reported: sampled packets times the sampling rate
    bytes: I64  # IP bytes, as reported
    nfrag: I16  # IP fragments per datagram (1: not fragmented); the bytes are the datagrams' IP bytes
    kind: I8  # BACKGROUND, NOISE, BENIGN_BULK or ATTACK
    vector: I8  # index of the attack vector (-1: none)

    def __len__(self) -> int:
        return int(self.start.shape[0])

    def take(self, idx: npt.NDArray[np.intp] | npt.NDArray[np.bool_]) -> Flows:
        """The rows at ``idx`` (an index array or a boolean mask)."""
        return Flows(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    @staticmethod
    def concat(blocks: Sequence[Flows]) -> Flows:
        """All rows of ``blocks``, one after the other."""
        if not blocks:
            return make(np.zeros(0), np.zeros(0), src=0, dst=0, sport=0, dport=0, proto=UDP, packets=1, nbytes=28,
                        kind=NOISE)
        return Flows(**{f.name: np.concatenate([getattr(b, f.name) for b in blocks]) for f in fields(Flows)})


_DTYPES: Final[dict[str, type[np.generic]]] = {
    "start": np.float64, "end": np.float64, "src": np.int64, "dst": np.int64, "sport": np.int32,
    "dport": np.int32, "proto": np.int16, "flags": np.int16, "packets": np.int64, "bytes": np.int64,
    "nfrag": np.int16, "kind": np.int8, "vector": np.int8,
}


def make(start: npt.ArrayLike, end: npt.ArrayLike, *, src: npt.ArrayLike, dst: npt.ArrayLike, sport: npt.ArrayLike,
         dport: npt.ArrayLike, proto: npt.ArrayLike, packets: npt.ArrayLike, nbytes: npt.ArrayLike,
         kind: int, flags: npt.ArrayLike = 0, nfrag: npt.ArrayLike = 1, vector: npt.ArrayLike = -1) -> Flows:
    """A block of ``len(start)`` flows; every other column is a scalar or an array of that length."""
    first = np.asarray(start, dtype=np.float64)
    n = int(first.shape[0])
    values = {"start": first, "end": end, "src": src, "dst": dst, "sport": sport, "dport": dport, "proto": proto,
              "flags": flags, "packets": packets, "bytes": nbytes, "nfrag": nfrag, "kind": kind, "vector": vector}
    cols: dict[str, npt.NDArray[np.generic]] = {}
    for name, value in values.items():
        arr = np.asarray(value, dtype=_DTYPES[name])
        if arr.ndim == 0:
            arr = np.full(n, arr, dtype=_DTYPES[name])
        elif arr.shape[0] != n:
            raise ValueError(f"column {name} has {arr.shape[0]} rows, expected {n}")
        cols[name] = arr
    return Flows(**cols)  # type: ignore[arg-type]


def sample(rng: np.random.Generator, flows: Flows, rate: int) -> Flows:
    """What a 1:``rate`` packet-sampling exporter reports of ``flows`` (nfcapd then multiplies the counts by the
    rate): each packet is kept with probability 1/rate, flows with no packet kept vanish, the counts of the rest
    are the kept packets times the rate, a flow of one kept packet is one instant, and a TCP flag of a control
    packet (SYN, FIN) is seen only when one of its packets was kept."""
    if rate <= 1:
        return flows
    kept = rng.binomial(flows.packets, 1.0 / rate)
    has = kept > 0
    out = flows.take(has)
    k = kept[has]
    real = np.maximum(out.packets, 1)
    out.bytes = np.maximum((out.bytes * k) // real, 20 * k) * rate
    out.packets = k * rate
    one = k == 1
    when = out.start + rng.random(out.start.shape[0]) * (out.end - out.start)
    out.start = np.where(one, when, out.start)
    out.end = np.where(one, when, out.end)
    share = k / real
    control = (out.proto == TCP) & (out.packets > 0)
    lose = control[:, None] & (rng.random((k.shape[0], 3)) >= share[:, None])
    drop = np.where(lose[:, 0], SYN, 0) | np.where(lose[:, 1], FIN, 0) | np.where(lose[:, 2], PSH, 0)
    multi = real > 1  # a one-packet flow keeps its one packet's flags
    out.flags = np.where(multi, out.flags & ~drop, out.flags).astype(np.int16)
    return out


def ephemeral(rng: np.random.Generator, n: int) -> I32:
    """``n`` client source ports from the Linux ephemeral range."""
    return rng.integers(32768, 61000, size=n).astype(np.int32)


def ipv4(text: str) -> int:
    """The integer of a dotted quad."""
    a, b, c, d = (int(x) for x in text.split("."))
    return (a << 24) | (b << 16) | (c << 8) | d


def v4_text(ip: int) -> str:
    return f"{ip >> 24}.{(ip >> 16) & 255}.{(ip >> 8) & 255}.{ip & 255}"


def address_codes(texts: Sequence[str], v6: list[str]) -> I64:
    """The integer code of each address text (IPv6 ones appended to ``v6`` when new): one entry per distinct
    address of a string table, not per flow."""
    index = {s: k for k, s in enumerate(v6)}
    out = np.empty(len(texts), dtype=np.int64)
    for i, s in enumerate(texts):
        if ":" in s:
            k = index.get(s)
            if k is None:
                k = index[s] = len(v6)
                v6.append(s)
            out[i] = -(k + 1)
        else:
            out[i] = ipv4(s)
    return out


#: Bogon space (RFC 6890 and friends) as (first address, prefix length): what spoofed floods hit by chance.
BOGONS: Final[tuple[tuple[str, int], ...]] = (
    ("0.0.0.0", 8),  # noqa: S104 - a prefix, not a bind address
    ("10.0.0.0", 8), ("100.64.0.0", 10), ("127.0.0.0", 8), ("169.254.0.0", 16),
    ("172.16.0.0", 12), ("192.0.0.0", 24), ("192.0.2.0", 24), ("192.168.0.0", 16), ("198.18.0.0", 15),
    ("198.51.100.0", 24), ("203.0.113.0", 24), ("224.0.0.0", 3),
)


def is_bogon(ips: I64) -> npt.NDArray[np.bool_]:
    """Which IPv4 addresses lie in bogon space."""
    out = np.zeros(ips.shape[0], dtype=bool)
    for net, plen in BOGONS:
        out |= (ips >= 0) & ((ips >> (32 - plen)) == (ipv4(net) >> (32 - plen)))
    return out


def spoofed(rng: np.random.Generator, n: int, bogon_share: float) -> I64:
    """``n`` random source addresses as a spoofing flood tool draws them: uniform over the 32-bit space (which
    hits bogon space about 14 % of the time), then a ``bogon_share`` of them forced into bogon blocks."""
    ips = rng.integers(1 << 24, 0xE0000000, size=n, dtype=np.int64)
    force = rng.random(n) < bogon_share
    if force.any():
        pick = rng.integers(0, len(BOGONS) - 1, size=int(force.sum()))
        base = np.array([ipv4(b[0]) for b in BOGONS[:-1]], dtype=np.int64)[pick]
        size = np.array([1 << (32 - b[1]) for b in BOGONS[:-1]], dtype=np.int64)[pick]
        ips[force] = base + rng.integers(0, size)
    return ips


def per_second_counts(rng: np.random.Generator, pps: F64) -> I64:
    """Poisson packet counts per second for a rate of ``pps[k]`` in second ``k``."""
    return rng.poisson(np.maximum(pps, 0.0)).astype(np.int64)


def instants(rng: np.random.Generator, counts: I64, t0: float) -> F64:
    """``counts[k]`` uniform instants in second ``t0 + k`` each (sorted within the second)."""
    base = np.repeat(t0 + np.arange(counts.shape[0], dtype=np.float64), counts)
    return base + rng.random(base.shape[0])
