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
collapse itself shows (when it began to the second, the networks that dropped, the recovery, the file boundaries
in it) is measured by :mod:`floodwitness.analysis.outage`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from floodwitness.analysis.span import GAP
from floodwitness.analysis.windows import Window, rolling_median

if TYPE_CHECKING:
    from floodwitness.analysis.timeline import Timeline
    from floodwitness.analysis.windows import Baseline

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


def trailing_level(values: np.ndarray, usable: np.ndarray, width: int, chunk: int = 4096) -> np.ndarray:
    """For each minute, the median of the ``usable`` minutes among the ``width`` before it (NaN with fewer than 10 of
    them): vectorised over windows in chunks, so a year of minutes costs about a second."""
    vals = np.where(usable, values, np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(np.r_[np.full(width, np.nan), vals], width)[: len(values)]
    out = np.full(len(values), np.nan)
    for a in range(0, len(values), chunk):
        part = windows[a:a + chunk]
        enough = np.isfinite(part).sum(axis=1) >= 10
        if enough.any():
            out[a:a + chunk][enough] = np.nanmedian(part[enough], axis=1)
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
    expected = held(np.fmax(base.level, trailing_level(r, ~base.flagged, half_width)))
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
