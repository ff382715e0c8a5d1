"""Incident windows and phases on synthetic minute series: where a failure ends, and which errors an attack
explains."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from floodwitness.analysis.phases import attack_and_failure
from floodwitness.analysis.timeline import Timeline
from floodwitness.analysis.windows import WindowPolicy, baseline_and_flags, find_windows

MINUTES = 240
START, BROKEN_END = 150, 170


def _timeline(tail_shares: list[float], seed: int = 7) -> Timeline:
    """Four hours of ~2,000 requests a minute with the usual 0.03% of 5xx; from minute 150 to 170 the
    application fails 30% of requests, then its recovery fails ``tail_shares`` in the minutes after."""
    rng = np.random.default_rng(seed)
    requests = rng.poisson(2000, MINUTES).astype(float)
    share = np.full(MINUTES, 0.0003)
    share[START:BROKEN_END] = 0.30
    share[BROKEN_END:BROKEN_END + len(tail_shares)] = tail_shares
    errors = rng.binomial(requests.astype(int), share).astype(float)
    nan = np.full(MINUTES, np.nan)
    zeros = np.zeros(MINUTES)
    return Timeline(datetime(2026, 1, 1), requests, requests / 3, zeros, errors, zeros, requests * 5000, nan, nan,
                    has_request_time=False)


@pytest.mark.parametrize(("tail", "end"), [
    ([0.05, 0.025, 0.01], BROKEN_END + 3),   # the rollback's last minute still fails 1%: it is the incident
    ([0.05, 0.025], BROKEN_END + 2),
    ([], BROKEN_END),
])
def test_a_failure_window_ends_when_its_errors_are_back_to_normal(tail: list[float], end: int) -> None:
    tl = _timeline(tail)
    policy = WindowPolicy()
    windows = find_windows(tl, baseline_and_flags(tl, policy), policy)
    assert [(w.start_index, w.end_index) for w in windows] == [(START, end)]


def test_a_recovery_under_the_count_margin_does_not_extend_the_window() -> None:
    tl = _timeline([0.003])  # ~6 errors in 2,000: a share above normal, but within the count margin (10)
    policy = WindowPolicy()
    windows = find_windows(tl, baseline_and_flags(tl, policy), policy)
    assert [(w.start_index, w.end_index) for w in windows] == [(START, BROKEN_END)]


def test_errors_at_an_attacks_edge_are_the_attacks_own() -> None:
    # minute 0: the flood; minute 1: its last seconds, whose 49 errors all went to the flood's own requests;
    # minute 2: errors on the site's own clients with no flood at all (a failure the attack does not explain)
    requests = np.array([20000.0, 1950.0, 2000.0])
    errors = np.array([18000.0, 49.0, 300.0])
    suspect = np.array([19000.0, 49.0, 0.0])
    level, expected = np.full(3, 2000.0), np.full(3, 0.6)
    attack, failure = attack_and_failure(requests, errors, suspect, np.array([17000.0, 49.0, 0.0]), level,
                                         expected, 0.0003, WindowPolicy())
    assert attack.tolist() == [True, False, False]
    assert failure.tolist() == [False, False, True]
    # the same 49 errors on other clients' requests would be a failure of our own
    _, failure = attack_and_failure(requests, errors, suspect, np.array([17000.0, 0.0, 0.0]), level, expected,
                                    0.0003, WindowPolicy())
    assert failure.tolist() == [False, True, True]


@pytest.mark.parametrize(("burst", "window"), [(546, True), (150, False)])
def test_a_lone_minute_is_an_incident_only_when_it_is_a_burst(burst: int, window: bool) -> None:
    """One minute far above a quiet site's level (honeynet-2004's 546 "GET /" from one address on 9 Oct 2004) is
    an incident window; a lone busy minute (150 requests where 2 are usual: flagged, but a crawler's blip) is not,
    as two flagged minutes are needed."""
    rng = np.random.default_rng(3)
    requests = rng.poisson(2, MINUTES).astype(float)
    requests[100] = burst
    zeros, nan = np.zeros(MINUTES), np.full(MINUTES, np.nan)
    tl = Timeline(datetime(2026, 1, 1), requests, np.minimum(requests, 3), zeros, zeros, zeros, requests * 900, nan,
                  nan, has_request_time=False)
    policy = WindowPolicy()
    base = baseline_and_flags(tl, policy)
    assert bool(base.volume[100])
    assert [(w.start_index, w.end_index) for w in find_windows(tl, base, policy)] == ([(100, 101)] if window else [])
