"""Baseline and incident windows from the minute series.

The baseline of each minute is the median of the unflagged minutes around it (a rolling, robust level
that follows the daily curve); minutes far above it in volume, or in server errors, are flagged, and the
baseline is recomputed without them until the flags settle. Runs of flagged minutes, merged across
short gaps (a pulse-wave flood is one incident), are the incident windows.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from datetime import datetime

    from floodwitness.analysis.history import Prior
    from floodwitness.analysis.timeline import Timeline


@dataclass(frozen=True)
class WindowPolicy:
    """Thresholds for calling a minute anomalous. A config file may set any of them."""

    #: half-width of the rolling baseline, minutes (long enough that an incident is a minority of it)
    baseline_half_width: int = 120
    #: volume: a minute is anomalous when it exceeds the baseline by all of these
    volume_factor: float = 2.0          # ... at least this many times the baseline
    min_excess_per_minute: float = 60.0  # ... at least 1 request/s more (ignores crawler blips on small sites)
    sigma: float = 6.0                  # ... and far outside Poisson noise (sigma * sqrt(baseline))
    #: errors: a minute is anomalous when its 5xx count and share both jump ...
    min_error_excess: float = 10.0
    error_share_delta: float = 0.02
    #: ... or when its 95th-percentile request time jumps (a slow backend shows before it fails)
    latency_factor: float = 3.0
    min_latency_excess: float = 0.5  # seconds
    min_requests_for_latency: int = 30
    #: a decaying tail at a window's edge stops counting below this share of the peak excess
    edge_share_of_peak: float = 0.25
    #: a failure's recovery: minutes after a window that ends on server errors still count while their 5xx
    #: clear the count margins above and their share stays this far above the usual one
    recovery_share_delta: float = 0.005
    #: windows: volume bursts this close are one incident (pulse waves); other flags merge across short gaps
    merge_gap_minutes: int = 12
    short_gap_minutes: int = 3
    min_flagged_minutes: int = 2
    #: ... unless the lone minute's requests exceed the baseline by this many (a one-minute burst of 5 req/s)
    lone_minute_excess: float = 300.0
    iterations: int = 4


@dataclass(frozen=True)
class Window:
    start_index: int  # first minute (inclusive)
    end_index: int    # last minute (exclusive)
    volume_minutes: tuple[int, ...]  # minute indexes flagged for volume
    error_minutes: tuple[int, ...]   # minute indexes flagged for server errors


@dataclass(frozen=True)
class Baseline:
    level: np.ndarray          # expected requests per minute
    errors: np.ndarray         # expected 5xx per minute
    error_share: float         # typical 5xx share on unflagged minutes
    p95_time: float            # typical 95th-percentile request time (NaN without request times)
    flagged: np.ndarray        # bool per minute
    volume: np.ndarray         # bool per minute: flagged for volume


def rolling_median(values: np.ndarray, usable: np.ndarray, half: int) -> np.ndarray:
    """The median of the usable values within ``half`` minutes of each minute (the overall median where fewer
    than 10 are usable): one pass over the minutes with a sorted window (an insertion and a removal per minute,
    not a sort), so a year of minutes takes a second, with the same values as a median of each window."""
    n = len(values)
    out = np.empty(n)
    fallback = float(np.median(values[usable])) if usable.any() else float(np.median(values)) if n else 0.0
    vals, use = values.tolist(), usable.tolist()
    window: list[float] = []
    ahead = 0
    for i in range(n):
        while ahead < n and ahead <= i + half:
            if use[ahead]:
                bisect.insort(window, vals[ahead])
            ahead += 1
        behind = i - half - 1
        if behind >= 0 and use[behind]:
            del window[bisect.bisect_left(window, vals[behind])]
        k = len(window)
        out[i] = (window[(k - 1) // 2] + window[k // 2]) / 2 if k >= 10 else fallback
    return out


def volume_limit(expected: np.ndarray, policy: WindowPolicy, seconds: float = 60.0) -> np.ndarray:
    """How far above ``expected`` requests (per ``seconds``) traffic must be to count as a surge: all of
    the policy's absolute, relative and Poisson-noise margins, the absolute one scaled to ``seconds``."""
    return np.asarray(np.maximum.reduce([
        np.full(len(expected), policy.min_excess_per_minute * seconds / 60),
        (policy.volume_factor - 1.0) * expected,
        policy.sigma * np.sqrt(np.maximum(expected, 1.0))]))


def error_anomaly(requests: np.ndarray, errors: np.ndarray, expected_errors: np.ndarray, usual_share: float,
                  policy: WindowPolicy, seconds: float = 60.0) -> np.ndarray:
    """Stretches (minutes, or ``seconds`` long) whose server errors jump in count (beyond noise) and in share
    of requests; the absolute margin is scaled to the stretch's length (never below 3 errors)."""
    share = np.where(requests > 0, errors / np.maximum(requests, 1), 0.0)
    excess = errors - expected_errors
    floor = policy.min_error_excess if seconds == 60.0 else max(policy.min_error_excess * seconds / 60, 3.0)
    noise = np.maximum(floor, policy.sigma * np.sqrt(np.maximum(expected_errors, 1.0)))
    return np.asarray((excess > noise) & (share - usual_share > policy.error_share_delta))


def volume_anomaly(requests: np.ndarray, expected: np.ndarray, policy: WindowPolicy,
                   seconds: float = 60.0) -> np.ndarray:
    """Stretches whose requests exceed ``expected`` by every margin of :func:`volume_limit`."""
    return np.asarray(requests > expected + volume_limit(expected, policy, seconds))


def latency_anomaly(requests: np.ndarray, p95_time: np.ndarray, expected: np.ndarray, usual_p95: float,
                    policy: WindowPolicy, seconds: float = 60.0) -> np.ndarray:
    """Stretches whose 95th-percentile request time jumps far above the usual one, with enough requests
    to mean it (and not a trickle far below the usual level)."""
    if not np.isfinite(usual_p95):
        return np.zeros(len(requests), dtype=bool)
    limit = max(policy.latency_factor * usual_p95, usual_p95 + policy.min_latency_excess)
    slow = (np.nan_to_num(p95_time, nan=0.0) > limit) & (requests >= policy.min_requests_for_latency * seconds / 60)
    return np.asarray(slow & (requests >= 0.3 * expected))


def baseline_and_flags(tl: Timeline, policy: WindowPolicy, prior: Prior | None = None,
                       exclude: np.ndarray | None = None) -> Baseline:
    """The expected level of each minute and the anomalous minutes. With a ``prior`` (a given baseline range
    outside the analysed period), every minute is held against the prior's typical minute instead of the
    rolling median of the period itself (which, in logs of the attack alone, is the attack). ``exclude``: minutes
    that never count towards the level (a collapse: the site down is not its usual traffic)."""
    r, e = tl.requests, tl.status_5xx
    n = len(r)
    flagged = volume = np.zeros(n, dtype=bool)
    level = errors = np.zeros(n)
    share, p95 = 0.0, float("nan")
    skip = np.zeros(n, dtype=bool) if exclude is None else exclude
    for _ in range(policy.iterations):
        usable = ~flagged & ~skip
        if prior is not None:
            level, errors, share = np.full(n, prior.requests), np.full(n, prior.errors), prior.error_share
        else:
            level = rolling_median(r, usable, policy.baseline_half_width)
            errors = rolling_median(e, usable, policy.baseline_half_width)
            total = r[usable].sum()
            share = float(e[usable].sum() / total) if total else 0.0
        volume = volume_anomaly(r, level, policy)
        error = error_anomaly(r, e, errors, share, policy)
        slow = np.zeros(n, dtype=bool)
        if prior is not None and np.isfinite(prior.p95_time):
            p95 = prior.p95_time
            slow = latency_anomaly(r, tl.p95_time, level, p95, policy)
        elif tl.has_request_time and usable.any() and np.isfinite(tl.p95_time[usable]).any():
            p95 = float(np.nanmedian(tl.p95_time[usable]))
            slow = latency_anomaly(r, tl.p95_time, level, p95, policy)
        if n > 2:  # the first and last minute of the data are partial: their error share and latency are noise
            error[[0, -1]] = False
            slow[[0, -1]] = False
        new_flags = volume | error | slow
        if np.array_equal(new_flags, flagged):
            break
        flagged = new_flags
    return Baseline(level, errors, share, p95, flagged, volume & flagged)


def _trim_tails(tl: Timeline, base: Baseline, run: list[int], policy: WindowPolicy) -> list[int]:
    """Drop volume-only minutes at either edge of a run whose excess is a small share of the run's peak
    excess (a surge that fades out, or builds up, is not yet or no longer the incident)."""
    excess = tl.requests - base.level
    peak = max(float(excess[i]) for i in run)

    def weak(i: int) -> bool:
        error_only = bool(base.flagged[i]) and not bool(base.volume[i])
        return not error_only and float(excess[i]) < policy.edge_share_of_peak * peak

    # Only a contiguous fading edge is trimmed: a weak minute across a gap is a burst of its own (pulse waves).
    keep = list(run)
    while len(keep) > 1 and weak(keep[0]) and keep[1] == keep[0] + 1:
        keep.pop(0)
    while len(keep) > 1 and weak(keep[-1]) and keep[-2] == keep[-1] - 1:
        keep.pop()
    return keep


def _recovery(tl: Timeline, base: Baseline, last: int, policy: WindowPolicy) -> list[int]:
    """The minutes after a run that ends on server errors in which they are still clearly above normal, if
    no longer by a flagged minute's share: a failure that fades out is over when its errors are back to
    normal (a rollback's last minutes fail 1% of requests where the usual share is 0.03%)."""
    r, e = tl.requests, tl.status_5xx
    if not error_anomaly(r[last:last + 1], e[last:last + 1], base.errors[last:last + 1], base.error_share,
                         policy)[0]:
        return []
    tail = []
    relaxed = replace(policy, error_share_delta=policy.recovery_share_delta)
    for i in range(last + 1, tl.minutes - 1):  # the data's last minute is partial: its share is noise
        if not error_anomaly(r[i:i + 1], e[i:i + 1], base.errors[i:i + 1], base.error_share, relaxed)[0]:
            break
        tail.append(i)
    return tail


def find_windows(tl: Timeline, base: Baseline, policy: WindowPolicy) -> list[Window]:
    flagged = np.flatnonzero(base.flagged)
    if len(flagged) == 0:
        return []
    vol = base.volume
    # Flagged minutes form runs across short gaps; runs that both hold volume bursts then merge across
    # long gaps (a pulse wave is one attack), other runs stay apart.
    short: list[list[int]] = [[int(flagged[0])]]
    for index in flagged[1:].tolist():
        if index - short[-1][-1] - 1 <= policy.short_gap_minutes:
            short[-1].append(index)
        else:
            short.append([index])
    runs: list[list[int]] = [short[0]]
    for run in short[1:]:
        bursts = any(vol[i] for i in run) and any(vol[i] for i in runs[-1])
        if bursts and run[0] - runs[-1][-1] - 1 <= policy.merge_gap_minutes:
            runs[-1].extend(run)
        else:
            runs.append(run)
    windows = []
    for whole in runs:
        run = _trim_tails(tl, base, whole, policy)
        if len(run) < policy.min_flagged_minutes and not (
                vol[run[0]] and tl.requests[run[0]] - base.level[run[0]] >= policy.lone_minute_excess):
            continue
        run += _recovery(tl, base, run[-1], policy)
        windows.append(Window(run[0], run[-1] + 1, tuple(i for i in run if vol[i]),
                              tuple(i for i in run if not vol[i])))
    return windows


def baseline_minutes(tl: Timeline, base: Baseline, windows: list[Window], margin: int = 3) -> np.ndarray:
    """Indexes of minutes that describe normal traffic: unflagged, away from every window, and before the
    first window when there is enough there (the audience as it was before anything happened)."""
    usable = ~base.flagged.copy()
    for w in windows:
        usable[max(0, w.start_index - margin): min(len(usable), w.end_index + margin)] = False
    before = np.flatnonzero(usable[: windows[0].start_index]) if windows else np.flatnonzero(usable)
    if len(before) >= 15:
        return before
    return np.flatnonzero(usable)


def window_weight(tl: Timeline, base: Baseline, w: Window) -> float:
    """How much an incident window weighs before it is analysed: its requests above the baseline, and ten per
    server error (the weight the report ranks analysed incidents by, from the minute series alone)."""
    span = slice(w.start_index, w.end_index)
    return float(np.maximum(tl.requests[span] - base.level[span], 0).sum() + 10 * tl.status_5xx[span].sum())


def heaviest_of(weights: list[float], n: int) -> set[int]:
    """The indexes of the ``n`` heaviest windows (by :func:`window_weight`; the earlier one first when two weigh
    the same): a long log's biggest incidents are analysed wherever they fall in time, in whichever period."""
    return set(sorted(range(len(weights)), key=lambda i: (-weights[i], i))[:n])


def outside_windows(tl: Timeline, windows: list[Window]) -> np.ndarray:
    """Indexes of the minutes in no incident window: the traffic the analysed period has besides its incidents
    (flagged minutes that formed no window included: a lone busy minute is part of a site's ordinary traffic)."""
    outside = np.ones(tl.minutes, dtype=bool)
    for w in windows:
        outside[w.start_index:w.end_index] = False
    return np.flatnonzero(outside)


def window_times(tl: Timeline, w: Window) -> tuple[datetime, datetime]:
    return tl.minute_at(w.start_index), tl.minute_at(w.end_index)


def minutes_to_ranges(tl: Timeline, minutes: np.ndarray) -> list[tuple[datetime, datetime]]:
    """Contiguous runs of minute indexes as [start, end) time ranges (for engine filters)."""
    if not len(minutes):
        return []
    index = np.asarray(minutes, dtype=np.int64)
    cuts = np.flatnonzero(np.diff(index) != 1) + 1
    firsts, lasts = index[np.r_[0, cuts]], index[np.r_[cuts - 1, len(index) - 1]]
    return [(tl.minute_at(a), tl.minute_at(b + 1)) for a, b in zip(firsts.tolist(), lasts.tolist(), strict=True)]


def refine_edges(tl: Timeline, base: Baseline, w: Window, start_counts: tuple[np.ndarray, np.ndarray],
                 end_counts: tuple[np.ndarray, np.ndarray], policy: WindowPolicy) -> tuple[float, float]:
    """Seconds to move the window's start earlier and its end later, from per-second counts of requests and
    5xx in the minute before the start and the minute after the end: an incident rarely starts or stops on
    a minute boundary. A 10-second stretch counts as incident when its requests or errors clear the same
    thresholds as a flagged minute, scaled to 10 seconds."""

    def active(requests: np.ndarray, errors: np.ndarray, level: float, err_level: float) -> np.ndarray:
        window = 10
        if len(requests) < window:
            return np.zeros(0, dtype=bool)
        kernel = np.ones(window)
        req = np.convolve(requests, kernel, mode="valid")
        err = np.convolve(errors, kernel, mode="valid")
        expected = level * window / 60
        expected_err = err_level * window / 60
        volume = volume_anomaly(req, np.full(len(req), expected), policy, seconds=window)
        failing = (err - expected_err > max(policy.min_error_excess * window / 60, 3.0)) & \
            (err > (base.error_share + policy.error_share_delta) * np.maximum(req, 1))
        return np.asarray(volume | failing)

    before = max(w.start_index - 1, 0)
    after = min(w.end_index, tl.minutes - 1)
    earlier = later = 0.0
    hot = active(*start_counts, float(base.level[before]), float(base.errors[before]))
    if len(hot) and w.start_index > 0:
        # the start moves back to the first active stretch that runs on to the window's start
        idle = np.flatnonzero(~hot)
        first = int(idle[-1]) + 1 if len(idle) else 0
        if first < len(hot):
            earlier = float(len(start_counts[0]) - first)
    hot = active(*end_counts, float(base.level[after]), float(base.errors[after]))
    if len(hot) and w.end_index < tl.minutes:
        idle = np.flatnonzero(~hot)
        last = int(idle[0]) if len(idle) else len(hot)
        if last > 0:
            later = float(last + 9)
    return earlier, later
