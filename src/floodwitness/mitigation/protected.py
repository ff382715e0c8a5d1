"""What must never be blocked or rate limited: special-purpose ranges, verified crawlers, the allowlist.

One place builds these tables, so the blocklist, the rate-limit exemptions and every export agree on
them. The allowlist comes from ``--allow`` values: a CIDR, a single address, or a file with one per
line (``#`` comments, blank lines ignored; a bad line is an error naming the file and line).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from floodwitness.errors import UsageError
from floodwitness.mitigation.crawlers import CrawlerRanges, load_crawler_ranges
from floodwitness.mitigation.ranges import SPECIAL_RANGES, RangeTable, parse_address, parse_network, special_ranges

if TYPE_CHECKING:
    from collections.abc import Iterable

    from floodwitness.mitigation.ranges import IPNetwork

ProtectedKind = Literal["special", "crawler", "allowlisted"]


@dataclass(frozen=True)
class ProtectedRanges:
    """The three kinds of protected range, each with a lookup, and their union."""

    special: RangeTable
    crawlers: CrawlerRanges
    allow: RangeTable

    @property
    def checks(self) -> tuple[tuple[ProtectedKind, RangeTable], ...]:
        """Each kind with its table, in the order a label is looked for."""
        return ("special", self.special), ("crawler", self.crawlers.table), ("allowlisted", self.allow)

    @property
    def table(self) -> RangeTable:
        return self.special.union(self.crawlers.table, self.allow)

    def kind_of(self, ip: str) -> tuple[ProtectedKind, str] | None:
        """``(kind, label)`` of the protected range holding ``ip``, or None (also for a host name)."""
        addr = parse_address(ip)
        if addr is None:
            return None
        for kind, table in self.checks:
            label = table.label_of(*addr)
            if label is not None:
                return kind, label
        return None

    def networks(self) -> list[tuple[IPNetwork, ProtectedKind, str]]:
        """Every protected network with its kind and label (what an export's exemption list holds)."""
        out: list[tuple[IPNetwork, ProtectedKind, str]] = [
            (parse_network(cidr), "special", why) for cidr, why in SPECIAL_RANGES]
        out += [(net, "crawler", name) for net, name in self.crawlers.networks]
        out += [(net, "allowlisted", label) for net, label in self.allow.items]
        return out


def allowlist_table(allow: Iterable[str]) -> RangeTable:
    """The allowlist's CIDRs (or single addresses) as a range table; a bad one raises UsageError."""
    items = []
    for text in allow:
        try:
            net = parse_network(text)
        except ValueError:
            raise UsageError(f"allowlist entry {text!r} is not a CIDR or IP address",
                             hint="Write networks like 192.0.2.0/24 or 2001:db8::/32, or single addresses.") from None
        items.append((net, str(net)))
    return RangeTable.build(items)


def protected_ranges(allow: Iterable[str] = ()) -> ProtectedRanges:
    """Special-purpose ranges, the bundled verified crawlers, and ``allow``."""
    return ProtectedRanges(special_ranges(), load_crawler_ranges(), allowlist_table(allow))


def read_allow_specs(specs: Iterable[str]) -> tuple[str, ...]:
    """Expand ``--allow`` values: each is a CIDR / address, or a file of them (one per line, ``#`` comments)."""
    out: list[str] = []
    for spec in specs:
        try:
            out.append(str(parse_network(spec)))
            continue
        except ValueError:
            pass
        path = Path(spec)
        if not path.is_file():
            raise UsageError(f"--allow {spec!r} is neither a CIDR nor a file",
                             hint="Give a network like 198.51.100.0/24, an address, or a file with one per line.")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read the allowlist: {exc}", path=spec,
                             hint="Give a UTF-8 text file with one CIDR per line.") from None
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            try:
                out.append(str(parse_network(line)))
            except ValueError:
                raise UsageError(f"{line!r} is not a CIDR or IP address", path=spec, line=number,
                                 hint="Write one network per line, like 198.51.100.0/24  # our office") from None
    return tuple(out)
