"""The site stops answering: an outage. Nothing reaches the access log while it is down, save a few requests in
flight as it stops (stragglers); when it comes back, traffic returns over a few minutes (partial recovery) and some
of the clients that could not get through come back at once (a retry surge, the thundering herd)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from floodwitness.simulate import events as ev


@dataclass(frozen=True)
class Down:
    """The site down from ``start`` to ``end`` (seconds from the log's start; ``end`` may lie past its end)."""

    start: float
    end: float
    #: share of the usual requests still logged just after the stop (in flight), decaying within a minute or two
    stragglers: float
    #: seconds over which traffic comes back after ``end`` (from a third of its level to all of it)
    ramp: float
    #: share of the requests people and API clients missed while it was down that come again at once after it
    retry_share: float


def place_down(rng: np.random.Generator, start: float, minutes: tuple[float, float], duration: float) -> Down:
    """A stop at ``start`` lasting ``minutes``, ending before the last 8 % of the log."""
    end = min(start + float(rng.uniform(*minutes)) * 60.0, 0.92 * duration)
    return Down(start, max(end, start + 300.0), stragglers=float(rng.uniform(0.02, 0.08)),
                ramp=float(rng.uniform(60.0, 600.0)), retry_share=float(rng.choice([0.0, 0.1, 0.3])))


def logged(rng: np.random.Generator, down: Down, done: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Which requests (logged at ``done``) still reach the log: none while the site is down but a few stragglers
    just after the stop, then more and more as it comes back."""
    u = rng.random(done.shape[0])
    after = done - down.start
    straggle = u < down.stragglers * np.exp(-np.maximum(after, 0.0) / 40.0)
    back = done - down.end
    ramping = u < 1.0 / 3.0 + (2.0 / 3.0) * np.clip(back / max(down.ramp, 1.0), 0.0, 1.0)
    return np.asarray(np.where(after < 0, True, np.where(back < 0, straggle, ramping)))


def retries(rng: np.random.Generator, down: Down, done: npt.NDArray[np.float64],
            role: npt.NDArray[np.int8]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]:
    """The requests people and API clients come back with once the site answers again: the rows (of those missed
    while it was down) that are sent again, and when they are logged (a burst over the first minutes)."""
    missed = (done >= down.start) & (done < down.end) & np.isin(role, (ev.HUMAN, ev.API))
    again = np.flatnonzero(missed & (rng.random(done.shape[0]) < down.retry_share))
    return again, down.end + rng.exponential(45.0, size=again.shape[0])


def apply(rng: np.random.Generator, down: Down, cols: dict[str, npt.NDArray[Any]], keep: npt.NDArray[np.bool_],
          done: npt.NDArray[np.float64]) -> tuple[dict[str, npt.NDArray[Any]], npt.NDArray[np.bool_],
                                                  npt.NDArray[np.float64]]:
    """The logged columns (``cols``: every per-row array, ``t`` and ``done`` included) with the outage applied:
    the rows the site never answered dropped from ``keep``, and the retry surge appended."""
    again, when = retries(rng, down, done, cols["role"])
    keep = keep & logged(rng, down, done)
    shift = when - done[again]
    out = {name: np.concatenate([values, values[again]]) for name, values in cols.items()}
    out["t"][len(done):] += shift
    out["flags"][len(done):] = ev.RETRY
    new_done = np.concatenate([done, when])
    return out, np.concatenate([keep, np.ones(again.shape[0], dtype=bool)]), new_done
