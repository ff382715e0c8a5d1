"""Addresses as integers, and labelled range tables answering "is this address / prefix protected?" fast.

Everything here works on ``(version, value)`` pairs: the IP version (4 or 6) and the address as an
integer, which is what the standard library's :mod:`ipaddress` and :mod:`socket` produce. A table is a
sorted list of non-overlapping ``[first, last]`` ranges per version, so both questions the blocklist
asks (does this address fall in a range; does this prefix touch any range) are one :func:`bisect` each.
"""

from __future__ import annotations

import ipaddress
import socket
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterable

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Width in bits of each IP version.
BITS: Final[dict[int, int]] = {4: 32, 6: 128}

#: IANA special-purpose ranges that are never blocked: traffic "from" them is our own network, a proxy
#: or load balancer in front of the server, a translator, or a spoofed/synthetic value. Blocking one
#: would cut the site off from its own infrastructure, or do nothing. (cidr, why it is special)
SPECIAL_RANGES: Final[tuple[tuple[str, str], ...]] = (
    ("0.0.0.0/8", "'this network' (unspecified)"),
    ("10.0.0.0/8", "private network (RFC 1918): our own infrastructure or a proxy"),
    ("100.64.0.0/10", "shared address space (carrier-grade NAT, RFC 6598): a proxy or NAT in front of clients"),
    ("127.0.0.0/8", "loopback: the server itself or a local proxy"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private network (RFC 1918): our own infrastructure or a proxy"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation range (TEST-NET-1): spoofed or synthetic, not routable"),
    ("192.168.0.0/16", "private network (RFC 1918): our own infrastructure or a proxy"),
    ("198.18.0.0/15", "benchmarking range (RFC 2544): lab infrastructure"),
    ("198.51.100.0/24", "documentation range (TEST-NET-2): spoofed or synthetic, not routable"),
    ("203.0.113.0/24", "documentation range (TEST-NET-3): spoofed or synthetic, not routable"),
    ("224.0.0.0/4", "multicast: never a client"),
    ("240.0.0.0/4", "reserved (and broadcast): never a client"),
    ("::/128", "unspecified address"),
    ("::1/128", "loopback: the server itself or a local proxy"),
    ("::ffff:0:0/96", "IPv4-mapped address"),
    ("64:ff9b::/96", "NAT64 translator: blocking it blocks every IPv4 client behind it"),
    ("64:ff9b:1::/48", "local NAT64 translator: blocking it blocks every IPv4 client behind it"),
    ("100::/64", "discard-only range"),
    ("2001::/23", "IETF protocol assignments (Teredo relays, ORCHID, benchmarking)"),
    ("2001:db8::/32", "documentation range: spoofed or synthetic, not routable"),
    ("3fff::/20", "documentation range: spoofed or synthetic, not routable"),
    ("fc00::/7", "unique local address (private IPv6): our own infrastructure or a proxy"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated private IPv6)"),
    ("ff00::/8", "multicast: never a client"),
)


def parse_address(text: str) -> tuple[int, int] | None:
    """``(version, value)`` of an IP address written as text, or None when it is not one (a host name).

    Surrounding spaces and ``[...]`` brackets are ignored; an IPv4-mapped IPv6 address (``::ffff:a.b.c.d``,
    as dual-stack servers log IPv4 clients) is read as the IPv4 address it carries, so the same client
    is one address whichever way a log wrote it. The C parser in :mod:`socket` does the common cases;
    :mod:`ipaddress` handles the rest (scope ids such as ``fe80::1%eth0``).
    """
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except OSError:
        pass
    try:
        value = int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")
    except OSError:
        try:
            addr = ipaddress.ip_address(text)
        except ValueError:
            return None
        if addr.version == 4:
            return 4, int(addr)
        value = int(addr)
    mapped = ipaddress.IPv6Address(value).ipv4_mapped
    if mapped is not None:
        return 4, int(mapped)
    return 6, value


def parse_network(text: str) -> IPNetwork:
    """A network from ``a.b.c.d/n``, ``a.b.c.d`` (one address) or the IPv6 forms; host bits are dropped.

    Raises ValueError on anything else.
    """
    return ipaddress.ip_network(text.strip(), strict=False)


def network_text(version: int, first: int, prefixlen: int) -> str:
    """``"203.0.113.0/24"`` / ``"2a02:abcd:1::/48"`` of the prefix starting at ``first``."""
    if version == 4:  # socket's C formatter: the blocklist can hold 100k single addresses
        return f"{socket.inet_ntop(socket.AF_INET, first.to_bytes(4, 'big'))}/{prefixlen}"
    return str(ipaddress.IPv6Network((first, prefixlen)))


@dataclass(frozen=True)
class RangeTable:
    """Labelled address ranges, merged into sorted non-overlapping integer ranges per IP version.

    Where listed ranges overlap, the merged range keeps the label of the one that starts first.
    """

    items: tuple[tuple[IPNetwork, str], ...] = ()
    _starts: dict[int, list[int]] = field(default_factory=dict, repr=False, compare=False)
    _ends: dict[int, list[int]] = field(default_factory=dict, repr=False, compare=False)
    _labels: dict[int, list[str]] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def build(cls, items: Iterable[tuple[IPNetwork, str]]) -> RangeTable:
        kept = tuple(items)
        starts: dict[int, list[int]] = {4: [], 6: []}
        ends: dict[int, list[int]] = {4: [], 6: []}
        labels: dict[int, list[str]] = {4: [], 6: []}
        spans = sorted((net.version, int(net.network_address), int(net.broadcast_address), label)
                       for net, label in kept)
        for version, first, last, label in spans:
            s, e = starts[version], ends[version]
            if e and first <= e[-1]:  # overlaps the previous range: extend it
                e[-1] = max(e[-1], last)
                continue
            s.append(first)
            e.append(last)
            labels[version].append(label)
        return cls(kept, starts, ends, labels)

    def union(self, *others: RangeTable) -> RangeTable:
        return RangeTable.build(item for table in (self, *others) for item in table.items)

    def __len__(self) -> int:
        return len(self.items)

    def _index(self, version: int, value: int) -> int:
        """Index of the last range starting at or before ``value``, -1 when there is none."""
        return bisect_right(self._starts.get(version, []), value) - 1

    def label_of(self, version: int, value: int) -> str | None:
        """The label of the range holding this address, or None."""
        i = self._index(version, value)
        if i >= 0 and self._ends[version][i] >= value:
            return self._labels[version][i]
        return None

    def overlaps(self, version: int, first: int, last: int) -> bool:
        """Whether any range shares an address with ``[first, last]``.

        Ranges are sorted and disjoint, so only the last one starting at or before ``last`` can reach
        back into the span: every earlier one ends before that one starts.
        """
        i = self._index(version, last)
        return i >= 0 and self._ends[version][i] >= first


def special_ranges() -> RangeTable:
    """The IANA special-purpose ranges (private, loopback, link-local, CGNAT, multicast, documentation...)."""
    return _SPECIAL


_SPECIAL: Final[RangeTable] = RangeTable.build((parse_network(cidr), why) for cidr, why in SPECIAL_RANGES)
