"""Traffic collapse: minutes where far fewer requests arrived than the baseline predicts (down to none), the
mark an outage leaves in an access log. A site that stops answering does not log a surge: it goes quiet.

A minute is *collapsed* when it served at most ``served_share`` of its expected requests: the rolling level of
:mod:`floodwitness.analysis.windows` recomputed without the collapsed minutes (so a long outage does not drag its
own expectation down) and, when the data holds earlier days, the same time of day on those days (a quiet night is
quiet every night). A run of collapsed minutes is a collapse when it is sustained (``min_minutes``), sudden (the
minutes before it served their usual share: a step, not the evening's slope) and significant: requests arrive in
bursts (a page with its assets, a crawler's batch), so the Poisson lower tail is taken in units of the burst size
measured on the baseline minutes (their index of dispersion). A quiet site at a few requests a minute cannot show a
collapse over five minutes; a site at 50 a minute that falls to 2 can.

What came before it (a surge of new sources, server errors) is judged by the incident it follows; what the
collapse itself shows is measured here: when it began, how deep it went, whether every network of the audience
dropped at once, when traffic returned, and which file boundaries fall in it (a gap between two log files is
missing lines, not an outage).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from floodwitness.analysis.composition import in_ranges, network
from floodwitness.analysis.span import GAP
from floodwitness.analysis.timeline import per_second
from floodwitness.analysis.windows import rolling_median

if TYPE_CHECKING:
    from floodwitness.analysis.dataset import Dataset
    from floodwitness.analysis.timeline import Timeline
    from floodwitness.analysis.windows import Baseline, Window
    from floodwitness.ingest import Manifest

DAY = 1440


@dataclass(frozen=True)
class CollapsePolicy:
    """Thresholds for calling a fall of traffic a collapse. A config file may set any of them."""

    #: a minute is collapsed when it served at most this share of its expected requests
    served_share: float = 0.25
    #: ... for at least this many minutes in a row (gaps of ``merge_gap_minutes`` above it are bridged)
    min_minutes: int = 5
    merge_gap_minutes: int = 2
    #: ... or this many when the log ends during the run (a site that falls to a trickle and stops: the data's
    #: last minutes are all there is of it; the significance test still weighs how little that is)
    min_minutes_at_end: int = 2
    #: the Poisson lower tail of the run's requests (counted in bursts) must be below this
    significance: float = 1e-9
    #: ... and the site's own traffic went as quiet in at most this share of its other stretches of that length
    max_quiet_share: float = 0.01
    #: a step, not a slope: the ``step_minutes`` before the run served at least ``step_share`` of their expected
    step_minutes: int = 10
    step_share: float = 0.5
    #: earlier days at the same time of day compared with (when the data holds them)
    days_compared: int = 7
    #: an incident window ending this close before a collapse (or running into it) is what came before it
    before_minutes: int = 15
    #: traffic has recovered from the first minute after a collapse that serves this share of its expected
    recovery_share: float = 0.8
    #: a surge starting this close after a collapse ends is its retry surge (clients coming back at once)
    retry_minutes: int = 10
    #: the audience's networks compared: those expected to send at least this many requests in the collapse
    network_min_expected: float = 10.0
    #: ... a network dropped when it sent at most this share of them; all dropped at once from this share of them
    network_dropped_share: float = 0.25
    all_at_once_share: float = 0.9


@dataclass(frozen=True)
class Collapse:
    """A run of collapsed minutes ``[start_index, end_index)``; ``end_index`` is the timeline's length when the
    log ends during it."""

    start_index: int
    end_index: int
    served: float
    expected: float
    log10_p: float       # bound on the Poisson lower tail of ``served`` given ``expected``, in bursts
    burst_size: float    # the baseline minutes' index of dispersion (requests per independent arrival)
    daily: bool          # the expectation includes the same time on earlier days

    @property
    def minutes(self) -> int:
        return self.end_index - self.start_index

    def window(self) -> Window:
        from floodwitness.analysis.windows import Window  # noqa: PLC0415 - a runtime name only here

        return Window(self.start_index, self.end_index, (), ())


def poisson_log10_lower_tail(k: float, mu: float) -> float:
    """log10 of the Chernoff bound on P(X <= k) for X ~ Poisson(mu): exp(-(mu - k + k ln(k / mu))) for k < mu (an
    upper bound on the tail: the test it makes is conservative). 0 when k >= mu."""
    if mu <= 0 or k >= mu:
        return 0.0
    exponent = mu if k <= 0 else mu - k + k * math.log(k / mu)
    return -exponent / math.log(10)


def poisson_log10_upper_tail(k: float, mu: float) -> float:
    """log10 of the Chernoff bound on P(X >= k) for X ~ Poisson(mu): exp(-(k ln(k / mu) - k + mu)) for k > mu; 0
    when k <= mu."""
    if k <= mu:
        return 0.0
    return -(k * math.log(k / mu) - k + mu) / math.log(10)


def burst_size(requests: np.ndarray, level: np.ndarray, usable: np.ndarray, trim: float = 0.005) -> float:
    """Requests per independent arrival on the ``usable`` minutes: the variance of their requests around the
    ``level`` over the level (1 for Poisson arrivals; a page with its assets, or a crawler's batch, makes it larger),
    without the ``trim`` share of minutes farthest from it (a lone spike is no burst size)."""
    if usable.sum() < 30:
        return max(1.0, float(np.median(requests)) if len(requests) else 1.0)
    residual = requests[usable] - level[usable]
    kept = residual[np.abs(residual) <= np.quantile(np.abs(residual), 1 - trim)]
    mean = float(np.mean(level[usable]))
    return max(1.0, float(np.mean(kept ** 2)) / max(mean, 1e-9))


def quiet_share(requests: np.ndarray, expected: np.ndarray, start: int, end: int, share: float) -> float:
    """The share of the data's other stretches as long as ``[start, end)`` (not overlapping it) that served at most
    ``share`` of their expected requests too: how often the site's own traffic goes this quiet."""
    m = end - start
    if len(requests) < 2 * m:
        return 1.0
    sums_r = np.convolve(requests, np.ones(m), mode="valid")
    sums_e = np.convolve(expected, np.ones(m), mode="valid")
    first = np.arange(len(sums_r))
    other = (first + m <= start) | (first >= end)
    if not other.any():
        return 1.0
    quiet = (sums_r <= share * sums_e) & other
    return float(quiet.sum() / other.sum())


def same_time_earlier(requests: np.ndarray, days: int, smooth: int = 15) -> np.ndarray:
    """For each minute, the median of the same time of day on up to ``days`` earlier days (the lowest
    ``smooth``-minute mean of each within ``smooth`` minutes of that time: a site that goes quiet at 23:00 every
    night may do so a few minutes early), NaN where the data holds no earlier day."""
    n = len(requests)
    if n <= DAY:
        return np.full(n, np.nan)
    mean = np.convolve(requests, np.ones(smooth) / smooth, mode="same")
    padded = np.pad(mean, smooth, mode="edge")
    mean = np.lib.stride_tricks.sliding_window_view(padded, 2 * smooth + 1).min(axis=1)
    earlier = np.full((days, n), np.nan)
    for k in range(1, days + 1):
        if k * DAY < n:
            earlier[k - 1, k * DAY:] = mean[: n - k * DAY]
    out = np.full(n, np.nan)
    seen = np.isfinite(earlier).any(axis=0)
    out[seen] = np.nanmedian(earlier[:, seen], axis=0)
    return out


def _runs(mask: np.ndarray, gap: int) -> list[tuple[int, int]]:
    """``[start, end)`` runs of True in ``mask``, bridging gaps of at most ``gap`` False minutes."""
    idx = np.flatnonzero(mask)
    if not len(idx):
        return []
    breaks = np.flatnonzero(np.diff(idx) > gap + 1)
    starts = np.r_[idx[0], idx[breaks + 1]]
    ends = np.r_[idx[breaks], idx[-1]] + 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def _candidates(r: np.ndarray, expected: np.ndarray, daily: np.ndarray, size: float,
                policy: CollapsePolicy) -> list[Collapse]:
    """The runs of collapsed minutes against ``expected`` that pass every test of the module's docstring."""
    low = (r <= policy.served_share * expected) & (expected > 0)
    found = []
    for start, end in _runs(low, policy.merge_gap_minutes):
        shortest = policy.min_minutes_at_end if end >= len(r) else policy.min_minutes
        if end - start < shortest or start < 3 or (end - start) * 60 > GAP.total_seconds():
            continue  # too short; or the log starts with it (nothing before to compare); or a gap between periods
        before = slice(max(0, start - policy.step_minutes), start)
        usual = float(np.median(r[before] / np.maximum(expected[before], 1e-9)))
        served, wanted = float(r[start:end].sum()), float(expected[start:end].sum())
        # the minutes before must have served their usual share, and clearly more than the run's rate would give
        # them (a lull in a trickle of requests is no step)
        rate = max(served, 1.0) / (end - start)
        step = poisson_log10_upper_tail(float(r[before].sum()) / size, rate * (before.stop - before.start) / size)
        if usual < policy.step_share or step > math.log10(policy.significance):
            continue  # a slope (the evening's decline), or noise, not a step
        log10_p = poisson_log10_lower_tail(served / size, wanted / size)
        if log10_p > math.log10(policy.significance) or quiet_share(
                r, expected, start, end, policy.served_share) > policy.max_quiet_share:
            continue
        found.append(Collapse(start, end, served, wanted, log10_p, size, bool(np.isfinite(daily[start]))))
    return found


def find_collapses(tl: Timeline, base: Baseline, policy: CollapsePolicy, half_width: int = 120) -> tuple[
        list[Collapse], np.ndarray]:
    """The collapses of ``tl`` (see the module's docstring) and the expected level they were measured against: the
    baseline's rolling level, held no higher than the same time on earlier days; once collapses are found, the
    rolling level again without their minutes (a long outage must not drag its own expectation down), until they
    settle. Only significant runs are left out of it: leaving out every low minute would lift the level of a night's
    trough above the night itself."""
    r = tl.requests
    daily = same_time_earlier(r, policy.days_compared)

    def held(level: np.ndarray) -> np.ndarray:
        return np.where(np.isfinite(daily), np.minimum(level, daily), level)

    # The centered level follows a step down within half its width (the median flips), so the level of the
    # minutes before each one is the expectation too: a collapse longer than that is still a step from it.
    quarter = max(half_width // 2, 1)
    trailing = np.r_[np.full(quarter, np.nan), rolling_median(r, ~base.flagged, quarter)[:-quarter]][:len(r)]
    expected = held(np.fmax(base.level, trailing))
    low = (r <= policy.served_share * expected) & (expected > 0)
    if not low.any():
        return [], expected
    size = burst_size(r, expected, ~base.flagged)  # (the low minutes too: without them the spread is cut short)
    found = _candidates(r, expected, daily, size, policy)
    for _ in range(3):
        if not found:
            break
        down = np.zeros(len(r), dtype=bool)
        near = np.zeros(len(r), dtype=bool)  # the minutes whose rolling level the collapses' minutes enter
        for c in found:
            down[c.start_index:c.end_index] = True
            near[max(0, c.start_index - half_width):c.end_index + half_width] = True
        expected = held(np.where(near, rolling_median(r, ~base.flagged & ~down, half_width), base.level))
        again = _candidates(r, expected, daily, size, policy)
        if [(c.start_index, c.end_index) for c in again] == [(c.start_index, c.end_index) for c in found]:
            return again, expected
        found = again
    return found, expected


# --- what the collapse shows ------------------------------------------------------------------------------------


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
                "cause_kind": self.cause_kind, "cause_note": cause_note(self), "query": self.query}


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
    else:
        text = OUTSIDE_NOTE
    if o.networks.all_at_once is False:
        text += (" Only some of the audience's networks dropped: a routing problem, a region or a CDN edge is more "
                 "likely than the server itself being unreachable.")
    if o.boundaries:
        text += " File boundaries fall in it: " + ", ".join(f"{b['file']} {b['edge']} at {b['at']}"
                                                           for b in o.boundaries) + "."
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
    ended = None if c.end_index >= tl.minutes else end
    before_i, after_i, _inside = linked_windows(c, windows, policy)
    if before_i is not None:
        w = windows[before_i]
        before = {"what": "surge" if w.volume_minutes else "server_errors"} | _stretch(tl, expected, w.start_index,
                                                                                     w.end_index)
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
    out = Outage(c, began, ended, recovered, networks, before, retry, boundaries,
                 query=minutes_query(data, (began - margin, end + margin)))
    return replace(out, cause="log_gap") if is_log_gap(c, boundaries) else out
