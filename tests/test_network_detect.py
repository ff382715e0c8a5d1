"""Network detection (#21): vectors named by signature on the REAL captures (read in place), and on synthetic flow
tables harder than them (background traffic, sampling, carpets, a benign heavy download, bogon sources)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from floodwitness.analysis.network import NetworkAnalysis, analyze_network
from floodwitness.schema import FLOW_ARROW_SCHEMA

CAPTURES = Path(__file__).resolve().parents[1] / ".." / "shared" / "realdata" / "ddos-captures"
T0 = 1_700_000_000


def _con() -> Any:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con


def capture(name: str) -> tuple[Any, NetworkAnalysis]:
    path = CAPTURES / name
    if not path.exists():
        pytest.skip(f"real capture {path} absent (../shared/realdata is not on this machine)")
    from floodwitness.ingest.flows.pcap import read_pcap
    con = _con()
    return con, analyze_network(con, read_pcap(path), files={0: name})


def flows(n: int, *, start: np.ndarray, src: list[str] | np.ndarray, dst: str | list[str] | np.ndarray,
          proto: int, sport: np.ndarray | int | None, dport: np.ndarray | int | None, flags: int | None,
          packets: np.ndarray | int = 1, size: int = 40, sampling: int = 1, dur: float = 0.0) -> pa.Table:
    """n flows, vectorised (numpy, no loop per flow)."""
    def col(v: Any, dtype: Any) -> np.ndarray:
        return np.broadcast_to(np.asarray(v, dtype=dtype), (n,)).copy()
    pk = col(packets, np.int64)
    ts = (np.asarray(start, dtype=np.float64) * 1e6).astype(np.int64)
    null32 = pa.nulls(n, pa.int32())
    return pa.table({
        "start": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "end": pa.array(ts + int(dur * 1e6), pa.timestamp("us", tz="UTC")),
        "src_ip": pa.array(np.broadcast_to(np.asarray(src, dtype=object), (n,)), pa.string()),
        "dst_ip": pa.array(np.broadcast_to(np.asarray(dst, dtype=object), (n,)), pa.string()),
        "ip_family": pa.array(np.full(n, 4, np.int8)),
        "src_port": null32 if sport is None else pa.array(col(sport, np.int32)),
        "dst_port": null32 if dport is None else pa.array(col(dport, np.int32)),
        "proto": pa.array(np.full(n, proto, np.int16)),
        "tcp_flags": pa.nulls(n, pa.int16()) if flags is None else pa.array(np.full(n, flags, np.int16)),
        "packets": pa.array(pk), "bytes": pa.array(pk * size), "sampling": pa.array(np.full(n, sampling, np.int32)),
        "fragments": pa.nulls(n, pa.int64()), "exporter": pa.array(["test"] * n, pa.string()),
        "file_id": pa.array(np.zeros(n, np.int32)), "record": pa.array(np.arange(1, n + 1, dtype=np.int64)),
        "reject_reason": pa.nulls(n, pa.string()), "raw": pa.nulls(n, pa.string()),
    }, schema=FLOW_ARROW_SCHEMA)


def ips(prefix: str, n: int, rng: np.random.Generator) -> np.ndarray:
    a, b = rng.integers(0, 256, n), rng.integers(1, 255, n)
    return np.char.add(np.char.add(np.char.add(prefix, a.astype(str)), "."), b.astype(str)).astype(object)


def background(rng: np.random.Generator, server: str, seconds: int = 600, clients: int = 200) -> pa.Table:
    """Completed TCP sessions: clients to the server (SYN, ACK, PSH, FIN) and the server's answers."""
    who = ips("100.20.", clients, rng)
    t = T0 + rng.uniform(0, seconds, clients)
    ask = flows(clients, start=t, src=who, dst=server, proto=6, sport=rng.integers(1024, 65535, clients),
                dport=443, flags=27, packets=12, size=120, dur=2.0)
    answer = flows(clients, start=t + 0.01, src=server, dst=who, proto=6, sport=443,
                   dport=ask["src_port"].to_numpy(), flags=27, packets=20, size=1400, dur=2.0)
    return pa.concat_tables([ask, answer])


def only(result: NetworkAnalysis) -> dict[str, Any]:
    episodes = result.to_dict()["episodes"]
    assert len(episodes) == 1, episodes
    return episodes[0]


# --- the real captures ---------------------------------------------------------------------------------------

def test_real_syn_flood_spoofed() -> None:
    con, result = capture("stopddos_syn_flood_spoofed.pcap")
    e = only(result)
    assert (e["target"], e["start"], e["end"], e["duration_s"]) == ("10.10.10.10", "2021-04-28T10:30:21Z",
                                                                     "2021-04-28T10:30:44Z", 24)
    assert e["packets"] == 37841 and e["baseline_pps"] is None  # the capture is the attack: nothing to compare
    assert e["peak"] == "2021-04-28T10:30:21Z" and e["peak_pps"] == 22322  # bursty: 37841 / 23.7 s = 1,597 mean
    [v] = e["vectors"]
    assert (v["vector"], v["port"], v["port_side"], v["sources"], v["source_role"]) == \
        ("syn_flood", 25565, "dst", 37623, "spoofed")
    assert e["spoofing"]["distinct_sources"] == 37623 and e["spoofing"]["one_packet_sources_share"] > 0.99
    assert "spoofed" in v["claim"] and "attacker's hosts" in v["claim"]
    # the cited query reproduces the counts
    assert con.sql(v["evidence"]["query"]).fetchall() == [(37623, 37841, 1513640)]
    assert v["evidence"]["samples"][0]["file"] == "stopddos_syn_flood_spoofed.pcap"


def test_real_dns_reflection_over_unrelated_background() -> None:
    con, result = capture("stopddos_dns_rrsig_amp_fragmented.pcap")
    e = only(result)
    assert e["target"] == "10.10.10.10"
    [v] = e["vectors"]  # the ~3100 background TCP packets are not named
    assert (v["vector"], v["port"], v["port_side"], v["source_role"]) == ("dns_reflection", 53, "src", "reflectors")
    assert (v["packets"], v["sources"]) == (543, 50)
    assert v["amplification"] == {"service": "DNS", "factor": 54, "reference": "US-CERT TA14-017A"}
    assert v["share"] < 0.2  # reflection is a minority of the capture's packets, and said so
    assert con.sql(v["evidence"]["query"]).fetchall()[0][:2] == (50, 543)
    assert "attackers" not in v["claim"] and "reflectors" in v["claim"]


def test_real_snmp_reflection() -> None:
    _, result = capture("stopddos_snmp_amp.pcap")
    e = only(result)
    [v] = e["vectors"]  # the 294 ICMP packets (7%) do not make an ICMP flood
    assert (v["vector"], v["port"], v["packets"], v["sources"], v["source_role"]) == \
        ("snmp_reflection", 161, 4079, 4028, "reflectors")
    assert e["duration_s"] == 1 and e["packets"] == 4373


def test_real_low_volume_ssdp_booter_attack() -> None:
    _, result = capture("booter_ssdp_amp_2014.pcap")
    e = only(result)
    assert e["target"] == "172.31.28.132" and result.victims.watched == ("172.31.28.132",)  # not the resolver
    [v] = e["vectors"]
    assert (v["vector"], v["port"], v["source_role"]) == ("ssdp_reflection", 1900, "reflectors")
    assert (v["packets"], v["sources"]) == (1375, 27)  # 22 from port 1900 and 5 NATed reflectors tied by port/size
    assert result.episodes[0].vectors[0].nat_sources == 5 and "translated high ports" in v["claim"]
    assert v["peak_pps"] < 50 and (e["start"], e["end"]) == ("2014-12-29T14:37:35Z", "2014-12-29T14:41:38Z")


def test_real_http_sessions_are_no_network_flood() -> None:
    _, result = capture("cicddos2019_webddos_l7_negative.pcap")
    assert result.episodes == () and result.flows > 0 and result.victims.watched == ()


# --- harder than real ------------------------------------------------------------------------------------------

def test_syn_flood_over_completed_tcp_background() -> None:
    rng = np.random.default_rng(1)
    n = 50_000
    flood = flows(n, start=T0 + 300 + rng.uniform(0, 60, n), src=ips("45.", n, rng), dst="203.0.113.10", proto=6,
                  sport=rng.integers(1024, 65535, n), dport=80, flags=2)
    table = pa.concat_tables([background(rng, "203.0.113.10"), flood])
    e = only(analyze_network(_con(), table))
    assert [v["vector"] for v in e["vectors"]] == ["syn_flood"] and e["vectors"][0]["packets"] == n
    assert e["start"] == "2023-11-14T22:18:20Z" and e["duration_s"] == 60  # T0 + 300 s, 60 s
    assert e["baseline_pps"] is not None and 0 < e["baseline_pps"] < 20


def test_ntp_reflection_sampled_one_in_a_thousand_and_own_ntp_not_counted() -> None:
    rng = np.random.default_rng(2)
    n = 400
    reflectors = ips("81.", 300, rng)[rng.integers(0, 300, n)]
    refl = flows(n, start=T0 + rng.uniform(0, 30, n), src=reflectors, dst="203.0.113.20", proto=17, sport=123,
                 dport=rng.integers(1024, 65535, n), flags=None, packets=1000, size=468, sampling=1000)
    ask = flows(4, start=T0 + np.arange(4.0), src="203.0.113.20", dst=["192.0.2.1"] * 4, proto=17, sport=40000,
                dport=123, flags=None, size=76)
    answer = flows(4, start=T0 + np.arange(4.0) + 0.01, src=["192.0.2.1"] * 4, dst="203.0.113.20", proto=17,
                   sport=123, dport=40000, flags=None, size=76)
    result = analyze_network(_con(), pa.concat_tables([refl, ask, answer]))
    [v] = only(result)["vectors"]
    assert (v["vector"], v["source_role"], v["packets"]) == ("ntp_reflection", "reflectors", n * 1000)
    assert v["sources"] == len(set(reflectors.tolist())) and v["amplification"]["factor"] == 556.9


def test_carpet_bombing_a_slash_24() -> None:
    rng = np.random.default_rng(3)
    hosts = np.array([f"198.51.100.{i}" for i in range(1, 201)], dtype=object)
    n = 200 * 600  # 10 packets a second to each host for a minute: no host alone is a flood
    table = flows(n, start=T0 + rng.uniform(0, 60, n), src=ips("77.", n, rng), dst=hosts[rng.integers(0, 200, n)],
                  proto=17, sport=rng.integers(1024, 65535, n), dport=rng.integers(1, 65535, n), flags=None,
                  size=512)
    e = only(analyze_network(_con(), table))
    assert (e["target"], e["carpet_bombing"], e["target_hosts"]) == ("198.51.100.0/24", True, 200)
    assert e["vectors"][0]["vector"] == "udp_flood" and e["vectors"][0]["port"] is None  # random ports


def test_benign_heavy_download_is_not_an_attack() -> None:
    n = 3 * 3600  # three peers, one record a second each, for an hour: the victim SENDS the bytes
    peer = np.array(["100.1.1.1", "100.1.1.2", "100.1.1.3"], dtype=object)[np.arange(n) % 3]
    t = T0 + np.arange(n) / 3.0
    out = flows(n, start=t, src="203.0.113.30", dst=peer, proto=6, sport=443, dport=50000, flags=24,
                packets=8000, size=1500, dur=1.0)
    acks = flows(n, start=t, src=peer, dst="203.0.113.30", proto=6, sport=50000, dport=443, flags=16,
                 packets=4000, size=52, dur=1.0)
    result = analyze_network(_con(), pa.concat_tables([out, acks]))
    assert result.episodes == ()


def test_bogon_sources_are_spoofing() -> None:
    rng = np.random.default_rng(5)
    n = 5000
    table = flows(n, start=T0 + rng.uniform(0, 10, n), src=ips("240.1.", n, rng), dst="203.0.113.40", proto=6,
                  sport=rng.integers(1024, 65535, n), dport=443, flags=2)
    e = only(analyze_network(_con(), table))
    assert e["spoofing"]["bogon_sources"] == e["spoofing"]["distinct_sources"] > 0
    assert any("bogon" in i for i in e["spoofing"]["indicators"]) and e["vectors"][0]["source_role"] == "spoofed"


def test_parquet_input_and_given_victims(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    n = 5000
    table = flows(n, start=T0 + rng.uniform(0, 10, n), src=ips("45.", n, rng), dst="203.0.113.50", proto=6,
                  sport=rng.integers(1024, 65535, n), dport=22, flags=2)
    pq.write_table(table, tmp_path / "part-00000-00000.parquet")
    result = analyze_network(_con(), [tmp_path / "part-00000-00000.parquet"], victims=["203.0.113.0/24"])
    assert result.victims.given == ("203.0.113.0/24",) and only(result)["vectors"][0]["port"] == 22
    assert sum(result.series.packets) == pytest.approx(n)
    elsewhere = analyze_network(_con(), table, victims=["192.0.2.0/24"])
    assert elsewhere.episodes == () and elsewhere.series.packets == ()


def test_one_sender_sweeping_source_ports_is_a_udp_flood_not_reflection() -> None:
    """hping3 --udp counts its source port up from a random start, through 53, 123, 1900, 3702 ...: those flows
    look like service answers one by one, but a sender whose packets mostly come from other ports is no reflector
    (seen in the namespace lab, tests/test_netns_flood.py)."""
    rng = np.random.default_rng(7)
    n = 8_000
    sport = (1000 + np.arange(n)) % 65536  # passes through 1900, 3478, 3702, 5353, 5683
    flood = flows(n, start=T0 + 100 + np.arange(n) / 1000, src="198.18.21.20", dst="198.18.21.10", proto=17,
                  sport=sport, dport=53, flags=None, size=28)
    e = only(analyze_network(_con(), pa.concat_tables([background(rng, "198.18.21.10"), flood])))
    assert [v["vector"] for v in e["vectors"]] == ["udp_flood"]
    [v] = e["vectors"]
    assert (v["packets"], v["sources"], v["source_role"], v["port"], v["port_side"]) == \
        (n, 1, "sources", 53, "dst")
