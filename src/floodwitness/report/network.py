"""The network view in the report (#21): each network episode tied to the incident of the access logs it overlaps,
each incident told what the flows show during it (the outage explained, or a quiet network pointing inside), and
the episodes no access-log incident covers made incidents of their own.

Works on the report's ``network`` section (the contract: README, "The JSON report") and the incident dictionaries,
so what it states is what a reader of the JSON can check."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

#: an episode belongs to an incident when it overlaps the incident's span widened by this much on each side
#: (a flood is often seen in the flows a little before the access log shows its effect)
SLACK = timedelta(minutes=2)


def parse_time(text: str) -> datetime:
    """A report time (RFC 3339, ``Z``) as a naive UTC datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)


def bits_text(bps: float) -> str:
    """A bit rate as people say it: 9.2 Gbit/s, 512 kbit/s."""
    for unit, size in (("Tbit/s", 1e12), ("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bps >= size:
            return f"{bps / size:.1f} {unit}"
    return f"{bps:.0f} bit/s"


def vector_text(v: dict[str, Any]) -> str:
    """A vector in words: "UDP from source port 123 (NTP)", "TCP SYN to port 25565"."""
    name = str(v.get("name") or v.get("vector"))
    port, side = v.get("port"), v.get("port_side")
    if port is None or side is None:
        return name
    return f"{name} ({'from source' if side == 'src' else 'to'} port {port})"


def who_text(v: dict[str, Any]) -> str:
    """Who sent a vector's packets, in the words that fit: reflectors are misused servers, spoofed sources are not
    senders at all."""
    n = int(v.get("sources") or 0)
    role = v.get("source_role")
    if role == "reflectors":
        return f"{n:,} reflector{'' if n == 1 else 's'} (misused servers answering requests sent in the victim's name)"
    if role == "spoofed":
        return f"{n:,} source addresses, spoofed (the number of real senders cannot be known from the flows)"
    return f"{n:,} source{'' if n == 1 else 's'}"


def episode_text(ep: dict[str, Any]) -> str:
    """An episode in a sentence: rate, vectors, target, senders."""
    vectors = ep.get("vectors") or []
    main = max(vectors, key=lambda v: float(v.get("packets") or 0), default=None)
    what = " and ".join(vector_text(v) for v in vectors) or "traffic"
    rate = f"{bits_text(float(ep.get('peak_bps') or 0))} ({float(ep.get('peak_pps') or 0):,.0f} packets/s) at peak"
    who = f" from {who_text(main)}" if main is not None else ""
    target = ep["target"] + (f", {ep['target_hosts']:,} hosts hit (carpet bombing)" if ep.get("carpet_bombing")
                             else "")
    return f"{what} reached {target}{who}: {rate}, {ep['start']} to {ep['end']}"


def _overlaps(ep: dict[str, Any], start: datetime, end: datetime) -> bool:
    return parse_time(ep["start"]) <= end + SLACK and parse_time(ep["end"]) >= start - SLACK


def _span(inc: dict[str, Any]) -> tuple[datetime, datetime]:
    start, end = parse_time(inc["start"]), parse_time(inc["end"])
    outage = inc.get("outage") or {}
    if outage.get("began"):
        start = min(start, parse_time(outage["began"]))
        if outage.get("ended"):
            end = max(end, parse_time(outage["ended"]))
    return start, end


def _covered(network: dict[str, Any], start: datetime, end: datetime) -> bool:
    """Whether the flows given cover [start, end] (a quiet network means something only where flows were read)."""
    span = network.get("span") or {}
    if not span.get("start") or not span.get("end"):
        return False
    return parse_time(span["start"]) <= start and parse_time(span["end"]) >= end


def incident_network(inc: dict[str, Any], network: dict[str, Any]) -> dict[str, Any] | None:
    """``incidents[].network``: the episodes during the incident, its vectors, and what that means for it."""
    start, end = _span(inc)
    episodes = [ep for ep in network.get("episodes") or [] if _overlaps(ep, start, end)]
    outage = inc.get("outage") or {}
    covered = _covered(network, start, end)
    if not episodes and not covered:
        return None
    vectors = sorted({v["vector"] for ep in episodes for v in ep.get("vectors") or []})
    if episodes:
        flood = "; ".join(episode_text(ep) for ep in episodes)
        if outage.get("began"):
            statement = f"the access log went silent at {outage['began']} while {flood}"
        else:
            statement = f"a network-level flood in the same incident: {flood}"
    elif outage.get("began"):
        statement = ("the network was quiet during the outage: the flows read cover it and show no flood toward the "
                     "watched addresses, so the cause points inside (the servers, their software or their own links) "
                     "rather than to a network-level attack reaching them")
    else:
        statement = "the flows read cover the incident and show no network-level flood during it"
    return {"episodes": [ep["id"] for ep in episodes], "vectors": vectors,
            "explains_outage": bool(episodes and outage.get("began")), "statement": statement}


def link(network: dict[str, Any], incidents: list[dict[str, Any]]) -> None:
    """Tie the episodes to the incidents they overlap (``episodes[].incident``, ``incidents[].network``)."""
    for inc in incidents:
        view = incident_network(inc, network)
        inc["network"] = view
        outage = inc.get("outage")
        if view is not None and view["explains_outage"] and outage:
            # the cause an access log could not see, now seen: the outage's cause is the flood
            outage.update(cause="attack", cause_kind=inc.get("kind"), cause_note=(
                "The flows show a network-level flood when the site went silent: the flood's packets never became "
                f"requests, so the access log could only fall quiet ({view['statement']})."))
        for ep in network.get("episodes") or []:
            if view is not None and ep["id"] in view["episodes"] and ep.get("incident") is None:
                ep["incident"] = inc["id"]
