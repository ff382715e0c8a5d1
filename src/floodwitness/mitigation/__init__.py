"""Stage: mitigation. From the attacking sources the analysis found to a safe CIDR blocklist.

:func:`build_blocklist` aggregates attacking IPs into CIDRs only where the evidence is overwhelming and
no known client, verified crawler, allowlisted or special-purpose range is touched, and measures each
entry's collateral. The verified crawler ranges are
a bundled, dated snapshot (:mod:`floodwitness.mitigation.crawlers`).
"""

from floodwitness.mitigation.blocklist import (
    Blocklist,
    BlocklistEntry,
    BlocklistPolicy,
    SkippedSource,
    build_blocklist,
)
from floodwitness.mitigation.crawlers import (
    CrawlerRanges,
    is_verified_crawler,
    load_crawler_ranges,
    verified_crawler_name,
)

__all__ = [
    "Blocklist",
    "BlocklistEntry",
    "BlocklistPolicy",
    "CrawlerRanges",
    "SkippedSource",
    "build_blocklist",
    "is_verified_crawler",
    "load_crawler_ranges",
    "verified_crawler_name",
]
