"""The report's ``timeline``: the minute series as the JSON stores them.

Up to :data:`FINE_LIMIT` minutes (a week) the timeline is stored per minute, one value per minute from ``start``
(``step_seconds`` 60). A longer one (a year of logs is 525,600 minutes) keeps its minutes where something
happened, :data:`MARGIN` minutes on either side of each incident analysed in depth (and of the lighter windows
while they fit in :data:`FINE_BUDGET` minutes), and sums the others into buckets of the coarsest step that
keeps them under :data:`MAX_COARSE_POINTS` points (an hour for a few months of logs); the minutes between two
periods weeks apart (no request at all) are not stored. ``timeline.segments`` then says where each run of
points lies and how long each point is: ``[{start, step_seconds, points}]``, the arrays being the segments'
points one after the other. In a point longer than a minute, the counts (requests, clients, new clients,
statuses, bytes, the baseline) are sums over its minutes (divide by its minutes for a mean per minute), the
median request time is the mean of its minutes' and the 95th percentile the highest of its minutes'.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from floodwitness.analysis.timeline import MINUTE, bucket_of
from floodwitness.report.results import iso as _iso

if TYPE_CHECKING:
    from floodwitness.analysis.timeline import Timeline
    from floodwitness.analysis.windows import Baseline

#: a timeline of at most this many minutes is stored per minute
FINE_LIMIT = 7 * 24 * 60
#: minutes kept per minute on either side of an incident analysed in depth
MARGIN = 60
#: ... and on either side of a lighter window, heaviest first, while they hold at most FINE_BUDGET minutes
LEFT_OUT_MARGIN = 15
FINE_BUDGET = 5000
#: an incident longer than this keeps its minutes around its peak only
LONGEST_FINE = 24 * 60
#: the steps the quiet stretches are summed into, the shortest that keeps them under MAX_COARSE_POINTS
STEPS = (3600, 3 * 3600, 6 * 3600, 86400)
MAX_COARSE_POINTS = 3000

_COUNTS = ("status_4xx", "status_5xx", "bytes")


def timeline_dict(tl: Timeline, base: Baseline, baseline_ranges: list[tuple[datetime, datetime]],
                  new_clients: np.ndarray, incidents: list[tuple[datetime, datetime, datetime]],
                  left_out: list[tuple[int, int, float]]) -> dict[str, Any]:
    """The report's ``timeline`` (see the module's docstring). ``incidents``: each analysed incident's start,
    end and peak minute; ``left_out``: the lighter windows' first and end minute indexes and weights."""
    if tl.minutes <= FINE_LIMIT and not tl.periods:
        return _per_minute(tl, base, baseline_ranges, new_clients)
    fine = _fine_minutes(tl, incidents, left_out)
    inside = tl.in_periods()
    step = next((s for s in STEPS if int(inside.sum()) * MINUTE / s <= MAX_COARSE_POINTS), STEPS[-1])
    index = np.flatnonzero(inside)
    key = np.where(fine, -1 - np.arange(tl.minutes), (bucket_of(tl.start, MINUTE) + np.arange(tl.minutes))
                   * MINUTE // step)[index]
    first = np.flatnonzero(np.r_[True, (key[1:] != key[:-1]) | (np.diff(index) != 1)])
    minutes = np.diff(np.r_[first, len(index)])

    def total(a: np.ndarray) -> np.ndarray:
        return np.add.reduceat(a[index], first)

    def counts(name: str, a: np.ndarray) -> list[int | None]:
        return [None] * len(first) if name in tl.not_logged else [int(x) for x in total(a)]
    p50 = tl.p50_time[index]
    finite = np.isfinite(p50)
    with np.errstate(invalid="ignore", divide="ignore"):
        p50_mean = np.add.reduceat(np.where(finite, p50, 0.0), first) / np.add.reduceat(finite.astype(float), first)
    return {"start": _iso(tl.start), "step_seconds": MINUTE, "requests": [int(x) for x in total(tl.requests)],
            "clients": [int(x) for x in total(tl.clients)],
            **{name: counts(name, getattr(tl, name)) for name in _COUNTS},
            "p50_request_time": _clean(p50_mean), "p95_request_time": _clean(np.fmax.reduceat(tl.p95_time[index],
                                                                                             first)),
            "baseline_requests": [round(float(x), 1) for x in total(base.level)],
            "baseline_ranges": [[_iso(a), _iso(b)] for a, b in baseline_ranges],
            "new_clients": [int(x) for x in total(new_clients)],
            "segments": _segments(tl, index[first], minutes),
            "resolution": {"finest_seconds": MINUTE, "coarse_seconds": step, "margin_minutes": MARGIN,
                           "rule": f"per minute within {MARGIN} minutes of each incident analysed in depth (and "
                                   f"{LEFT_OUT_MARGIN} of the lighter windows, up to {FINE_BUDGET:,} minutes); "
                                   f"elsewhere sums over {step // 60} minutes (means per minute of request time, "
                                   "the highest 95th percentile); no point in the gaps between periods"},
            "periods": [{"start": _iso(tl.minute_at(a)), "end": _iso(tl.minute_at(b))} for a, b in tl.period_bounds]}


def _per_minute(tl: Timeline, base: Baseline, baseline_ranges: list[tuple[datetime, datetime]],
                new_clients: np.ndarray) -> dict[str, Any]:
    def counts(name: str, a: np.ndarray) -> list[int | None]:  # null in every minute when the log has no such field
        return [None] * len(a) if name in tl.not_logged else [int(x) for x in a]
    return {"start": _iso(tl.start), "step_seconds": 60, "requests": [int(x) for x in tl.requests],
            "clients": [int(x) for x in tl.clients], "status_4xx": counts("status_4xx", tl.status_4xx),
            "status_5xx": counts("status_5xx", tl.status_5xx), "bytes": counts("bytes", tl.bytes),
            "p50_request_time": _clean(tl.p50_time), "p95_request_time": _clean(tl.p95_time),
            "baseline_requests": [round(float(x), 1) for x in base.level],
            "baseline_ranges": [[_iso(a), _iso(b)] for a, b in baseline_ranges],
            "new_clients": [int(x) for x in new_clients]}


def _clean(a: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(x) else round(float(x), 4) for x in a]


def _fine_minutes(tl: Timeline, incidents: list[tuple[datetime, datetime, datetime]],
                  left_out: list[tuple[int, int, float]]) -> np.ndarray:
    """Per minute, whether it is stored per minute: around each analysed incident (around its peak when it is
    longer than a day), then around the heaviest lighter windows while the budget lasts."""
    fine = np.zeros(tl.minutes, dtype=bool)

    def mark(first: int, end: int, margin: int) -> None:
        fine[max(first - margin, 0):max(min(end + margin, tl.minutes), 0)] = True
    half = timedelta(minutes=LONGEST_FINE // 2)
    for start, end, peak in incidents:
        long = end - start > 2 * half
        mark(tl.index_of(peak - half if long else start), tl.index_of(peak + half if long else end) + 1, MARGIN)
    spent = 0
    for first, last, _weight in sorted(left_out, key=lambda w: -w[2]):
        cost = last - first + 2 * LEFT_OUT_MARGIN
        if spent + cost > FINE_BUDGET:
            break
        mark(first, last, LEFT_OUT_MARGIN)
        spent += cost
    return fine


def _segments(tl: Timeline, firsts: np.ndarray, minutes: np.ndarray) -> list[dict[str, Any]]:
    """Runs of points of one length, each following the one before without a gap."""
    cut = np.flatnonzero(np.r_[True, (minutes[1:] != minutes[:-1]) | (firsts[1:] != firsts[:-1] + minutes[:-1])])
    ends = np.r_[cut[1:], len(firsts)]
    return [{"start": _iso(tl.minute_at(int(firsts[a]))), "step_seconds": int(minutes[a]) * MINUTE,
             "points": int(b - a)} for a, b in zip(cut.tolist(), ends.tolist(), strict=True)]
