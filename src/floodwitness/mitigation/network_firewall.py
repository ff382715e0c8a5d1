"""The network countermeasures as host or router firewall rules: nftables and iptables/ip6tables.

Both filter before connection tracking (nftables: a prerouting chain at priority -450, ahead of defragmentation
at -400, so fragment rules see fragments; iptables: the raw table), on the victim or on a Linux router in front
of it. A rate limit becomes a limit over the rule's rate; a SYN rate limit also gets a per-source meter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from floodwitness.mitigation.network_export import (
    CHAIN,
    TABLE,
    comment_lines,
    export_header,
    flag_names,
    host_text,
    network_exporter,
    shell_script,
)
from floodwitness.mitigation.rules import safe_comment

if TYPE_CHECKING:
    from floodwitness.mitigation.network_measure import Match
    from floodwitness.mitigation.network_model import NetworkPlan, NetworkRule

_NFT_FLAGS: Final = {1: "fin", 2: "syn", 4: "rst", 8: "psh", 16: "ack", 32: "urg", 64: "ecn", 128: "cwr"}
_IPT_FLAGS: Final = {1: "FIN", 2: "SYN", 4: "RST", 8: "PSH", 16: "ACK", 32: "URG"}
_PORTED: Final = {6: "tcp", 17: "udp"}
IPV6_HEADER: Final = 40
REGISTERED: Final = ("nftables-network", "iptables-network")  #: what importing this module adds to the registry


def _meter_name(rule: NetworkRule, what: str) -> str:
    return f"fw_{rule.name.replace('-', '_')}_{what}"[:60]


def _nft_match(m: Match) -> str:
    ip = "ip" if m.family == 4 else "ip6"
    out = [f"{ip} daddr {host_text(m.destination)}"]
    l4 = _PORTED.get(m.proto or -1, "th")
    if m.proto is not None:
        out.append(f"meta l4proto {m.proto}")
    if m.src_port is not None:
        out.append(f"{l4} sport {m.src_port}")
    if m.dst_port is not None:
        out.append(f"{l4} dport {m.dst_port}")
    if m.flags_all:
        mask = " | ".join(flag_names(m.flags_all | m.flags_none, _NFT_FLAGS))
        out.append(f"tcp flags & ({mask}) == {' | '.join(flag_names(m.flags_all, _NFT_FLAGS))}")
    if m.fragment:
        out.append("ip frag-off & 0x3fff != 0" if m.family == 4 else "exthdr frag exists")
    if m.min_length is not None:
        out.append(f"ip length > {m.min_length}" if m.family == 4
                   else f"ip6 length > {max(0, m.min_length - IPV6_HEADER)}")
    return " ".join(out)


def _nft_rule(rule: NetworkRule) -> list[str]:
    match = _nft_match(rule.match)
    ip = "ip" if rule.match.family == 4 else "ip6"
    out = comment_lines(rule, "        ")
    sources = [host_text(s) for s in rule.exceptions if s.version == rule.match.family]
    if sources:
        out.append(f"        {ip} saddr {{ {', '.join(sources)} }} {match} accept")
    if rule.per_source_pps:
        rate = rule.per_source_pps
        out.append(f"        {match} meter {_meter_name(rule, 'src')} {{ {ip} saddr limit rate over {rate}/second "
                   f"burst {2 * rate} packets }} counter drop")
    if rule.action == "rate-limit":
        rate = rule.rate_pps or 0
        out.append(f"        {match} limit rate over {rate}/second burst {2 * rate} packets counter drop")
    else:
        out.append(f"        {match} counter drop")
    return out


@network_exporter(".nft")
def nftables_network(plan: NetworkPlan | None) -> str:
    """nftables table inet floodwitness_net: a prerouting chain (before conntrack) dropping each vector."""
    rules = plan.filters if plan else ()
    lines = ["#!/usr/sbin/nft -f", *export_header(plan, "network rules for nftables", rules),
             "# load with: nft -f FILE (replaces the floodwitness_net table); on the target or a router in front",
             f"table inet {TABLE} {{}}", f"delete table inet {TABLE}", f"table inet {TABLE} {{",
             "    chain prerouting {", "        type filter hook prerouting priority -450; policy accept;"]
    for rule in rules:
        lines += _nft_rule(rule)
    return "\n".join([*lines, "    }", "}"]) + "\n"


def _ipt_match(m: Match) -> str:
    out = [f"-d {m.destination}"]
    if m.proto is not None:
        out.append(f"-p {_PORTED.get(m.proto, str(m.proto))}")
    if m.src_port is not None:
        out.append(f"--sport {m.src_port}")
    if m.dst_port is not None:
        out.append(f"--dport {m.dst_port}")
    if m.flags_all:
        mask = ",".join(flag_names(m.flags_all | m.flags_none, _IPT_FLAGS))
        out.append(f"--tcp-flags {mask} {','.join(flag_names(m.flags_all, _IPT_FLAGS))}")
    if m.fragment:  # every fragment: MF set or a non-zero offset (-f alone misses the first fragment)
        out.append('-m u32 --u32 "4&0x3FFF=0x1:0x3FFF"' if m.family == 4 else "-m frag --fragid 0:4294967295")
    if m.min_length is not None:
        out.append(f"-m length --length {m.min_length + 1}:65535")
    return " ".join(out)


def _ipt_rules(rule: NetworkRule, index: int) -> list[str]:
    match = _ipt_match(rule.match)
    comment = f'-m comment --comment "{safe_comment(rule.statements[0] if rule.statements else rule.name, 240)}"'
    out = [f"-A {CHAIN} -s {s} {match} -j ACCEPT" for s in rule.exceptions if s.version == rule.match.family]
    if rule.per_source_pps:
        rate = rule.per_source_pps
        out.append(f"-A {CHAIN} {match} -m hashlimit --hashlimit-name fw{index}s --hashlimit-mode srcip "
                   f"--hashlimit-above {rate}/second --hashlimit-burst {2 * rate} {comment} -j DROP")
    if rule.action == "rate-limit":
        rate = rule.rate_pps or 0
        out.append(f"-A {CHAIN} {match} -m hashlimit --hashlimit-name fw{index}d --hashlimit-mode dstip "
                   f"--hashlimit-above {rate}/second --hashlimit-burst {2 * rate} {comment} -j DROP")
    else:
        out.append(f"-A {CHAIN} {match} {comment} -j DROP")
    return out


@network_exporter(".sh")
def iptables_network(plan: NetworkPlan | None) -> str:
    """Shell script loading each vector's rules into chain FLOODWITNESS_NET of the raw table (iptables-restore)."""
    rules = plan.filters if plan else ()
    lines = [*export_header(plan, "network rules for iptables", rules),
             "# the raw table filters before conntrack; with conntrack loaded the kernel reassembles fragments first:",
             "# for fragment rules prefer the nftables export (priority -450) or FlowSpec on the router", "set -e"]
    for version, tool in ((4, "iptables"), (6, "ip6tables")):
        mine = [(i, r) for i, r in enumerate(rules, 1) if r.match.family == version]
        if not mine:
            continue
        lines += [f"{tool}-restore --noflush <<'FLOODWITNESS_RULES'", "*raw", f":{CHAIN} - [0:0]"]
        for i, rule in mine:
            lines += [f"# {safe_comment(s, 400)}" for s in rule.statements]
            lines += _ipt_rules(rule, i)
        lines += ["COMMIT", "FLOODWITNESS_RULES",
                  f"{tool} -t raw -C PREROUTING -j {CHAIN} 2>/dev/null || {tool} -t raw -I PREROUTING -j {CHAIN}"]
    return shell_script(lines)
