"""The plain sentences each network rule carries: what it matches, what it stops, what it costs (measured)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from floodwitness.mitigation.network_measure import Effect, Match, Traffic
    from floodwitness.mitigation.network_model import Episode, NetworkRule, Vector

PROTOCOLS = {1: "ICMP", 6: "TCP", 17: "UDP", 47: "GRE", 58: "ICMPv6"}
FLAG_NAMES = {1: "FIN", 2: "SYN", 4: "RST", 8: "PSH", 16: "ACK", 32: "URG", 64: "ECE", 128: "CWR"}


def _flags(bits: int) -> list[str]:
    return [name for bit, name in FLAG_NAMES.items() if bits & bit]


def describe(m: Match) -> str:
    """``UDP from source port 123 to 203.0.113.10``, in words."""
    parts = [PROTOCOLS.get(m.proto, f"IP protocol {m.proto}") if m.proto is not None else "IP packets"]
    if m.fragment:
        parts.append("fragments")
    if m.flags_all or m.flags_none:
        parts.append("with " + "+".join(_flags(m.flags_all)) + "".join(f" without {f}" for f in _flags(m.flags_none)))
    if m.src_port is not None:
        parts.append(f"from source port {m.src_port}")
    if m.dst_port is not None:
        parts.append(f"to port {m.dst_port}")
    parts.append(f"to {m.destination.network_address if m.destination.num_addresses == 1 else m.destination}")
    if m.min_length is not None:
        parts.append(f"longer than {m.min_length} bytes")
    return " ".join(parts)


def _share(part: int, whole: int) -> str:
    return f" ({part / whole:.1%})" if whole else ""


def _traffic(t: Traffic) -> str:
    return f"{t.flows:,} flows, {t.packets:,} packets, {t.bytes:,} bytes"


def _of(part: int, whole: int, unit: str) -> str:
    """``5 of the episode's 10 packets (50.0%)``, or ``5 packets`` when the episode's total is not known."""
    return f"{part:,} of the {whole:,} {unit} of the episode{_share(part, whole)}" if whole else f"{part:,} {unit}"


def _stops(e: Effect, rule: NetworkRule, v: Vector | None) -> str:
    text = (f"stops {_of(e.stopped.packets, e.episode_packets, 'packets')} and "
            f"{_of(e.stopped.bytes, e.episode_bytes, 'bytes')}")
    if rule.action == "rate-limit" and v is not None:
        text += (f" (expected: a limit of {rule.rate_pps:,} packets/s against the peak of the vector, {v.peak_pps:,}/s "
                 f"drops {e.share:.1%} of what it matches)")
    return text


def _costs(e: Effect) -> list[str]:
    out = [f"collateral during the episode: {_traffic(e.legit_in_episode)} of legitimate traffic (answers the "
           "target asked for, completed TCP connections)"]
    if e.baseline_measured:
        out.append(f"collateral outside the episodes: {_traffic(e.baseline)}, of the "
                   f"{e.baseline_flows_total:,} flows to the target there")
    else:
        out.append("collateral outside the episodes cannot be measured: the flows hold no traffic to the target "
                   "outside them")
    return out


def rule_statements(rule: NetworkRule, v: Vector, ep: Episode) -> tuple[str, ...]:
    verb = {"discard": "drops", "rate-limit": f"rate-limits to {rule.rate_pps or 0:,} packets/s"}.get(rule.action, "")
    out = [f"episode {ep.id}, {v.name}: {verb} {describe(rule.match)}"]
    if v.source_role == "reflectors":
        out.append(f"the {v.sources:,} reflectors are misused servers answering requests the attacker sent with the "
                   "address of the target spoofed: the rule drops their answers to the target, it blocks no one")
    if rule.effect is None:
        out.append("what it stops and costs was not measured: no flow table given")
        return tuple(out)
    if rule.effect.unmeasured:
        return (*out, rule.effect.unmeasured)
    return (*out, _stops(rule.effect, rule, v), *_costs(rule.effect))


def blackhole_statements(rule: NetworkRule, ep: Episode) -> tuple[str, ...]:
    target = rule.match.destination
    out = [f"LAST RESORT, episode {ep.id}: announces {target} with the BLACKHOLE community (65535:666, RFC 7999) "
           f"and no-export: routers honouring it drop ALL traffic to {target}, legitimate included",
           "this completes the goal of the attack for that address (it goes offline): use it only when the flood "
           "threatens the rest of the network, and withdraw it as soon as the FlowSpec or firewall rules hold"]
    if rule.effect is None:
        return (*out, "what it stops and costs was not measured: no flow table given")
    return (*out, _stops(rule.effect, rule, None), *_costs(rule.effect))


def summary_lines(rules: tuple[NetworkRule, ...], notes: tuple[str, ...]) -> list[str]:
    """One line per rule (what it does, stops and costs) and the notes: what ``mitigate`` prints on stderr."""
    out = []
    for rule in rules:
        line = f"{rule.name}: {rule.action} {describe(rule.match)}"
        e = rule.effect
        if e is None or e.unmeasured:
            out.append(line + (": not measured (no flows)" if e is None else ": not measurable on these flows"))
            continue
        outside = (f"{e.baseline.flows:,} of {e.baseline_flows_total:,} flows outside the episodes"
                   if e.baseline_measured else "outside the episodes not measurable")
        out.append(f"{line}: stops {e.stopped.packets:,} of {e.episode_packets:,} packets"
                   f"{_share(e.stopped.packets, e.episode_packets)}; collateral {e.legit_in_episode.flows:,} "
                   f"legitimate flows in the episode, {outside}")
    return out + [f"note: {n}" for n in notes]
