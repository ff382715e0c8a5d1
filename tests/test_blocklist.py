"""Stage: mitigation. The blocklist is safe (protected ranges, known clients, minimum prefixes) and complete."""

from __future__ import annotations

import ipaddress
import itertools
import random
import time
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from floodwitness.errors import UsageError
from floodwitness.mitigation import (
    Blocklist,
    BlocklistPolicy,
    build_blocklist,
    is_verified_crawler,
    load_crawler_ranges,
    verified_crawler_name,
)
from floodwitness.mitigation.ranges import SPECIAL_RANGES

if TYPE_CHECKING:
    from pathlib import Path

Net = ipaddress.IPv4Network | ipaddress.IPv6Network

#: First octets with no special-purpose or bundled crawler range in them.
SAFE_OCTETS = (5, 31, 37, 41, 45, 46, 58, 59, 61, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90,
               91, 92, 93, 94, 95, 101, 102, 103, 105, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119,
               171, 175, 177, 178, 179, 180, 181, 182, 183, 186, 187, 189, 190, 200, 201, 210, 211, 218)


def net(cidr: str) -> Net:
    return ipaddress.ip_network(cidr)


def covering(bl: Blocklist | frozenset[str], ip: str) -> list[str]:
    """The entries holding ``ip``: look up each of its prefixes among the entry CIDRs."""
    addr = ipaddress.ip_address(ip)
    cidrs = bl if isinstance(bl, frozenset) else frozenset(bl.cidrs)
    prefixes = (str(ipaddress.ip_network((addr, p), strict=False)) for p in range(addr.max_prefixlen, -1, -1))
    return [c for c in prefixes if c in cidrs]


def overlapping(bl: Blocklist, cidr: str) -> list[str]:
    other = net(cidr)
    return [e.cidr for e in bl.entries if net(e.cidr).version == other.version and net(e.cidr).overlaps(other)]


def skipped_kinds(bl: Blocklist) -> dict[str, str]:
    return {s.ip: s.kind for s in bl.skipped}


# --- the synthetic botnet -------------------------------------------------------------------------


def test_synthetic_botnet_hostile_24s_aggregate_scattered_stay_32_no_known_client_covered() -> None:
    rng = random.Random(7)
    used24: set[tuple[int, int, int]] = {(45, 7, c) for c in range(256)}  # 45.7/16: only the hostile /24s

    def fresh24(a: int | None = None, b: int | None = None) -> tuple[int, int, int]:
        while True:
            key = (rng.choice(SAFE_OCTETS) if a is None else a, rng.randrange(256) if b is None else b,
                   rng.randrange(256))
            if key not in used24:
                used24.add(key)
                return key

    hostile = [(45, 7, c) for c in range(40)]  # one /16 where every hostile /24 sits: one /16 entry
    known: dict[str, int] = {}
    while len(hostile) < 300:  # the rest in pairs (too few to climb) and triples beside a known client
        a, b, _ = fresh24()
        hostile += [fresh24(a, b) for _ in range(2 if len(hostile) % 2 else 3)]
        if len(hostile) % 2 == 1:
            x, y, z = fresh24(a, b)
            known[f"{x}.{y}.{z}.9"] = 40
    del hostile[300:]
    attackers: dict[str, int] = {}
    for a, b, c in hostile:
        for d in rng.sample(range(1, 255), 10):
            attackers[f"{a}.{b}.{c}.{d}"] = rng.randrange(50, 500)
    scattered = []
    for _ in range(2000):
        a, b, c = fresh24()
        ip = f"{a}.{b}.{c}.{rng.randrange(1, 255)}"
        scattered.append(ip)
        attackers[ip] = rng.randrange(1, 50)
    for _ in range(3000):  # the known audience, in /24s of its own
        a, b, c = fresh24()
        known[f"{a}.{b}.{c}.{rng.randrange(1, 255)}"] = rng.randrange(1, 100)

    bl = build_blocklist(attackers, known)
    cidrs = frozenset(bl.cidrs)

    assert bl.skipped == ()
    assert bl.attackers_total == bl.attackers_covered == len(attackers)  # recall 100%
    assert bl.attack_requests_covered == bl.attack_requests_total == sum(attackers.values())
    assert bl.collateral_clients_total == 0
    assert all(not covering(cidrs, ip) for ip in known)
    assert bl.known_clients_total == len(known)
    assert covering(cidrs, "45.7.200.1") == ["45.7.0.0/16"]
    for a, b, c in hostile:
        [cidr] = covering(cidrs, f"{a}.{b}.{c}.0")
        assert net(cidr).prefixlen <= 24
        assert net(cidr).prefixlen >= 16
    for ip in scattered:
        assert covering(cidrs, ip) == [f"{ip}/32"]
    by_len: dict[int, int] = {}
    for e in bl.entries:
        by_len[net(e.cidr).prefixlen] = by_len.get(net(e.cidr).prefixlen, 0) + 1
    assert by_len[16] == 1 and by_len[32] == 2000
    assert 260 // 2 <= sum(n for p, n in by_len.items() if 16 < p <= 24) <= 260
    assert [e.requests for e in bl.entries] == sorted((e.requests for e in bl.entries), reverse=True)
    entry16 = next(e for e in bl.entries if e.cidr == "45.7.0.0/16")
    assert entry16.attackers == 400
    assert entry16.reason == "400 attacking IPs in 40 /24s, no known client"


# --- known clients, crawlers, special and allowlisted ranges ------------------------------------


def test_a_24_shared_with_one_known_client_is_not_aggregated() -> None:
    attackers = {f"77.1.2.{d}": 100 for d in range(2, 60, 2)}  # not adjacent: nothing to merge
    bl = build_blocklist(attackers, {"77.1.2.200": 35})
    assert sorted(bl.cidrs) == sorted(f"{ip}/32" for ip in attackers)
    assert covering(bl, "77.1.2.200") == []
    assert bl.collateral_clients_total == 0
    # the same /24 without the known client is one entry
    alone = build_blocklist(attackers, {"77.1.3.200": 35})
    assert alone.cidrs == ["77.1.2.0/24"]
    assert alone.entries[0].reason == "29 attacking IPs, no known client"


def test_collateral_share_allows_aggregation_and_reports_the_collateral() -> None:
    attackers = {f"77.1.2.{d}": 100 for d in range(2, 60, 2)}
    known = {"77.1.2.200": 35}
    bl = build_blocklist(attackers, known, policy=BlocklistPolicy(max_collateral_share=0.05))
    [entry] = bl.entries
    assert entry.cidr == "77.1.2.0/24"
    assert (entry.collateral_clients, entry.collateral_requests) == (1, 35)
    assert bl.collateral_clients_total == 1
    assert entry.reason == "29 attacking IPs, 1 known client (35 baseline requests)"
    # 1 known client among 30 seen addresses is 3.3%: a 3% cap refuses it
    assert len(build_blocklist(attackers, known, policy=BlocklistPolicy(max_collateral_share=0.03)).entries) == 29


def test_an_attacker_that_was_a_known_client_keeps_its_own_entry_with_the_collateral() -> None:
    attackers = {"77.1.2.4": 10, "77.1.2.5": 20, "77.1.2.6": 30, "77.1.2.7": 40}
    bl = build_blocklist(attackers, {"77.1.2.6": 12}, policy=BlocklistPolicy(aggregate_v4=32))
    assert sorted(bl.cidrs) == ["77.1.2.4/31", "77.1.2.6/32", "77.1.2.7/32"]
    entry = next(e for e in bl.entries if e.cidr == "77.1.2.6/32")
    assert (entry.collateral_clients, entry.collateral_requests) == (1, 12)
    assert entry.reason == ("attacking IP, 30 requests during the incident; also a known client "
                            "(12 baseline requests): blocking it blocks that client")


def test_googlebot_is_skipped_and_never_covered_even_among_attacking_neighbours() -> None:
    attackers = {"66.249.66.1": 5000}
    attackers |= {f"66.249.{c}.{d}": 50 for c in range(96, 101) for d in range(1, 40)}  # same /16, outside /19
    attackers |= {"13.67.10.20": 900}  # bingbot publishes 13.67.10.16/28 ...
    attackers |= {f"13.67.10.{d}": 60 for d in range(100, 160, 2)}  # ... and its /24 neighbours attack
    bl = build_blocklist(attackers, {})
    kinds = skipped_kinds(bl)
    assert kinds == {"66.249.66.1": "crawler", "13.67.10.20": "crawler"}
    assert "Googlebot" in next(s.reason for s in bl.skipped if s.ip == "66.249.66.1")
    assert "bingbot" in next(s.reason for s in bl.skipped if s.ip == "13.67.10.20")
    assert overlapping(bl, "66.249.64.0/19") == []
    assert overlapping(bl, "13.67.10.16/28") == []
    assert sorted(bl.cidrs) == sorted(["66.249.96.0/22", "66.249.100.0/24"]
                                      + [f"13.67.10.{d}/32" for d in range(100, 160, 2)])
    assert bl.attackers_covered + len(bl.skipped) == bl.attackers_total


def test_private_loopback_and_special_attackers_are_skipped_with_the_reason() -> None:
    attackers = {"10.1.2.3": 10, "127.0.0.1": 20, "::1": 30, "192.168.7.7": 1, "100.64.1.1": 2,
                 "fe80::1%eth0": 3, "fd00::5": 4, "198.51.100.7": 5, "::ffff:10.9.9.9": 6}
    attackers |= {f"10.1.2.{d}": 1 for d in range(10, 50)}  # a "hostile" private /24 stays unblocked
    bl = build_blocklist(attackers, {})
    assert bl.entries == ()
    assert {s.kind for s in bl.skipped} == {"special"}
    assert len(bl.skipped) == len(attackers)
    reasons = {s.ip: s.reason for s in bl.skipped}
    assert reasons["10.1.2.3"] == "private network (RFC 1918): our own infrastructure or a proxy; never blocked"
    assert reasons["127.0.0.1"].startswith("loopback")
    assert reasons["::1"].startswith("loopback")
    assert reasons["100.64.1.1"].startswith("shared address space (carrier-grade NAT")
    assert reasons["fe80::1%eth0"].startswith("link-local")
    assert reasons["fd00::5"].startswith("unique local address")
    assert reasons["198.51.100.7"].startswith("documentation range")
    assert reasons["::ffff:10.9.9.9"].startswith("private network")


def test_allowlisted_ranges_are_never_covered() -> None:
    attackers = {f"77.1.{c}.{d}": 10 for c in range(4) for d in range(1, 30)}
    attackers |= {f"77.2.3.{d}": 10 for d in range(100, 160, 2)}
    policy = BlocklistPolicy(allow=("77.1.0.0/24", "77.2.3.128/25", "203.0.113.9"))
    bl = build_blocklist(attackers, {}, policy=policy)
    assert {s.ip for s in bl.skipped} == {f"77.1.0.{d}" for d in range(1, 30)} | {
        f"77.2.3.{d}" for d in range(128, 160, 2)}
    assert next(s.reason for s in bl.skipped if s.ip == "77.1.0.5") == "inside allowlisted 77.1.0.0/24, never blocked"
    assert overlapping(bl, "77.1.0.0/24") == [] and overlapping(bl, "77.2.3.128/25") == []
    assert sorted(bl.cidrs) == sorted(["77.1.1.0/24", "77.1.2.0/23"] + [f"77.2.3.{d}/32" for d in range(100, 128, 2)])


def test_host_names_and_junk_are_skipped_never_a_crash() -> None:
    attackers = {"in24.inetnebr.com": 41, "": 1, "-": 2, "1.2.3.4:8080": 3, "1.2.3": 4, "999.1.1.1": 5,
                 "77.9.9.9": 6}
    bl = build_blocklist(attackers, {"unicomp6.unicomp.net": 3, "nonsense": 1},
                         incident_clients={"in24.inetnebr.com": 41, "x": 1})
    assert bl.cidrs == ["77.9.9.9/32"]
    assert skipped_kinds(bl) == dict.fromkeys(set(attackers) - {"77.9.9.9"}, "not_ip")
    assert bl.known_clients_total == 0
    assert next(s for s in bl.skipped if s.ip == "in24.inetnebr.com").requests == 41


def test_ipv4_mapped_and_bracketed_addresses_are_their_plain_address() -> None:
    bl = build_blocklist({"::ffff:77.3.3.3": 8, "[2a02:abcd::1]": 9}, {})
    assert sorted(bl.cidrs) == ["2a02:abcd::1/128", "77.3.3.3/32"]


# --- shape: prefixes, IPv6, merging --------------------------------------------------------------


def test_ipv6_aggregates_to_48_and_32_never_shorter() -> None:
    rng = random.Random(3)
    attackers = {str(ipaddress.IPv6Address((0x2A02ABCD0001 << 80) | rng.getrandbits(80))): 7 for _ in range(20)}
    bl = build_blocklist(attackers, {})
    assert bl.cidrs == ["2a02:abcd:1::/48"]
    # hostile /48s filling two adjacent /32s: two /32 entries, never one /31
    many = {f"2a02:{b:x}:{c:x}::{d:x}": 1 for b in (0xABCC, 0xABCD) for c in range(1, 5) for d in range(1, 4)}
    wide = build_blocklist(many, {})
    assert sorted(wide.cidrs) == ["2a02:abcc::/32", "2a02:abcd::/32"]
    assert wide.entries[0].reason == "12 attacking IPs in 4 /48s, no known client"
    # a known client in one of the /32s keeps it at /48s
    kept = build_blocklist(many, {"2a02:abcc:ffff::1": 4})
    assert sorted(kept.cidrs) == ["2a02:abcc:1::/48", "2a02:abcc:2::/47", "2a02:abcc:4::/48", "2a02:abcd::/32"]


def test_adjacent_hostile_16s_stay_16s_and_adjacent_hosts_merge_exactly() -> None:
    attackers = {f"77.{b}.{c}.{d}": 1 for b in (4, 5) for c in range(3) for d in range(1, 5)}
    bl = build_blocklist(attackers, {})
    assert sorted(bl.cidrs) == ["77.4.0.0/16", "77.5.0.0/16"]
    # eight consecutive addresses form exactly one /29, described as such
    run = {f"77.8.8.{d}": 2 for d in range(8, 16)}
    merged = build_blocklist(run, {"77.8.8.100": 1})
    assert merged.cidrs == ["77.8.8.8/29"]
    assert merged.entries[0].reason == "all 8 addresses of this /29 attacked, no known client"


def test_min_prefix_policy_bounds_aggregation() -> None:
    attackers = {f"77.4.{c}.{d}": 1 for c in range(3) for d in range(1, 5)}
    assert sorted(build_blocklist(attackers, {}, policy=BlocklistPolicy(min_prefix_v4=24)).cidrs) == [
        "77.4.0.0/24", "77.4.1.0/24", "77.4.2.0/24"]  # adjacent, but a merge would cross the /24 minimum
    assert len(build_blocklist(attackers, {}, policy=BlocklistPolicy(min_prefix_v4=32, aggregate_v4=32)).cidrs) == 12
    assert build_blocklist(attackers, {}, policy=BlocklistPolicy(min_prefix_v4=8)).cidrs == ["77.4.0.0/16"]


def test_incident_bystanders_block_aggregation_unless_negligible() -> None:
    attackers = {f"77.6.6.{d}": 100 for d in range(1, 50, 2)}  # 2,500 attack requests
    heavy = build_blocklist(attackers, {}, incident_clients={**attackers, "77.6.6.200": 2500})
    assert len(heavy.entries) == 25 and all(e.cidr.endswith("/32") for e in heavy.entries)
    light = build_blocklist(attackers, {}, incident_clients={**attackers, "77.6.6.200": 50})
    assert light.cidrs == ["77.6.6.0/24"]
    assert light.entries[0].reason == "25 attacking IPs, 98% of this /24's incident traffic, no known client"


def test_max_entries_cap_keeps_the_biggest_and_reports_the_rest() -> None:
    attackers = {f"77.7.{c}.1": 1000 - c for c in range(0, 20, 2)}
    bl = build_blocklist(attackers, {}, policy=BlocklistPolicy(max_entries=3))
    assert bl.cidrs == ["77.7.0.1/32", "77.7.2.1/32", "77.7.4.1/32"]
    assert {s.kind for s in bl.skipped} == {"cap"} and len(bl.skipped) == 7
    assert bl.attackers_covered == 3 and bl.attack_requests_covered == 1000 + 998 + 996
    assert bl.skipped[0].reason == ("left out by the max_entries cap (3 entries): "
                                    "its entry 77.7.6.1/32 (994 requests) ranked below the cap")


def test_to_dict_keys_and_values() -> None:
    bl = build_blocklist({"77.1.1.1": 3, "bad host": 1}, {"77.1.1.1": 2})
    assert bl.entries[0].to_dict() == {
        "cidr": "77.1.1.1/32", "requests": 3, "attackers": 1,
        "reason": bl.entries[0].reason, "collateral_clients": 1, "collateral_requests": 2}
    d = bl.to_dict()
    assert d["attackers_total"] == 2 and d["attackers_covered"] == 1 and d["known_clients_total"] == 1
    assert d["skipped"] == [{"ip": "bad host", "requests": 1, "kind": "not_ip", "reason": bl.skipped[0].reason}]
    assert d["crawler_snapshot"] == "2025-08"


# --- policy and input errors -------------------------------------------------------------------


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"min_prefix_v4": 4}, "blocklist policy: min_prefix_v4 is /4, outside /8../32"),
    ({"aggregate_v4": 12}, "blocklist policy: aggregate_v4 is /12, outside /16../32"),
    ({"min_attackers_to_aggregate": 1}, "blocklist policy: min_attackers_to_aggregate is 1"),
    ({"max_collateral_share": 1.5}, "blocklist policy: max_collateral_share is 1.5"),
    ({"max_entries": 0}, "blocklist policy: max_entries is 0"),
    ({"allow": "10.0.0.0/8"}, "blocklist policy: allow must be a tuple of CIDRs, not one string"),
])
def test_bad_policies_are_refused_with_the_fix(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError) as info:
        BlocklistPolicy(**kwargs)  # type: ignore[arg-type]
    assert info.value.message == message
    assert info.value.hint


def test_a_bad_allowlist_entry_names_itself() -> None:
    with pytest.raises(UsageError) as info:
        build_blocklist({"77.1.1.1": 1}, {}, policy=BlocklistPolicy(allow=("77.1.0.0/33",)))
    assert str(info.value) == ("allowlist entry '77.1.0.0/33' is not a CIDR or IP address\n"
                               "Write networks like 192.0.2.0/24 or 2001:db8::/32, or single addresses.")


# --- crawlers ------------------------------------------------------------------------------------


def test_bundled_crawler_snapshot() -> None:
    ranges = load_crawler_ranges()
    assert ranges.snapshot == "2025-08"
    assert len(ranges) > 50
    assert is_verified_crawler("66.249.66.1") and verified_crawler_name("66.249.79.250") == "Googlebot"
    assert verified_crawler_name("157.55.39.12") == "bingbot"
    assert verified_crawler_name("40.77.167.0") == "bingbot"
    assert is_verified_crawler("2001:4860:4801:10::1")
    assert is_verified_crawler("::ffff:66.249.66.1")
    assert not is_verified_crawler("66.249.96.1")
    assert not is_verified_crawler("66.249.63.255")
    assert not is_verified_crawler("in24.inetnebr.com")
    assert "66.249.64.0" in ranges and "8.8.8.8" not in ranges


def test_custom_crawler_file(tmp_path: Path) -> None:
    path = tmp_path / "crawlers.txt"
    path.write_text("# snapshot: 2026-01\n\n5.6.7.0/24  # ExampleBot\n2a01::/32\n", encoding="utf-8")
    ranges = load_crawler_ranges(path)
    assert ranges.snapshot == "2026-01"
    assert ranges.name_of("5.6.7.8") == "ExampleBot" and ranges.name_of("2a01::9") == "verified crawler"
    path.write_text("5.6.7.0/24 # ok\nnot-a-cidr # Bad\n", encoding="utf-8")
    with pytest.raises(UsageError) as info:
        load_crawler_ranges(path)
    assert str(info.value) == (f"{path}:2: 'not-a-cidr' is not a CIDR or IP address\n"
                               "Write one network per line, like 66.249.64.0/19  # Googlebot")


# --- properties ------------------------------------------------------------------------------


V4_NETS = ("45.10", "45.11", "66.249", "10.0")  # 66.249.64-95 is Googlebot, 10/8 is private
V6_NETS = ("2a02:abcd", "2a02:abce", "fc00:1")
ALLOW_POOL = ("45.10.1.0/24", "45.11.0.128/25", "45.10.0.7/32", "2a02:abcd:2::/48", "45.11.2.0/23")

v4_ip = st.builds(lambda n, c, d: f"{n}.{c}.{d}", st.sampled_from(V4_NETS), st.sampled_from((0, 1, 2, 3, 64, 96)),
                  st.integers(0, 15))
v6_ip = st.builds(lambda n, c, d: f"{n}:{c:x}::{d:x}", st.sampled_from(V6_NETS), st.integers(0, 3), st.integers(0, 7))
any_ip = st.one_of(v4_ip, v6_ip, st.sampled_from(("::1", "127.0.0.1", "bad.host.example")))
#: Clusters of attackers in one /24 or /48, so that aggregation and climbing really happen.
v4_cluster = st.builds(lambda n, c, hosts: [f"{n}.{c}.{d}" for d in hosts], st.sampled_from(V4_NETS),
                       st.sampled_from((0, 1, 2, 3, 64, 96)), st.sets(st.integers(0, 15), min_size=1))
v6_cluster = st.builds(lambda n, c, hosts: [f"{n}:{c:x}::{d:x}" for d in hosts], st.sampled_from(V6_NETS),
                       st.integers(0, 3), st.sets(st.integers(0, 7), min_size=1))
attacker_maps = st.builds(
    lambda clusters, singles: {ip: n for ips, n in clusters for ip in ips} | singles,
    st.lists(st.tuples(v4_cluster | v6_cluster, st.integers(1, 1000)), max_size=12),
    st.dictionaries(any_ip, st.integers(1, 1000), max_size=20))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(attackers=attacker_maps,
       known=st.dictionaries(st.one_of(v4_ip, v6_ip), st.integers(1, 100), max_size=15),
       allow=st.lists(st.sampled_from(ALLOW_POOL), max_size=3, unique=True),
       min_attackers=st.integers(2, 4), share=st.sampled_from((0.0, 0.0, 0.2)),
       bystanders=st.none() | st.dictionaries(st.one_of(v4_ip, v6_ip), st.integers(1, 50), max_size=10))
def test_blocklist_invariants(attackers: dict[str, int], known: dict[str, int], allow: list[str],
                              min_attackers: int, share: float, bystanders: dict[str, int] | None) -> None:
    policy = BlocklistPolicy(min_attackers_to_aggregate=min_attackers, max_collateral_share=share,
                             allow=tuple(allow))
    incident = None if bystanders is None else {**bystanders, **attackers}
    bl = build_blocklist(attackers, known, incident_clients=incident, policy=policy)
    nets = [net(e.cidr) for e in bl.entries]
    protected = [net(c) for c in allow] + [net(c) for c, _ in SPECIAL_RANGES] + \
        [n for n, _ in load_crawler_ranges().networks]
    for e, n in zip(bl.entries, nets, strict=True):
        assert n.prefixlen >= (policy.min_prefix_v4 if n.version == 4 else policy.min_prefix_v6)
        assert not any(p.version == n.version and p.overlaps(n) for p in protected), e
        inside = [a for a in attackers if (ip := _ip(a)) is not None and ip.version == n.version and ip in n]
        assert e.attackers == len(inside) and e.requests == sum(attackers[a] for a in inside)
        known_inside = [k for k in known if ipaddress.ip_address(k) in n]
        assert e.collateral_clients == len(known_inside)
        assert e.collateral_requests == sum(known[k] for k in known_inside)
        if share == 0.0 and n.num_addresses > 1:
            assert known_inside == [], e
    ordered = sorted(nets, key=lambda n: (n.version, n.network_address))
    for left, right in itertools.pairwise(ordered):
        assert left.version != right.version or not left.overlaps(right)
    skipped = {s.ip for s in bl.skipped}
    for a in attackers:
        ip = _ip(a)
        covered = ip is not None and any(n.version == ip.version and ip in n for n in nets)
        assert covered != (a in skipped), a
    assert bl.attackers_covered + len(bl.skipped) == bl.attackers_total == len(attackers)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


# --- scale -----------------------------------------------------------------------------------


def test_100k_attackers_in_a_few_seconds() -> None:
    rng = random.Random(11)
    attackers: dict[str, int] = {}
    for _ in range(1500):  # dense botnet /24s
        a, b, c = rng.choice(SAFE_OCTETS), rng.randrange(256), rng.randrange(256)
        for d in rng.sample(range(1, 255), 40):
            attackers[f"{a}.{b}.{c}.{d}"] = rng.randrange(1, 300)
    while len(attackers) < 90_000:
        attackers[f"{rng.choice(SAFE_OCTETS)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"] = 3
    while len(attackers) < 100_000:
        attackers[str(ipaddress.IPv6Address((0x2A02ABCD << 96) | rng.getrandbits(96)))] = 2
    known = {f"{rng.choice(SAFE_OCTETS)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}": 1
             for _ in range(50_000)}
    known = {k: v for k, v in known.items() if k not in attackers}
    started = time.perf_counter()
    bl = build_blocklist(attackers, known, incident_clients={**known, **attackers})
    elapsed = time.perf_counter() - started
    assert bl.attackers_covered + len(bl.skipped) == len(attackers) == 100_000
    assert bl.collateral_clients_total == 0
    assert any(e.cidr.endswith("/24") for e in bl.entries)
    assert elapsed < 30, f"{elapsed:.1f}s for 100k attackers"  # a hang guard; it takes well under 1s
