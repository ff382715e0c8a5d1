"""What a network rule would do, measured on the flow table (``schema.FLOW_ARROW_SCHEMA``), vectorised.

A rule is a :class:`Match` (destination, protocol, ports, TCP flags, fragments, packet length) and a set of
excepted sources. :class:`FlowView` prepares the table once and answers, with pyarrow compute over whole
columns (the only Python loops run over *distinct* addresses, never over flows):

* what the rule **stops** of an episode: the matching flows to the target during the episode that are not
  legitimate;
* what it **costs**: the matching legitimate flows during the episode, and the matching flows to the target
  outside every episode (the baseline, taken as ordinary traffic). Legitimate: an answer the target asked for
  (a UDP or other flow from an ``(address, port, protocol)`` the target sent to; fragments from a host it sent
  to); a TCP flow whose sender acknowledged and either opened the connection (SYN and ACK: spoofed SYNs never
  ACK) or is answered by the target with an ACK (a record cut from a long connection; an ACK flood gets
  resets). When the flows hold nothing from the target (a one-way export) every acknowledging TCP flow counts:
  collateral is never underestimated for want of the other direction.

Flows aggregate packets, so a flow counts as matching when its OR-ed TCP flags hold the rule's flags (a
connection whose SYN a "SYN without ACK" rule drops never opens: the whole flow is lost), and its packet length
is its mean (``bytes / packets``; IP bytes, as FlowSpec's packet-length and nftables' ``ip length`` count).
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from collections.abc import Sequence

    from floodwitness.mitigation.ranges import IPNetwork

ACK = 16
SYN = 2


@dataclass(frozen=True)
class Match:
    """The packets a rule matches. Every field but the destination narrows it; None / 0 / False: any."""

    destination: IPNetwork
    proto: int | None = None
    src_port: int | None = None
    dst_port: int | None = None
    flags_all: int = 0  #: TCP flags that must be set (SYN flood: SYN)
    flags_none: int = 0  #: TCP flags that must be clear (SYN flood: ACK)
    fragment: bool = False  #: IP fragments only
    min_length: int | None = None  #: only packets longer than this many IP bytes

    @property
    def family(self) -> int:
        return self.destination.version

    @property
    def narrowed(self) -> bool:
        """Whether anything besides the destination narrows the match (a rule must: never all traffic)."""
        return any((self.proto is not None, self.src_port is not None, self.dst_port is not None,
                    self.flags_all, self.fragment, self.min_length is not None))


@dataclass(frozen=True)
class Traffic:
    flows: int = 0
    packets: int = 0
    bytes: int = 0

    def scaled(self, share: float) -> Traffic:
        return Traffic(round(self.flows * share), round(self.packets * share), round(self.bytes * share))


@dataclass(frozen=True)
class Effect:
    """A rule's measured effect. ``share`` < 1 for a rate limit: the expected share of matching packets dropped,
    already applied to ``stopped`` and ``legit_in_episode``."""

    stopped: Traffic  #: the episode's attack traffic the rule drops
    episode_packets: int
    episode_bytes: int
    legit_in_episode: Traffic  #: legitimate flows during the episode the rule also drops
    baseline: Traffic  #: flows to the target outside every episode the rule would also drop
    baseline_flows_total: int  #: flows to the target outside the episodes (0: collateral cannot be measured there)
    share: float = 1.0
    unmeasured: str | None = None  #: why the numbers above say nothing (e.g. the flows do not count fragments)

    @property
    def baseline_measured(self) -> bool:
        return self.baseline_flows_total > 0


#: What an address or prefix may look like before ipaddress reads it: no scope id (``fe80::1%eth0`` would carry
#: any text after the %), no space, nothing else.
_ADDRESS_TEXT: Final = re.compile(r"^[0-9A-Fa-f:.]{2,45}(?:/[0-9]{1,3})?$")


def network_of(value: object) -> IPNetwork | None:
    """An address (as a host network) or a prefix with no host bits set, or None for anything else."""
    if not isinstance(value, str) or not _ADDRESS_TEXT.match(value):
        return None
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError:
        return None


def address_of(value: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address written plainly (no prefix length, no scope id), or None."""
    if not isinstance(value, str) or not _ADDRESS_TEXT.match(value) or "/" in value:
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _sum(values: pa.ChunkedArray | pa.Array, mask: pa.Array) -> int:
    total = pc.sum(pc.filter(values, mask)).as_py()
    return int(total or 0)


def _in_v4(values: pa.Array, nets: Sequence[IPNetwork]) -> pa.Array:
    """Mask of the dotted-quad IPv4 ``values`` inside one of ``nets``, vectorised (the address as a 32-bit integer,
    compared with each prefix's range)."""
    dotted = pc.fill_null(pc.match_substring_regex(values, r"^[0-9]{1,3}(\.[0-9]{1,3}){3}$"), False)
    text = pc.if_else(dotted, values, pa.scalar("0.0.0.0"))  # noqa: S104 - a placeholder value, masked out
    parts = pc.split_pattern(text, ".")
    number = pc.cast(pc.list_element(parts, 0), pa.int64())
    for i in (1, 2, 3):
        number = pc.add(pc.multiply(number, 256), pc.cast(pc.list_element(parts, i), pa.int64()))
    mask = pa.array([False] * len(values), pa.bool_())
    for net in nets:
        lo, hi = int(net.network_address), int(net.broadcast_address)
        mask = pc.or_(mask, pc.and_(pc.greater_equal(number, lo), pc.less_equal(number, hi)))
    return pc.and_(mask, dotted)


class FlowView:
    """The parsed rows of a flow table, prepared once for many rules; ``windows`` are the episodes' spans
    (microseconds since the epoch, end exclusive): a flow overlapping none of them is baseline."""

    def __init__(self, flows: pa.Table, windows: list[tuple[int, int]]) -> None:
        ok = pc.and_(pc.is_null(flows["reject_reason"]),
                     pc.and_(pc.is_valid(flows["src_ip"]), pc.is_valid(flows["dst_ip"])))
        table = flows.filter(ok).combine_chunks()
        self.rows = table.num_rows
        self.src = table["src_ip"]
        self.dst = table["dst_ip"]
        self.sport = table["src_port"]
        self.dport = table["dst_port"]
        self.proto = table["proto"]
        self.flags = pc.fill_null(table["tcp_flags"], 0)
        self.packets = table["packets"]
        self.bytes = table["bytes"]
        self.fragments = pc.fill_null(table["fragments"], 0)
        self.fragments_counted = pc.is_valid(table["fragments"])
        self.start = pc.cast(table["start"], pa.int64())
        self.end = pc.cast(table["end"], pa.int64())
        self.mean_size = pc.divide(pc.cast(self.bytes, pa.float64()),
                                   pc.max_element_wise(pc.cast(self.packets, pa.float64()), 1.0))
        inside = pa.array([False] * self.rows) if self.rows else pa.array([], pa.bool_())
        for lo, hi in windows:
            inside = pc.or_(inside, self.during(lo, hi))
        self.outside = pc.invert(inside)
        self._distinct: dict[str, list[str]] = {}
        self._legit: dict[IPNetwork, pa.Array] = {}

    def _values(self, column: str) -> list[str]:
        if column not in self._distinct:
            self._distinct[column] = [v for v in pc.unique(getattr(self, column)).to_pylist() if v is not None]
        return self._distinct[column]

    def _inside(self, column: str, nets: tuple[IPNetwork, ...]) -> pa.Array:
        """Mask of the rows whose ``column`` address lies in one of ``nets``: hosts by their canonical text (as the
        flow readers write addresses), prefixes by a loop over the column's distinct values."""
        if all(n.num_addresses == 1 for n in nets):
            hits = [str(n.network_address) for n in nets]
            return pc.fill_null(pc.is_in(getattr(self, column), value_set=pa.array(hits, pa.string())), False)
        values: pa.Array = getattr(self, column)
        v4 = [n for n in nets if n.version == 4]
        mask = _in_v4(values, v4) if v4 else pa.array([False] * len(values), pa.bool_())
        v6 = [n for n in nets if n.version == 6]
        if v6:  # IPv6 prefixes: by the column's distinct IPv6 values (the flows of a carpet bombing are IPv4)
            hits = [v for v in self._values(column) if ":" in v and (a := address_of(v)) is not None
                    and any(a.version == n.version and a in n for n in v6)]
            mask = pc.or_(mask, pc.fill_null(pc.is_in(values, value_set=pa.array(hits, pa.string())), False))
        return mask

    def to(self, net: IPNetwork) -> pa.Array:
        return self._inside("dst", (net,))

    def sources_in(self, nets: tuple[IPNetwork, ...]) -> pa.Array:
        if not nets:
            return pa.array([False] * self.rows, pa.bool_())
        return self._inside("src", nets)

    def during(self, lo: int, hi: int) -> pa.Array:
        return pc.and_(pc.less(self.start, hi), pc.greater_equal(self.end, lo))

    def one_way(self, target: IPNetwork) -> bool:
        """Whether the flows hold no traffic from ``target`` (an edge router's ingress export, a one-way tap)."""
        return not pc.any(self._inside("src", (target,))).as_py()

    def legit(self, target: IPNetwork) -> pa.Array:
        """Flows to ``target`` that are legitimate by their own evidence (see the module's docstring)."""
        if target in self._legit:
            return self._legit[target]
        # what the target sent, keyed by (address, port, protocol); in TCP only what acknowledges something (the
        # resets a host sends back to stray ACKs carry no ACK)
        tcp = pc.equal(self.proto, 6)
        acked = pc.not_equal(pc.bit_wise_and(self.flags, ACK), 0)
        sent = pc.and_(self._inside("src", (target,)), pc.or_(pc.invert(tcp), acked))
        proto = pc.cast(self.proto, pa.string())
        keys_sent = pc.unique(pc.filter(pc.binary_join_element_wise(
            self.dst, pc.cast(self.dport, pa.string()), proto, "|"), sent)).drop_null()
        hosts_sent = pc.unique(pc.filter(self.dst, sent))
        key = pc.binary_join_element_wise(self.src, pc.cast(self.sport, pa.string()), proto, "|")
        solicited = pc.fill_null(pc.is_in(key, value_set=keys_sent), False)
        by_host = pc.and_(pc.is_null(self.sport), pc.is_in(self.src, value_set=hosts_sent))
        # TCP: the sender acknowledged, and either opened the connection (SYN) or the target answers it (a flow
        # record cut from a long connection has no SYN); spoofed SYNs never ACK, an ACK flood is answered by resets
        opened = pc.not_equal(pc.bit_wise_and(self.flags, SYN), 0)
        if self.one_way(target):  # no answer can be seen: every TCP flow that acknowledges counts (the safe side)
            completed = pc.and_(tcp, acked)
        else:
            completed = pc.and_(tcp, pc.and_(acked, pc.or_(opened, solicited)))
        answered = pc.and_(pc.invert(tcp), pc.or_(solicited, by_host))
        mask = pc.fill_null(pc.and_(self.to(target), pc.or_(completed, answered)), False)
        self._legit[target] = mask
        return mask

    def matches(self, m: Match, exceptions: tuple[IPNetwork, ...] = ()) -> pa.Array:
        """Flows to ``m.destination`` the match holds (flags: the flow's OR-ed flags hold ``flags_all``)."""
        mask = self.to(m.destination)
        if m.proto is not None:
            mask = pc.and_(mask, pc.equal(self.proto, m.proto))
        if m.src_port is not None:
            mask = pc.and_(mask, pc.equal(self.sport, m.src_port))
        if m.dst_port is not None:
            mask = pc.and_(mask, pc.equal(self.dport, m.dst_port))
        if m.flags_all:
            mask = pc.and_(mask, pc.equal(pc.bit_wise_and(self.flags, m.flags_all), m.flags_all))
        if m.fragment:
            mask = pc.and_(mask, pc.greater(self.fragments, 0))
        if m.min_length is not None:
            mask = pc.and_(mask, pc.greater(self.mean_size, float(m.min_length)))
        if exceptions:
            mask = pc.and_(mask, pc.invert(self.sources_in(exceptions)))
        return pc.fill_null(mask, False)

    def traffic(self, mask: pa.Array) -> Traffic:
        return Traffic(int(pc.sum(pc.cast(mask, pa.int64())).as_py() or 0), _sum(self.packets, mask),
                       _sum(self.bytes, mask))

    def effect(self, m: Match, exceptions: tuple[IPNetwork, ...], window: tuple[int, int],
               totals: tuple[int, int], share: float = 1.0, baseline_share: float = 1.0) -> Effect:
        """The rule's effect on one episode (``window``, its ``totals`` packets and bytes) and the baseline
        (``share``, ``baseline_share``: what a rate limit drops of the matching packets there)."""
        matched = self.matches(m, exceptions)
        legit = self.legit(m.destination)
        during = self.during(*window)
        attack = pc.and_(pc.and_(matched, during), pc.invert(legit))
        hit = pc.and_(pc.and_(matched, during), legit)
        base_all = pc.and_(self.to(m.destination), self.outside)
        unmeasured = None
        if m.fragment and not self.traffic(pc.and_(self.to(m.destination), self.fragments_counted)).flows:
            unmeasured = ("the flows to the target do not count fragments (the flow meter of a packet capture sets "
                          "fragments aside): what a fragment rule stops and costs cannot be measured on them")
        return Effect(self.traffic(attack).scaled(share), totals[0], totals[1], self.traffic(hit).scaled(share),
                      self.traffic(pc.and_(matched, self.outside)).scaled(baseline_share),
                      self.traffic(base_all).flows, share, unmeasured)

    def answered_sources(self, m: Match, limit: int) -> tuple[IPNetwork, ...] | None:
        """The legitimate senders of matching flows (the target's own resolvers, servers it asked), as host
        networks; None when there are more than ``limit`` (too many to list as exceptions)."""
        mask = pc.and_(self.matches(m), self.legit(m.destination))
        found = sorted({a for v in pc.unique(pc.filter(self.src, mask)).to_pylist()
                        if v is not None and (a := address_of(v)) is not None}, key=lambda a: (a.version, a))
        if len(found) > limit:
            return None
        return tuple(ipaddress.ip_network(a) for a in found)

    def legit_max_size(self, m: Match, exceptions: tuple[IPNetwork, ...]) -> int | None:
        """The largest mean packet size of the legitimate or baseline flows the match still holds."""
        mask = pc.and_(self.matches(m, exceptions), pc.or_(self.legit(m.destination), self.outside))
        top = pc.max(pc.filter(self.mean_size, mask)).as_py()
        return None if top is None else math.ceil(top)

    def bytes_share_above(self, m: Match, exceptions: tuple[IPNetwork, ...], window: tuple[int, int],
                          size: int) -> float:
        """Share of the episode's matching attack bytes carried by flows of mean packet size above ``size``."""
        attack = pc.and_(pc.and_(self.matches(m, exceptions), self.during(*window)),
                         pc.invert(self.legit(m.destination)))
        total = _sum(self.bytes, attack)
        above = _sum(self.bytes, pc.and_(attack, pc.greater(self.mean_size, float(size))))
        return above / total if total else 0.0

    def peak_per_second(self, mask: pa.Array, *, packets: bool = False) -> int:
        """The most flows of ``mask`` starting in one second, or (``packets``) the most packets in one second, each
        flow's packets spread evenly over the seconds it lasted (a sweep over the flows' starts and ends)."""
        first = pc.filter(pc.divide(self.start, 1_000_000), mask).to_numpy()
        if not len(first):
            return 0
        if not packets:
            return int(np.unique(first, return_counts=True)[1].max())
        last = pc.filter(pc.divide(self.end, 1_000_000), mask).to_numpy()
        rate = pc.filter(self.packets, mask).to_numpy() / (last - first + 1)
        points = np.concatenate([first, last + 1])
        deltas = np.concatenate([rate, -rate])
        order = np.lexsort((deltas, points))  # within one second, flows ending before flows starting
        return math.ceil(float(np.cumsum(deltas[order]).max()))

    def per_source_excess(self, mask: pa.Array, allowance: int) -> tuple[int, int, int]:
        """Packets a per-source limit of ``allowance`` packets over the window would drop, the total packets,
        and the most packets any one source sent."""
        table = pa.table({"src": pc.filter(self.src, mask), "packets": pc.filter(self.packets, mask)})
        if table.num_rows == 0:
            return 0, 0, 0
        per = table.group_by("src").aggregate([("packets", "sum")])["packets_sum"]
        excess = pc.sum(pc.max_element_wise(pc.subtract(per, allowance), 0)).as_py()
        return int(excess or 0), int(pc.sum(per).as_py() or 0), int(pc.max(per).as_py() or 0)
