"""What the analysis has to compare an incident with: the baseline's history, measured, and judged usable or not.

A verdict that says "within the baseline", or "from networks the audience never used", needs a baseline that
holds the audience. Logs that cover only the attack (or a ``--baseline`` range that holds no traffic) have none:
then every client is "new", every network "unseen", and the rolling level is the attack itself. This module
measures the history the analysis has (minutes with requests, requests, clients), says whether it is enough,
and for a given ``--baseline`` range also its typical minute, the level the analysed period is held against
when the range lies outside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from floodwitness.analysis.composition import in_ranges
from floodwitness.analysis.timeline import MINUTE, aligned, minute_table
from floodwitness.errors import UsageError

if TYPE_CHECKING:
    from floodwitness.analysis.dataset import Dataset
    from floodwitness.analysis.timeline import Timeline


@dataclass(frozen=True)
class HistoryPolicy:
    """How much history a baseline must hold to be compared with. A config file may set either."""

    #: minutes with at least one request (the rolling median of a minute wants 10 or more around it)
    min_minutes: int = 15
    #: requests in those minutes (fewer say nothing about an audience)
    min_requests: int = 100


@dataclass(frozen=True)
class History:
    """The baseline the analysis compares with (``History.to_dict`` is the report's ``baseline``)."""

    source: str               # "given" (--baseline), "auto" (the quiet minutes of the analysed period)
    minutes: int              # minutes with at least one request
    requests: int
    clients: int | None       # distinct clients (None when not counted: no incident needed them)
    sufficient: bool
    note: str | None = None
    ranges: tuple[tuple[datetime, datetime], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "minutes": self.minutes, "requests": self.requests, "clients": self.clients,
                "sufficient": self.sufficient, "note": self.note}


@dataclass(frozen=True)
class Prior:
    """A given baseline's typical minute: the level held against an analysed period that does not contain it."""

    requests: float   # median requests per minute (minutes without requests count as 0)
    errors: float     # median 5xx per minute
    error_share: float
    p95_time: float   # median of the minutes' 95th-percentile request time (NaN without request times)


def _iso(value: datetime) -> str:
    return value.replace(tzinfo=UTC).isoformat(timespec="minutes").replace("+00:00", "Z")


def _lacking(minutes: int, requests: int, policy: HistoryPolicy) -> str | None:
    """What a baseline of ``minutes`` with requests and ``requests`` lacks, or None when it is enough."""
    if requests == 0:
        return "hold no requests"
    if minutes < policy.min_minutes:
        return (f"hold requests in only {minutes:,} minute(s) ({requests:,} requests): at least {policy.min_minutes} "
                "are needed to measure the usual level and audience")
    if requests < policy.min_requests:
        return (f"hold only {requests:,} requests (in {minutes:,} minutes): at least {policy.min_requests:,} are "
                "needed to measure the usual level and audience")
    return None


def given_history(data: Dataset, start: datetime, end: datetime, policy: HistoryPolicy,
                  has_request_time: bool) -> tuple[History, Prior]:
    """Measure a ``--baseline START..END`` range; refuse it (:class:`UsageError`) when it ends before it starts
    or holds too little traffic to compare with, naming the range, what it held and where the logs are."""
    start, end = start.replace(tzinfo=None), end.replace(tzinfo=None)
    label = f"{_iso(start)}..{_iso(end)}"
    if end <= start:
        raise UsageError(f"the baseline {label} ends before it starts", hint="Use --baseline START..END with "
                         "START < END.")
    measured = range_history(data, start, end, policy, has_request_time, "given")
    assert measured is not None  # the range is not empty
    history, prior = measured
    if not history.sufficient:
        raise UsageError(f"the baseline {label} does not hold enough traffic: its minutes {history.note}; "
                         f"{_extent(data)}",
                         hint="Give --baseline a range of ordinary traffic inside the logs' time, or leave it out "
                              "to compare with the quiet minutes around the incident.")
    return history, prior


def preceding_history(data: Dataset, since: datetime, policy: HistoryPolicy, has_request_time: bool,
                      hours: float = 2.0) -> tuple[History, Prior] | None:
    """The ``hours`` of the logs before ``--since`` as the history, when the analysed period has none of its own
    and those hours hold enough (a slice of the attack, cut from longer logs); else None."""
    since = since.replace(tzinfo=None)
    measured = range_history(data, since - timedelta(hours=hours), since, policy, has_request_time, "preceding")
    return measured if measured is not None and measured[0].sufficient else None


def range_history(data: Dataset, start: datetime, end: datetime, policy: HistoryPolicy, has_request_time: bool,
                  source: str) -> tuple[History, Prior] | None:
    """The history a time range holds and its typical minute; ``History.note`` says what it lacks (None: enough).
    None when the range is empty."""
    if end <= start:
        return None
    table = minute_table(data, start, end)
    length = max(int((end - start).total_seconds() // MINUTE), 1)
    series = aligned(table, "minute", start, length, MINUTE, ["requests", "status_5xx"])
    requests = series["requests"]
    total, active = int(requests.sum()), int((requests > 0).sum())
    lacking = _lacking(active, total, policy)
    if lacking is not None:
        return History(source, active, total, None, False, lacking, ((start, end),)), Prior(0.0, 0.0, 0.0, 0.0)
    t = in_ranges(data.requests, [(start, end)])
    clients = int(data.engine.ibis.to_pyarrow(t.aggregate(n=t.client_ip.nunique())).column("n")[0].as_py() or 0)
    p95 = float("nan")
    if has_request_time and "p95_time" in table.column_names:
        values = table.column("p95_time").to_numpy(zero_copy_only=False).astype(float)
        if np.isfinite(values).any():
            p95 = float(np.nanmedian(values))
    errors = series["status_5xx"]
    prior = Prior(float(np.median(requests)), float(np.median(errors)), float(errors.sum()) / max(total, 1), p95)
    note = (None if source == "given" else
            f"the analysed period has no quiet minutes of its own to compare with: it is held against the "
            f"{(end - start).total_seconds() / 3600:g} hours of the logs before it ({_iso(start)}..{_iso(end)})")
    return History(source, active, total, clients, True, note, ((start, end),)), prior


def _extent(data: Dataset) -> str:
    t = data.requests
    row = data.engine.ibis.to_pyarrow(t.aggregate(first=t.ts.min(), last=t.ts.max())).to_pylist()[0]
    if row["first"] is None:
        return "the logs hold no parsed request"
    return f"the logs run from {_iso(row['first'])} to {_iso(row['last'])}"


def overlaps(tl: Timeline, start: datetime, end: datetime) -> bool:
    """Whether the range shares a minute with the timeline."""
    return tl.minutes > 0 and start < tl.minute_at(tl.minutes) and end > tl.start


def auto_history(tl: Timeline, minutes: np.ndarray, clients: int | None, policy: HistoryPolicy,
                 ranges: list[tuple[datetime, datetime]]) -> History:
    """The analysed period's own history: its ``minutes`` (indexes) outside the incident windows, measured; the
    baseline ``ranges`` drawn from them (the quiet ones) are what the audience is read from."""
    requests = tl.requests[minutes] if len(minutes) else np.zeros(0)
    total, active = int(requests.sum()), int((requests > 0).sum())
    lacking = _lacking(active, total, policy)
    if not len(minutes) and tl.minutes:
        lacking = "are none: every minute belongs to the incident"
    note = None
    if lacking is not None:
        note = (f"no usable history: the minutes of the analysed period outside the incident {lacking}. Nothing "
                "here can be compared with the site's usual traffic (no surge or fall, no new or known clients); "
                "the verdict rests on what the traffic itself shows (attack tools' fingerprints, rates no person "
                "reaches, a few sources' share, server errors), at lower confidence. Give the logs of the hours "
                "before, or a --baseline range of ordinary traffic")
    return History("auto", active, total, clients, lacking is None, note, tuple(ranges))


def whole_period(tl: Timeline) -> tuple[datetime, datetime]:
    return tl.start, tl.start + timedelta(minutes=tl.minutes)
