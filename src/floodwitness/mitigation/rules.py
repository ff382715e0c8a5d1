"""From a report's blocklist to the rules an enforcement point gets: safe, capped, with an expiry.

The report's blocklist already avoids protected ranges when it was built; this is the last guard before
anything reaches a firewall, and it also protects what the user allows *now* (``--allow``):

* **The allowlist always wins.** Every protected range (special-purpose, verified crawlers, the
  allowlist) is cut out of each entry with :class:`netaddr.IPSet` difference, so a /16 holding one
  allowlisted /32 becomes the 16 CIDRs around it. An entry wholly inside a protected range is dropped.
* **No overlap.** An entry overlapping an earlier (busier) one keeps only what is new, so sets with
  ``interval`` flags and ``ipset`` ``hash:net`` accept the rules.
* **Caps.** Entries broader than ``min_prefix_v4`` / ``min_prefix_v6`` are dropped, and only the first
  ``max_rules`` rules (busiest entries first) are kept; both are reported with a message saying how to
  raise them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import netaddr

from floodwitness.errors import UsageError
from floodwitness.mitigation.ranges import parse_network

if TYPE_CHECKING:
    from floodwitness.mitigation.protected import ProtectedRanges

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> int:
    """Seconds in ``30m``, ``24h``, ``7d``, ``1w`` (one number and one unit); UsageError otherwise."""
    match = _DURATION.match(text)
    if not match or int(match.group(1)) <= 0:
        raise UsageError(f"--expire {text!r} is not a duration", hint="Use a number and a unit: 90m, 24h, 7d, 2w.")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def go_duration(seconds: int) -> str:
    """The duration as Go's time.ParseDuration reads it (what CrowdSec and nftables take): ``24h``, ``90m``."""
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


@dataclass(frozen=True)
class Rule:
    """One CIDR to block, with the evidence of the entry it comes from."""

    cidr: str
    version: int
    requests: int  #: the entry's attack requests (the whole entry's, when it was split)
    attackers: int
    reason: str
    collateral_clients: int
    collateral_requests: int
    split_from: str | None = None  #: the report entry this piece was cut from, around protected ranges


@dataclass(frozen=True)
class RuleSet:
    """The rules, what was left out and why, and the evidence header every export repeats."""

    rules: tuple[Rule, ...]
    expires_at: datetime
    expire_seconds: int
    generated_at: datetime
    incident: str  #: "I1 2026-10-13T12:27:00Z..2026-10-13T12:40:00Z", or "" when unknown
    entries_in_report: int
    attack_requests_total: int  #: attack requests of the incident (from the report)
    messages: tuple[str, ...] = field(default=())  #: caps hit, entries dropped or split: said on stderr

    @property
    def attack_requests_covered(self) -> int:
        """Attack requests of the entries that kept at least one rule (an upper bound when one was split)."""
        seen: dict[str, int] = {}
        for r in self.rules:
            seen[r.split_from or r.cidr] = r.requests
        return sum(seen.values())

    @property
    def collateral_clients(self) -> int:
        seen: dict[str, int] = {}
        for r in self.rules:
            seen[r.split_from or r.cidr] = r.collateral_clients
        return sum(seen.values())

    def comment(self, rule: Rule) -> str:
        """The evidence summary and expiry of one rule, as plain ASCII safe in every format's comment."""
        text = f"{rule.requests:,} attack requests, {rule.attackers:,} attacking IPs: {rule.reason}"
        if rule.split_from:
            text += f" (part of {rule.split_from}, split around protected ranges)"
        if self.incident:
            text += f"; incident {self.incident}"
        return safe_comment(f"{text}; expires {iso(self.expires_at)}")


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_UNSAFE_COMMENT = re.compile(r"[^A-Za-z0-9 .,:;/()+=%_@-]")


def safe_comment(text: str, limit: int = 240) -> str:
    """``text`` reduced to characters no config format treats specially (no quotes, #, braces, newlines)."""
    out = _UNSAFE_COMMENT.sub(" ", text.replace("'", " "))
    out = re.sub(r" {2,}", " ", out).strip()
    return out if len(out) <= limit else out[: limit - 3] + "..."


def _network(text: Any) -> netaddr.IPNetwork:
    try:
        net = parse_network(str(text))
    except ValueError:
        raise UsageError(f"blocklist entry {text!r} is not a CIDR",
                         hint="The report's mitigation.blocklist holds CIDRs like 203.0.113.0/24.") from None
    return netaddr.IPNetwork(str(net))


def _overlapping(nets: list[netaddr.IPNetwork]) -> set[int]:
    """Indexes of the networks that share an address with another one (a sweep over sorted spans)."""
    spans = sorted((n.version, n.first, n.last, i) for i, n in enumerate(nets))
    out: set[int] = set()
    reach: tuple[int, int, int] | None = None  # version, last address, index of the span reaching furthest
    for version, first, last, i in spans:
        if reach is not None and reach[0] == version and first <= reach[1]:
            out |= {i, reach[2]}
        if reach is None or reach[0] != version or last > reach[1]:
            reach = (version, last, i)
    return out


def plan_rules(mitigation: dict[str, Any], protected: ProtectedRanges, *, expire_seconds: int = 86400,
               max_rules: int = 10_000, min_prefix_v4: int = 16, min_prefix_v6: int = 32,
               now: datetime | None = None) -> RuleSet:
    """The rules for the report's ``mitigation`` (see the module docstring for the guarantees)."""
    if max_rules < 1:
        raise UsageError(f"--max-rules is {max_rules}", hint="Give 1 or more.")
    now = (now or datetime.now(UTC)).astimezone(UTC)
    entries = list(mitigation.get("blocklist") or [])
    guard = netaddr.IPSet(str(net) for net, _, _ in protected.networks())
    table = protected.table
    ordered = sorted(entries, key=lambda x: -int(x.get("requests", 0)))
    nets = [_network(e.get("cidr")) for e in ordered]
    shared = _overlapping(nets)
    taken = netaddr.IPSet()  # only entries that overlap another one need it
    rules: list[Rule] = []
    messages: list[str] = []
    too_broad: list[str] = []
    dropped: list[str] = []
    split = 0
    for index, (e, net) in enumerate(zip(ordered, nets, strict=True)):
        floor = min_prefix_v4 if net.version == 4 else min_prefix_v6
        if net.prefixlen < floor:
            too_broad.append(str(net))
            continue
        pieces = [net]
        if table.overlaps(net.version, net.first, net.last) or index in shared:
            kept = netaddr.IPSet([net]) - guard
            if index in shared:
                kept -= taken
                taken |= kept
            pieces = list(kept.iter_cidrs())
        if not pieces:
            dropped.append(str(net))
            continue
        whole = len(pieces) == 1 and pieces[0] == net
        split += not whole
        rules.extend(Rule(str(p), p.version, int(e.get("requests", 0)), int(e.get("attackers", 0)),
                          str(e.get("reason", "")), int(e.get("collateral_clients", 0)),
                          int(e.get("collateral_requests", 0)), None if whole else str(net)) for p in pieces)
    if too_broad:
        messages.append(f"{len(too_broad):,} entries broader than /{min_prefix_v4} (IPv4) or /{min_prefix_v6} "
                        f"(IPv6) left out: {', '.join(too_broad[:5])}{' ...' if len(too_broad) > 5 else ''}; "
                        "lower --min-prefix-v4/--min-prefix-v6 only if you mean to block that widely")
    if dropped:
        messages.append(f"{len(dropped):,} entries lie wholly inside protected ranges (allowlist, verified crawlers, "
                        f"special-purpose) and were left out: {', '.join(dropped[:5])}")
    if split:
        messages.append(f"{split:,} entries were split around protected ranges (the allowlist always wins)")
    if len(rules) > max_rules:
        kept_rules = rules[:max_rules]
        left = {r.split_from or r.cidr for r in rules[max_rules:]} - {r.split_from or r.cidr for r in kept_rules}
        messages.append(f"rule cap hit: kept {max_rules:,} of {len(rules):,} rules (busiest entries first); "
                        f"{len(left):,} entries left out entirely; raise --max-rules to keep more")
        rules = kept_rules
    incident = mitigation.get("incident") or {}
    label = f"{incident['id']} {incident['start']}..{incident['end']}" if {"id", "start", "end"} <= incident.keys() \
        else ""
    return RuleSet(tuple(rules), now + timedelta(seconds=expire_seconds), expire_seconds, now, safe_comment(label),
                   len(entries), int(mitigation.get("attack_requests_total") or 0), tuple(messages))


def summary_lines(rules: RuleSet, rate_limits: dict[str, Any] | None) -> list[str]:
    """The dry-run summary: what each rule set would have stopped, and whom it would have blocked."""
    total = rules.attack_requests_total
    covered = rules.attack_requests_covered
    share = f" ({covered / total:.1%})" if total else ""
    lines = [f"blocklist: {len(rules.rules):,} rules from {rules.entries_in_report:,} entries would have stopped "
             f"{covered:,} of {total:,} attack requests{share}; {rules.collateral_clients:,} known clients inside"]
    lines += [f"  note: {m}" for m in rules.messages]
    if rate_limits and rate_limits.get("settings"):
        lines.append("rate limits, replayed on the incident (* recommended):")
        for s in rate_limits["settings"]:
            replay, base = s["replay"], s["baseline"]
            mark = "*" if s.get("recommended") else " "
            lines.append(f"  {mark}{s['name']:<9} rejects {replay['attack_rejected_share']:.1%} of "
                         f"{replay['attack_requests']:,} attack requests; limits {replay['legit_clients_hit']:,} of "
                         f"{replay['legit_clients']:,} known clients ({replay['legit_clients_hit_share']:.2%}); "
                         f"baseline: {base['clients_hit']:,} of {base['clients']:,} clients")
        lines += [f"  note: {safe_comment(n, 400)}" for n in rate_limits.get("notes", [])]
    elif rate_limits is not None:
        lines.append("rate limits: none in the report")
    else:
        lines.append("rate limits: not in this report (computed for attacks by `floodwitness mitigate LOGS` "
                     "or `analyze --rate-limits`)")
    return lines


def pick_setting(rate_limits: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    """The setting called ``name`` (``recommended`` for the report's choice, ``none`` for no limits)."""
    if name == "none" or not rate_limits or not rate_limits.get("settings"):
        return None
    wanted = rate_limits.get("recommended") if name == "recommended" else name
    for s in rate_limits["settings"]:
        if s.get("name") == wanted:
            return dict(s)
    names = ", ".join(["recommended", "none", *(str(s.get("name")) for s in rate_limits["settings"])])
    raise UsageError(f"--rate-limits {name!r} is not a setting of this report", hint=f"Choose one of: {names}.")
