"""Network-level floods as flow records, and the heavy benign transfer that must not be taken for one.

Each generator draws the REAL packets per second of its vector (a ramp, second-to-second jitter, dips), then what
a 1:``sampling`` exporter reports of them (nfcapd multiplies the counts back up), and returns the reported flows
with the real totals: the truth keeps the real counts, the files hold what a router would have seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from floodwitness.simulate import flowtable as ft
from floodwitness.simulate.flowtable import F64, I64, Flows, make
from floodwitness.simulate.netflows import ACTIVE_TIMEOUT, split_active

#: UDP services misused for reflection: source port, IP length of one answer, and the answers one spoofed
#: request brings (NTP monlist: up to 100 datagrams of 468 bytes; DNS ANY/RRSIG: one large, fragmented answer)
SERVICES: dict[str, dict[str, Any]] = {
    "ntp": {"port": 123, "size": (468, 468), "name": "NTP"},
    "dns": {"port": 53, "size": (1800, 4100), "name": "DNS"},
}


@dataclass
class Drawn:
    """A vector's flows as exported, with its real packets (datagrams) per second from ``t0``, its real IP packets
    (fragments counted) and bytes, and how many sources really sent it."""

    flows: Flows
    t0: float
    per_second: I64
    real_bytes: int
    sources_real: int
    real_packets: int = -1  # -1: the sum of ``per_second`` (no fragments)

    @property
    def packets(self) -> int:
        return int(self.per_second.sum()) if self.real_packets < 0 else self.real_packets


def shape(rng: np.random.Generator, length: int, mean: float) -> F64:
    """Packets per second over ``length`` seconds averaging about ``mean``: a ramp of 2-20 seconds, lognormal
    jitter from second to second, a few short dips (the attacker's tooling restarting)."""
    ramp = float(rng.uniform(2.0, 20.0))
    level = np.clip((np.arange(length) + 1.0) / ramp, 0.0, 1.0)
    jitter = rng.lognormal(0.0, 0.2, size=length)
    dips = np.ones(length)
    for _ in range(int(rng.integers(0, 4))):
        at = int(rng.integers(0, max(length - 10, 1)))
        dips[at:at + int(rng.integers(3, 15))] = float(rng.uniform(0.2, 0.7))
    out: F64 = mean * level * jitter * dips
    return out


def _one_packet(rng: np.random.Generator, t0: float, pps: F64, sampling: int) -> tuple[F64, I64]:
    """The instants of the sampled packets of a flood of ``pps`` real packets per second (each its own flow), and
    the real packets per second."""
    real = ft.per_second_counts(rng, pps)
    kept = rng.binomial(real, 1.0 / sampling) if sampling > 1 else real
    return ft.instants(rng, kept, t0), real


def syn_flood(rng: np.random.Generator, t0: float, pps: F64, victim: int, ports: tuple[int, ...], sampling: int,
              vector: int) -> Drawn:
    """A spoofed SYN flood: bare SYNs (40, 44 or 60 bytes) from random source addresses and ports, one packet per
    source mostly (a few addresses drawn again), some from bogon space."""
    t, real = _one_packet(rng, t0, pps, sampling)
    n = t.shape[0]
    size = int(rng.choice([40, 44, 60]))
    src = ft.spoofed(rng, n, float(rng.uniform(0.0, 0.05)))
    again = rng.random(n) < 0.03
    src[again] = src[rng.integers(0, max(n, 1), size=int(np.count_nonzero(again)))]
    flows = make(t, t, src=src, dst=victim, sport=rng.integers(1024, 65536, size=n),
                 dport=np.asarray(ports)[rng.integers(0, len(ports), size=n)], proto=ft.TCP, packets=sampling,
                 nbytes=size * sampling, kind=ft.ATTACK, flags=ft.SYN, vector=vector)
    total = int(real.sum())
    return Drawn(flows, t0, real, total * size, int(total * 0.97))


def packet_flood(rng: np.random.Generator, t0: float, pps: F64, targets: I64, sources: I64 | None, sampling: int,
                 vector: int, *, tcp_ack: bool) -> Drawn:
    """A flood of packets each its own flow (random source ports, random or fixed destination ports) spread over
    ``targets``: UDP from ``sources`` (a botnet) or TCP ACKs from spoofed addresses when ``sources`` is None."""
    t, real = _one_packet(rng, t0, pps, sampling)
    n = t.shape[0]
    weight = np.asarray(rng.uniform(0.5, 1.5, size=targets.shape[0]), dtype=np.float64)
    dst = targets[rng.choice(targets.shape[0], size=n, p=weight / np.sum(weight))]
    src = ft.spoofed(rng, n, 0.02) if sources is None else sources[rng.integers(0, sources.shape[0], size=n)]
    size: I64 = np.full(n, 40, dtype=np.int64)
    dport: I64 = np.full(n, int(rng.choice([80, 443])), dtype=np.int64)
    if not tcp_ack:  # one datagram size throughout or random sizes; random ports or one service port
        size = np.full(n, int(rng.choice([540, 1028, 1428])), dtype=np.int64) if rng.random() < 0.6 else \
            np.asarray(rng.integers(60, 1400, size=n), dtype=np.int64)
        dport = np.asarray(rng.integers(1, 65536, size=n), dtype=np.int64) if rng.random() < 0.7 else \
            np.full(n, int(rng.choice([53, 80, 443])), dtype=np.int64)
    flows = make(t, t, src=src, dst=dst, sport=rng.integers(1024, 65536, size=n), dport=dport,
                 proto=ft.TCP if tcp_ack else ft.UDP, packets=sampling, nbytes=size * sampling, kind=ft.ATTACK,
                 flags=ft.ACK if tcp_ack else 0, vector=vector)
    total = int(real.sum())
    n_src = total if sources is None else int(sources.shape[0])
    return Drawn(flows, t0, real, int(total * float(size.mean() if n else 40)), n_src)


def reflection(rng: np.random.Generator, t0: float, pps: F64, victim: int, reflectors: I64, service: str,
               sampling: int, vector: int) -> Drawn:
    """Amplified answers from ``reflectors`` (each busy in its own measure) to the victim, from the service's source
    port. Reported per reflector and active-timeout piece; the victim port is one port throughout or a new one per
    piece (the attacker's spoofed source port); DNS answers are fragmented."""
    spec = SERVICES[service]
    real = ft.per_second_counts(rng, pps)
    length = real.shape[0]
    piece_real = np.add.reduceat(real, np.arange(0, length, int(ACTIVE_TIMEOUT)))
    weight = np.asarray(rng.lognormal(0.0, 1.0, size=reflectors.shape[0]), dtype=np.float64)
    share = weight / np.sum(weight)
    counts = rng.multinomial(piece_real, share)  # pieces x reflectors, real datagrams
    kept = rng.binomial(counts, 1.0 / sampling) if sampling > 1 else counts
    piece, who = np.nonzero(kept)
    k = kept[piece, who]
    lo = t0 + piece * ACTIVE_TIMEOUT
    span = np.minimum(ACTIVE_TIMEOUT, t0 + length - lo)
    first = lo + span * rng.beta(1.0, k) * (k > 1) + span * rng.random(k.shape[0]) * (k == 1)
    last = np.where(k > 1, lo + span * (1.0 - rng.beta(1.0, k)), first)
    size_lo, size_hi = spec["size"]
    rsize = rng.integers(size_lo, size_hi + 1, size=reflectors.shape[0])
    size = rsize[who]
    nfrag = np.ceil((size - 20) / 1480.0).astype(np.int64)
    fixed = rng.random() < 0.5
    dport = np.asarray(int(rng.choice([80, 443, 3074, 27015]))) if fixed else rng.integers(1024, 65536, k.shape[0])
    flows = make(first, np.maximum(last, first), src=reflectors[who], dst=victim, sport=spec["port"], dport=dport,
                 proto=ft.UDP, packets=k * sampling, nbytes=k * size * sampling, nfrag=nfrag, kind=ft.ATTACK,
                 vector=vector)
    unreach = _unreachables(rng, counts, piece, who, first, last, victim, reflectors, size, sampling)
    flows = Flows.concat([flows, unreach])
    per_reflector = counts.sum(axis=0)
    real_bytes = int((per_reflector * rsize).sum())
    packets = int((per_reflector * np.ceil((rsize - 20) / 1480.0).astype(np.int64)).sum())
    return Drawn(flows, t0, real, real_bytes, int((per_reflector > 0).sum()), packets)


def _unreachables(rng: np.random.Generator, counts: I64, piece: I64, who: I64, first: F64, last: F64,
                  victim: int, reflectors: I64, size: I64, sampling: int) -> Flows:
    """The victim's ICMP port-unreachable answers to the reflectors (in 70 % of the seeds: the port the attacker
    chose is closed), at most one a second to each (Linux's per-destination ICMP rate limit); each carries the
    start of the answer that caused it. Noise to a detector (the victim sends to the reflectors), not the attack."""
    if rng.random() >= 0.7:
        return Flows.concat([])
    real = np.minimum(counts[piece, who], np.ceil(np.maximum(last - first, 1.0)).astype(np.int64))
    k = rng.binomial(real, 1.0 / sampling) if sampling > 1 else real
    has = k > 0
    return make(first[has] + 0.0002, last[has] + 0.0002, src=victim, dst=reflectors[who[has]], sport=0,
                dport=3 * 256 + 3, proto=ft.ICMP, packets=k[has] * sampling,
                nbytes=k[has] * sampling * np.minimum(576, 28 + size[has]), kind=ft.NOISE)


def bulk_transfers(rng: np.random.Generator, starts: F64, peers: I64, server: int, port: int,
                   gigabytes: F64, gbits: F64) -> Flows:
    """Peers pulling ``gigabytes`` each from the server at ``gbits`` Gbit/s over completed TCP connections (the
    server sends the bytes; the peer sends ACKs), reported in active-timeout pieces."""
    nbytes = (gigabytes * 1e9).astype(np.int64)
    seconds = nbytes * 8 / (gbits * 1e9)
    data = nbytes // 1448 + 1
    sport = ft.ephemeral(rng, peers.shape[0])
    down = make(starts, starts + seconds, src=server, dst=peers, sport=port, dport=sport, proto=ft.TCP,
                packets=data + 2, nbytes=nbytes + 52 * data + 80, kind=ft.BENIGN_BULK, flags=ft.SESSION)
    up = make(starts, starts + seconds + 0.01, src=peers, dst=server, sport=sport, dport=port, proto=ft.TCP,
              packets=data // 2 + 3, nbytes=52 * (data // 2) + 120 + 400, kind=ft.BENIGN_BULK, flags=ft.SESSION)
    return split_active(Flows.concat([down, up]))


def peak_second(per_second: npt.NDArray[np.int64]) -> int:
    """Index of the busiest second."""
    return int(np.argmax(per_second)) if per_second.shape[0] else 0
