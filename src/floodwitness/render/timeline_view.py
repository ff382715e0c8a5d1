"""A long report's timeline (``timeline.segments``: per minute around incidents, summed over hours elsewhere,
nothing in the gaps between periods) read back as each period's columns of a fixed-width chart."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass(frozen=True)
class PeriodColumns:
    """One period of the timeline as chart columns: the highest requests (and server errors) per minute of the
    points in each column (a point longer than a minute counts its mean per minute)."""

    start: datetime
    end: datetime
    requests: list[float]
    errors: list[float]


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def points(tl: dict[str, Any]) -> list[tuple[datetime, int]]:
    """Each point's start and length in seconds, from ``timeline.segments`` (or one minute each from ``start``
    when the timeline is stored per minute)."""
    segments = tl.get("segments") or [{"start": tl["start"], "step_seconds": int(tl.get("step_seconds", 60)),
                                       "points": len(tl["requests"])}]
    out = []
    for s in segments:
        first, step = _when(s["start"]), int(s["step_seconds"])
        out += [(first + timedelta(seconds=step * k), step) for k in range(int(s["points"]))]
    return out


def period_columns(tl: dict[str, Any], width: int) -> list[PeriodColumns]:
    """The timeline's periods (``timeline.periods``, else one) sharing ``width`` columns in proportion to their
    lengths (at least one each)."""
    where = points(tl)
    periods = [(_when(p["start"]), _when(p["end"])) for p in tl.get("periods") or []]
    if not periods and where:
        periods = [(where[0][0], where[-1][0] + timedelta(seconds=where[-1][1]))]
    total = sum((b - a).total_seconds() for a, b in periods) or 1.0
    errors = [float(x or 0) for x in tl.get("status_5xx") or [0] * len(where)]
    out = []
    for a, b in periods:
        seconds = max((b - a).total_seconds(), 1.0)
        columns = max(1, round(width * seconds / total))
        req, err = [0.0] * columns, [0.0] * columns
        for i, (at, step) in enumerate(where):
            if a <= at < b:
                c = min(int((at - a).total_seconds() / seconds * columns), columns - 1)
                req[c] = max(req[c], float(tl["requests"][i]) * 60 / step)
                err[c] = max(err[c], errors[i] * 60 / step)
        out.append(PeriodColumns(a, b, req, err))
    return out
