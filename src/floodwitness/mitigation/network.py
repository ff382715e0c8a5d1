"""Mitigation for the network layer (issue #21): the report's network episodes turned into countermeasures.

For each vector of each episode, one rule matching that vector's signature to the episode's target only
(a host, or the carpet-bombed prefix): FlowSpec (RFC 8955) for the routers, the same match in nftables and
iptables for the victim or its upstream; and for each attacked host a remote-triggered blackhole (RFC 7999),
the last resort, which completes the attack's goal for that address. :data:`VECTOR_RULES` says which match and
action a vector gets (a registry, keyed by the vector's name; reflection vectors by their source port).

Each rule is measured on the flow table (:mod:`~floodwitness.mitigation.network_measure`): what it stops of the
episode, and its collateral, the legitimate flows it would also drop. Where the target's own answered servers
(its resolvers, say) send what the rule matches, they are excepted by address, and an amplification rule is
narrowed to packets longer than every legitimate one seen, when the attack's packets are longer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final

import pyarrow.compute as pc

from floodwitness.mitigation.network_measure import ACK, SYN, FlowView, Match
from floodwitness.mitigation.network_model import (
    Action,
    Episode,
    NetworkOptions,
    NetworkPlan,
    NetworkRule,
    Vector,
    name_part,
    read_episode,
)
from floodwitness.mitigation.network_text import blackhole_statements, rule_statements

if TYPE_CHECKING:
    from typing import Any

    import pyarrow as pa

    from floodwitness.mitigation.ranges import IPNetwork

RST, FIN = 4, 1
SYN_COOKIES: Final = ("enable SYN cookies on the target (sysctl -w net.ipv4.tcp_syncookies=1): the kernel then "
                      "answers a SYN flood without keeping state for it, at no cost to legitimate clients")

ONE_WAY: Final = ("the flows hold no traffic from the target, so no answer of it can be seen: every TCP flow that "
                  "acknowledges something counts as legitimate (an ACK flood would count as collateral)")


@dataclass(frozen=True)
class Draft:
    """What a vector's builder proposes, before exceptions, narrowing and measurement."""

    match: Match
    action: Action
    amplification: bool = False  #: narrow to long packets when the legitimate ones are shorter
    syn: bool = False  #: a SYN rate limit (firewall exports add a per-source meter; SYN cookies advised)


Builder = Callable[[Episode, Vector], Draft | None]


def _reflection(ep: Episode, v: Vector) -> Draft | None:
    if v.port is None:
        return None
    return Draft(Match(ep.target, proto=v.proto if v.proto is not None else 17, src_port=v.port), "discard", True)


def _to_port(proto: int, flags_all: int = 0, flags_none: int = 0, action: Action = "discard") -> Builder:
    def build(ep: Episode, v: Vector) -> Draft:
        port = v.port if v.port_side == "dst" else None
        return Draft(Match(ep.target, proto=proto, dst_port=port, flags_all=flags_all, flags_none=flags_none),
                     action, syn=flags_all == SYN)
    return build


def _protocol(v4: int, v6: int | None = None, action: Action = "discard") -> Builder:
    def build(ep: Episode, v: Vector) -> Draft:
        return Draft(Match(ep.target, proto=v4 if ep.target.version == 4 or v6 is None else v6), action)
    return build


def _fragments(ep: Episode, v: Vector) -> Draft:
    """IPv4 fragments carry the protocol in every piece; an IPv6 fragment after the first shows the fragment
    header's next header only to some filters, so an IPv6 rule matches every fragment to the target."""
    return Draft(Match(ep.target, proto=v.proto if ep.target.version == 4 else None, fragment=True), "discard")


#: vector key -> how its rule is built. Reflection vectors (``*_reflection``, or any UDP vector keyed by the
#: source port) use :func:`_reflection`.
VECTOR_RULES: dict[str, Builder] = {
    "syn_flood": _to_port(6, SYN, ACK, "rate-limit"),
    "ack_flood": _to_port(6, ACK, SYN | RST | FIN, "rate-limit"),
    "rst_flood": _to_port(6, RST, SYN),
    "udp_flood": _to_port(17),
    "icmp_flood": _protocol(1, 58, "rate-limit"),
    "gre_flood": _protocol(47),
    "fragment_flood": _fragments,
}


def builder_of(v: Vector) -> Builder | None:
    if v.vector in VECTOR_RULES:
        return VECTOR_RULES[v.vector]
    if v.vector.endswith("_reflection") or v.port_side == "src":
        return _reflection
    return None


def _allowlisted(view: FlowView, match: Match, options: NetworkOptions) -> tuple[IPNetwork, ...]:
    """The allowlist's networks that send what the match holds (the allowlist always wins)."""
    if options.protected is None:
        return ()
    mask = view.matches(match)
    return tuple(net for net, _ in options.protected.allow.items
                 if view.traffic(pc.and_(mask, view.sources_in((net,)))).flows)


def _refine(view: FlowView, ep: Episode, draft: Draft, options: NetworkOptions) -> tuple[Match, tuple[IPNetwork, ...],
                                                                                          list[str]]:
    """Exceptions for the answered sources and the allowlist, and a packet-length floor for amplification."""
    notes: list[str] = []
    exceptions = _allowlisted(view, draft.match, options)
    match = draft.match
    if draft.action == "discard":
        answered = view.answered_sources(match, options.max_exceptions)
        if answered is None:
            notes.append(f"more than {options.max_exceptions} servers the target asked send what this rule matches: "
                         "they are not excepted one by one")
        elif answered:
            exceptions = tuple(sorted(set(exceptions) | set(answered), key=lambda n: (n.version, n)))
            notes.append(f"excepts {len(answered)} server(s) the target itself asked (it sent to their address and "
                         f"port first): {', '.join(str(n.network_address) for n in answered[:8])}")
    if draft.amplification:
        size = view.legit_max_size(match, exceptions)
        if size is not None:
            share = view.bytes_share_above(match, exceptions, ep.window, size)
            if share >= 0.5:
                match = replace(match, min_length=size)
                notes.append(f"only packets longer than {size} bytes, the longest mean packet of a legitimate flow: "
                             f"{share:.1%} of the bytes of the attack are in longer packets")
            else:
                notes.append(f"not narrowed by length: only {share:.1%} of the bytes of the attack come in packets "
                             f"longer than the legitimate ones ({size} bytes)")
    if (match, exceptions) != (draft.match, ()):
        naive = view.effect(draft.match, (), ep.window, (ep.packets, ep.bytes))
        notes.append(f"without these exceptions and limits the rule would also drop {naive.legit_in_episode.flows:,} "
                     f"legitimate flows ({naive.legit_in_episode.packets:,} packets) during the episode and "
                     f"{naive.baseline.flows:,} flows ({naive.baseline.packets:,} packets) to the target outside it")
    return match, exceptions, notes


def _rate(view: FlowView | None, match: Match, v: Vector, options: NetworkOptions) -> tuple[int, float, float]:
    """The rate limit (packets/s: twice the busiest second of legitimate matching traffic, at least the floor), the
    expected share of matching packets it drops while the vector runs at its peak, and the share it drops of the
    matching traffic outside the episodes at their busiest second."""
    legit_peak = base_peak = 0
    if view is not None:
        by_packets = match.flags_all != SYN  # one SYN per connection: count connections; otherwise packets
        legit_peak = view.peak_per_second(pc.and_(view.matches(match), view.legit(match.destination)),
                                          packets=by_packets)
        base_peak = view.peak_per_second(pc.and_(view.matches(match), view.outside), packets=by_packets)
    limit = max(options.min_rate_pps, 2 * legit_peak)
    share = max(0.0, 1.0 - limit / v.peak_pps) if v.peak_pps > 0 else 0.0
    return limit, share, max(0.0, 1.0 - limit / base_peak) if base_peak else 0.0


def _per_source(view: FlowView, ep: Episode, match: Match, options: NetworkOptions) -> str:
    allowance = int(options.per_source_pps * ep.duration_s) + 2 * options.per_source_pps
    mask = pc.and_(pc.and_(view.matches(match), view.during(*ep.window)), pc.invert(view.legit(match.destination)))
    excess, total, most = view.per_source_excess(mask, allowance)
    if not total:
        return "no SYN of the episode to measure a per-source limit on"
    return (f"the per-source limit of the firewall exports ({options.per_source_pps}/s) would drop {excess:,} of "
            f"{total:,} flood packets ({excess / total:.1%}): the busiest source sent {most:,}"
            + ("; a spoofed flood spreads over sources, so the per-destination limit does the work"
               if excess < total / 2 else ""))


def _rule_for(view: FlowView | None, ep: Episode, v: Vector, draft: Draft, name: str,
              options: NetworkOptions) -> NetworkRule:
    match, exceptions, notes = (_refine(view, ep, draft, options) if view is not None
                                else (draft.match, (), []))
    rate, share, base_share = (_rate(view, match, v, options) if draft.action == "rate-limit"
                               else (None, 1.0, 1.0))
    effect = (view.effect(match, exceptions, ep.window, (ep.packets, ep.bytes), share, base_share)
              if view is not None else None)
    if view is not None and draft.match.proto == 6 and view.one_way(ep.target):
        notes.append(ONE_WAY)
    if draft.syn:
        notes.insert(0, SYN_COOKIES)
        if view is not None:
            notes.append(_per_source(view, ep, match, options))
    rule = NetworkRule(name, ep.id, v.vector, match, draft.action, rate, exceptions,
                       options.per_source_pps if draft.syn else None, effect)
    return replace(rule, statements=(*rule_statements(rule, v, ep), *notes))


def _blackhole(view: FlowView | None, ep: Episode, name: str, options: NetworkOptions) -> NetworkRule | str:
    target = ep.target
    if target.num_addresses > 1:
        floor = options.blackhole_min_prefix_v4 if target.version == 4 else options.blackhole_min_prefix_v6
        if not options.allow_prefix_blackhole:
            return (f"episode {ep.id}: no blackhole for {target}: it would drop all traffic to its "
                    f"{target.num_addresses:,} addresses, not only the attacked ones (allow_prefix_blackhole to "
                    "emit it anyway); the FlowSpec and firewall rules above match the vectors only")
        if target.prefixlen < floor:
            return f"episode {ep.id}: no blackhole for {target}: broader than /{floor}, even when allowed"
    match = Match(target)
    effect = (view.effect(match, (), ep.window, (ep.packets, ep.bytes)) if view is not None else None)
    rule = NetworkRule(name, ep.id, "blackhole", match, "blackhole", effect=effect)
    return replace(rule, statements=blackhole_statements(rule, ep))


def _episode_rules(view: FlowView | None, ep: Episode, options: NetworkOptions,
                   taken: set[str]) -> tuple[list[NetworkRule], list[str]]:
    rules: list[NetworkRule] = []
    notes: list[str] = []
    floor = options.min_prefix_v4 if ep.target.version == 4 else options.min_prefix_v6
    if ep.target.prefixlen < floor:
        return [], [f"episode {ep.id}: its target {ep.target} is broader than /{floor}: no rule may match that much"]
    for v in ep.vectors:
        build = builder_of(v)
        draft = build(ep, v) if build is not None else None
        if draft is None or not draft.match.narrowed:
            notes.append(f"episode {ep.id}: no rule for vector {v.vector}: nothing narrower than all traffic to "
                         f"{ep.target} describes it")
            continue
        rules.append(_rule_for(view, ep, v, draft, _unique(f"{name_part(ep.id, 'n')}-{name_part(v.vector, 'v')}",
                                                           taken), options))
    hole = _blackhole(view, ep, _unique(f"{name_part(ep.id, 'n')}-blackhole", taken), options)
    if isinstance(hole, str):
        notes.append(hole)
    else:
        rules.append(hole)
    return rules, notes


def _unique(name: str, taken: set[str]) -> str:
    out, n = name, 1
    while out in taken:
        n += 1
        out = f"{name}-{n}"
    taken.add(out)
    return out


def network_plan(episodes: list[dict[str, Any]], flows: pa.Table | None,
                 options: NetworkOptions | None = None, *, now: datetime | None = None) -> NetworkPlan:
    """The countermeasures for the report's ``network.episodes``, measured on ``flows`` (FLOW_ARROW_SCHEMA;
    None: rules without measured effects, and a note saying so)."""
    options = options or NetworkOptions()
    parsed = [read_episode(raw) for raw in episodes]
    good = [e for e in parsed if isinstance(e, Episode)]
    notes = [e for e in parsed if isinstance(e, str)]
    view = FlowView(flows, [e.window for e in good]) if flows is not None else None
    if view is None:
        notes.append("no flow table given: what each rule stops and costs was not measured")
    rules: list[NetworkRule] = []
    taken: set[str] = set()
    for ep in good:
        more, why = _episode_rules(view, ep, options, taken)
        rules += more
        notes += why
    return NetworkPlan(tuple(rules), tuple(notes), now or datetime.now(UTC), options.bgp, view is not None)
