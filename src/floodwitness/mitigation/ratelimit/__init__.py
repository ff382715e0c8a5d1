"""Rate limits measured on the baseline, and what they would have done to the incident.

No blocklist tool says what rate limit to set and what it would have cost legitimate users; with the
baseline and the attack side by side we can measure both. Four steps:

1. **Path classes.** Requests are split by path into ``asset``, ``api``, ``login`` and ``page`` (first
   matching pattern wins; the patterns are plain regular expressions that DuckDB's RE2 and nginx's PCRE
   read the same way, so the exported ``map`` classifies exactly as the measurement did). Each class
   gets its own limit, keyed by the client address (``ip``) or by address and path (``ip_uri``: "the
   same URL again and again", which is what floods do and people rarely do).
2. **What the audience needs** (exact, in SQL). nginx's ``limit_req`` is a leaky bucket: with rate
   ``r`` a client's excess after request ``i`` is ``W_i = max(0, W_{i-1} + 1 - r * dt_i)`` (``W_0 = 0``)
   and the request is rejected when ``W_i > burst``. Before a client's first rejection this is a
   Lindley recursion with the closed form ``W_i = (i - r t_i) + max_{j <= i} (r t_j - j)``: a running
   maximum, one window function. Its maximum over a client's requests is the smallest burst that never
   rejects that client at rate ``r``; its quantiles over the baseline's clients give candidate bursts.
3. **The replay** (numpy, vectorised over clients and candidate limits). The incident's requests,
   counted per key and 1-second slot, go through every candidate limit at once with the same bucket,
   rejected requests not filling it (as in nginx). The loop runs over time slots, never over log
   lines; arrivals within one slot are treated as simultaneous (the usual second-resolution log
   already is), which can only reject more, never less, than nginx would.
4. **Settings on the trade-off curve.** For budgets of 0, 0.5% and 1% of legitimate clients limited
   (both among the known clients active during the incident and among the baseline's clients), the
   combination of per-class limits that rejects the most attack requests is chosen. The recommended
   setting is the gentlest one that stops at least 90% of the attack requests (else the strongest).

Labels: in the product, *attack* is the sources the analysis attributed to the attack and
*legitimate* is the clients known from the baseline (benchmarks pass the simulator's truth instead).
A legitimate request that repeats a request of the same client and path which had just failed (5xx,
408, 429 or 499 within two minutes) is a retry the attack provoked: with the limits in place the first
try would have been served, so such retries are left out of the replay and counted apart. Verified
crawlers, special-purpose ranges and the allowlist are exempt from every limit (in the replay and in
the exported configuration alike).
"""

from __future__ import annotations

from floodwitness.mitigation.ratelimit.limits import (
    CLASS_NAMES,
    KEYS,
    PATH_CLASSES,
    RATES_PER_MINUTE,
    Limit,
    PathClass,
)
from floodwitness.mitigation.ratelimit.needs import group_needs, path_class
from floodwitness.mitigation.ratelimit.recommend import recommend
from floodwitness.mitigation.ratelimit.replay import ReplayCounts, Rows, evaluate, simulate
from floodwitness.mitigation.ratelimit.report import RateLimitAdvice, Setting, limits_from_dict, replay_window

#: the replay's input and the exact needs under the names the tests build them by
_Rows = Rows
_group_needs = group_needs

__all__ = ["CLASS_NAMES", "KEYS", "PATH_CLASSES", "RATES_PER_MINUTE", "Limit", "PathClass", "RateLimitAdvice",
           "ReplayCounts", "Rows", "Setting", "evaluate", "group_needs", "limits_from_dict", "path_class",
           "recommend", "replay_window", "simulate"]
