"""What an incident did to the people the site normally serves: its impact, ``none``, ``degraded`` or ``outage``,
with the numbers behind it.

The people are the known clients (seen in the baseline) when there is a history, else everyone but the suspected
attackers. For them, in the incident's window: the requests answered without a server error or a refusal (5xx,
429) against what the baseline predicts they send in that many minutes, their failure share against the
baseline's, their request times against the baseline's (when the log has them), and the minutes in which one of
these stood well above (or, served, far below) the usual. Each comparison is a test at :attr:`ImpactPolicy.alpha`
(:mod:`floodwitness.analysis.tails`) and a size: a difference a few requests could make by chance is not claimed,
and what could not be measured is said (``not_measured``).

Levels: ``outage`` when the people were served far below what was expected (significantly) or nearly all their
requests failed; ``degraded`` when their failure share or request times stood significantly above the usual, or
they were served significantly below what was expected; ``none`` when none of these was measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from floodwitness.analysis.composition import in_ranges
from floodwitness.analysis.tails import (
    binomial_upper_bound,
    binomial_upper_tail,
    poisson_lower_bound,
    poisson_lower_tail,
    shortfall_measurable,
)
from floodwitness.analysis.timeline import MINUTE, aligned, bucket_of

if TYPE_CHECKING:
    from collections.abc import Sequence

    from floodwitness.analysis.composition import Composition
    from floodwitness.analysis.dataset import Dataset

LEVELS = ("none", "degraded", "outage")


@dataclass(frozen=True)
class ImpactPolicy:
    """How far from the usual a measure must stand to count as impact. A config file may set any of them."""

    #: a difference is claimed only when chance would give it with a probability below this
    alpha: float = 0.001
    #: served at most this share of the expected requests: degraded (outage at ``outage_served_ratio``)
    shortfall_ratio: float = 0.5
    outage_served_ratio: float = 0.1
    #: a failure share this many points above the usual, and twice it, is degraded
    error_margin: float = 0.05
    #: this share of the people's requests failing is an outage
    outage_error_share: float = 0.9
    #: requests slower than the usual 90th percentile: 10% usually; this share of them is degraded
    slow_share: float = 0.3
    #: without history, the failure share held against this (nothing says what the site's usual one is)
    no_history_error_share: float = 0.05


@dataclass(frozen=True)
class Usual:
    """The baseline's service: its requests, the share of them that failed (5xx or 429) and were server errors
    (5xx), and its request times (NaN when not logged). Measured once per analysis (:func:`usual_service`)."""

    requests: int
    failed_share: float
    error_share: float
    p50: float = float("nan")
    p90: float = float("nan")


@dataclass(frozen=True)
class People:
    """The people the site normally serves, in the window: who they are, and how they were served."""

    group: str                # "known_clients", or "clients_not_suspected" without a history
    clients: int
    requests: int
    served: int               # answered without a server error or refusal
    expected: float | None    # the requests they usually send in as many minutes (None without history)
    shortfall_p: float | None  # P(served this few or fewer | expected): None when not measurable
    error_share: float | None
    usual_error_share: float | None
    error_p: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "clients": self.clients, "requests": self.requests, "served": self.served,
                "expected": None if self.expected is None else round(self.expected, 1),
                "shortfall_p": _p(self.shortfall_p), "error_share": _r(self.error_share),
                "usual_error_share": _r(self.usual_error_share), "error_p": _p(self.error_p)}


@dataclass(frozen=True)
class Latency:
    """The people's request times in the window against the baseline's (seconds)."""

    p50: float
    p90: float
    usual_p50: float | None
    usual_p90: float | None
    slow_share: float | None  # share of their requests slower than the usual p90 (usually 10%)
    slow_p: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"p50": _r(self.p50), "p90": _r(self.p90), "usual_p50": _r(self.usual_p50),
                "usual_p90": _r(self.usual_p90), "slow_share": _r(self.slow_share), "slow_p": _p(self.slow_p)}


@dataclass(frozen=True)
class Impact:
    """One incident's impact (``incidents[].impact`` of the report)."""

    level: str
    people: People
    latency: Latency | None          # None: the log has no request times
    error_share: float | None        # server errors (5xx) among all the window's requests (None: no status)
    usual_error_share: float | None
    minutes: int
    minutes_affected: int
    reasons: tuple[str, ...]         # what made the level (empty for none)
    measured: tuple[str, ...]        # "shortfall", "errors", "latency": what was measured
    not_measured: tuple[str, ...]    # what could not be, and why
    query: str = ""
    policy: ImpactPolicy = field(default_factory=ImpactPolicy, repr=False)

    @property
    def summary(self) -> str:
        """The impact in a sentence (plain text)."""
        if self.level != "none":
            return f"service {self.level}: " + "; ".join(self.reasons)
        if not self.measured:
            return "no service impact could be measured: " + "; ".join(self.not_measured)
        return "no service impact measured: " + "; ".join(_plain(self))

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "summary": self.summary, "known_clients": self.people.to_dict(),
                "latency": "not_logged" if self.latency is None else self.latency.to_dict(),
                "error_share": _r(self.error_share), "usual_error_share": _r(self.usual_error_share),
                "minutes": self.minutes, "minutes_affected": self.minutes_affected, "reasons": list(self.reasons),
                "measured": list(self.measured), "not_measured": list(self.not_measured), "alpha": self.policy.alpha,
                "query": self.query}


def _r(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 4)


def _p(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.3g}")


def _plain(impact: Impact) -> list[str]:
    """What was measured and found usual, in words."""
    p, out = impact.people, []
    who = "the known clients" if p.group == "known_clients" else "the clients not suspected"
    if "shortfall" in impact.measured and p.expected is not None:
        out.append(f"{who} were served {p.served:,} requests ({p.expected:,.0f} expected)")
    if "errors" in impact.measured and p.error_share is not None:
        usual = "" if p.usual_error_share is None else f" (usually {p.usual_error_share:.1%})"
        out.append(f"{p.error_share:.1%} of their {p.requests:,} requests failed{usual}")
    if "latency" in impact.measured and impact.latency is not None and impact.latency.usual_p90 is not None:
        out.append(f"request time p90 {impact.latency.p90:.3g} s (usually {impact.latency.usual_p90:.3g} s)")
    return out + list(impact.not_measured)


def usual_service(data: Dataset, baseline: list[tuple[datetime, datetime]]) -> Usual | None:
    """The baseline ranges' service (None without ranges): one pass over their requests."""
    if not baseline:
        return None
    t = in_ranges(data.requests, baseline)
    aggs: dict[str, Any] = {"n": t.count(), "failed": _failed(t).sum(), "errors": (t.status >= 500).sum()}
    has_rt = data.has_values("request_time")
    if has_rt:
        aggs["times"] = t.request_time.quantile([0.5, 0.9])
    row = data.engine.ibis.to_pyarrow(t.aggregate(**aggs)).to_pylist()[0]
    n = int(row["n"] or 0)
    times = row.get("times") or [None, None]
    return Usual(n, float(row["failed"] or 0) / max(n, 1), float(row["errors"] or 0) / max(n, 1),
                 float("nan") if times[0] is None else float(times[0]),
                 float("nan") if times[1] is None else float(times[1]))


def _failed(t: Any) -> Any:
    """A request the server did not serve: a server error or a refusal (429 Too Many Requests)."""
    return (t.status >= 500) | (t.status == 429)


@dataclass(frozen=True)
class _Minutes:
    """The window's minutes: every request, its server errors, and the people's requests, failures, slow ones;
    and how much of each minute lies inside the window (its first and last are partial)."""

    first: datetime
    coverage: np.ndarray
    n: np.ndarray
    errors: np.ndarray
    people: np.ndarray
    failed: np.ndarray
    slow: np.ndarray


def _minutes(data: Dataset, times: tuple[datetime, datetime], is_person: Any, slow_above: float | None) -> _Minutes:
    t = in_ranges(data.requests, [times])
    t = t.mutate(person=is_person(t))
    slow = (t.request_time > slow_above) if slow_above is not None else ibis.literal(False)
    minute = data.engine.time_bucket(t.ts, MINUTE).name("minute")
    grouped = t.group_by(minute).aggregate(
        n=t.count(), errors=(t.status >= 500).sum(), people=t.person.sum(),
        failed=(t.person & _failed(t)).sum(), slow=(t.person & slow).sum())
    table = data.engine.ibis.to_pyarrow(grouped)
    first = times[0].replace(second=0, microsecond=0)
    length = max(int(np.ceil((times[1] - first).total_seconds() / MINUTE)), 1)
    cols = aligned(table, "minute", first, length, MINUTE, ["n", "errors", "people", "failed", "slow"])
    edges = np.array([first + timedelta(minutes=i) for i in range(length + 1)], dtype=object)
    starts = np.array([max(e, times[0]) for e in edges[:-1]], dtype=object)
    ends = np.array([min(e, times[1]) for e in edges[1:]], dtype=object)
    coverage = np.array([max((b - a).total_seconds(), 0.0) / MINUTE for a, b in zip(starts, ends, strict=True)])
    return _Minutes(first, coverage, cols["n"], cols["errors"], cols["people"], cols["failed"], cols["slow"])


def _quantiles(data: Dataset, times: tuple[datetime, datetime], is_person: Any) -> tuple[float, float]:
    t = in_ranges(data.requests, [times])
    t = t.filter(is_person(t) & t.request_time.notnull())
    row = data.engine.ibis.to_pyarrow(t.aggregate(q=t.request_time.quantile([0.5, 0.9]))).to_pylist()[0]
    q = row["q"] or [None, None]
    return (float("nan") if q[0] is None else float(q[0]), float("nan") if q[1] is None else float(q[1]))


def _ts(value: datetime) -> str:
    return f"TIMESTAMPTZ '{value.strftime('%Y-%m-%d %H:%M:%S')}+00'"


def _query(data: Dataset, times: tuple[datetime, datetime], who: str) -> str:
    """The DuckDB query over the store that counts the people's requests and failures minute by minute."""
    return (f"SELECT time_bucket(INTERVAL '1 minute', ts) AS minute, count(*) AS requests, count(*) FILTER "
            f"(WHERE status >= 500 OR status = 429) AS failed, quantile_cont(request_time, [0.5, 0.9]) AS times "
            f"FROM read_parquet('{data.parquet_glob}') WHERE reject_reason IS NULL AND ts >= {_ts(times[0])} AND "
            f"ts < {_ts(times[1])}{who} GROUP BY 1 ORDER BY 1")


def _people(comp: Composition, baseline: list[tuple[datetime, datetime]], suspects: pa.Table | None,
            data: Dataset, hostile: pa.Table | None = None) -> tuple[str, Any, int, str]:
    """Who the people are: their group's name, a condition on a requests table, how many were active in the window,
    and the same condition in SQL. ``hostile``: sources (``client_ip``) never counted among the known clients, even
    when seen before (a scanner's or a brute-forcer's errors are theirs, not the site's)."""
    table = comp.clients_table
    if suspects is None:  # a history: the known clients
        known_rows = table.filter(table.column("known"))
        if hostile is not None and hostile.num_rows:
            out = pc.invert(pc.is_in(known_rows.column("client_ip"), value_set=hostile.column("client_ip")))
            known_rows = known_rows.filter(out)
        known = known_rows.column("client_ip")
        mem = ibis.memtable(pa.table({"client_ip": known.combine_chunks().cast(pa.string())}))
        ranges = " OR ".join(f"(ts >= {_ts(a)} AND ts < {_ts(b)})" for a, b in baseline) or "FALSE"
        sql = (f" AND client_ip IN (SELECT client_ip FROM read_parquet('{data.parquet_glob}') WHERE reject_reason "
               f"IS NULL AND ({ranges}))")
        if hostile is not None and 0 < hostile.num_rows <= 100:
            sql += " AND client_ip NOT IN (" + ", ".join(
                "'" + str(ip).replace("'", "''") + "'" for ip in hostile.column("client_ip").to_pylist()) + ")"
        if len(known) == 0:
            return "known_clients", lambda t: ibis.literal(False), 0, sql
        return "known_clients", lambda t: t.client_ip.isin(mem.client_ip), len(known), sql
    ips = suspects.column("client_ip").combine_chunks().cast(pa.string())
    listed = ", ".join("'" + str(ip).replace("'", "''") + "'" for ip in ips.to_pylist()[:100])
    sql = f" AND client_ip NOT IN ({listed})" if 0 < len(ips) <= 100 else ""
    if len(ips) == 0:
        return "clients_not_suspected", lambda t: ibis.literal(True), table.num_rows, sql
    mem = ibis.memtable(pa.table({"client_ip": ips}))
    return "clients_not_suspected", lambda t: ~t.client_ip.isin(mem.client_ip), table.num_rows - len(ips), sql


@dataclass
class _Judgment:
    """The level reached so far, why, what was measured and what could not be."""

    level: str = "none"
    reasons: list[str] = field(default_factory=list)
    measured: list[str] = field(default_factory=list)
    not_measured: list[str] = field(default_factory=list)

    def raise_to(self, level: str, reason: str) -> None:
        if LEVELS.index(level) > LEVELS.index(self.level):
            self.level = level
        self.reasons.append(reason)


def measure_impact(data: Dataset, times: tuple[datetime, datetime], comp: Composition, *,
                   expected_per_minute: np.ndarray | None, usual: Usual | None,
                   baseline: Sequence[tuple[datetime, datetime]] = (), suspects: pa.Table | None = None,
                   status_logged: bool = True, policy: ImpactPolicy | None = None,
                   hostile: pa.Table | None = None) -> Impact:
    """The impact of the window ``times`` (``comp``: its composition). With a history: ``expected_per_minute``,
    the baseline's level for each minute of the window (from the minute ``times[0]`` falls in, as
    :func:`expected_minutes` cuts it from the baseline), ``usual`` the baseline's service (:func:`usual_service`),
    ``baseline`` its ranges; the people are the window's known clients. Without one (``expected_per_minute`` and
    ``usual`` None), ``suspects`` are the sources the traffic itself condemns, and the people everyone else.
    ``hostile``: sources that scanned, brute-forced or scraped, never counted among the people."""
    policy = policy or ImpactPolicy()
    history = expected_per_minute is not None and usual is not None
    group, is_person, clients, who_sql = _people(comp, list(baseline), None if history else suspects, data, hostile)
    has_rt = data.has_values("request_time")
    usual_p90 = usual.p90 if history and usual is not None and np.isfinite(usual.p90) else None
    m = _minutes(data, times, is_person, usual_p90 if has_rt else None)
    judged = _Judgment()
    requests, failed = int(m.people.sum()), int(m.failed.sum())
    served = requests - failed if status_logged else requests
    expected = None
    shortfall_p = None
    minute_flags = np.zeros(len(m.n), dtype=bool)
    if history and expected_per_minute is not None:
        churn = min(max(comp.churn_share, 0.0), 1.0)
        per_minute = np.zeros(len(m.n))
        cut = expected_per_minute[:len(m.n)]
        per_minute[:len(cut)] = cut
        per_minute *= m.coverage * (1.0 - churn)
        expected = float(per_minute.sum())
        shortfall_p = _shortfall(judged, group, served, expected, policy)
        if shortfall_p is not None:
            bound = poisson_lower_bound(m.people - m.failed, per_minute)
            minute_flags |= (bound < policy.alpha) & (m.people - m.failed <= policy.shortfall_ratio * per_minute)
    else:
        judged.not_measured.append("requests served against expected: no history says what the site's clients "
                                   "usually send")
    error_share = error_p = usual_share = None
    if status_logged:
        usual_share = usual.failed_share if history and usual is not None else None
        floor = (max(usual.failed_share, 3.0 / max(usual.requests, 1)) if history and usual is not None
                 else policy.no_history_error_share)
        error_share, error_p = _errors(judged, group, requests, failed, usual_share, floor, policy)
        if error_p is not None:
            bound = binomial_upper_bound(m.failed, m.people, floor)
            share = np.where(m.people > 0, m.failed / np.maximum(m.people, 1), 0.0)
            minute_flags |= (bound < policy.alpha) & (share >= _error_threshold(usual_share, floor, policy))
    else:
        judged.not_measured.append("errors: the logs have no response status")
    latency = None
    if has_rt:
        latency = _latency(judged, data, times, is_person, usual if history else None, m, requests, policy)
        if latency is not None and latency.slow_p is not None:
            bound = binomial_upper_bound(m.slow, m.people, 0.1)
            share = np.where(m.people > 0, m.slow / np.maximum(m.people, 1), 0.0)
            minute_flags |= (bound < policy.alpha) & (share >= policy.slow_share)
    else:
        judged.not_measured.append("latency: the logs have no request time")
    total = float(m.n.sum())
    return Impact(
        judged.level,
        People(group, clients, requests, served, expected, shortfall_p, error_share, usual_share, error_p),
        latency, float(m.errors.sum()) / total if status_logged and total else None,
        usual.error_share if history and usual is not None and status_logged else None,
        len(m.n), int(minute_flags.sum()), tuple(judged.reasons), tuple(judged.measured),
        tuple(judged.not_measured), _query(data, times, who_sql), policy)


def _chance(p: float) -> str:
    """How likely a difference is by chance, in words (tiny probabilities as a bound)."""
    return f"P = {p:.2g} by chance" if p >= 1e-6 else "P < 1e-6 by chance"


def _who(group: str) -> str:
    return "the known clients" if group == "known_clients" else "the clients not suspected"


def _shortfall(judged: _Judgment, group: str, served: int, expected: float, policy: ImpactPolicy) -> float | None:
    """Test the people's requests served against the ``expected`` ones; None when even none served would not be
    significant (too few expected)."""
    if not shortfall_measurable(expected, policy.alpha):
        judged.not_measured.append(f"a shortfall: too few requests expected to measure one ({expected:.1f} "
                                   f"expected from {_who(group)}; even none served would not be significant)")
        return None
    judged.measured.append("shortfall")
    p = poisson_lower_tail(served, expected)
    ratio = served / expected
    if p < policy.alpha and ratio <= policy.outage_served_ratio:
        judged.raise_to("outage", f"{_who(group)} were served {served:,} requests against {expected:,.0f} expected "
                                  f"({ratio:.0%}; {_chance(p)})")
    elif p < policy.alpha and ratio <= policy.shortfall_ratio:
        judged.raise_to("degraded", f"{_who(group)} were served {served:,} requests against {expected:,.0f} "
                                    f"expected ({ratio:.0%}; {_chance(p)})")
    return p


def _error_threshold(usual: float | None, floor: float, policy: ImpactPolicy) -> float:
    base = floor if usual is None else usual
    return max(2.0 * base, base + policy.error_margin)


def _errors(judged: _Judgment, group: str, requests: int, failed: int, usual: float | None, floor: float,
            policy: ImpactPolicy) -> tuple[float | None, float | None]:
    """Test the people's failure share against the usual one (``floor``: the share held against, at least 3 in
    the baseline's requests when it had none)."""
    if requests == 0:
        judged.not_measured.append(f"errors: {_who(group)} sent no request in the window")
        return None, None
    if floor ** requests >= policy.alpha:
        judged.not_measured.append(f"errors: too few requests from {_who(group)} ({requests:,}) to measure a "
                                   "failure share")
        return failed / requests, None
    judged.measured.append("errors")
    share = failed / requests
    p = binomial_upper_tail(failed, requests, floor)
    usual_text = "no usual share known without history" if usual is None else f"usually {usual:.1%}"
    text = f"{share:.1%} of their {requests:,} requests failed ({usual_text}; {_chance(p)})"
    if p < policy.alpha and share >= policy.outage_error_share:
        judged.raise_to("outage", f"nearly all requests failed: {text}")
    elif p < policy.alpha and share >= _error_threshold(usual, floor, policy):
        judged.raise_to("degraded", text)
    return share, p


def _latency(judged: _Judgment, data: Dataset, times: tuple[datetime, datetime], is_person: Any,
             usual: Usual | None, m: _Minutes, requests: int, policy: ImpactPolicy) -> Latency | None:
    p50, p90 = _quantiles(data, times, is_person)
    if not np.isfinite(p90):
        judged.not_measured.append("latency: none of their requests logged a request time")
        return None
    if usual is None or not np.isfinite(usual.p90):
        judged.not_measured.append("latency: no usual request time to compare with")
        return Latency(p50, p90, None, None, None, None)
    slow = int(m.slow.sum())
    share = slow / requests if requests else 0.0
    p = binomial_upper_tail(slow, requests, 0.1)
    judged.measured.append("latency")
    if p < policy.alpha and share >= policy.slow_share:
        judged.raise_to("degraded", f"{share:.0%} of their requests took longer than the usual 90th percentile "
                                    f"({usual.p90:.3g} s; 10% usually, {_chance(p)}); p90 {p90:.3g} s")
    return Latency(p50, p90, usual.p50, usual.p90, share, p)


def expected_minutes(level: np.ndarray, timeline_start: datetime, times: tuple[datetime, datetime]) -> np.ndarray:
    """The baseline ``level`` (requests per minute over a timeline starting at ``timeline_start``) for each minute
    of the window ``times``, from the minute its start falls in (0 outside the timeline)."""
    first = bucket_of(times[0], MINUTE) - bucket_of(timeline_start, MINUTE)
    length = max(int(np.ceil((times[1] - times[0].replace(second=0, microsecond=0)).total_seconds() / MINUTE)), 1)
    index = first + np.arange(length)
    inside = (index >= 0) & (index < len(level))
    out = np.zeros(length)
    out[inside] = np.asarray(level, float)[index[inside]]
    return out
