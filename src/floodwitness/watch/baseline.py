"""The rolling baseline of live detection: a ring of the last unflagged 10-second buckets and the levels
read from it (medians, the usual error share, the usual 95th percentile of request times).

:class:`RollingBaseline` is a base of :class:`~floodwitness.watch.detector.LiveDetector`: its attributes
are the detector's own (the checkpoint saves them by name), so they stay flat on the detector.
"""

from __future__ import annotations

import bisect
import math

import numpy as np

HISTORY = ("requests", "errors", "p95", "assets", "referers", "new", "new_network", "suspect")
#: the history rows whose rolling median is the baseline (p95: NaN-free median, buckets without times skipped)
MEDIANS = ("requests", "errors", "suspect", "p95")


def median(values: list[float]) -> float:
    """``np.median`` of the sorted ``values`` (NaN when empty)."""
    n = len(values)
    if not n:
        return math.nan
    mid = n // 2
    return values[mid] if n % 2 else (values[mid - 1] + values[mid]) / 2


class RollingBaseline:
    """One row per unflagged bucket (:data:`HISTORY`), the last ``buckets`` of them, and their levels."""

    history: np.ndarray
    history_count: int
    sorted_history: dict[str, list[float]] | None
    level: float
    err_level: float
    share: float
    sus_level: float
    usual_p95: float

    def _reset_baseline(self, buckets: int) -> None:
        """An empty ring of ``buckets`` rows: no baseline yet."""
        self.history = np.full((len(HISTORY), buckets), np.nan)
        self.history_count = 0
        self.sorted_history = None  # MEDIANS kept sorted (rebuilt, not saved)
        self.level = self.err_level = self.share = self.sus_level = 0.0
        self.usual_p95 = math.nan

    def _history(self) -> dict[str, np.ndarray]:
        filled = self.history[:, : min(self.history_count, self.history.shape[1])]
        return dict(zip(HISTORY, filled, strict=True))

    def _remember(self, row: tuple[float, ...]) -> None:
        """Add an unflagged bucket to the baseline ring (dropping the oldest) and recompute the baseline."""
        slot = self.history_count % self.history.shape[1]
        ordered = self._sorted_history()
        if self.history_count >= self.history.shape[1]:
            for name in MEDIANS:
                old = float(self.history[HISTORY.index(name), slot])
                if not math.isnan(old):
                    values = ordered[name]
                    del values[bisect.bisect_left(values, old)]
        self.history[:, slot] = row
        for name in MEDIANS:
            new = float(self.history[HISTORY.index(name), slot])
            if not math.isnan(new):
                bisect.insort(ordered[name], new)
        self.history_count += 1
        self._rebaseline()

    def _sorted_history(self) -> dict[str, list[float]]:
        """The MEDIANS rows of the baseline ring, each sorted without NaN: kept up to date bucket by bucket,
        so a median is an index, not a sort of two hours of buckets (built from the ring after a restart)."""
        if self.sorted_history is None:
            h = self._history()
            self.sorted_history = {name: sorted(float(v) for v in h[name] if not math.isnan(v)) for name in MEDIANS}
        return self.sorted_history

    def _rebaseline(self) -> None:
        h = self._history()
        ordered = self._sorted_history()
        req, err = h["requests"], h["errors"]
        self.level = median(ordered["requests"])
        self.err_level = median(ordered["errors"])
        self.sus_level = median(ordered["suspect"])
        total = float(req.sum())
        self.share = float(err.sum() / total) if total else 0.0
        self.usual_p95 = median(ordered["p95"])
