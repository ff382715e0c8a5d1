"""A CIDR blocklist from the attacking client IPs, with the collateral of every entry measured.

The analysis stage decides which client IPs attacked; this module turns them into as few CIDRs as is
*safe*, and says exactly what each one costs. The safety rules, which the tests check as invariants:

1. **Protected ranges are never covered.** IANA special-purpose space (private, loopback, CGNAT,
   link-local, multicast, documentation, ...: our own infrastructure, a proxy, or a spoofed value),
   verified crawler ranges (:mod:`floodwitness.mitigation.crawlers`) and every CIDR in
   :attr:`BlocklistPolicy.allow`. An attacker inside one is reported in :attr:`Blocklist.skipped` with
   the reason, and no entry touches its range.
2. **Nothing shorter than the policy minimum** (/16 for IPv4, /32 for IPv6 by default).
3. **A prefix is blocked whole only on evidence.** It needs at least ``min_attackers_to_aggregate``
   attackers (at the first level, /24 or /48) or that many hostile sub-prefixes (climbing one level,
   to /16 or /32); its known clients (seen in the baseline) must stay within ``max_collateral_share``
   (default: none at all); and when the incident's whole traffic is given, the attackers must make up at
   least ``min_attack_share`` of the prefix's incident requests, so bystanders are negligible.
4. **Merging adds no address.** Adjacent entries are merged with :func:`netaddr.cidr_merge`, which
   yields exactly their union; merges never cross a ``min_prefix`` boundary, and an attacker that was
   also a known client keeps its own /32 entry so its collateral stays visible.
5. **Collateral is measured, never hidden.** Each entry counts the known clients inside it and their
   baseline requests. With the default policy only a single-address entry can have any: the attacker
   itself was a known client.
6. **Nothing is lost.** Every attacker is either covered by an entry or listed in ``skipped`` (not an IP,
   special range, crawler, allowlisted, or cut by the ``max_entries`` cap).

Addresses are handled as ``(version, integer)`` pairs, grouped with dict and integer operations on the
distinct IPs and queried with bisect over sorted arrays, so 100k attackers take well under a second.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import accumulate
from typing import TYPE_CHECKING, Final, Literal

import netaddr

from floodwitness.errors import UsageError
from floodwitness.mitigation.protected import protected_ranges
from floodwitness.mitigation.ranges import BITS, RangeTable, network_text, parse_address

if TYPE_CHECKING:
    from collections.abc import Mapping

SkipKind = Literal["not_ip", "special", "crawler", "allowlisted", "cap"]

#: What each kind of skip means, for reports and docs (each SkippedSource.reason says more).
SKIP_KINDS: Final[dict[SkipKind, str]] = {
    "not_ip": "not an IP address (a host name from the log?): a blocklist needs addresses",
    "special": "special-purpose range, never blocked",
    "crawler": "verified crawler, never blocked",
    "allowlisted": "in the allowlist, never blocked",
    "cap": "left out by the max_entries cap",
}

#: How many bits one climbing step shortens a prefix by: /24 -> /16, /48 -> /32.
CLIMB_STEP: Final[dict[int, int]] = {4: 8, 6: 16}


@dataclass(frozen=True)
class BlocklistEntry:
    """One CIDR to block, what it stops and what it costs."""

    cidr: str  #: "203.0.113.0/24", "198.51.100.7/32", "2a02:abcd:1::/48"
    requests: int  #: attack requests from inside this CIDR during the incident
    attackers: int  #: distinct attacking IPs inside it
    reason: str  #: short human reason
    collateral_clients: int  #: known-good clients (seen in the baseline) inside the CIDR
    collateral_requests: int  #: their baseline requests

    def to_dict(self) -> dict[str, object]:
        return {"cidr": self.cidr, "requests": self.requests, "attackers": self.attackers, "reason": self.reason,
                "collateral_clients": self.collateral_clients, "collateral_requests": self.collateral_requests}


@dataclass(frozen=True)
class SkippedSource:
    """An attacker that is not blocked, and why."""

    ip: str  #: as given by the caller (a host name stays a host name)
    requests: int  #: its attack requests
    kind: SkipKind  #: not_ip | special | crawler | allowlisted | cap
    reason: str  #: human reason, naming the range or crawler

    def to_dict(self) -> dict[str, object]:
        return {"ip": self.ip, "requests": self.requests, "kind": self.kind, "reason": self.reason}


@dataclass(frozen=True)
class BlocklistPolicy:
    """How wide the blocklist may reach. Every field is a threshold a config file can set.

    ``max_collateral_share`` is the largest share of a prefix's *seen* addresses (attackers and known
    clients) that may be known clients when the prefix is blocked whole; 0.0 (default) means a prefix
    holding any known client is never aggregated. ``min_attack_share`` only applies when the incident's
    traffic per IP is given: the attackers' share of the prefix's incident requests needed to block it
    whole. An invalid policy raises :class:`~floodwitness.errors.UsageError` when constructed.
    """

    min_prefix_v4: int = 16  #: never shorter than /16 for IPv4 unless asked
    min_prefix_v6: int = 32  #: never shorter than /32 for IPv6
    aggregate_v4: int = 24  #: first aggregation level
    aggregate_v6: int = 48
    min_attackers_to_aggregate: int = 3  #: attackers (or hostile sub-prefixes) needed to block a prefix whole
    max_collateral_share: float = 0.0  #: share of a prefix's seen clients that may be known clients
    max_entries: int = 50_000
    allow: tuple[str, ...] = ()  #: extra CIDRs that must never be covered (own infrastructure, partners)
    min_attack_share: float = 0.95  #: attackers' share of a prefix's incident requests to block it whole

    def __post_init__(self) -> None:
        for name, value, low, high in (("min_prefix_v4", self.min_prefix_v4, 8, 32),
                                       ("min_prefix_v6", self.min_prefix_v6, 16, 128),
                                       ("aggregate_v4", self.aggregate_v4, self.min_prefix_v4, 32),
                                       ("aggregate_v6", self.aggregate_v6, self.min_prefix_v6, 128)):
            if not low <= value <= high:
                raise UsageError(f"blocklist policy: {name} is /{value}, outside /{low}../{high}",
                                 hint="Aggregation levels must lie between the minimum prefix and a single "
                                      "address; minimums shorter than /8 (IPv4) or /16 (IPv6) are refused.")
        if self.min_attackers_to_aggregate < 2:
            raise UsageError(f"blocklist policy: min_attackers_to_aggregate is {self.min_attackers_to_aggregate}",
                             hint="Use 2 or more: one attacker never justifies blocking its neighbours.")
        for name, share in (("max_collateral_share", self.max_collateral_share),
                            ("min_attack_share", self.min_attack_share)):
            if not 0.0 <= share <= 1.0:
                raise UsageError(f"blocklist policy: {name} is {share}", hint="Give a share between 0.0 and 1.0.")
        if self.max_entries < 1:
            raise UsageError(f"blocklist policy: max_entries is {self.max_entries}", hint="Give 1 or more.")
        if isinstance(self.allow, str):
            raise UsageError("blocklist policy: allow must be a tuple of CIDRs, not one string",
                             hint=f"Write allow=({self.allow!r},).")

    def min_prefix(self, version: int) -> int:
        return self.min_prefix_v4 if version == 4 else self.min_prefix_v6

    def aggregate(self, version: int) -> int:
        return self.aggregate_v4 if version == 4 else self.aggregate_v6

    def levels(self, version: int) -> list[int]:
        """Aggregation prefix lengths, longest first: /24 then /16 (IPv4), /48 then /32 (IPv6) by default.

        Climbing goes one step (8 bits IPv4, 16 bits IPv6) at a time and ends exactly at the minimum.
        """
        first, floor = self.aggregate(version), self.min_prefix(version)
        if first >= BITS[version]:
            return []
        levels = [first]
        while levels[-1] - CLIMB_STEP[version] > floor:
            levels.append(levels[-1] - CLIMB_STEP[version])
        if levels[-1] > floor:
            levels.append(floor)
        return levels


@dataclass(frozen=True)
class Blocklist:
    """The entries to block (most attack requests first), the attackers left out, and the totals."""

    entries: tuple[BlocklistEntry, ...]
    skipped: tuple[SkippedSource, ...]
    attackers_total: int  #: attacker keys given
    attackers_covered: int  #: of those, covered by an entry
    attack_requests_total: int
    attack_requests_covered: int
    collateral_clients_total: int  #: known clients inside some entry (entries never overlap)
    known_clients_total: int  #: distinct known clients (IP addresses) given
    crawler_snapshot: str | None = None  #: date of the verified-crawler list used

    @property
    def cidrs(self) -> list[str]:
        return [e.cidr for e in self.entries]

    def to_dict(self) -> dict[str, object]:
        return {
            "attackers_total": self.attackers_total, "attackers_covered": self.attackers_covered,
            "attack_requests_total": self.attack_requests_total,
            "attack_requests_covered": self.attack_requests_covered,
            "collateral_clients_total": self.collateral_clients_total,
            "known_clients_total": self.known_clients_total, "crawler_snapshot": self.crawler_snapshot,
            "blocklist": [e.to_dict() for e in self.entries], "skipped": [s.to_dict() for s in self.skipped],
        }


# --- per-version working data -------------------------------------------------------------------


class _Sorted:
    """Sorted addresses of one IP version with running totals: how many, and how much, in a range."""

    __slots__ = ("cum", "values")

    def __init__(self, weights: Mapping[int, int]) -> None:
        self.values = sorted(weights)
        self.cum = [0, *accumulate(weights[v] for v in self.values)]

    def span(self, first: int, last: int) -> tuple[int, int]:
        return bisect_left(self.values, first), bisect_right(self.values, last)

    def count(self, first: int, last: int) -> int:
        lo, hi = self.span(first, last)
        return hi - lo

    def total(self, first: int, last: int) -> int:
        lo, hi = self.span(first, last)
        return self.cum[hi] - self.cum[lo]


@dataclass
class _Family:
    """Everything about one IP version the planner needs."""

    version: int
    attackers: dict[int, int] = field(default_factory=dict)  #: blockable attacker -> attack requests
    keys: dict[int, list[tuple[str, int]]] = field(default_factory=dict)  #: attacker -> caller's keys
    known: dict[int, int] = field(default_factory=dict)  #: known client -> baseline requests
    bystanders: dict[int, int] = field(default_factory=dict)  #: non-attacking incident IP -> requests

    @property
    def bits(self) -> int:
        return BITS[self.version]

    def span(self, first: int, prefixlen: int) -> tuple[int, int]:
        """First and last address of the prefix starting at ``first``."""
        return first, first + (1 << (self.bits - prefixlen)) - 1


@dataclass
class _Index:
    """Sorted views of a family, built once the attackers are final."""

    attackers: _Sorted
    known: _Sorted
    known_attackers: _Sorted
    bystanders: _Sorted | None


def _index(fam: _Family, have_incident: bool) -> _Index:
    both = {v: 1 for v in fam.attackers if v in fam.known}
    return _Index(_Sorted(fam.attackers), _Sorted(fam.known), _Sorted(both),
                  _Sorted(fam.bystanders) if have_incident else None)


# --- the planner ----------------------------------------------------------------------------------


def _acceptable(fam: _Family, ix: _Index, first: int, last: int, protected: RangeTable,
                policy: BlocklistPolicy) -> bool:
    """Whether ``[first, last]`` may be blocked whole (rules 1, 3; the attacker count is checked before)."""
    if protected.overlaps(fam.version, first, last):
        return False
    known = ix.known.count(first, last)
    if known:
        seen = ix.attackers.count(first, last) + known - ix.known_attackers.count(first, last)
        if known / seen > policy.max_collateral_share:
            return False
    if ix.bystanders is not None:
        attack = ix.attackers.total(first, last)
        other = ix.bystanders.total(first, last)
        if other and attack / (attack + other) < policy.min_attack_share:
            return False
    return True


def _hostile_prefixes(fam: _Family, ix: _Index, levels: list[int], protected: RangeTable,
                      policy: BlocklistPolicy) -> list[set[int]]:
    """For each level, the prefixes (as ``address >> (bits - level)`` keys) that may be blocked whole."""
    hostile: list[set[int]] = []
    members: Counter[int] = Counter()
    for i, level in enumerate(levels):
        if i == 0:
            members = Counter(v >> (fam.bits - level) for v in fam.attackers)
        else:
            members = Counter(k >> (levels[i - 1] - level) for k in hostile[-1])
        keep: set[int] = set()
        for key, n in members.items():
            if n >= policy.min_attackers_to_aggregate:
                first, last = fam.span(key << (fam.bits - level), level)
                if _acceptable(fam, ix, first, last, protected, policy):
                    keep.add(key)
        hostile.append(keep)
    return hostile


def _blocks(fam: _Family, levels: list[int], hostile: list[set[int]]) -> tuple[
        list[tuple[int, int]], list[tuple[int, int]]]:
    """The widest hostile prefixes plus the attackers outside them, as ``(first, prefixlen)``.

    Returns (mergeable blocks, single addresses that were known clients: kept apart).
    """

    shifts = [(fam.bits - level, keys) for level, keys in zip(levels, hostile, strict=True)]

    def inside_wider(value: int, below: int) -> bool:
        """Whether the address or prefix starting at ``value`` sits in a hostile prefix of level ``below`` or up."""
        return any((value >> shift) in keys for shift, keys in shifts[below:])

    blocks: list[tuple[int, int]] = []
    for i, level in enumerate(levels):
        for key in hostile[i]:
            first = key << (fam.bits - level)
            if not inside_wider(first, i + 1):
                blocks.append((first, level))
    apart: list[tuple[int, int]] = []
    if not any(hostile):  # nothing aggregated: every attacker is its own block
        blocks = [(value, fam.bits) for value in fam.attackers if value not in fam.known]
        apart = [(value, fam.bits) for value in fam.attackers if value in fam.known]
        return blocks, apart
    for value in fam.attackers:
        if not inside_wider(value, 0):
            (apart if value in fam.known else blocks).append((value, fam.bits))
    return blocks, apart


def _merge(fam: _Family, blocks: list[tuple[int, int]], min_prefix: int) -> list[tuple[int, int]]:
    """Merge adjacent blocks with netaddr, inside each ``min_prefix`` block only (rule 4)."""
    groups: defaultdict[int, list[tuple[int, int]]] = defaultdict(list)
    for first, prefixlen in blocks:
        groups[first >> (fam.bits - min_prefix)].append((first, prefixlen))
    out: list[tuple[int, int]] = []
    for group in groups.values():
        group.sort()
        run = [group[0]]
        for block in group[1:]:
            if block[0] == fam.span(*run[-1])[1] + 1:
                run.append(block)
            else:
                out.extend(_merge_run(fam.version, run))
                run = [block]
        out.extend(_merge_run(fam.version, run))
    return out


def _merge_run(version: int, run: list[tuple[int, int]]) -> list[tuple[int, int]]:
    if len(run) == 1:
        return run
    merged = netaddr.cidr_merge([netaddr.IPNetwork(block, version=version) for block in run])
    return [(int(net.first), int(net.prefixlen)) for net in merged]


def _host_entry(fam: _Family, value: int) -> BlocklistEntry:
    """The entry of one address (the common case, so straight dict look-ups)."""
    requests, known_requests = fam.attackers[value], fam.known.get(value)
    reason = f"attacking IP, {requests:,} requests during the incident"
    if known_requests is not None:
        reason += f"; also a known client ({known_requests:,} baseline requests): blocking it blocks that client"
    return BlocklistEntry(network_text(fam.version, value, fam.bits), requests, 1, reason,
                          int(known_requests is not None), known_requests or 0)


def _entry(fam: _Family, ix: _Index, first: int, prefixlen: int, policy: BlocklistPolicy) -> tuple[
        BlocklistEntry, list[int]]:
    """The entry of a block, and the attacker addresses inside it."""
    if prefixlen == fam.bits:
        return _host_entry(fam, first), [first]
    _, last = fam.span(first, prefixlen)
    lo, hi = ix.attackers.span(first, last)
    attackers, requests = hi - lo, ix.attackers.cum[hi] - ix.attackers.cum[lo]
    known, known_requests = ix.known.count(first, last), ix.known.total(first, last)
    if attackers == last - first + 1:
        parts = [f"all {attackers:,} addresses of this /{prefixlen} attacked"]
    else:
        parts = [f"{attackers:,} attacking IPs"]
        level = policy.aggregate(fam.version)
        if prefixlen < level:
            subnets = len({v >> (fam.bits - level) for v in ix.attackers.values[lo:hi]})
            parts[0] += f" in {subnets:,} /{level}s"
    if ix.bystanders is not None:
        other = ix.bystanders.total(first, last)
        share = requests / (requests + other) if requests + other else 1.0
        parts.append(f"{math.floor(share * 100)}% of this /{prefixlen}'s incident traffic")
    parts.append("no known client" if not known else
                 f"{known:,} known client{'s' if known > 1 else ''} ({known_requests:,} baseline requests)")
    reason = ", ".join(parts)
    entry = BlocklistEntry(network_text(fam.version, first, prefixlen), requests, attackers, reason,
                           known, known_requests)
    return entry, ix.attackers.values[lo:hi]


# --- the entry point ------------------------------------------------------------------------------


def _skip_reason(kind: SkipKind, label: str) -> str:
    if kind == "crawler":
        return (f"verified crawler ({label}, published range), never blocked: "
                "slow it with robots.txt or the operator's crawl-rate settings instead")
    if kind == "allowlisted":
        return f"inside allowlisted {label}, never blocked"
    return f"{label}; never blocked"


def build_blocklist(attackers: Mapping[str, int], known_clients: Mapping[str, int], *,
                    incident_clients: Mapping[str, int] | None = None,
                    policy: BlocklistPolicy = BlocklistPolicy()) -> Blocklist:
    """Turn attacking IPs into a safe CIDR blocklist (see the module docstring for the rules).

    ``attackers``: attacking IP -> its requests during the incident. ``known_clients``: IP -> requests in
    the baseline (the known-good audience). ``incident_clients``: every IP seen during the incident ->
    requests; when given, a prefix is only blocked whole if the attackers carry at least
    ``policy.min_attack_share`` of its incident requests. Keys that are not IP addresses are reported
    (attackers) or ignored (clients); IPv4-mapped IPv6 keys count as their IPv4 address.
    """
    ranges = protected_ranges(policy.allow)
    protected, checks, crawlers = ranges.table, ranges.checks, ranges.crawlers
    fams = {4: _Family(4), 6: _Family(6)}
    skipped: list[SkippedSource] = []
    attacker_addrs: set[tuple[int, int]] = set()

    for text, count in attackers.items():
        requests = int(count)
        addr = parse_address(text)
        if addr is None:
            skipped.append(SkippedSource(text, requests, "not_ip", SKIP_KINDS["not_ip"]))
            continue
        attacker_addrs.add(addr)
        if protected.label_of(*addr) is not None:
            for kind, table in checks:
                label = table.label_of(*addr)
                if label is not None:
                    skipped.append(SkippedSource(text, requests, kind, _skip_reason(kind, label)))
                    break
            continue
        fam = fams[addr[0]]
        fam.attackers[addr[1]] = fam.attackers.get(addr[1], 0) + requests
        fam.keys.setdefault(addr[1], []).append((text, requests))

    for text, count in known_clients.items():
        addr = parse_address(text)
        if addr is not None:
            known = fams[addr[0]].known
            known[addr[1]] = known.get(addr[1], 0) + int(count)
    for text, count in (incident_clients or {}).items():
        if text in attackers:
            continue
        addr = parse_address(text)
        if addr is not None and addr not in attacker_addrs:
            others = fams[addr[0]].bystanders
            others[addr[1]] = others.get(addr[1], 0) + int(count)

    planned: list[tuple[BlocklistEntry, _Family, int, list[int]]] = []  # entry, family, first, attackers
    for fam in fams.values():
        if not fam.attackers:
            continue
        ix = _index(fam, incident_clients is not None)
        levels = policy.levels(fam.version)
        hostile = _hostile_prefixes(fam, ix, levels, protected, policy)
        blocks, apart = _blocks(fam, levels, hostile)
        for first, prefixlen in _merge(fam, blocks, policy.min_prefix(fam.version)) + apart:
            entry, inside = _entry(fam, ix, first, prefixlen, policy)
            planned.append((entry, fam, first, inside))
    planned.sort(key=lambda p: (-p[0].requests, p[1].version, p[2]))

    for entry, fam, _, inside in planned[policy.max_entries:]:
        why = (f"{SKIP_KINDS['cap']} ({policy.max_entries:,} entries): "
               f"its entry {entry.cidr} ({entry.requests:,} requests) ranked below the cap")
        skipped.extend(SkippedSource(text, requests, "cap", why)
                       for value in inside for text, requests in fam.keys[value])
    kept = planned[:policy.max_entries]
    covered = sum(len(fam.keys[v]) for _, fam, _, inside in kept for v in inside)
    entries = tuple(p[0] for p in kept)
    skipped.sort(key=lambda s: (-s.requests, s.ip))
    return Blocklist(
        entries=entries, skipped=tuple(skipped),
        attackers_total=len(attackers), attackers_covered=covered,
        attack_requests_total=sum(int(v) for v in attackers.values()),
        attack_requests_covered=sum(e.requests for e in entries),
        collateral_clients_total=sum(e.collateral_clients for e in entries),
        known_clients_total=len(fams[4].known) + len(fams[6].known),
        crawler_snapshot=crawlers.snapshot,
    )
