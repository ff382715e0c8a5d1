"""Synthetic flow tables and network episodes for the network mitigation tests (issue #21).

Each scenario has its own day, so one scenario's baseline (the hour before its episode) lies outside every
other scenario's episode when they are planned together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from floodwitness.schema import FLOW_ARROW_SCHEMA

T0 = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)
HTTPS_FLAGS = 2 | 16 | 8 | 1  # SYN ACK PSH FIN: a completed connection


@dataclass
class Scenario:
    rows: list[dict[str, Any]]
    episode: dict[str, Any]


def flow(src: str, dst: str, sport: int | None, dport: int | None, *, at: float, base: datetime = T0,
         proto: int = 17, packets: int = 1, size: int = 100, flags: int | None = None,
         fragments: int | None = None) -> dict[str, Any]:
    start = base + timedelta(seconds=at)
    return {"start": start, "end": start, "src_ip": src, "dst_ip": dst, "ip_family": 6 if ":" in dst else 4,
            "src_port": sport, "dst_port": dport, "proto": proto, "tcp_flags": flags, "packets": packets,
            "bytes": packets * size, "sampling": 1, "fragments": fragments, "exporter": "test", "file_id": 0,
            "record": 0, "reject_reason": None, "raw": None}


def table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist([dict(r, record=i) for i, r in enumerate(rows, 1)], schema=FLOW_ARROW_SCHEMA)


def _iso(base: datetime, seconds: float) -> str:
    return (base + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def episode(ident: str, target: str, base: datetime, span: tuple[int, int], rows: list[dict[str, Any]],
            vectors: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """The episode's totals from the rows to ``target`` inside its span, as the report would hold them."""
    lo, hi = base + timedelta(seconds=span[0]), base + timedelta(seconds=span[1] + 1)
    inside = [r for r in rows if lo <= r["start"] < hi and (r["dst_ip"] == target or "/" in target)]
    return {"id": ident, "target": target, "target_hosts": 1, "carpet_bombing": False,
            "start": _iso(base, span[0]), "end": _iso(base, span[1]),
            "packets": sum(r["packets"] for r in inside), "bytes": sum(r["bytes"] for r in inside),
            "vectors": vectors, **extra}


def reflection(key: str, name: str, port: int, rows: list[dict[str, Any]], sources: int,
               peak_pps: int = 1000) -> dict[str, Any]:
    return {"vector": key, "name": name, "proto": 17, "port": port, "port_side": "src",
            "packets": sum(r["packets"] for r in rows), "bytes": sum(r["bytes"] for r in rows),
            "peak_pps": peak_pps, "sources": sources, "source_role": "reflectors"}


def ntp(victim: str = "203.0.113.10", base: datetime = T0) -> Scenario:
    """200 NTP reflectors (100 packets of 468 bytes each) for a minute; the victim's own NTP server
    192.0.2.123 answers it 5 times before and once during; 30 HTTPS clients before, 10 during."""
    attack = [flow(f"45.1.{i // 250}.{i % 250 + 1}", victim, 123, 80, at=i * 0.25, base=base, packets=100, size=468)
              for i in range(200)]
    own: list[dict[str, Any]] = []
    for t in (-3000, -2500, -2000, -1500, -1000, 30):
        own += [flow(victim, "192.0.2.123", 40123, 123, at=t, base=base, size=76),
                flow("192.0.2.123", victim, 123, 40123, at=t + 0.01, base=base, size=76)]
    https = [flow(f"198.18.0.{i + 1}", victim, 50000 + i, 443, at=-3500 + i * 60 if i < 30 else (i - 30) * 5,
                  base=base, proto=6, packets=10, size=500, flags=HTTPS_FLAGS) for i in range(40)]
    rows = attack + own + https
    return Scenario(rows, episode("N1", victim, base, (0, 59), rows,
                                  [reflection("ntp_reflection", "NTP reflection", 123, attack, 200)]))


def dns(victim: str = "203.0.113.20", base: datetime = T0 + timedelta(days=1)) -> Scenario:
    """300 DNS reflectors (20 packets of 1400 bytes); the victim's own lookups to its resolvers 192.0.2.53
    and .54 (replies of 120 bytes from port 53): 20 before the episode, 10 during."""
    attack = [flow(f"45.2.{i // 250}.{i % 250 + 1}", victim, 53, 33000 + i, at=i * 0.1, base=base, packets=20,
                   size=1400) for i in range(300)]
    own: list[dict[str, Any]] = []
    for i in range(30):
        resolver, at = f"192.0.2.{53 + i % 2}", (-3000 + i * 100 if i < 20 else (i - 20) * 3)
        own += [flow(victim, resolver, 5000 + i, 53, at=at, base=base, size=70),
                flow(resolver, victim, 53, 5000 + i, at=at + 0.02, base=base, size=120)]
    rows = attack + own
    return Scenario(rows, episode("N2", victim, base, (0, 59), rows,
                                  [reflection("dns_reflection", "DNS reflection", 53, attack, 300)]))


def syn(victim: str = "203.0.113.30", base: datetime = T0 + timedelta(days=2)) -> Scenario:
    """5,000 spoofed one-SYN sources at 250/s for 20 s to port 443; 40 completed connections during the
    flood and 60 in the hour before (one every 5 s)."""
    attack = [flow(f"{11 + i // 60000}.{i // 250 % 240}.{i % 250}.7", victim, 1024 + i, 443, at=i * 0.004,
                   base=base, proto=6, size=60, flags=2) for i in range(5000)]
    legit = [flow(f"198.18.1.{i % 200 + 1}", victim, 40000 + i, 443, at=(-600 + i * 5) if i < 60 else (i - 60) * 0.5,
                  base=base, proto=6, packets=12, size=400, flags=HTTPS_FLAGS) for i in range(100)]
    rows = attack + legit
    vector = {"vector": "syn_flood", "name": "SYN flood", "proto": 6, "port": 443, "port_side": "dst",
              "packets": 5000, "bytes": 300000, "peak_pps": 250, "sources": 5000, "source_role": "spoofed"}
    return Scenario(rows, episode("N3", victim, base, (0, 19), rows, [vector]))


def carpet(prefix: str = "198.51.100.0/24", base: datetime = T0 + timedelta(days=3)) -> Scenario:
    """100 CLDAP reflectors each hitting 10 of 50 hosts of the /24 (10 packets of 1400 bytes); 20 HTTPS flows
    to its hosts in the hour before."""
    net = prefix.rsplit(".", 1)[0]
    attack = [flow(f"45.3.0.{i + 1}", f"{net}.{(i * 10 + j) % 50 + 1}", 389, 27000 + j, at=i * 0.5, base=base,
                   packets=10, size=1400) for i in range(100) for j in range(10)]
    before = [flow(f"198.18.2.{i + 1}", f"{net}.{i + 1}", 51000 + i, 443, at=-3000 + i * 60, base=base, proto=6,
                   packets=10, size=500, flags=HTTPS_FLAGS) for i in range(20)]
    rows = attack + before
    ep = episode("N4", prefix, base, (0, 59), rows,
                 [reflection("cldap_reflection", "CLDAP reflection", 389, attack, 100)], target_hosts=50)
    return Scenario(rows, dict(ep, carpet_bombing=True))


def fragments(victim: str = "203.0.113.40", base: datetime = T0 + timedelta(days=4)) -> Scenario:
    """80 sources sending UDP fragments (30 each, 1480 bytes); one fragmented answer the victim asked for (it
    queried 192.0.2.99 first); no traffic to the victim outside the episode."""
    attack = [flow(f"45.4.0.{i + 1}", victim, None, None, at=i * 0.5, base=base, packets=30, size=1480,
                   fragments=30) for i in range(80)]
    asked = [flow(victim, "192.0.2.99", 6000, 53, at=9.9, base=base, size=80),
             flow("192.0.2.99", victim, None, None, at=10, base=base, packets=2, size=1450, fragments=2)]
    rows = attack + asked
    vector = {"vector": "fragment_flood", "name": "IP fragment flood", "proto": 17, "port": None, "port_side": None,
              "packets": 2400, "bytes": 2400 * 1480, "peak_pps": 60, "sources": 80, "source_role": "sources"}
    return Scenario(rows, episode("N5", victim, base, (0, 59), rows, [vector]))


def memcached_v6(victim: str = "2001:db8::10", base: datetime = T0 + timedelta(days=5)) -> Scenario:
    """IPv6: memcached reflection (source port 11211) and fragments to one host."""
    attack = [flow(f"2001:db8:45::{i + 1:x}", victim, 11211, 4000 + i, at=i, base=base, packets=5, size=1400)
              for i in range(40)]
    frags = [flow(f"2001:db8:46::{i + 1:x}", victim, None, None, at=i, base=base, packets=4, size=1280, fragments=4)
             for i in range(20)]
    rows = attack + frags
    frag_vector = {"vector": "fragment_flood", "name": "IP fragment flood", "proto": 17, "port": None,
                   "port_side": None, "packets": 80, "bytes": 80 * 1280, "peak_pps": 4, "sources": 20,
                   "source_role": "sources"}
    return Scenario(rows, episode("N6", victim, base, (0, 59), rows,
                                  [reflection("memcached_reflection", "memcached reflection", 11211, attack, 40),
                                   frag_vector]))


def direct(victim: str = "203.0.113.50", base: datetime = T0 + timedelta(days=6), answers: bool = True) -> Scenario:
    """Direct floods at one host: ACK and RST floods to port 443, a UDP flood to port 27015, ICMP and GRE floods
    (20 flows each from 20 sources); 50 completed HTTPS connections of 30 packets over 10 s each in the hour
    before, answered by the victim; the victim answers the ACK flood with resets (``answers=False``: a one-way
    export, nothing from the victim)."""
    kinds = {"ack_flood": (6, 443, 16), "rst_flood": (6, 443, 4), "udp_flood": (17, 27015, None),
             "icmp_flood": (58 if ":" in victim else 1, None, None), "gre_flood": (47, None, None)}
    rows: list[dict[str, Any]] = []
    vectors = []
    for k, (key, (proto, port, flags)) in enumerate(kinds.items()):
        attack = [flow(f"45.5.{k}.{i + 1}" if ":" not in victim else f"2001:db8:55:{k}::{i + 1:x}", victim,
                       None if port is None else 1024 + i, port, at=i, base=base, proto=proto, packets=500, size=60,
                       flags=flags) for i in range(20)]
        rows += attack
        if answers and key == "ack_flood":
            rows += [flow(victim, r["src_ip"], 443, r["src_port"], at=i + 0.01, base=base, proto=6, size=40, flags=4)
                     for i, r in enumerate(attack)]
        vectors.append({"vector": key, "name": key.replace("_", " "), "proto": proto, "port": port,
                        "port_side": "dst" if port is not None else None, "packets": 10_000, "bytes": 600_000,
                        "peak_pps": 500, "sources": 20, "source_role": "sources"})
    client = "198.18.5.{}" if ":" not in victim else "2001:db8:18::{:x}"
    for i in range(50):
        start = base + timedelta(seconds=-3000 + i * 20)
        rows.append(dict(flow(client.format(i + 1), victim, 52000 + i, 443, at=-3000 + i * 20, base=base, proto=6,
                              packets=30, size=700, flags=HTTPS_FLAGS), end=start + timedelta(seconds=10)))
        if answers:
            rows.append(flow(victim, client.format(i + 1), 443, 52000 + i, at=-3000 + i * 20 + 0.01, base=base,
                             proto=6, packets=40, size=1400, flags=HTTPS_FLAGS))
    return Scenario(rows, episode("N9", victim, base, (0, 59), rows, vectors))
