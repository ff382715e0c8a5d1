"""The network countermeasures in each enforcement point's syntax: ExaBGP and GoBGP (FlowSpec, blackhole),
nftables and iptables. A registry, :data:`NETWORK_EXPORTERS`, by target name; ``exports.EXPORTERS`` lists them
beside the blocklist's, so ``mitigate --to`` offers them.

Nothing from a report reaches these files as text but comments (through ``safe_comment``): addresses are
printed from :mod:`ipaddress` objects, ports, protocols and rates are ints, names ``[a-z0-9-]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from floodwitness.mitigation.network_text import FLAG_NAMES
from floodwitness.mitigation.rules import iso, safe_comment

if TYPE_CHECKING:
    from floodwitness.mitigation.network_measure import Match
    from floodwitness.mitigation.network_model import NetworkPlan, NetworkRule
    from floodwitness.mitigation.ranges import IPNetwork

TABLE: Final = "floodwitness_net"
CHAIN: Final = "FLOODWITNESS_NET"
_EXA_PROTO: Final = {1: "icmp", 6: "tcp", 17: "udp", 47: "gre"}  # others (58: ICMPv6) as =N
_EXA_FLAGS: Final = {1: "fin", 2: "syn", 4: "rst", 8: "push", 16: "ack", 32: "urgent"}
_GO_FLAGS: Final = {1: "F", 2: "S", 4: "R", 8: "P", 16: "A", 32: "U", 64: "E", 128: "C"}
PlanRenderer = Callable[["NetworkPlan | None"], str]


@dataclass(frozen=True)
class NetworkExporter:
    name: str
    description: str
    suffix: str
    render: PlanRenderer


NETWORK_EXPORTERS: dict[str, NetworkExporter] = {}


def network_exporter(suffix: str) -> Callable[[PlanRenderer], PlanRenderer]:
    def register(func: PlanRenderer) -> PlanRenderer:
        name = func.__name__.replace("_", "-")
        NETWORK_EXPORTERS[name] = NetworkExporter(name, (func.__doc__ or "").strip().splitlines()[0], suffix, func)
        return func
    return register


def render_network(plan: NetworkPlan | None, target: str) -> str:
    return NETWORK_EXPORTERS[target].render(plan)


def export_header(plan: NetworkPlan | None, what: str, rules: tuple[NetworkRule, ...], mark: str = "#") -> list[str]:
    if plan is None:
        lines = [f"floodwitness {what}: no network episodes",
                 "this report has no network section: analyze the flows or captures too (--flows) for these rules"]
    else:
        lines = [f"floodwitness {what}: {len(rules)} rule(s), generated {iso(plan.generated_at)}",
                 "rules do not expire by themselves: withdraw them when the episode is over",
                 *[f"note: {n}" for n in plan.notes]]
    return [f"{mark} {safe_comment(line, 400)}" for line in lines]


def comment_lines(rule: NetworkRule, indent: str, mark: str = "#") -> list[str]:
    return [f"{indent}{mark} {safe_comment(s, 400)}" for s in rule.statements]


def host_text(net: IPNetwork) -> str:
    return str(net.network_address) if net.num_addresses == 1 else str(net)


def flag_names(bits: int, names: dict[int, str]) -> list[str]:
    return [names[bit] for bit in sorted(FLAG_NAMES) if bits & bit and bit in names]


# --- ExaBGP ------------------------------------------------------------------------------------------


def _exa_prefix(net: IPNetwork) -> str:
    return f"{net}/0" if net.version == 6 else str(net)  # ExaBGP's IPv6 FlowSpec prefix carries an offset


def _exa_match(m: Match, source: IPNetwork | None = None) -> list[str]:
    out = [f"destination {_exa_prefix(m.destination)};"]
    if source is not None:
        out.append(f"source {_exa_prefix(source)};")
    if m.proto is not None:
        keyword = "protocol" if m.family == 4 else "next-header"
        out.append(f"{keyword} {_EXA_PROTO.get(m.proto, f'={m.proto}')};")
    if m.src_port is not None:
        out.append(f"source-port ={m.src_port};")
    if m.dst_port is not None:
        out.append(f"destination-port ={m.dst_port};")
    if m.flags_all:
        flags = flag_names(m.flags_all, _EXA_FLAGS) + [f"!{f}" for f in flag_names(m.flags_none, _EXA_FLAGS)]
        out.append(f"tcp-flags [{'&'.join(flags)}];")
    if m.fragment:
        out.append("fragment [is-fragment];")
    if m.min_length is not None:
        out.append(f"packet-length >{m.min_length};")
    return out


def _exa_route(name: str, match: list[str], then: str) -> list[str]:
    return [f"        route {name} {{", "            match {", *[f"                {x}" for x in match],
            "            }", f"            then {{ {then}; }}", "        }"]


def _exa_neighbor(plan: NetworkPlan, families: list[str], body: list[str]) -> list[str]:
    s = plan.bgp
    return ["# EDIT the session below: your router (neighbor), your address, router id and AS numbers; the values",
            "# given are placeholders (documentation addresses, a private AS). Check with: exabgp --validate FILE",
            f"neighbor {s.neighbor} {{", f"    router-id {s.router_id};", f"    local-address {s.local_address};",
            f"    local-as {s.local_as};", f"    peer-as {s.peer_as};", "    family {",
            *[f"        {f};" for f in families], "    }", *body, "}"]


@network_exporter(".conf")
def exabgp_flowspec(plan: NetworkPlan | None) -> str:
    """ExaBGP configuration: a neighbor with one FlowSpec route per vector (RFC 8955), exceptions first."""
    rules = plan.filters if plan else ()
    lines = export_header(plan, "FlowSpec rules for ExaBGP", rules)
    if any(r.exceptions for r in rules):
        lines.append("# an exception (a route with a source, then accept) is more specific than its rule and takes "
                     "precedence over it (RFC 8955, section 5.1)")
    if plan is not None and rules:
        body = ["    flow {"]
        for rule in rules:
            body += comment_lines(rule, "        ")
            body += [line for i, src in enumerate(rule.exceptions, 1)
                     if src.version == rule.match.family
                     for line in _exa_route(f"{rule.name}-except-{i}", _exa_match(rule.match, src), "accept")]
            then = f"rate-limit {rule.rate_bytes}" if rule.action == "rate-limit" else "discard"
            body += _exa_route(rule.name, _exa_match(rule.match), then)
        body.append("    }")
        lines += _exa_neighbor(plan, ["ipv4 flow", "ipv6 flow"], body)
    return "\n".join(lines) + "\n"


@network_exporter(".conf")
def exabgp_rtbh(plan: NetworkPlan | None) -> str:
    """ExaBGP configuration: the attacked host routes with BLACKHOLE (65535:666) and no-export; last resort."""
    rules = plan.blackholes if plan else ()
    lines = export_header(plan, "remote-triggered blackhole (RFC 7999) for ExaBGP", rules)
    if plan is not None and rules:
        body = ["    static {"]
        for rule in rules:
            hop = plan.bgp.blackhole_next_hop if rule.match.family == 4 else plan.bgp.blackhole_next_hop_v6
            body += comment_lines(rule, "        ")
            body.append(f"        route {rule.match.destination} next-hop {hop} community [65535:666 no-export];")
        body.append("    }")
        lines += _exa_neighbor(plan, ["ipv4 unicast", "ipv6 unicast"], body)
    return "\n".join(lines) + "\n"


# --- GoBGP -------------------------------------------------------------------------------------------


def _go_match(m: Match, source: IPNetwork | None = None) -> str:
    out = [f"destination {m.destination}"]
    if source is not None:
        out.append(f"source {source}")
    if m.proto is not None:
        out.append(f"protocol {m.proto}")
    if m.src_port is not None:
        out.append(f"source-port =={m.src_port}")
    if m.dst_port is not None:
        out.append(f"destination-port =={m.dst_port}")
    if m.flags_all:
        flags = [f"={f}" for f in flag_names(m.flags_all, _GO_FLAGS)]
        flags += [f"!={f}" for f in flag_names(m.flags_none, _GO_FLAGS)]
        out.append(f"tcp-flags '{'&'.join(flags)}'")
    if m.fragment:
        out.append("fragment is-fragment")
    if m.min_length is not None:
        out.append(f"packet-length '>{m.min_length}'")
    return " ".join(out)


def shell_script(lines: list[str]) -> str:
    return "\n".join(["#!/bin/sh", *lines]) + "\n"


@network_exporter(".sh")
def gobgp_flowspec(plan: NetworkPlan | None) -> str:
    """Shell script of `gobgp global rib -a ipv4-flowspec add` commands (a running gobgpd), exceptions first."""
    rules = plan.filters if plan else ()
    lines = [*export_header(plan, "FlowSpec rules for GoBGP", rules),
             "# runs against the local gobgpd (the defaults of gobgp); its peers need the ipv4-flowspec/ipv6-flowspec "
             "afi-safis", "set -e"]
    if any(r.exceptions for r in rules):
        lines.insert(-1, "# an exception (a route with a source, then accept) is more specific than its rule and "
                         "takes precedence over it (RFC 8955, section 5.1)")
    for rule in rules:
        family = "ipv4-flowspec" if rule.match.family == 4 else "ipv6-flowspec"
        lines += comment_lines(rule, "")
        lines += [f"gobgp global rib -a {family} add match {_go_match(rule.match, src)} then accept"
                  for src in rule.exceptions if src.version == rule.match.family]
        then = f"rate-limit {rule.rate_bytes}" if rule.action == "rate-limit" else "discard"
        lines.append(f"gobgp global rib -a {family} add match {_go_match(rule.match)} then {then}")
    return shell_script(lines)


@network_exporter(".sh")
def gobgp_rtbh(plan: NetworkPlan | None) -> str:
    """Shell script of `gobgp global rib add` host routes with BLACKHOLE and no-export (last resort)."""
    rules = plan.blackholes if plan else ()
    lines = [*export_header(plan, "remote-triggered blackhole (RFC 7999) for GoBGP", rules), "set -e"]
    for rule in rules:
        family, hop = (("ipv4", plan.bgp.blackhole_next_hop) if rule.match.family == 4 and plan
                       else ("ipv6", plan.bgp.blackhole_next_hop_v6 if plan else ""))
        lines += comment_lines(rule, "")
        lines.append(f"gobgp global rib -a {family} add {rule.match.destination} nexthop {hop} "
                     "community 65535:666,no-export")
    return shell_script(lines)
