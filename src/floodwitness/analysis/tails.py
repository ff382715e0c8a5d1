"""Tail probabilities for the impact's tests: is a count of requests served significantly below what a Poisson
law with the expected mean gives, is a count of failures or slow answers significantly above a usual share?

Exact tails (summed in log space) for the totals of an incident, up to :data:`EXACT_LIMIT` terms; beyond it, and
for the minute-by-minute screen (vectorised), the Chernoff bounds, which are upper bounds of the exact tails: a
claim they support the exact test supports too. At ``observed == 0`` the Poisson bound is exact, ``exp(-expected)``:
so :func:`shortfall_measurable` is exact as well.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

#: above this many terms a tail is bounded (Chernoff) rather than summed
EXACT_LIMIT = 1_000_000

F64 = npt.NDArray[np.float64]


def _log_factorials(n: int) -> F64:
    """``log(i!)`` for ``i`` in ``0..n``."""
    return np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1, dtype=np.float64)))])


def _sum_exp(logs: F64) -> float:
    if not len(logs):
        return 0.0
    top = float(logs.max())
    return float(math.exp(top) * np.exp(logs - top).sum())


def poisson_lower_tail(observed: int, expected: float) -> float:
    """``P(X <= observed)`` for ``X ~ Poisson(expected)``: how likely as few requests (or fewer) are by chance."""
    if expected <= 0 or observed >= expected * 10 + 50:
        return 1.0
    if observed < 0:
        return 0.0
    if observed > EXACT_LIMIT:
        return float(poisson_lower_bound(np.array([observed], float), np.array([expected], float))[0])
    i = np.arange(observed + 1, dtype=np.float64)
    return min(1.0, _sum_exp(i * math.log(expected) - expected - _log_factorials(observed)))


def binomial_upper_tail(k: int, n: int, p: float) -> float:
    """``P(X >= k)`` for ``X ~ Binomial(n, p)``: how likely as many failures (or more) are by chance."""
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    if n > EXACT_LIMIT:
        return float(binomial_upper_bound(np.array([k], float), np.array([n], float), p)[0])
    logf = _log_factorials(n)
    i = np.arange(k, n + 1)
    logs = logf[n] - logf[i] - logf[n - i] + i * math.log(p) + (n - i) * math.log1p(-p)
    return min(1.0, _sum_exp(logs))


def poisson_lower_bound(observed: F64, expected: F64) -> F64:
    """Chernoff bound of ``P(X <= observed)``, ``X ~ Poisson(expected)``, element by element (1 where
    ``observed >= expected``)."""
    k, lam = np.asarray(observed, float), np.asarray(expected, float)
    below = (k < lam) & (lam > 0)
    safe_k, safe_lam = np.where(below, k, 1.0), np.where(below, lam, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        klog = np.where(safe_k > 0, safe_k * np.log(safe_k / safe_lam), 0.0)
    return np.where(below, np.exp(-(safe_lam - safe_k + klog)), 1.0)


def binomial_upper_bound(k: F64, n: F64, p: float) -> F64:
    """Chernoff bound of ``P(X >= k)``, ``X ~ Binomial(n, p)``, element by element (1 where ``k / n <= p``)."""
    k, n = np.asarray(k, float), np.asarray(n, float)
    p = min(max(p, 1e-12), 1 - 1e-12)
    q = np.where(n > 0, k / np.maximum(n, 1.0), 0.0)
    above = (n > 0) & (q > p)
    q = np.clip(q, 1e-12, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rest = np.where(q < 1.0, (1 - q) * np.log(np.maximum(1 - q, 1e-300) / (1 - p)), 0.0)
        kl = q * np.log(q / p) + rest
    return np.where(above, np.exp(-n * kl), 1.0)


def shortfall_measurable(expected: float, alpha: float) -> bool:
    """Whether a shortfall can be significant at all: even no request served (``P = exp(-expected)``, exact)
    must be less likely than ``alpha``."""
    return expected > 0 and math.exp(-expected) < alpha
