"""Verified search-engine crawler ranges: addresses a blocklist must never cover.

The ranges come from a bundled, dated snapshot of the operators' published lists
(``floodwitness/data/verified_crawlers.txt``: Googlebot, bingbot). A crawler hitting a site hard is
slowed with robots.txt or the operator's crawl-rate settings; blocking it drops the site from search
results, which is worse damage than most floods do. The snapshot ages: users extend it with their own
ranges (``--allow`` / :attr:`BlocklistPolicy.allow`) or point :func:`load_crawler_ranges` at a fresher
file of the same format.

File format: one CIDR per line followed by ``# name``; lines starting with ``#`` and blank lines are
comments; a ``# snapshot: YYYY-MM`` comment in the header dates the list.
"""

from __future__ import annotations

import functools
import importlib.resources
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from floodwitness.errors import UsageError
from floodwitness.mitigation.ranges import RangeTable, parse_address, parse_network

if TYPE_CHECKING:
    import os

    from floodwitness.mitigation.ranges import IPNetwork

#: The bundled snapshot, inside the ``floodwitness`` package.
BUNDLED_FILE: Final = "data/verified_crawlers.txt"

#: The name given to a range whose line carries no ``# name``.
UNNAMED: Final = "verified crawler"


@dataclass(frozen=True)
class CrawlerRanges:
    """Published crawler networks with their operator's name, and a fast lookup over them."""

    networks: tuple[tuple[IPNetwork, str], ...]
    snapshot: str | None  #: the date in the file's ``# snapshot:`` header, if it has one
    source: str  #: where the list was read from
    table: RangeTable

    def name_of(self, ip: str) -> str | None:
        """The crawler ``ip`` belongs to (``"Googlebot"``), or None (also for text that is not an IP)."""
        addr = parse_address(ip)
        return None if addr is None else self.table.label_of(*addr)

    def __contains__(self, ip: object) -> bool:
        return isinstance(ip, str) and self.name_of(ip) is not None

    def __len__(self) -> int:
        return len(self.networks)


def parse_crawler_ranges(text: str, source: str) -> CrawlerRanges:
    """Read a crawler list in the bundled file's format; a bad line raises UsageError naming it."""
    networks: list[tuple[IPNetwork, str]] = []
    snapshot: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("#"):
            key, _, value = line[1:].partition(":")
            if key.strip().lower() == "snapshot" and snapshot is None:
                snapshot = value.strip() or None
            continue
        cidr, _, name = line.partition("#")
        if not cidr.strip():
            continue
        try:
            net = parse_network(cidr)
        except ValueError:
            raise UsageError(f"{cidr.strip()!r} is not a CIDR or IP address",
                             hint="Write one network per line, like 66.249.64.0/19  # Googlebot",
                             path=source, line=number) from None
        networks.append((net, name.strip() or UNNAMED))
    return CrawlerRanges(tuple(networks), snapshot, source, RangeTable.build(networks))


def load_crawler_ranges(path: str | os.PathLike[str] | None = None) -> CrawlerRanges:
    """The crawler list in ``path``, or the bundled snapshot when ``path`` is None (read once, cached)."""
    if path is None:
        return _bundled()
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the crawler list: {exc}",
                         hint="Give a UTF-8 text file with one CIDR per line.", path=str(path)) from None
    return parse_crawler_ranges(text, str(path))


@functools.cache
def _bundled() -> CrawlerRanges:
    resource = importlib.resources.files("floodwitness").joinpath(BUNDLED_FILE)
    return parse_crawler_ranges(resource.read_text(encoding="utf-8"), f"floodwitness/{BUNDLED_FILE}")


def verified_crawler_name(ip: str) -> str | None:
    """Which verified crawler (bundled snapshot) ``ip`` belongs to, or None."""
    return _bundled().name_of(ip)


def is_verified_crawler(ip: str) -> bool:
    """Whether ``ip`` is inside a published crawler range of the bundled snapshot (one bisect)."""
    return verified_crawler_name(ip) is not None
