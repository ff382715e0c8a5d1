"""Mitigation for the network layer (issue #21): FlowSpec, blackhole, nftables and iptables rules for each vector
of the report's network episodes, with what each stops and costs measured on the flows, and each configuration
accepted by the real tool's own parser (exabgp --validate, gobgp against a gobgpd in a private network namespace,
nft -c, iptables-restore --test)."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from floodwitness.errors import UsageError
from floodwitness.mitigation.apply import MitigateOptions, mitigate_network
from floodwitness.mitigation.exports import EXPORTERS, ExportContext, render
from floodwitness.mitigation.network import network_plan
from floodwitness.mitigation.network_export import NETWORK_EXPORTERS, render_network
from floodwitness.mitigation.network_measure import FlowView, Match
from floodwitness.mitigation.network_model import BgpSession, Episode, NetworkOptions, NetworkPlan, read_episode
from floodwitness.mitigation.protected import protected_ranges
from floodwitness.mitigation.rules import plan_rules
from tests.network_flows import Scenario, carpet, direct, dns, flow, fragments, memcached_v6, ntp, syn, table

if TYPE_CHECKING:
    from pathlib import Path

    import pyarrow as pa

NOW = datetime(2026, 11, 10, tzinfo=UTC)
NETWORK_TARGETS = ("exabgp-flowspec", "exabgp-rtbh", "gobgp-flowspec", "gobgp-rtbh", "nftables-network",
                   "iptables-network")


def _plan(*scenarios: Scenario, options: NetworkOptions | None = None, flows: bool = True) -> NetworkPlan:
    rows = [r for s in scenarios for r in s.rows]
    return network_plan([s.episode for s in scenarios], table(rows) if flows else None, options, now=NOW)


def _rule(plan: NetworkPlan, name: str) -> Any:
    return next(r for r in plan.rules if r.name == name)


def _text(rule: Any) -> str:
    return "\n".join(rule.statements)


# --- what each vector gets, and what it stops and costs -------------------------------------------------------


def test_ntp_reflection_drops_source_port_123_to_the_victim_and_spares_its_own_ntp_server() -> None:
    plan = _plan(ntp())
    rule = _rule(plan, "n1-ntp-reflection")
    assert rule.action == "discard"
    assert (str(rule.match.destination), rule.match.proto, rule.match.src_port, rule.match.dst_port) == \
        ("203.0.113.10/32", 17, 123, None)
    assert [str(n) for n in rule.exceptions] == ["192.0.2.123/32"]  # the victim asked it first
    e = rule.effect
    assert (e.stopped.flows, e.stopped.packets, e.episode_packets) == (200, 20_000, 20_101)
    assert (e.legit_in_episode.flows, e.baseline.flows, e.baseline_flows_total) == (0, 0, 35)
    text = _text(rule)
    assert "stops 20,000 of the 20,101 packets of the episode (99.5%)" in text
    assert "would also drop 1 legitimate flows (1 packets) during the episode and 5 flows" in text
    assert "misused servers" in text and "attacker" in text  # reflectors are not called attackers


def test_dns_reflection_collateral_is_the_victims_own_lookups_and_they_are_excepted() -> None:
    scenario = dns()
    episode = read_episode(scenario.episode)
    assert isinstance(episode, Episode)
    view = FlowView(table(scenario.rows), [episode.window])
    naive = view.effect(Match(episode.target, 17, src_port=53), (), episode.window, (1, 1))
    # a bare "drop UDP from port 53" would drop the 10 replies of its resolvers during the episode, 20 before
    assert (naive.legit_in_episode.flows, naive.baseline.flows, naive.baseline_flows_total) == (10, 20, 20)
    rule = _rule(_plan(scenario), "n2-dns-reflection")
    assert [str(n) for n in rule.exceptions] == ["192.0.2.53/32", "192.0.2.54/32"]
    assert rule.match.min_length is None  # nothing legitimate is left to spare by length
    assert (rule.effect.stopped.packets, rule.effect.legit_in_episode.flows, rule.effect.baseline.flows) == (6000, 0, 0)
    assert "would also drop 10 legitimate flows (10 packets) during the episode and 20 flows (20 packets)" in _text(rule)


def test_exceptions_come_before_the_rule_they_except_in_every_export() -> None:
    plan = _plan(dns())
    for target, accept, drop in (("exabgp-flowspec", "route n2-dns-reflection-except-1 ", "route n2-dns-reflection "),
                                 ("gobgp-flowspec", "source 192.0.2.53/32 protocol 17 source-port ==53 then accept",
                                  "source-port ==53 then discard"),
                                 ("nftables-network", "ip saddr { 192.0.2.53, 192.0.2.54 } ip daddr 203.0.113.20",
                                  "udp sport 53 counter drop"),
                                 ("iptables-network", "-s 192.0.2.54/32 -d 203.0.113.20/32 -p udp --sport 53 -j ACCEPT",
                                  "--sport 53 -m comment")):
        text = render_network(plan, target)
        assert -1 < text.index(accept) < text.index(drop), target


def test_dns_reflection_narrowed_by_packet_length_when_the_resolvers_are_too_many_to_list() -> None:
    rule = _rule(_plan(dns(), options=NetworkOptions(max_exceptions=1)), "n2-dns-reflection")
    assert rule.exceptions == ()
    assert rule.match.min_length == 120  # the replies the victim asked for are 120 bytes; the attack's 1400
    assert (rule.effect.stopped.packets, rule.effect.legit_in_episode.flows, rule.effect.baseline.flows) == (6000, 0, 0)
    assert "only packets longer than 120 bytes" in _text(rule) and "100.0% of the bytes of the attack" in _text(rule)
    plan = NetworkPlan((rule,), (), NOW, BgpSession(), True)
    assert "packet-length >120;" in render_network(plan, "exabgp-flowspec")
    assert "packet-length '>120'" in render_network(plan, "gobgp-flowspec")
    assert "ip length > 120 counter drop" in render_network(plan, "nftables-network")
    assert "-m length --length 121:65535" in render_network(plan, "iptables-network")


def test_syn_flood_is_rate_limited_with_the_expected_share_and_syn_cookies_advised() -> None:
    rule = _rule(_plan(syn()), "n3-syn-flood")
    m = rule.match
    assert (rule.action, rule.rate_pps, m.proto, m.dst_port, m.flags_all, m.flags_none) == ("rate-limit", 100, 6, 443,
                                                                                            2, 16)
    e = rule.effect
    assert e.share == pytest.approx(0.6)  # 100/s let through of the flood's 250/s
    assert (e.stopped.packets, e.legit_in_episode.flows) == (3000, 24)  # 60% of 5,000 SYNs, of 40 connections
    assert (e.baseline.flows, e.baseline_flows_total) == (0, 60)  # one connection every 5 s stays under 100/s
    text = _text(rule)
    assert "tcp_syncookies=1" in text
    assert "would drop 0 of 5,000 flood packets (0.0%): the busiest source sent 1" in text  # spoofed: one each
    plan = NetworkPlan((rule,), (), NOW, BgpSession(), True)
    assert "tcp-flags [syn&!ack];" in render_network(plan, "exabgp-flowspec")
    assert "rate-limit 9600;" in render_network(plan, "exabgp-flowspec")  # 100 SYN/s of 64 bytes, ExaBGP's floor
    assert "tcp-flags '=S&!=A'" in render_network(plan, "gobgp-flowspec")
    nft = render_network(plan, "nftables-network")
    assert "tcp flags & (syn | ack) == syn limit rate over 100/second" in nft and " meter fw_n3_syn_flood_src " in nft
    assert "--tcp-flags SYN,ACK SYN -m hashlimit" in render_network(plan, "iptables-network")


def test_carpet_bombing_gets_a_prefix_flowspec_rule_but_no_prefix_blackhole_unless_asked() -> None:
    plan = _plan(carpet())
    rule = _rule(plan, "n4-cldap-reflection")
    assert str(rule.match.destination) == "198.51.100.0/24" and rule.match.src_port == 389
    assert (rule.effect.stopped.packets, rule.effect.baseline.flows, rule.effect.baseline_flows_total) == (10_000, 0,
                                                                                                           20)
    assert not plan.blackholes
    assert any("no blackhole for 198.51.100.0/24" in n and "256 addresses" in n for n in plan.notes)
    assert "198.51.100.0/24" not in render_network(plan, "exabgp-rtbh").replace("# ", "#").split("#")[0]
    allowed = _plan(carpet(), options=NetworkOptions(allow_prefix_blackhole=True))
    assert [str(r.match.destination) for r in allowed.blackholes] == ["198.51.100.0/24"]
    assert allowed.blackholes[0].effect.baseline.flows == 20  # every ordinary flow to the prefix goes too


def test_no_rule_for_a_prefix_broader_than_the_caps_and_no_blackhole_beyond_24() -> None:
    broad = carpet("10.0.0.0/24")
    broad.episode["target"] = "10.0.0.0/8"
    plan = _plan(broad)
    assert plan.rules == ()
    assert any("broader than /16" in n for n in plan.notes)
    wide = _plan(replace(broad, episode=dict(broad.episode, target="10.0.0.0/20")),
                 options=NetworkOptions(allow_prefix_blackhole=True))
    assert [str(r.match.destination) for r in wide.filters] == ["10.0.0.0/20"] and not wide.blackholes
    assert any("broader than /24, even when allowed" in n for n in wide.notes)


def test_fragment_flood_drops_fragments_spares_the_answer_asked_for_and_says_baseline_is_unmeasurable() -> None:
    rule = _rule(_plan(fragments()), "n5-fragment-flood")
    assert rule.match.fragment and rule.match.proto == 17
    assert [str(n) for n in rule.exceptions] == ["192.0.2.99/32"]
    assert (rule.effect.stopped.packets, rule.effect.legit_in_episode.flows) == (2400, 0)
    assert rule.effect.baseline_flows_total == 0
    assert "collateral outside the episodes cannot be measured" in _text(rule)
    assert "would also drop 1 legitimate flows (2 packets) during the episode" in _text(rule)


def test_blackhole_is_the_host_route_and_says_it_completes_the_attack() -> None:
    plan = _plan(ntp())
    hole = _rule(plan, "n1-blackhole")
    assert str(hole.match.destination) == "203.0.113.10/32"
    assert (hole.effect.legit_in_episode.flows, hole.effect.baseline.flows) == (11, 35)  # everything to the host
    assert "completes the goal of the attack" in _text(hole)
    assert "route 203.0.113.10/32 next-hop 192.0.2.1 community [65535:666 no-export];" in \
        render_network(plan, "exabgp-rtbh")
    assert "gobgp global rib -a ipv4 add 203.0.113.10/32 nexthop 192.0.2.1 community 65535:666,no-export" in \
        render_network(plan, "gobgp-rtbh")


def test_without_flows_the_rules_say_nothing_was_measured() -> None:
    plan = _plan(ntp(), flows=False)
    rule = _rule(plan, "n1-ntp-reflection")
    assert rule.effect is None and rule.exceptions == ()
    assert "not measured: no flow table given" in _text(rule)
    assert not plan.measured and any("no flow table" in n for n in plan.notes)


def test_a_vector_with_nothing_narrower_than_all_traffic_gets_no_rule() -> None:
    s = ntp()
    s.episode["vectors"] = [{"vector": "mystery", "proto": None, "port": None, "port_side": None}]
    plan = _plan(s)
    assert [r.name for r in plan.rules] == ["n1-blackhole"]
    assert any("no rule for vector mystery" in n for n in plan.notes)
    assert all(r.match.narrowed for r in plan.filters)


def test_the_allowlist_is_excepted_from_a_rule_that_would_drop_it() -> None:
    options = NetworkOptions(protected=protected_ranges(["45.1.0.0/25"]))
    rule = _rule(_plan(ntp(), options=options), "n1-ntp-reflection")
    assert [str(n) for n in rule.exceptions] == ["45.1.0.0/25", "192.0.2.123/32"]
    assert rule.effect.stopped.flows == 200 - 127  # 45.1.0.1 to .127 are allowlisted: their answers pass


def test_fragment_rule_is_not_measured_on_flows_that_do_not_count_fragments() -> None:
    s = fragments()
    rows = [dict(r, fragments=None) for r in s.rows]  # as nfstream's flows: fragments set aside
    rule = _rule(network_plan([s.episode], table(rows), now=NOW), "n5-fragment-flood")
    assert rule.effect.unmeasured and "stops 0" not in _text(rule) and "collateral" not in _text(rule)
    assert "do not count fragments" in _text(rule)


def test_mitigate_network_renders_the_report_section_with_a_summary() -> None:
    s = syn()
    result = mitigate_network({"episodes": [s.episode]}, table(s.rows), MitigateOptions("nftables-network"))
    assert "limit rate over 100/second" in result.text
    assert result.summary[0] == ("n3-syn-flood: rate-limit TCP with SYN without ACK to port 443 to 203.0.113.30: "
                                 "stops 3,000 of 5,480 packets (54.7%); collateral 24 legitimate flows in the "
                                 "episode, 0 of 60 flows outside the episodes")
    assert "no network episodes" in mitigate_network(None, None, MitigateOptions("exabgp-flowspec")).text
    with pytest.raises(UsageError, match="not a network enforcement point"):
        mitigate_network({"episodes": []}, None, MitigateOptions("nginx"))


# --- real captures (read in place) ---------------------------------------------------------------------------


def test_real_spoofed_syn_flood_rate_limit_and_per_source_meter(realdata: Path) -> None:
    from floodwitness.ingest.flows.pcap import read_pcap

    flows = read_pcap(realdata / "ddos-captures" / "stopddos_syn_flood_spoofed.pcap")
    vector = {"vector": "syn_flood", "name": "SYN flood", "proto": 6, "port": 25565, "port_side": "dst",
              "packets": 37841, "bytes": 1513640, "peak_pps": 1598, "sources": 37623, "source_role": "spoofed"}
    episode = {"id": "N1", "target": "10.10.10.10", "start": "2021-04-28T10:30:21Z", "end": "2021-04-28T10:30:44Z",
               "packets": 37841, "bytes": 1513640, "vectors": [vector]}
    plan = network_plan([episode], flows, now=NOW)
    rule = _rule(plan, "n1-syn-flood")
    e = rule.effect
    assert e.share == pytest.approx(1 - 100 / 1598)
    assert e.stopped.packets == round(37841 * (1 - 100 / 1598))  # every SYN of the capture is the flood's
    assert (e.legit_in_episode.flows, e.baseline_flows_total) == (0, 0)
    assert "would drop 0 of 37,841 flood packets" in _text(rule)  # spoofed: no source sends more than 2


def test_real_dns_amplification_rule_spares_the_background_traffic_a_blackhole_would_drop(realdata: Path) -> None:
    from floodwitness.ingest.flows.pcap import read_pcap

    flows = read_pcap(realdata / "ddos-captures" / "stopddos_dns_rrsig_amp_fragmented.pcap")
    vector = {"vector": "dns_reflection", "name": "DNS reflection", "proto": 17, "port": 53, "port_side": "src",
              "packets": 543, "bytes": 0, "peak_pps": 100, "sources": 50, "source_role": "reflectors"}
    episode = {"id": "N1", "target": "10.10.10.10", "start": "2021-09-21T15:45:24Z", "end": "2021-09-21T15:45:54Z",
               "packets": 0, "bytes": 0, "vectors": [vector]}
    plan = network_plan([episode], flows, now=NOW)
    dns_rule, hole = _rule(plan, "n1-dns-reflection"), _rule(plan, "n1-blackhole")
    assert (dns_rule.effect.stopped.packets, dns_rule.effect.legit_in_episode.flows) == (543, 0)
    assert (hole.effect.legit_in_episode.flows, hole.effect.legit_in_episode.packets) == (122, 2844)


# --- hostile values never reach a configuration ---------------------------------------------------------------


def _hostile() -> tuple[list[dict[str, Any]], pa.Table]:
    s = ntp()
    base = s.episode
    rows = [*s.rows,
            flow("203.0.113.10", "fe80::1%x; flush ruleset", 40000, 123, at=1),
            flow("fe80::1%x; flush ruleset", "203.0.113.10", 123, 40000, at=1.1),
            flow("1.2.3.4\nflush ruleset", "203.0.113.10", 123, 40001, at=2)]
    vector = dict(base["vectors"][0], name="NTP\n}\nflush ruleset #", source_role="reflectors\n}")
    episodes = [dict(base, id="N1\n}; drop", vectors=[vector, dict(vector, vector="x;y\nz", port="123; drop")]),
                dict(base, id="N7", target="1.2.3.4; drop"), dict(base, id="N8", target="203.0.113.9\nflush"),
                dict(base, id="N9", target="fe80::1%eth0"), dict(base, id="N10", target="203.0.113.0/23")]
    return episodes, table(rows)


def _code(text: str) -> str:
    """The text without its comments (the only place report text may go)."""
    return "\n".join(re.sub(r'--comment "[^"\n]*"', "", line).split("#", 1)[0] for line in text.splitlines())


def test_hostile_values_never_reach_a_configuration() -> None:
    episodes, flows = _hostile()
    plan = network_plan(episodes, flows, now=NOW)
    assert sum("left out" in n for n in plan.notes) == 4  # three bad targets and one with host bits set
    assert {r.name for r in plan.rules} == {"n1-drop-ntp-reflection", "n1-drop-blackhole"}  # names: [a-z0-9-]
    for target in NETWORK_TARGETS:
        text = render_network(plan, target)
        code = _code(text)
        assert "flush ruleset" not in code and "%" not in code and "1.2.3.4" not in code and "}; " not in code, target
        assert "\r" not in text and all(line.isprintable() for line in text.splitlines()), target
    for rule in plan.rules:
        assert re.fullmatch(r"[a-z0-9-]+", rule.name)


def test_bgp_session_values_are_checked() -> None:
    with pytest.raises(UsageError, match="neighbor"):
        BgpSession(neighbor="192.0.2.1; drop")
    with pytest.raises(UsageError, match="AS number"):
        BgpSession(peer_as=0)


# --- the registry -----------------------------------------------------------------------------------------


def test_network_exporters_are_in_the_registry_and_render_the_context_plan() -> None:
    plan = _plan(ntp(), syn())
    assert set(NETWORK_TARGETS) == set(NETWORK_EXPORTERS) and set(NETWORK_TARGETS) <= set(EXPORTERS)
    rules = plan_rules({"blocklist": []}, protected_ranges(), now=NOW)
    for target in NETWORK_TARGETS:
        assert render(target, ExportContext(rules, protected_ranges(), network=plan)) == render_network(plan, target)
        empty = render(target, ExportContext(rules, protected_ranges()))
        assert "no network episodes" in empty
        assert not re.search(r"\bdrop\b|\broute\b|gobgp global|-A FLOOD|discard", _code(empty)), target


# --- each tool's own parser ---------------------------------------------------------------------------------


def _run(args: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False, **kw)


def _need(tool: str) -> str:
    path = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")
    if path is None:
        pytest.skip(f"{tool} is not installed (apt-get install exabgp gobgpd nftables iptables)")
    return path


def _netns() -> list[str]:
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed: cannot use a private network namespace")
    for args in (["unshare", "-n"], ["unshare", "-rn"]):
        if _run([*args, "true"]).returncode == 0:
            return args
    pytest.skip("creating a network namespace is not permitted here (needs CAP_SYS_ADMIN or user namespaces)")


@pytest.fixture(scope="module")
def every_plan() -> NetworkPlan:
    """Every scenario at once: IPv4 and IPv6, exceptions, a length floor, rate limits, fragments, a prefix, and
    each direct flood (ACK, RST, UDP, ICMP/ICMPv6, GRE)."""
    plan = _plan(ntp(), dns(), syn(), carpet(), fragments(), memcached_v6(), direct())
    other = dns("203.0.113.21")
    other.episode["id"] = "N7"
    v6 = direct("2001:db8::50")
    v6.episode["id"] = "N10"
    more = [_plan(other, options=NetworkOptions(max_exceptions=1)), _plan(v6)]
    return replace(plan, rules=(*plan.rules, *[r for p in more for r in p.rules]))


@pytest.fixture(scope="module")
def every_export(every_plan: NetworkPlan, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("network")
    paths = {}
    for target in NETWORK_TARGETS:
        paths[target] = out / f"{target}{NETWORK_EXPORTERS[target].suffix}"
        paths[target].write_text(render_network(every_plan, target))
    return paths


def test_direct_floods_get_their_rules_and_rate_limits_from_the_legitimate_rate() -> None:
    plan = _plan(direct())
    actions = {r.vector: (r.action, r.match.proto, r.match.dst_port, r.match.flags_all, r.rate_pps)
               for r in plan.filters}
    assert actions == {"ack_flood": ("rate-limit", 6, 443, 16, 100), "rst_flood": ("discard", 6, 443, 4, None),
                       "udp_flood": ("discard", 17, 27015, 0, None), "icmp_flood": ("rate-limit", 1, None, 0, 100),
                       "gre_flood": ("discard", 47, None, 0, None)}
    ack = _rule(plan, "n9-ack-flood").effect
    # the ACK flood's flows are not legitimate (no SYN, nothing answered); the HTTPS connections before are, and
    # at 3 packets/s at their busiest they stay under the limit: nothing of them is dropped
    assert (ack.share, ack.stopped.packets, ack.legit_in_episode.flows) == (pytest.approx(0.8), 8000, 0)
    assert (ack.baseline.flows, ack.baseline_flows_total) == (0, 50)
    hole = _rule(plan, "n9-blackhole").effect
    assert (hole.stopped.packets, hole.baseline.flows) == (50_000, 50)


def test_one_way_flows_count_every_acknowledging_tcp_flow_as_legitimate_and_say_so() -> None:
    rule = _rule(_plan(direct(answers=False)), "n9-ack-flood")
    # without the victim's side an ACK flood cannot be told from established connections: its flows count as
    # collateral, and the limit follows them (2 x 500 packets/s)
    assert (rule.rate_pps, rule.effect.legit_in_episode.flows, rule.effect.stopped.packets) == (1000, 0, 0)
    assert "no answer of it can be seen" in _text(rule)
    assert "no answer" not in _text(_rule(_plan(direct()), "n9-ack-flood"))


def test_exabgp_validates_the_flowspec_and_blackhole_configurations(every_export: dict[str, Path],
                                                                    tmp_path: Path) -> None:
    exabgp = _need("exabgp")
    for target in ("exabgp-flowspec", "exabgp-rtbh"):
        result = _run([exabgp, "--validate", str(every_export[target])], cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "broken.conf"  # the check can fail: a port ExaBGP cannot read
    broken.write_text(every_export["exabgp-flowspec"].read_text().replace("source-port =123;", "source-port =x;"))
    assert _run([exabgp, "--validate", str(broken)], cwd=tmp_path).returncode != 0


GOBGP_SESSION = """ip link set lo up
{gobgpd} -f {toml} -l warn >{log} 2>&1 &
pid=$!
i=0
until {gobgp} global >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 100 ] || {{ kill $pid; exit 9; }}; sleep 0.1; done
PATH="{bindir}:$PATH" sh {flowspec} && PATH="{bindir}:$PATH" sh {rtbh}; rc=$?
for family in ipv4-flowspec ipv6-flowspec ipv4 ipv6; do {gobgp} global rib -a $family; done
kill $pid
exit $rc
"""


def test_gobgp_accepts_every_command_and_holds_every_route(every_export: dict[str, Path], every_plan: NetworkPlan,
                                                           tmp_path: Path) -> None:
    gobgpd, gobgp = _need("gobgpd"), _need("gobgp")
    netns = _netns()
    toml = tmp_path / "gobgpd.toml"
    toml.write_text('[global.config]\n  as = 64512\n  router-id = "192.0.2.2"\n  port = -1\n')
    script = GOBGP_SESSION.format(gobgpd=gobgpd, gobgp=gobgp, toml=toml, log=tmp_path / "gobgpd.log",
                                  bindir=gobgp.rsplit("/", 1)[0], flowspec=every_export["gobgp-flowspec"],
                                  rtbh=every_export["gobgp-rtbh"])
    result = _run([*netns, "timeout", "50", "sh", "-c", script])
    assert result.returncode == 0, result.stdout + result.stderr
    commands = sum(line.startswith("gobgp global rib")
                   for target in ("gobgp-flowspec", "gobgp-rtbh") for line in every_export[target].read_text().split("\n"))
    routes = len(every_plan.rules) + sum(len(r.exceptions) for r in every_plan.filters)
    assert result.stdout.count("*>") == commands == routes
    assert result.stdout.count("blackhole, no-export") == len(every_plan.blackholes) == 8


def test_nft_accepts_the_network_ruleset(every_export: dict[str, Path]) -> None:
    nft = _need("nft")
    result = _run([*_netns(), nft, "-c", "-f", str(every_export["nftables-network"])])
    assert result.returncode == 0, result.stderr


def test_iptables_restore_accepts_the_raw_table_rules(every_export: dict[str, Path], every_plan: NetworkPlan,
                                                     tmp_path: Path) -> None:
    text = every_export["iptables-network"].read_text()
    assert _run(["sh", "-n", str(every_export["iptables-network"])]).returncode == 0
    bodies = dict(re.findall(r"(ip6?tables)-restore --noflush <<'FLOODWITNESS_RULES'\n(.*?)\nFLOODWITNESS_RULES",
                             text, re.S))
    assert set(bodies) == {"iptables", "ip6tables"}
    netns = _netns()
    for tool, body in bodies.items():
        restore = _need(f"{tool}-restore")
        rules = tmp_path / f"{tool}.rules"
        rules.write_text(body + "\n")
        result = _run([*netns, restore, "--test", str(rules)])
        assert result.returncode == 0, tool + ": " + result.stderr
    assert text.count("-j DROP") == len(every_plan.filters) + 1  # one per rule, and the SYN rule's per-source meter
