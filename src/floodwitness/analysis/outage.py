"""What a collapse of traffic (:mod:`floodwitness.analysis.collapse`) shows: when it began and ended to the second,
how deep it went, whether every network of the audience dropped at once, what came before it, how traffic came
back, which file boundaries fall in it, and what the access log can and cannot tell of its cause."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import ibis
import numpy as np

from floodwitness.analysis.composition import in_ranges, network
from floodwitness.analysis.timeline import per_second

if TYPE_CHECKING:
    from floodwitness.analysis.collapse import Collapse, CollapsePolicy
    from floodwitness.analysis.dataset import Dataset
    from floodwitness.analysis.timeline import Timeline
    from floodwitness.analysis.windows import Window
    from floodwitness.ingest import Manifest


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=None) - (parsed.utcoffset() or timedelta(0))


def file_boundaries(manifest: Manifest, start: datetime, end: datetime,
                    slack: timedelta = timedelta(minutes=2)) -> list[dict[str, Any]]:
    """The input files that end or begin within ``slack`` of the span ``[start, end)``: a gap that falls between
    two files is lines missing from the logs (a rotation that lost them, a file not given), not the site down."""
    out = []
    for i in manifest.inputs:
        last, first = _parse(i.last_ts), _parse(i.first_ts)
        if last is not None and start - slack <= last < end and (first is None or first < start):
            out.append({"file": i.path, "edge": "ends", "at": _iso(last)})
        if first is not None and start <= first <= end + slack and (last is None or last > end):
            out.append({"file": i.path, "edge": "begins", "at": _iso(first)})
    return out


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="seconds") + "Z"


@dataclass(frozen=True)
class Networks:
    """The audience's networks during a collapse: how many were expected to send enough requests, how many
    dropped, and the ones still served."""

    total: int
    dropped: int
    still_served: tuple[dict[str, Any], ...] = ()
    level: str = "/16"
    share: float = 0.9  # the share of them that must drop for all to have dropped at once

    @property
    def all_at_once(self) -> bool | None:
        if self.total < 2:
            return None
        return self.dropped >= math.ceil(self.share * self.total)

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "total": self.total, "dropped": self.dropped, "all_at_once": self.all_at_once,
                "still_served": list(self.still_served)}


@dataclass(frozen=True)
class Outage:
    """What the report says of a collapse: the collapse, what came before it, how it ended."""

    collapse: Collapse
    began: datetime
    ended: datetime | None        # when traffic came back above the collapse (None: the log ends during it)
    recovered: datetime | None    # when it served its usual share again (None: not within the data)
    networks: Networks
    before: dict[str, Any]
    retry_surge: dict[str, Any] | None
    boundaries: list[dict[str, Any]] = field(default_factory=list)
    cause: str = "outside"        # attack | internal | outside | log_gap
    cause_kind: str | None = None  # the verdict of the incident it follows
    query: str = ""
    clock: dict[str, Any] | None = None  # the lines on both sides, when a clock jump would look the same

    @property
    def log_ends(self) -> bool:
        return self.ended is None

    @property
    def missing(self) -> float:
        return max(self.collapse.expected - self.collapse.served, 0.0)

    def to_dict(self) -> dict[str, Any]:
        c = self.collapse
        recovery = {"ended": _iso(self.ended) if self.ended else None,
                    "recovered": _iso(self.recovered) if self.recovered else None,
                    "retry_surge": self.retry_surge}
        return {"began": _iso(self.began), "ended": recovery["ended"], "minutes": c.minutes,
                "served": int(c.served), "expected": round(c.expected), "depth": round(1 - c.served / max(
                    c.expected, 1e-9), 3),
                "significance_log10": round(c.log10_p, 1), "burst_size": round(c.burst_size, 2),
                "same_time_earlier_days": c.daily,
                "networks": self.networks.to_dict(), "before": self.before, "recovery": recovery,
                "log_ends": self.log_ends, "file_boundaries": self.boundaries, "cause": self.cause,
                "cause_kind": self.cause_kind, "cause_note": cause_note(self), "query": self.query,
                "clock_jump": self.clock}


OUTSIDE_NOTE = ("Nothing in the access log came before the collapse: no surge of new sources, no server errors, "
                "no slow answers. A network-level (L3/L4) flood, an upstream or power failure and a deliberate "
                "shutdown all look like this in an access log: the requests never reached the server. Flow "
                "records (NetFlow, sFlow) or the hosting provider's data are needed to tell them apart.")
LOG_ENDS_NOTE = ("The log ends during the collapse: the site may have stayed down, or the log was cut as traffic "
                 "fell. A log cut when it was exported usually ends at the usual level, not after a fall; the "
                 "server's later logs or its uptime monitoring tell them apart.")


def cause_note(o: Outage) -> str:
    """The plain explanation of what the logs tell of the collapse's cause."""
    if o.cause == "log_gap":
        files = ", ".join(f"{b['file']} {b['edge']} at {b['at']}" for b in o.boundaries)
        return (f"The gap falls exactly between two log files ({files}): lines are missing from the logs (a "
                "rotation that lost them, or a file not given), which says nothing of the site being down.")
    if o.cause == "attack":
        text = (f"The collapse followed the attack (verdict {o.cause_kind}): the flood took the site down, and the "
                "outage is its consequence.")
    elif o.cause == "internal":
        text = (f"Server errors or slow answers came first (verdict {o.cause_kind}): the site failed from the "
                "inside before it stopped answering.")
    elif o.cause == "crowd":
        text = (f"A surge of the site's own audience came first (verdict {o.cause_kind}): a legitimate crowd's load "
                "took the site down.")
    else:
        text = OUTSIDE_NOTE
    if o.networks.all_at_once is False:
        text += (" Only some of the audience's networks dropped: a routing problem, a region or a CDN edge is more "
                 "likely than the server itself being unreachable.")
    if o.boundaries:
        text += " File boundaries fall in it: " + ", ".join(f"{b['file']} {b['edge']} at {b['at']}"
                                                           for b in o.boundaries) + "."
    if o.clock is not None:
        text += " " + o.clock["note"]
    return text + (" " + LOG_ENDS_NOTE if o.log_ends else "")


def is_log_gap(c: Collapse, boundaries: list[dict[str, Any]]) -> bool:
    """A collapse with no request at all that a file ends at and another begins at: a gap between files."""
    edges = {b["edge"] for b in boundaries}
    return c.served == 0 and edges == {"ends", "begins"}


def linked_windows(c: Collapse, windows: list[Window], policy: CollapsePolicy) -> tuple[int | None, int | None,
                                                                                         list[int]]:
    """Which incident window came just before the collapse (ending at most ``before_minutes`` before it, or running
    into it), which one is its retry surge (a volume surge starting within ``retry_minutes`` of its end), and which
    lie inside it (a few stragglers' errors: part of the collapse, not incidents of their own)."""
    before = after = None
    inside = []
    for i, w in enumerate(windows):
        if w.start_index >= c.start_index and w.end_index <= c.end_index:
            inside.append(i)
        elif w.start_index < c.start_index <= w.end_index + policy.before_minutes:
            before = i
        elif w.volume_minutes and c.end_index - 1 <= w.start_index <= c.end_index + policy.retry_minutes \
                and after is None:
            after = i
    return before, after, inside


def recovered_at(tl: Timeline, expected: np.ndarray, c: Collapse, policy: CollapsePolicy) -> datetime | None:
    """The first minute from the collapse's end that serves ``recovery_share`` of its expected requests again."""
    tail = np.flatnonzero(tl.requests[c.end_index:] >= policy.recovery_share * expected[c.end_index:])
    return tl.minute_at(c.end_index + int(tail[0])) if len(tail) else None


def audience_networks(data: Dataset, times: tuple[datetime, datetime], baseline: list[tuple[datetime, datetime]],
                      expected: float, policy: CollapsePolicy) -> Networks:
    """Each network of the audience (/16; /32 for IPv6) against its share of the baseline: how many were expected
    to send at least ``network_min_expected`` requests in the collapse, how many sent at most
    ``network_dropped_share`` of that, and the ones still served (heaviest first, at most five)."""
    t = data.requests
    base = in_ranges(t, baseline)
    now = in_ranges(t, [times])
    per_base = base.group_by(net=network(base.client_ip, base.ip_family)).aggregate(base=base.count())
    per_now = now.group_by(net=network(now.client_ip, now.ip_family)).aggregate(now=now.count())
    joined = per_base.left_join(per_now, "net").drop("net_right")
    table = data.engine.ibis.to_pyarrow(joined)
    if table.num_rows == 0:
        return Networks(0, 0)
    nets = table.column("net").to_pylist()
    base_n = table.column("base").to_numpy(zero_copy_only=False).astype(float)
    now_n = table.column("now").fill_null(0).to_numpy(zero_copy_only=False).astype(float)
    wanted = expected * base_n / max(float(base_n.sum()), 1.0)
    counted = wanted >= policy.network_min_expected
    dropped = counted & (now_n <= policy.network_dropped_share * wanted)
    served = np.flatnonzero(counted & ~dropped)
    served = served[np.argsort(-now_n[served], kind="stable")][:5]
    still = tuple({"network": nets[i], "requests": int(now_n[i]), "expected": round(float(wanted[i]))}
                  for i in served.tolist())
    return Networks(int(counted.sum()), int(dropped.sum()), still, share=policy.all_at_once_share)


def _stretch(tl: Timeline, expected: np.ndarray, a: int, b: int) -> dict[str, Any]:
    span = slice(max(a, 0), max(min(b, tl.minutes), 0))
    return {"start": _iso(tl.minute_at(span.start)), "end": _iso(tl.minute_at(span.stop)),
            "requests": int(tl.requests[span].sum()), "expected": round(float(expected[span].sum())),
            "server_errors": int(tl.status_5xx[span].sum())}


def minutes_query(data: Dataset, times: tuple[datetime, datetime]) -> str:
    """The DuckDB query that reproduces the requests per minute around a collapse."""
    def ts(value: datetime) -> str:
        return f"TIMESTAMPTZ '{value.strftime('%Y-%m-%d %H:%M:%S')}+00'"
    return (f"SELECT time_bucket(INTERVAL 1 minute, ts) AS minute, count(*) AS requests FROM read_parquet("
            f"'{data.parquet_glob}') WHERE reject_reason IS NULL AND ts >= {ts(times[0])} AND ts < {ts(times[1])} "
            "GROUP BY minute ORDER BY minute")


def step_second(data: Dataset, around: datetime, *, up: bool, reach: int = 90, side: int = 20) -> datetime:
    """The second, within ``reach`` seconds of the minute boundary ``around``, where the requests per second
    change most between the ``side`` seconds before and after it: the stop (``up`` False), or the return, to the
    second. A minute's count says a site stopped in it; its seconds say when."""
    since = around - timedelta(seconds=reach + side)
    _, counts = per_second(data, since, around + timedelta(seconds=reach + side), errors=False)
    total = np.r_[0.0, np.cumsum(counts)]
    at = np.arange(side, len(counts) - side + 1)
    before = total[at] - total[at - side]
    after = total[at + side] - total[at]
    change = (after - before) if up else (before - after)
    return since + timedelta(seconds=int(at[int(np.argmax(change))])) if len(at) else around


def describe(data: Dataset, tl: Timeline, expected: np.ndarray, c: Collapse, windows: list[Window],
             baseline: list[tuple[datetime, datetime]], policy: CollapsePolicy) -> Outage:
    """What the collapse ``c`` shows (its cause left as ``outside`` or ``log_gap``: the incident it follows, if
    any, is judged by the verdict, which names it)."""
    began = step_second(data, tl.minute_at(c.start_index), up=False)
    end = tl.minute_at(c.end_index)
    if c.end_index < tl.minutes:
        end = step_second(data, end, up=True)
        if c.served == 0:  # nothing in it: it runs from the last line before it to the first after it
            at = ibis.literal(tl.minute_at(c.start_index), type="timestamp('UTC')")
            last = _edge_line(data, data.requests.ts < at, last=True)
            first = _edge_line(data, data.requests.ts >= at, last=False)
            if last is not None and first is not None:
                began, end = last["ts"].replace(tzinfo=None), first["ts"].replace(tzinfo=None)
    ended = None if c.end_index >= tl.minutes else end
    before_i, after_i, _inside = linked_windows(c, windows, policy)
    if before_i is not None:
        w = windows[before_i]
        before = {"what": "surge" if w.volume_minutes else "server_errors"} | _stretch(
            tl, expected, w.start_index, min(w.end_index, c.start_index))  # (up to the collapse: not its minutes)
    else:
        before = {"what": "nothing"} | _stretch(tl, expected, c.start_index - policy.step_minutes, c.start_index)
    retry = None
    if after_i is not None:
        w = windows[after_i]
        span = slice(w.start_index, w.end_index)
        retry = _stretch(tl, expected, w.start_index, w.end_index) | {
            "peak_share": round(float(np.max(tl.requests[span] / np.maximum(expected[span], 1e-9))), 2)}
    networks = audience_networks(data, (began, end), baseline, c.expected, policy)
    margin = timedelta(minutes=policy.step_minutes)
    boundaries = file_boundaries(data.manifest, began, end)
    recovered = recovered_at(tl, expected, c, policy) if ended else None
    if recovered is not None and ended is not None:
        recovered = max(recovered, ended)
    clock = clock_jump(data, tl, expected, c, policy) if ended is not None else None
    out = Outage(c, began, ended, recovered, networks, before, retry, boundaries,
                 query=minutes_query(data, (began - margin, end + margin)), clock=clock)
    return replace(out, cause="log_gap") if is_log_gap(c, boundaries) else out


def _edge_line(data: Dataset, where: Any, *, last: bool) -> dict[str, Any] | None:
    t = data.requests.filter(where)
    keys = ["ts", "file_id", "line"]  # (lines of one second in file order)
    order = [ibis.desc(k) for k in keys] if last else keys
    rows = data.engine.ibis.to_pyarrow(t.order_by(order).select("file_id", "line", "ts").limit(1)).to_pylist()
    return rows[0] if rows else None


def clock_jump(data: Dataset, tl: Timeline, expected: np.ndarray, c: Collapse,
               policy: CollapsePolicy) -> dict[str, Any] | None:
    """When a clock that jumped forward would look the same as the collapse: nothing in it, the usual traffic in the
    minutes on both sides (no fall, no ramp back), and the lines on both sides consecutive in one file. Then the
    two lines, and a note saying so; None otherwise."""
    after = min(c.end_index, tl.minutes - 1)
    before = max(c.start_index - 1, 0)
    usual = (tl.requests[[before, after]] >= policy.recovery_share * expected[[before, after]]).all()
    if c.served > 0 or not usual:
        return None
    ts, at = data.requests.ts, ibis.literal(tl.minute_at(c.start_index), type="timestamp('UTC')")
    last, first = _edge_line(data, ts < at, last=True), _edge_line(data, ts >= at, last=False)
    if last is None or first is None or last["file_id"] != first["file_id"] or first["line"] != last["line"] + 1:
        return None
    path = data.path_of(last["file_id"])
    return {"file": path, "line_before": last["line"], "line_after": first["line"],
            "note": (f"A clock that jumped forward would look the same: lines {last['line']} and {first['line']} of "
                     f"{path} are consecutive across the gap, with the usual traffic on both sides and no fall or "
                     "ramp; the server's system log (its time synchronisation) tells them apart.")}
