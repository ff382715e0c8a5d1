"""The span an analysis covers when the user names none: the logs' main period, without stray timestamps.

The timeline is one value per minute from the first request to the last, so a single line years off (a
device whose clock reset to 1970, a host stamping 2038, a fixture appended to a log) would make it millions
of minutes long: a report of tens of megabytes, charts of nothing. More than :data:`GAP` without a request
separates periods. When the busiest period holds all but at most :data:`STRAY_SHARE` of the requests (or
:data:`STRAY_REQUESTS`), the analysis covers that period and the report names what it left out (how many
requests, in which periods, the first lines with file and line number); ``--since``/``--until`` choose
another span. Periods that each hold more than that are all analysed, unless together they span more than
:data:`MAX_SPAN`: then the user is asked to choose one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import ibis
import numpy as np

from floodwitness.analysis.timeline import MINUTE, bucket_time
from floodwitness.errors import UsageError

if TYPE_CHECKING:
    import pyarrow as pa

    from floodwitness.analysis.dataset import Dataset

GAP = timedelta(days=7)
STRAY_SHARE = 0.01
#: ... or at most this many requests (a small log's few stray lines)
STRAY_REQUESTS = 10
MAX_SPAN = timedelta(days=92)
SAMPLES = 5


@dataclass(frozen=True)
class Period:
    start: datetime  #: the minute of its first request (naive UTC)
    end: datetime  #: the end of the minute of its last request
    requests: int

    def to_dict(self) -> dict[str, Any]:
        return {"start": _iso(self.start), "end": _iso(self.end), "requests": self.requests}


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
                "rule": f"more than {GAP.days} days without a request separate periods; the busiest period is "
                        f"analysed alone when the others hold at most {STRAY_SHARE:.0%} of the requests (or "
                        f"{STRAY_REQUESTS})"}


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
    periods = tuple(Period(bucket_time(int(keys[a]), MINUTE), bucket_time(int(keys[b - 1]) + 1, MINUTE),
                           int(counts[a:b].sum()))
                    for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(keys)], strict=True))
    total = sum(p.requests for p in periods)
    main = max(periods, key=lambda p: (p.requests, p.start))
    if total - main.requests > max(STRAY_SHARE * total, STRAY_REQUESTS):
        if periods[-1].end - periods[0].start > MAX_SPAN:
            listed = "; ".join(f"{p.start:%Y-%m-%d %H:%M} to {p.end:%Y-%m-%d %H:%M}: {p.requests:,} requests"
                               for p in sorted(periods, key=lambda p: -p.requests)[:5])
            raise UsageError(
                f"the logs hold {len(periods)} periods more than {GAP.days} days apart, over "
                f"{(periods[-1].end - periods[0].start).days:,} days: too long for one timeline ({listed})",
                hint="Analyse one period at a time with --since and --until.")
        return Span(periods=periods)
    t = data.requests
    outside = t.filter((t.ts < ibis.literal(main.start, type="timestamp('UTC')"))
                       | (t.ts >= ibis.literal(main.end, type="timestamp('UTC')")))
    rows = data.engine.ibis.to_pyarrow(
        outside.select("file_id", "line", "ts").order_by(["file_id", "line"]).limit(SAMPLES)).to_pylist()
    samples = tuple({"file": data.path_of(r["file_id"]), "line": r["line"],
                     "ts": _iso(r["ts"].replace(tzinfo=None))} for r in rows)
    return Span(main.start, main.end, periods, total - main.requests, samples)
