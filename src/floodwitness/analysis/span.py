"""The span an analysis covers when the user names none, and the periods it holds.

More than :data:`GAP` without a request separates periods. A few lines years away (a device whose clock reset
to 1970, a host stamping 2038, a fixture appended to a log) are clock errors, not a period of the site's
traffic: the smallest periods, while together they hold at most :data:`STRAY_SHARE` of the requests (or
:data:`STRAY_REQUESTS`), are strays; the analysis covers the periods from the first to the last that is not
one, and the report names what it left out (how many requests, in which periods, the first lines with file and
line number); ``--since``/``--until`` choose another span. The periods it covers, however far apart (a honeypot
up for a few weeks at a time over six months, a year of logs), are analysed in one run, each against its own
baseline (:func:`split_periods` marks them on the timeline); the gaps between them are no traffic to judge.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import ibis
import numpy as np

from floodwitness.analysis.timeline import MINUTE, bucket_time

if TYPE_CHECKING:
    import pyarrow as pa

    from floodwitness.analysis.dataset import Dataset
    from floodwitness.analysis.timeline import Timeline

GAP = timedelta(days=7)
STRAY_SHARE = 0.01
#: ... or at most this many requests (a small log's few stray lines)
STRAY_REQUESTS = 10
SAMPLES = 5


@dataclass(frozen=True)
class Period:
    start: datetime  #: the minute of its first request (naive UTC)
    end: datetime  #: the end of the minute of its last request
    requests: int
    analysed: bool = True  #: False: stray timestamps, left out

    def to_dict(self) -> dict[str, Any]:
        return {"start": _iso(self.start), "end": _iso(self.end), "requests": self.requests,
                "analysed": self.analysed}


@dataclass(frozen=True)
class Span:
    """``since``/``until`` to analyse (None: the whole data), the periods found, and what was left out."""

    since: datetime | None = None
    until: datetime | None = None
    periods: tuple[Period, ...] = ()
    outside: int = 0
    samples: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"auto": True, "since": _iso(self.since) if self.since else None,
                "until": _iso(self.until) if self.until else None,
                "periods": [p.to_dict() for p in self.periods], "requests_outside": self.outside,
                "samples_outside": list(self.samples),
                "rule": f"more than {GAP.days} days without a request separate periods; the smallest periods are left "
                        f"out as stray timestamps while together they hold at most {STRAY_SHARE:.0%} of the "
                        f"requests (or "
                        f"{STRAY_REQUESTS}); every other period is analysed, each against its own baseline"}


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="seconds") + "Z"


def auto_span(data: Dataset, minutes: pa.Table) -> Span:
    """The span to analyse when no ``--since``/``--until`` is given (see the module's docstring), from the
    timeline's per-minute table (:func:`~floodwitness.analysis.timeline.minute_table`): no scan of its own,
    but one for the sample lines when it leaves requests out."""
    if minutes.num_rows <= 1:
        return Span()
    keys = minutes.column("minute").to_numpy(zero_copy_only=False).astype(np.int64)
    counts = minutes.column("requests").to_numpy(zero_copy_only=False).astype(np.int64)
    cuts = np.flatnonzero(np.diff(keys) > GAP.total_seconds() // MINUTE) + 1
    if not len(cuts):
        return Span()
    found = [Period(bucket_time(int(keys[a]), MINUTE), bucket_time(int(keys[b - 1]) + 1, MINUTE),
                    int(counts[a:b].sum()))
             for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(keys)], strict=True)]
    total = sum(p.requests for p in found)
    stray: set[int] = set()
    held = 0
    for i in sorted(range(len(found)), key=lambda i: (found[i].requests, i)):  # the smallest first
        if len(stray) == len(found) - 1 or held + found[i].requests > max(STRAY_SHARE * total, STRAY_REQUESTS):
            break
        stray.add(i)
        held += found[i].requests
    kept = [i for i in range(len(found)) if i not in stray]
    first, last = kept[0], kept[-1]  # the periods between two kept ones are analysed too, however small
    periods = tuple(p if first <= i <= last else replace(p, analysed=False) for i, p in enumerate(found))
    if first == 0 and last == len(found) - 1:
        return Span(periods=periods)
    since, until = found[first].start, found[last].end
    t = data.requests
    outside = t.filter((t.ts < ibis.literal(since, type="timestamp('UTC')"))
                       | (t.ts >= ibis.literal(until, type="timestamp('UTC')")))
    rows = data.engine.ibis.to_pyarrow(
        outside.select("file_id", "line", "ts").order_by(["file_id", "line"]).limit(SAMPLES)).to_pylist()
    samples = tuple({"file": data.path_of(r["file_id"]), "line": r["line"],
                     "ts": _iso(r["ts"].replace(tzinfo=None))} for r in rows)
    outside_requests = sum(p.requests for p in periods if not p.analysed)
    return Span(since, until, periods, outside_requests, samples)


def split_periods(tl: Timeline) -> tuple[tuple[int, int], ...]:
    """The periods of ``tl`` (more than :data:`GAP` without a request between two), as ``(first, end)`` minute
    indexes for :attr:`Timeline.periods`; empty when the timeline is one period."""
    active = np.flatnonzero(tl.requests > 0)
    cuts = np.flatnonzero(np.diff(active) > GAP.total_seconds() // MINUTE) + 1
    if not len(cuts):
        return ()
    return tuple((int(active[a]), int(active[b - 1]) + 1)
                 for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(active)], strict=True))
