"""The network layer's countermeasures as data: the episodes read back from a report (every value checked), the
BGP session they are announced on, and the rules with their measured effect.

Everything that reaches a configuration comes from here already parsed: an address is an :mod:`ipaddress`
object (printed back by Python, never the report's text), a port or protocol an int in range, a name only
``[a-z0-9-]``. Free text (a vector's name, the report's episode id) only ever goes into comments, through
:func:`~floodwitness.mitigation.rules.safe_comment`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal

from floodwitness.errors import UsageError
from floodwitness.mitigation.network_measure import address_of, network_of
from floodwitness.mitigation.rules import safe_comment

if TYPE_CHECKING:
    from floodwitness.mitigation.network_measure import Effect, Match
    from floodwitness.mitigation.protected import ProtectedRanges
    from floodwitness.mitigation.ranges import IPNetwork

_NAME: Final = re.compile(r"[^a-z0-9]+")
FLOWSPEC_MIN_RATE_BYTES: Final = 9600  #: ExaBGP warns that a traffic-rate below this may not work on routers
SYN_BYTES: Final = 64  #: IP bytes of a SYN (40 to 60 with options), to turn a packet rate into FlowSpec bytes

Action = Literal["discard", "rate-limit", "blackhole"]


def int_in(value: object, lo: int, hi: int) -> int | None:
    """``value`` when it is an int (not a bool) in ``[lo, hi]``, else None."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        return None
    return value


def name_part(text: object, fallback: str) -> str:
    """Lower-case letters, digits and dashes only (rule, meter and chain names)."""
    out = _NAME.sub("-", str(text).lower()).strip("-")[:32].strip("-")
    return out or fallback


@dataclass(frozen=True)
class BgpSession:
    """The BGP session FlowSpec and blackhole routes are announced on. The defaults are documentation
    addresses and a private AS: placeholders to replace with your router's (each export says so)."""

    neighbor: str = "192.0.2.1"
    local_address: str = "192.0.2.2"
    router_id: str = "192.0.2.2"
    local_as: int = 64512
    peer_as: int = 64512
    blackhole_next_hop: str = "192.0.2.1"  #: an address your routers route to a discard interface (RFC 7999)
    blackhole_next_hop_v6: str = "100::1"  #: the IPv6 discard prefix of RFC 6666

    def __post_init__(self) -> None:
        for name in ("neighbor", "local_address", "router_id", "blackhole_next_hop", "blackhole_next_hop_v6"):
            addr = address_of(getattr(self, name))
            if addr is None or (name == "router_id" and addr.version != 4):
                raise UsageError(f"BGP {name.replace('_', ' ')} {getattr(self, name)!r} is not an address",
                                 hint="Give an IP address (the router id: an IPv4 address).")
            object.__setattr__(self, name, str(addr))
        for name in ("local_as", "peer_as"):
            if int_in(getattr(self, name), 1, 4_294_967_295) is None:
                raise UsageError(f"BGP {name.replace('_', ' ')} {getattr(self, name)!r} is not an AS number",
                                 hint="An AS number is 1 to 4294967295.")


@dataclass(frozen=True)
class NetworkOptions:
    """How :func:`~floodwitness.mitigation.network.network_plan` builds rules."""

    protected: ProtectedRanges | None = None  #: its allowlist's sources are always excepted
    allow_prefix_blackhole: bool = False  #: blackhole a carpet-bombed prefix (all its addresses cut off)
    min_prefix_v4: int = 16  #: never a FlowSpec/firewall destination broader than this
    min_prefix_v6: int = 48
    blackhole_min_prefix_v4: int = 24  #: the broadest prefix even allow_prefix_blackhole may blackhole
    blackhole_min_prefix_v6: int = 48
    max_exceptions: int = 32  #: at most this many answered sources excepted by address
    min_rate_pps: int = 100  #: the lowest rate limit proposed
    per_source_pps: int = 10  #: the per-source limit of the firewall exports' SYN meters
    bgp: BgpSession = field(default_factory=BgpSession)


@dataclass(frozen=True)
class Vector:
    """One vector of an episode, checked."""

    vector: str  #: its key (``syn_flood``, ``ntp_reflection``), letters, digits and _ only
    name: str  #: safe for a comment
    proto: int | None
    port: int | None
    port_side: Literal["src", "dst"] | None
    packets: int
    bytes: int
    peak_pps: int
    sources: int
    source_role: str


@dataclass(frozen=True)
class Episode:
    """One network episode of a report, checked: a bad target or time leaves it out with a note."""

    id: str  #: the report's id, safe for a comment
    target: IPNetwork
    carpet_bombing: bool
    window: tuple[int, int]  #: microseconds since the epoch, end exclusive (the report's end is to the second)
    packets: int
    bytes: int
    vectors: tuple[Vector, ...]

    @property
    def duration_s(self) -> float:
        return max(1.0, (self.window[1] - self.window[0]) / 1e6)


def _micros(value: object) -> int | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _vector(raw: dict[str, Any]) -> Vector | None:
    key = re.sub(r"[^a-z0-9_]", "", str(raw.get("vector", "")).lower())[:40]
    side = raw.get("port_side")
    if not key or side not in ("src", "dst", None):
        return None
    return Vector(key, safe_comment(str(raw.get("name") or key), 60), int_in(raw.get("proto"), 0, 255),
                  int_in(raw.get("port"), 0, 65535), side, int_in(raw.get("packets"), 0, 2**62) or 0,
                  int_in(raw.get("bytes"), 0, 2**62) or 0, int(_number(raw.get("peak_pps"))),
                  int_in(raw.get("sources"), 0, 2**62) or 0, safe_comment(str(raw.get("source_role") or ""), 20))


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0 else 0.0


def read_episode(raw: object) -> Episode | str:
    """The episode, or why it was left out (text safe for a comment)."""
    if not isinstance(raw, dict):
        return "an episode that is not an object was left out"
    ident = safe_comment(str(raw.get("id", "?")), 20)
    target = network_of(raw.get("target"))
    if target is None:
        return f"episode {ident}: its target {safe_comment(repr(raw.get('target')), 60)} is not an address or a " \
               "prefix: left out"
    start, end = _micros(raw.get("start")), _micros(raw.get("end"))
    if start is None or end is None or end < start:
        return f"episode {ident}: its start or end is not an ISO time: left out"
    vectors = tuple(v for v in (_vector(x) for x in raw.get("vectors", []) if isinstance(x, dict)) if v)
    return Episode(ident, target, raw.get("carpet_bombing") is True or target.num_addresses > 1,
                   (start, end + 1_000_000), int_in(raw.get("packets"), 0, 2**62) or 0,
                   int_in(raw.get("bytes"), 0, 2**62) or 0, vectors)


@dataclass(frozen=True)
class NetworkRule:
    """One countermeasure: what it matches, what it does, what it stops and costs (measured), why."""

    name: str  #: ``[a-z0-9-]``, unique in its plan
    episode: str
    vector: str
    match: Match
    action: Action
    rate_pps: int | None = None  #: for a rate limit: packets per second let through
    exceptions: tuple[IPNetwork, ...] = ()  #: sources accepted before the rule (answered servers, the allowlist)
    per_source_pps: int | None = None  #: firewall exports add a per-source meter at this rate (SYN floods)
    effect: Effect | None = None  #: None: no flow table to measure on
    statements: tuple[str, ...] = ()  #: what it stops, what it costs, advice: plain text for comments

    def to_dict(self) -> dict[str, Any]:
        """The rule as the report's ``mitigation.network.rules[]`` lists it."""
        e = self.effect
        effect = None if e is None else {
            "stopped_packets": e.stopped.packets, "stopped_bytes": e.stopped.bytes,
            "episode_packets": e.episode_packets, "episode_bytes": e.episode_bytes,
            "stopped_share": round(e.stopped.packets / e.episode_packets, 4) if e.episode_packets else None,
            "legitimate_flows_in_episode": e.legit_in_episode.flows, "baseline_flows_hit": e.baseline.flows,
            "baseline_flows": e.baseline_flows_total, "baseline_measured": e.baseline_measured,
            "expected_share": e.share, "unmeasured": e.unmeasured}
        m = self.match
        return {"name": self.name, "episode": self.episode, "vector": self.vector, "action": self.action,
                "match": {"destination": str(m.destination), "proto": m.proto, "src_port": m.src_port,
                          "dst_port": m.dst_port, "flags_all": m.flags_all, "flags_none": m.flags_none,
                          "fragment": m.fragment, "min_length": m.min_length},
                "rate_pps": self.rate_pps, "exceptions": [str(x) for x in self.exceptions],
                "per_source_pps": self.per_source_pps, "effect": effect, "statements": list(self.statements)}

    @property
    def rate_bytes(self) -> int:
        """The FlowSpec traffic-rate (bytes per second) of a rate limit."""
        return max(FLOWSPEC_MIN_RATE_BYTES, (self.rate_pps or 0) * SYN_BYTES)


@dataclass(frozen=True)
class NetworkPlan:
    rules: tuple[NetworkRule, ...]
    notes: tuple[str, ...]  #: what was left out and why, plain text
    generated_at: datetime
    bgp: BgpSession
    measured: bool  #: whether a flow table was given to measure the rules on

    def to_dict(self) -> dict[str, Any]:
        """The report's ``mitigation.network``: the rules, what was left out, and the exports that write them."""
        return {"rules": [r.to_dict() for r in self.rules], "notes": list(self.notes), "measured": self.measured,
                "exports": "floodwitness mitigate STORE --to exabgp-flowspec | gobgp-flowspec | exabgp-rtbh | "
                           "gobgp-rtbh | nftables-network | iptables-network"}

    @property
    def filters(self) -> tuple[NetworkRule, ...]:
        return tuple(r for r in self.rules if r.action != "blackhole")

    @property
    def blackholes(self) -> tuple[NetworkRule, ...]:
        return tuple(r for r in self.rules if r.action == "blackhole")
