"""What a rate limit is: the path classes that each get one, how it counts requests (the keys), the
candidate rates, and one class's :class:`Limit` with its nginx and HAProxy forms."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from floodwitness.analysis.composition import ASSET_PATTERN


@dataclass(frozen=True)
class PathClass:
    """A kind of request that gets its own limit."""

    name: str
    pattern: str | None  #: regular expression on the lower-cased path; None: every other request
    description: str


#: The classes, first match wins. Patterns stay within the syntax RE2 (DuckDB) and PCRE (nginx) share.
PATH_CLASSES: Final[tuple[PathClass, ...]] = (
    PathClass("asset", ASSET_PATTERN, "static files: stylesheets, scripts, images, fonts"),
    PathClass("api", r"^/(api|graphql|rest)(/|$)|^/v[0-9]+/", "API calls: /api/..., /graphql, /v1/..."),
    PathClass("login", r"/(login|log-in|signin|sign-in|logon|auth|oauth|session|sessions|password|register|signup"
                       r"|sign-up|wp-login\.php|xmlrpc\.php)(/|\.|$)",
              "sign-in, sign-up and password forms"),
    PathClass("page", None, "everything else: pages, search, forms"),
)
CLASS_NAMES: Final = tuple(c.name for c in PATH_CLASSES)

#: How a limit counts requests: per client address, or per client address and path.
KEYS: Final[dict[str, str]] = {"ip": "per client address", "ip_uri": "per client address and path"}

#: Candidate rates in requests per minute (nginx takes whole numbers of r/m or r/s).
RATES_PER_MINUTE: Final = (1, 2, 3, 6, 10, 20, 30, 60, 120, 300, 600, 1200)
NO_LIMIT: Final = 1e12  # rate and burst of "no limit"


@dataclass(frozen=True)
class Limit:
    """One class's limit: ``rate_per_minute`` with ``burst``, counted per ``key``; ``key`` None: no limit."""

    path_class: str
    key: str | None
    rate_per_minute: int = 0
    burst: int = 0

    @property
    def nginx_rate(self) -> str:
        r = self.rate_per_minute
        return f"{r // 60}r/s" if r % 60 == 0 else f"{r}r/m"

    @property
    def haproxy(self) -> tuple[int, int]:
        """``(period_seconds, max_requests)`` of an HAProxy ``http_req_rate`` equivalent.

        HAProxy counts requests in a sliding period instead of draining a bucket; the period is long
        enough to hold the burst, and the limit is what the bucket lets through in it (rate x period +
        burst + 1). Unlike nginx, HAProxy also counts the requests it denies, so a flooder that keeps
        flooding stays denied: at least as strict as the replayed nginx limit.
        """
        seconds = max(10, math.ceil(60 * (self.burst + 1) / max(self.rate_per_minute, 1)))
        seconds = min(seconds, 3600)
        return seconds, math.ceil(self.rate_per_minute * seconds / 60 + self.burst + 1)

    def to_dict(self) -> dict[str, Any]:
        if self.key is None:
            return {"class": self.path_class, "key": None}
        period, limit = self.haproxy
        return {"class": self.path_class, "key": self.key, "rate_per_minute": self.rate_per_minute,
                "nginx_rate": self.nginx_rate, "burst": self.burst, "nodelay": True,
                "haproxy": {"period_seconds": period, "max_requests": limit}}
