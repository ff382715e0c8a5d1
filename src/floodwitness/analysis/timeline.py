"""Per-minute and per-second series of the traffic, computed by the engine, returned as numpy arrays
over a continuous time axis (missing minutes are zeros, not gaps)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import TYPE_CHECKING, Any, Literal, overload

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from floodwitness.analysis.dataset import Dataset

MINUTE = 60
EPOCH = datetime(1970, 1, 1)  # naive UTC, like every datetime in the analysis


@dataclass(frozen=True)
class Timeline:
    """Minute series; ``start`` is the first minute (UTC, naive datetime meaning UTC)."""

    start: datetime
    requests: np.ndarray
    clients: np.ndarray  # distinct client IPs in the minute (approximate: HyperLogLog)
    status_4xx: np.ndarray
    status_5xx: np.ndarray
    shed_503: np.ndarray  # 503 answered by the front server itself (no upstream time): load shedding
    bytes: np.ndarray
    p50_time: np.ndarray  # request_time percentiles (NaN when the format has no request time)
    p95_time: np.ndarray
    has_request_time: bool
    #: The series whose column no request of the timeline logged (``bytes`` of a log without a size,
    #: ``status_4xx``...): zeros in the arrays, so the analysis can add them up; unknown, not zero, in a report.
    not_logged: frozenset[str] = frozenset()
    #: The periods of a timeline that holds several weeks apart (:func:`~floodwitness.analysis.span.split_periods`):
    #: ``(first, end)`` minute indexes, end excluded; the minutes between two periods are a gap in the logs (no
    #: request for more than ``span.GAP``), not a fall in traffic. Empty: the whole timeline is one period.
    periods: tuple[tuple[int, int], ...] = ()

    @property
    def minutes(self) -> int:
        return len(self.requests)

    @property
    def period_bounds(self) -> tuple[tuple[int, int], ...]:
        """The ``(first, end)`` minute indexes of each period (the whole timeline when it is one)."""
        return self.periods or ((0, self.minutes),)

    def in_periods(self) -> np.ndarray:
        """Per minute, whether it lies in a period (False in the gaps between periods)."""
        mask = np.zeros(self.minutes, dtype=bool)
        for first, end in self.period_bounds:
            mask[first:end] = True
        return mask

    def part(self, first: int, end: int) -> Timeline:
        """The minutes ``first`` to ``end`` (excluded) as a timeline of their own (one period)."""
        if first == 0 and end == self.minutes and not self.periods:
            return self
        cut = slice(first, end)
        return Timeline(self.minute_at(first), self.requests[cut], self.clients[cut], self.status_4xx[cut],
                        self.status_5xx[cut], self.shed_503[cut], self.bytes[cut], self.p50_time[cut],
                        self.p95_time[cut], self.has_request_time, self.not_logged)

    def minute_at(self, index: int) -> datetime:
        return self.start + timedelta(minutes=int(index))

    def index_of(self, when: datetime) -> int:
        return int((when - self.start).total_seconds() // MINUTE)


def aligned(table: pa.Table, key: str, start: datetime, length: int, step: int, columns: list[str],
             fill: float = 0.0) -> dict[str, np.ndarray]:
    """Columns of ``table`` on a continuous axis of ``length`` steps from ``start``; ``key`` holds each row's
    step since the epoch (``Engine.time_bucket``). A null value (a sum over a column no request of the step
    logged: bytes, statuses) is ``fill`` too, never NaN: every series can be summed and cast to int."""
    out = {c: np.full(length, fill, dtype=float) for c in columns}
    if table.num_rows == 0:
        return out
    index = table.column(key).to_numpy(zero_copy_only=False).astype(np.int64) - bucket_of(start, step)
    keep = (index >= 0) & (index < length)
    for c in columns:
        values = table.column(c).fill_null(fill).to_numpy(zero_copy_only=False).astype(float)
        out[c][index[keep]] = values[keep]
    return out


def bucket_of(when: datetime, step: int) -> int:
    """The ``Engine.time_bucket`` key of a naive UTC datetime."""
    return int((when - EPOCH).total_seconds() // step)


def bucket_time(bucket: int, step: int) -> datetime:
    return EPOCH + timedelta(seconds=bucket * step)


#: a longer span's minute table is aggregated a week at a time: the engine keeps a distinct-count sketch per minute
#: while it groups (~1.5 KB each: a year at once held 360 MB), so four weeks bound it whatever the span
CHUNK = timedelta(days=28)


def minute_table(data: Dataset, since: datetime | None = None, until: datetime | None = None) -> pa.Table:
    """The timeline's aggregates for each minute with requests (``minute``: ``Engine.time_bucket`` key),
    in time order: one scan (one per :data:`CHUNK` of a longer span, after one for its first and last request);
    :func:`timeline_of` puts them on a continuous axis."""
    firsts = [datetime.fromisoformat(i.first_ts) for i in data.manifest.inputs if i.first_ts]
    lasts = [datetime.fromisoformat(i.last_ts) for i in data.manifest.inputs if i.last_ts]
    if firsts and lasts and max(lasts) - min(firsts) <= CHUNK:
        return _minute_table(data, since, until)  # (the logs' own span, from the ingest: no scan to know it)
    t = _window(data.requests, since, until)
    row = data.engine.ibis.to_pyarrow(t.aggregate(first=t.ts.min(), last=t.ts.max())).to_pylist()[0]
    if row["first"] is None or row["last"] - row["first"] <= CHUNK:
        return _minute_table(data, since, until)
    first = row["first"].replace(tzinfo=None, second=0, microsecond=0)
    last = row["last"].replace(tzinfo=None) + timedelta(minutes=1)
    edges = [first + CHUNK * k for k in range(int((last - first) / CHUNK) + 1)] + [last]
    return pa.concat_tables([_minute_table(data, a, b) for a, b in pairwise(edges) if a < b],
                            promote_options="default")


def _minute_table(data: Dataset, since: datetime | None, until: datetime | None) -> pa.Table:
    t = _window(data.requests, since, until)
    minute = data.engine.time_bucket(t.ts, MINUTE).name("minute")
    shed = (t.status == 503) & t.upstream_time.isnull() & t.upstream_addr.isnull()
    aggs: dict[str, Any] = {
        "requests": t.count(),
        "clients": t.client_ip.approx_nunique(),  # HyperLogLog: ~2% error, a fraction of the cost
        "status_4xx": ((t.status >= 400) & (t.status < 500)).sum(),
        "status_5xx": (t.status >= 500).sum(),
        "shed_503": shed.sum(),
        "bytes": t.bytes.sum(),
    }
    has_rt = data.has_values("request_time")  # else the quantiles cost 1.3 s on 5.9M rows of nulls
    if has_rt:  # one sketch for both quantiles: half the cost of two
        aggs["times"] = t.request_time.approx_quantile([0.5, 0.95])
    table: pa.Table = data.engine.ibis.to_pyarrow(t.group_by(minute).aggregate(**aggs).order_by("minute"))
    if has_rt:
        times = table.column("times")
        table = table.drop_columns(["times"]).append_column("p50_time", pc.list_element(times, 0)).append_column(
            "p95_time", pc.list_element(times, 1))
    return table


def minutes_within(table: pa.Table, since: datetime, until: datetime) -> pa.Table:
    """The :func:`minute_table` rows of the minutes from ``since`` to ``until`` (excluded)."""
    keys = table.column("minute")
    return table.filter(pc.and_(pc.greater_equal(keys, bucket_of(since, MINUTE)),
                                pc.less(keys, bucket_of(until, MINUTE))))


def timeline_of(table: pa.Table, has_rt: bool) -> Timeline:
    """The :func:`minute_table` rows on a continuous axis, from the first minute with requests to the last."""
    if table.num_rows == 0:
        empty = np.zeros(0)
        return Timeline(datetime(1970, 1, 1), empty, empty, empty, empty, empty, empty, empty, empty, False)
    first = bucket_time(table.column("minute")[0].as_py(), MINUTE)
    last = bucket_time(table.column("minute")[table.num_rows - 1].as_py(), MINUTE)
    length = int((last - first).total_seconds() // MINUTE) + 1
    names = ["requests", "clients", "status_4xx", "status_5xx", "shed_503", "bytes"]
    counts = aligned(table, "minute", first, length, MINUTE, names)
    not_logged = frozenset(c for c in names if table.column(c).null_count == table.num_rows)
    times = (aligned(table, "minute", first, length, MINUTE, ["p50_time", "p95_time"], fill=np.nan)
             if has_rt else {"p50_time": np.full(length, np.nan), "p95_time": np.full(length, np.nan)})
    return Timeline(first, counts["requests"], counts["clients"], counts["status_4xx"], counts["status_5xx"],
                    counts["shed_503"], counts["bytes"], times["p50_time"], times["p95_time"], has_rt,
                    not_logged)


def first_seen_per_minute(data: Dataset, tl: Timeline, since: datetime | None = None,
                          until: datetime | None = None) -> np.ndarray:
    """Clients seen for the first time (in the analysed range) in each minute of ``tl``: one group-by over
    the clients, so the arrival of a botnet shows as a wall of new clients."""
    t = _window(data.requests, since, until)
    first = t.group_by("client_ip").aggregate(first=t.ts.min())
    grouped = first.group_by(data.engine.time_bucket(first.first, MINUTE).name("minute")).aggregate(
        n=first.count())
    table = data.engine.ibis.to_pyarrow(grouped)
    return aligned(table, "minute", tl.start, tl.minutes, MINUTE, ["n"])["n"]


@overload
def per_second(data: Dataset, since: datetime, until: datetime, *,
               errors: Literal[False]) -> tuple[datetime, np.ndarray]: ...
@overload
def per_second(data: Dataset, since: datetime, until: datetime, *,
               errors: Literal[True]) -> tuple[np.ndarray, np.ndarray]: ...
def per_second(data: Dataset, since: datetime, until: datetime, *,
               errors: bool) -> tuple[datetime, np.ndarray] | tuple[np.ndarray, np.ndarray]:
    """Requests per second between ``since`` and ``until`` (continuous axis starting at ``since``); with
    ``errors``, the per-second requests and 5xx instead."""
    t = _window(data.requests, since, until)
    grouped = t.group_by(data.engine.time_bucket(t.ts, 1).name("second")).aggregate(
        n=t.count(), e=(t.status >= 500).sum())
    table = data.engine.ibis.to_pyarrow(grouped)
    length = max(int((until - since).total_seconds()), 1)
    series = aligned(table, "second", since, length, 1, ["n", "e"])
    if errors:
        return series["n"], series["e"]
    return since, series["n"]


def _window(t: Any, since: datetime | None, until: datetime | None) -> Any:
    if since is not None:
        t = t.filter(t.ts >= ibis.literal(since, type="timestamp('UTC')"))
    if until is not None:
        t = t.filter(t.ts < ibis.literal(until, type="timestamp('UTC')"))
    return t
