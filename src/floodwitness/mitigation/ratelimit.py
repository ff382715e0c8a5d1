"""Rate limits measured on the baseline, and what they would have done to the incident.

No blocklist tool says what rate limit to set and what it would have cost legitimate users; with the
baseline and the attack side by side we can measure both. Four steps:

1. **Path classes.** Requests are split by path into ``asset``, ``api``, ``login`` and ``page`` (first
   matching pattern wins; the patterns are plain regular expressions that DuckDB's RE2 and nginx's PCRE
   read the same way, so the exported ``map`` classifies exactly as the measurement did). Each class
   gets its own limit, keyed by the client address (``ip``) or by address and path (``ip_uri``: "the
   same URL again and again", which is what floods do and people rarely do).
2. **What the audience needs** (exact, in SQL). nginx's ``limit_req`` is a leaky bucket: with rate
   ``r`` a client's excess after request ``i`` is ``W_i = max(0, W_{i-1} + 1 - r * dt_i)`` (``W_0 = 0``)
   and the request is rejected when ``W_i > burst``. Before a client's first rejection this is a
   Lindley recursion with the closed form ``W_i = (i - r t_i) + max_{j <= i} (r t_j - j)``: a running
   maximum, one window function. Its maximum over a client's requests is the smallest burst that never
   rejects that client at rate ``r``; its quantiles over the baseline's clients give candidate bursts.
3. **The replay** (numpy, vectorised over clients and candidate limits). The incident's requests,
   counted per key and 1-second slot, go through every candidate limit at once with the same bucket,
   rejected requests not filling it (as in nginx). The loop runs over time slots, never over log
   lines; arrivals within one slot are treated as simultaneous (the usual second-resolution log
   already is), which can only reject more, never less, than nginx would.
4. **Settings on the trade-off curve.** For budgets of 0, 0.5% and 1% of legitimate clients limited
   (both among the known clients active during the incident and among the baseline's clients), the
   combination of per-class limits that rejects the most attack requests is chosen. The recommended
   setting is the gentlest one that stops at least 90% of the attack requests (else the strongest).

Labels: in the product, *attack* is the sources the analysis attributed to the attack and
*legitimate* is the clients known from the baseline (benchmarks pass the simulator's truth instead).
A legitimate request that repeats a request of the same client and path which had just failed (5xx,
408, 429 or 499 within two minutes) is a retry the attack provoked: with the limits in place the first
try would have been served, so such retries are left out of the replay and counted apart. Verified
crawlers, special-purpose ranges and the allowlist are exempt from every limit (in the replay and in
the exported configuration alike).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

import ibis
import numpy as np
import pyarrow as pa

from floodwitness.analysis.composition import ASSET_PATTERN, in_ranges

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from floodwitness.analysis.dataset import Dataset
    from floodwitness.mitigation.protected import ProtectedRanges


@dataclass(frozen=True)
class PathClass:
    """A kind of request that gets its own limit."""

    name: str
    pattern: str | None  #: regular expression on the lower-cased path; None: every other request
    description: str


#: The classes, first match wins. Patterns stay within the syntax RE2 (DuckDB) and PCRE (nginx) share.
PATH_CLASSES: Final[tuple[PathClass, ...]] = (
    PathClass("asset", ASSET_PATTERN, "static files: stylesheets, scripts, images, fonts"),
    PathClass("api", r"^/(api|graphql|rest)(/|$)|^/v[0-9]+/", "API calls: /api/..., /graphql, /v1/..."),
    PathClass("login", r"/(login|log-in|signin|sign-in|logon|auth|oauth|session|sessions|password|register|signup"
                       r"|sign-up|wp-login\.php|xmlrpc\.php)(/|\.|$)",
              "sign-in, sign-up and password forms"),
    PathClass("page", None, "everything else: pages, search, forms"),
)
CLASS_NAMES: Final = tuple(c.name for c in PATH_CLASSES)

#: How a limit counts requests: per client address, or per client address and path.
KEYS: Final[dict[str, str]] = {"ip": "per client address", "ip_uri": "per client address and path"}

#: Candidate rates in requests per minute (nginx takes whole numbers of r/m or r/s).
RATES_PER_MINUTE: Final = (1, 2, 3, 6, 10, 20, 30, 60, 120, 300, 600, 1200)
#: Candidate bursts: these quantiles of what the baseline's clients need at each rate.
BURST_QUANTILES: Final = (1.0, 0.999, 0.995, 0.99)
#: Bursts tried for a class the baseline never saw (nothing to measure them on).
FALLBACK_BURSTS: Final = (5, 10, 20)
#: The settings offered: name and the share of legitimate clients it may limit at least once.
BUDGETS: Final = (("gentle", 0.0), ("balanced", 0.005), ("firm", 0.01))
#: The recommended setting is the gentlest that stops at least this share of the attack's requests.
TARGET_STOP: Final = 0.9
SLOT_SECONDS: Final = 1
RETRY_SECONDS: Final = 120
#: Candidates kept per class before combining classes (the Pareto front, thinned to this many).
MAX_FRONT: Final = 24
_NONE: Final = 1e12  # rate and burst of "no limit"
_EPS: Final = 1e-6  # float slack: nginx counts in whole milliseconds


@dataclass(frozen=True)
class Limit:
    """One class's limit: ``rate_per_minute`` with ``burst``, counted per ``key``; ``key`` None: no limit."""

    path_class: str
    key: str | None
    rate_per_minute: int = 0
    burst: int = 0

    @property
    def nginx_rate(self) -> str:
        r = self.rate_per_minute
        return f"{r // 60}r/s" if r % 60 == 0 else f"{r}r/m"

    @property
    def haproxy(self) -> tuple[int, int]:
        """``(period_seconds, max_requests)`` of an HAProxy ``http_req_rate`` equivalent.

        HAProxy counts requests in a sliding period instead of draining a bucket; the period is long
        enough to hold the burst, and the limit is what the bucket lets through in it (rate x period +
        burst + 1). Unlike nginx, HAProxy also counts the requests it denies, so a flooder that keeps
        flooding stays denied: at least as strict as the replayed nginx limit.
        """
        seconds = max(10, math.ceil(60 * (self.burst + 1) / max(self.rate_per_minute, 1)))
        seconds = min(seconds, 3600)
        return seconds, math.ceil(self.rate_per_minute * seconds / 60 + self.burst + 1)

    def to_dict(self) -> dict[str, Any]:
        if self.key is None:
            return {"class": self.path_class, "key": None}
        period, limit = self.haproxy
        return {"class": self.path_class, "key": self.key, "rate_per_minute": self.rate_per_minute,
                "nginx_rate": self.nginx_rate, "burst": self.burst, "nodelay": True,
                "haproxy": {"period_seconds": period, "max_requests": limit}}


@dataclass(frozen=True)
class ReplayCounts:
    """What a set of limits did to the replayed incident."""

    attack_requests: int
    attack_rejected: int
    legit_requests: int
    legit_rejected: int
    legit_clients: int
    legit_clients_hit: int  #: legitimate clients with at least one request rejected

    @property
    def attack_share(self) -> float:
        return self.attack_rejected / self.attack_requests if self.attack_requests else 0.0

    @property
    def legit_client_share(self) -> float:
        return self.legit_clients_hit / self.legit_clients if self.legit_clients else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"attack_requests": self.attack_requests, "attack_rejected": self.attack_rejected,
                "attack_rejected_share": round(self.attack_share, 4),
                "legit_requests": self.legit_requests, "legit_rejected": self.legit_rejected,
                "legit_rejected_share": round(self.legit_rejected / self.legit_requests, 5)
                if self.legit_requests else 0.0,
                "legit_clients": self.legit_clients, "legit_clients_hit": self.legit_clients_hit,
                "legit_clients_hit_share": round(self.legit_client_share, 5)}


@dataclass(frozen=True)
class Setting:
    """One point of the trade-off curve: a limit per class and what it did."""

    name: str
    budget: float  #: share of legitimate clients it was allowed to limit
    limits: tuple[Limit, ...]
    replay: ReplayCounts
    per_class: dict[str, ReplayCounts]
    baseline_clients: int
    baseline_clients_hit: int  #: baseline clients that would have been limited at least once on a normal day

    def to_dict(self, recommended: bool) -> dict[str, Any]:
        return {"name": self.name, "budget_share": self.budget, "recommended": recommended,
                "limits": [x.to_dict() for x in self.limits], "replay": self.replay.to_dict(),
                "replay_by_class": {k: v.to_dict() for k, v in self.per_class.items()},
                "baseline": {"clients": self.baseline_clients, "clients_hit": self.baseline_clients_hit,
                             "clients_hit_share": round(self.baseline_clients_hit / self.baseline_clients, 5)
                             if self.baseline_clients else 0.0}}


@dataclass(frozen=True)
class RateLimitAdvice:
    """The settings, the recommended one, and what they were measured on."""

    settings: tuple[Setting, ...]
    recommended: str
    window: tuple[datetime, datetime]
    class_stats: dict[str, dict[str, Any]]
    retries_left_out: int
    exempt_clients: int
    notes: tuple[str, ...] = field(default=())

    def setting(self, name: str) -> Setting:
        return next(s for s in self.settings if s.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "nginx limit_req leaky bucket (nodelay) per path class; bursts from the baseline's "
                      "per-client needs (exact), incident replayed in 1-second slots",
            "classes": [{"name": c.name, "pattern": c.pattern, "description": c.description,
                         "baseline": self.class_stats.get(c.name, {})} for c in PATH_CLASSES],
            "keys": KEYS,
            "replay_window": [_iso(self.window[0]), _iso(self.window[1])],
            "retries_left_out": self.retries_left_out, "exempt_clients": self.exempt_clients,
            "target_attack_share": TARGET_STOP, "recommended": self.recommended,
            "settings": [s.to_dict(s.name == self.recommended) for s in self.settings],
            "notes": list(self.notes),
        }


def _iso(value: datetime) -> str:
    return value.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


# --- SQL: classes, exempt clients, the audience's needs, the replay input --------------------------


def path_class(t: Any) -> Any:
    """ibis expression: the class name of each request (see :data:`PATH_CLASSES`)."""
    path = t.path.lower()
    cases = [(path.re_search(c.pattern), c.name) for c in PATH_CLASSES if c.pattern is not None]
    default = next(c.name for c in PATH_CLASSES if c.pattern is None)
    return ibis.cases(*cases, else_=default)


def _class_index(t: Any) -> Any:
    path = t.path.lower()
    cases = [(path.re_search(c.pattern), i) for i, c in enumerate(PATH_CLASSES) if c.pattern is not None]
    return ibis.cases(*cases, else_=next(i for i, c in enumerate(PATH_CLASSES) if c.pattern is None))


def _exempt_ips(data: Dataset, t: Any, protected: ProtectedRanges) -> list[str]:
    """Distinct clients of ``t`` inside a protected range (one lookup per distinct address)."""
    ips = data.engine.ibis.to_pyarrow(t.select("client_ip").distinct()).column("client_ip").to_pylist()
    return [ip for ip in ips if ip is not None and protected.kind_of(ip) is not None]


def _memtable(values: Collection[str]) -> Any:
    return ibis.memtable(pa.table({"ip": pa.array(sorted(values), pa.string())}))


def _segments(keys: np.ndarray) -> np.ndarray:
    """Start index of each run of equal values in ``keys`` (sorted so equal values are contiguous)."""
    return np.r_[0, np.flatnonzero(np.diff(keys)) + 1] if len(keys) else np.zeros(0, dtype=np.int64)


def _group_needs(group: np.ndarray, t_ms: np.ndarray) -> np.ndarray:
    """Per group (rows contiguous per group, in time order; times in whole milliseconds, nginx's own
    resolution): the smallest burst that never rejects the group at each candidate rate, shape
    (groups, rates). That is ``ceil(max_i W_i)`` with ``W_i = (i - r t_i) + max_{j <= i} (r t_j - j)``.

    Computed exactly in integers (W scaled by 60,000 ms per minute). The running maximum is taken over
    the whole array at once: each group's values are lifted by more than any spread of values, so a
    maximum never carries over from one group into the next.
    """
    starts = _segments(group)
    if not len(starts):
        return np.zeros((0, len(RATES_PER_MINUTE)), dtype=np.int64)
    sizes = np.diff(np.r_[starts, len(group)])
    first = np.repeat(starts, sizes)
    i = np.arange(len(group), dtype=np.int64) - first
    rel = t_ms.astype(np.int64) - t_ms[first].astype(np.int64)
    lift = np.repeat(np.arange(len(starts), dtype=np.int64), sizes)
    out = np.empty((len(starts), len(RATES_PER_MINUTE)), dtype=np.int64)
    for k, rpm in enumerate(RATES_PER_MINUTE):
        v = rpm * rel - 60_000 * i  # (r t - i) x 60,000
        lifted = v + lift * (int(v.max() - v.min()) + 1)
        w = np.maximum.accumulate(lifted) - lifted
        out[:, k] = -(-np.maximum.reduceat(w, starts) // 60_000)
    return out


def _needs(data: Dataset, base: Any, origin: datetime) -> dict[str, list[np.ndarray]]:
    """Per key and class: the burst each baseline client needs at each candidate rate (clients x rates)."""
    base = base.mutate(cls=_class_index(base),
                       t=base.ts.delta(ibis.literal(origin, type="timestamp('UTC')"), unit="millisecond"))
    base = base.mutate(uri=ibis.dense_rank().over(order_by=["cls", "client_ip", "path"]),
                       client=ibis.dense_rank().over(order_by=["cls", "client_ip"]))
    table = data.engine.ibis.to_pyarrow(base.order_by(["cls", "client", "ts", "file_id", "line"]).select(
        "cls", "client", "uri", "t"))
    cls = table.column("cls").to_numpy()
    client = table.column("client").to_numpy()
    uri = table.column("uri").to_numpy()
    t = table.column("t").to_numpy().astype(np.int64)
    out: dict[str, list[np.ndarray]] = {}
    per_client = _group_needs(client, t)  # rows are contiguous per (class, client) already
    client_cls = cls[_segments(client)]
    out["ip"] = [per_client[client_cls == ci] for ci in range(len(PATH_CLASSES))]
    order = np.argsort(uri, kind="stable")  # contiguous per (class, client, path), still in time order
    per_uri = _group_needs(uri[order], t[order])
    uri_starts = _segments(uri[order])
    owner = client[order][uri_starts]  # groups of one client are contiguous (uri ranks by class, client, path)
    worst = np.maximum.reduceat(per_uri, _segments(owner), axis=0) if len(owner) else per_uri
    out["ip_uri"] = [worst[client_cls == ci] for ci in range(len(PATH_CLASSES))]
    return out


def _class_stats(data: Dataset, base: Any) -> dict[str, dict[str, Any]]:
    """Per class: baseline clients, requests and percentiles of each client's busiest minute."""
    base = base.mutate(cls=path_class(base), minute=data.engine.time_bucket(base.ts, 60))
    per_min = base.group_by(["cls", "client_ip", "minute"]).aggregate(n=base.count())
    peak = per_min.group_by(["cls", "client_ip"]).aggregate(peak=per_min.n.max(), requests=per_min.n.sum())
    agg = peak.group_by("cls").aggregate(
        clients=peak.count(), requests=peak.requests.sum(), p50=peak.peak.quantile(0.5),
        p90=peak.peak.quantile(0.9), p99=peak.peak.quantile(0.99), max=peak.peak.max())
    out: dict[str, dict[str, Any]] = {}
    for row in data.engine.ibis.to_pyarrow(agg).to_pylist():
        out[row["cls"]] = {"clients": row["clients"], "requests": row["requests"], "busiest_minute_per_client": {
            "p50": row["p50"], "p90": row["p90"], "p99": row["p99"], "max": row["max"]}}
    return out


@dataclass
class _Rows:
    """Replay input for one key: (group, slot) counts sorted by slot, with class, client and label."""

    group: np.ndarray
    slot: np.ndarray
    count: np.ndarray
    cls: np.ndarray  # index into PATH_CLASSES; len(PATH_CLASSES) for exempt clients
    client: np.ndarray  # client id (dense rank over the window's clients)
    attack: np.ndarray  # bool
    groups: int


def _replay_input(data: Dataset, window: tuple[datetime, datetime], attack: Collection[str],
                  legit: Collection[str], exempt: Collection[str]) -> tuple[dict[str, _Rows], int]:
    """The incident's attack and legitimate requests counted per key and slot (one query), and how many
    legitimate requests were provoked retries (left out)."""
    w = in_ranges(data.requests, [window])
    attack_t, legit_t, exempt_t = _memtable(attack), _memtable(legit), _memtable(exempt)
    w = w.mutate(is_attack=w.client_ip.isin(attack_t.ip), is_legit=w.client_ip.isin(legit_t.ip))
    w = w.filter(w.is_attack | w.is_legit)
    order = ibis.window(group_by=["client_ip", "path"], order_by=["ts", "file_id", "line"])
    failed = (w.status >= 500) | w.status.isin([408, 429, 499])
    w = w.mutate(prev_failed=failed.lag().over(order), prev_ts=w.ts.lag().over(order))
    retry = (~w.is_attack & w.prev_failed.fill_null(False)
             & (w.ts.delta(w.prev_ts, unit="second") <= RETRY_SECONDS).fill_null(False))
    start = ibis.literal(window[0], type="timestamp('UTC')")
    w = w.mutate(retry=retry, slot=w.ts.delta(start, unit="second") // SLOT_SECONDS,
                 cls=ibis.ifelse(w.client_ip.isin(exempt_t.ip), len(PATH_CLASSES), _class_index(w)))
    per = w.group_by(["cls", "client_ip", "path", "slot", "retry"]).aggregate(n=w.count(), attack=w.is_attack.max())
    per = per.mutate(uri=ibis.dense_rank().over(order_by=["cls", "client_ip", "path"]),
                     ip=ibis.dense_rank().over(order_by=["cls", "client_ip"]),
                     client=ibis.dense_rank().over(order_by="client_ip"))
    table = data.engine.ibis.to_pyarrow(per.select("uri", "ip", "client", "cls", "slot", "retry", "n", "attack"))

    def col(name: str, dtype: Any) -> np.ndarray:
        return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=dtype)

    retry_rows = col("retry", bool)
    keep = ~retry_rows
    n = col("n", np.int64)
    cols = {name: col(name, np.int64)[keep] for name in ("uri", "ip", "client", "cls", "slot")}
    attack_rows, count = col("attack", bool)[keep], n[keep]
    out = {}
    for key, group in (("ip_uri", cols["uri"]), ("ip", cols["ip"])):
        groups = int(group.max()) + 1 if len(group) else 0
        combined = cols["slot"] * max(groups, 1) + group  # sorted by slot, then group
        uniq, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
        out[key] = _Rows(group[first], cols["slot"][first], np.bincount(inverse, weights=count).astype(np.int64)
                         if len(uniq) else count[:0], cols["cls"][first], cols["client"][first], attack_rows[first],
                         groups)
    return out, int(n[retry_rows].sum())


# --- the replay engine ------------------------------------------------------------------------------


@dataclass
class _Outcome:
    """Per class and candidate: attack and legitimate requests rejected, and which legitimate rows were hit."""

    attack_rejected: np.ndarray  # (classes + 1, C)
    legit_rejected: np.ndarray  # (classes + 1, C)
    legit_hit: np.ndarray  # (legit rows, C) bool
    legit_rows: np.ndarray  # indexes of the legitimate rows in _Rows


def simulate(rows: _Rows, rates: np.ndarray, bursts: np.ndarray) -> _Outcome:
    """Run every candidate limit over the rows at once. ``rates`` (requests per second) and ``bursts``
    have shape (classes + 1, C): candidate c of the row's class applies to each row."""
    ncls, ncand = rates.shape
    level = np.zeros((rows.groups, ncand))
    last = np.zeros(rows.groups)
    legit = ~rows.attack
    legit_index = np.cumsum(legit) - 1
    attack_rej = np.zeros((ncls, ncand), dtype=np.int64)
    legit_rej = np.zeros((ncls, ncand), dtype=np.int64)
    legit_hit = np.zeros((int(legit.sum()), ncand), dtype=bool)
    if not len(rows.slot):
        return _Outcome(attack_rej, legit_rej, legit_hit, np.flatnonzero(legit))
    cuts = np.flatnonzero(np.diff(rows.slot)) + 1
    for a, e in zip(np.r_[0, cuts], np.r_[cuts, len(rows.slot)], strict=True):
        g, c = rows.group[a:e], rows.cls[a:e]
        now = float(rows.slot[a] * SLOT_SECONDS)
        drained = np.maximum(0.0, level[g] - rates[c] * (now - last[g])[:, None])
        room = np.maximum(0.0, np.floor(bursts[c] - drained + _EPS) + 1.0)
        count = rows.count[a:e, None]
        accepted = np.minimum(count, room)
        level[g] = drained + accepted
        last[g] = now
        rejected = (count - accepted).astype(np.int64)
        att = rows.attack[a:e]
        if att.any():
            np.add.at(attack_rej, c[att], rejected[att])
        if not att.all():
            np.add.at(legit_rej, c[~att], rejected[~att])
            legit_hit[legit_index[a:e][~att]] = rejected[~att] > 0
    return _Outcome(attack_rej, legit_rej, legit_hit, np.flatnonzero(legit))


# --- choosing settings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    limit: Limit
    column: int  # column in its key's outcome
    attack_rejected: int
    legit_hit: int
    baseline_hit: int


def _bursts(needs: np.ndarray) -> list[int]:
    if not len(needs):
        return list(FALLBACK_BURSTS)
    ordered = np.sort(needs)
    out = set()
    for q in BURST_QUANTILES:
        index = max(0, math.ceil(q * len(ordered)) - 1)
        out.add(max(0, int(ordered[index])))
    return sorted(out)


def _grid(needs: dict[str, list[np.ndarray]]) -> dict[str, list[list[tuple[int, int, np.ndarray]]]]:
    """Per key, per class: candidate (rate, burst, needs of the baseline's clients at that rate)."""
    out: dict[str, list[list[tuple[int, int, np.ndarray]]]] = {k: [[] for _ in PATH_CLASSES] for k in KEYS}
    for key in KEYS:
        for ci in range(len(PATH_CLASSES)):
            for k, r in enumerate(RATES_PER_MINUTE):
                sel = needs[key][ci][:, k]
                out[key][ci].extend((r, b, sel) for b in _bursts(sel))
    return out


def _front(cands: list[_Candidate]) -> list[_Candidate]:
    """The candidates no other beats on attack stopped, legitimate hits and baseline hits (thinned)."""
    ordered = sorted(cands, key=lambda x: (x.legit_hit + x.baseline_hit, -x.attack_rejected,
                                           -x.limit.rate_per_minute, -x.limit.burst))
    kept: list[_Candidate] = []
    for cand in ordered:
        if not any(k.attack_rejected >= cand.attack_rejected and k.legit_hit <= cand.legit_hit
                   and k.baseline_hit <= cand.baseline_hit for k in kept):
            kept.append(cand)
    if len(kept) > MAX_FRONT:
        step = len(kept) / MAX_FRONT
        kept = [kept[int(i * step)] for i in range(MAX_FRONT)]
    return kept


def _choose(per_class: list[list[_Candidate]], legit_budget: int, base_budget: int) -> list[_Candidate]:
    """The combination (one candidate per class) stopping the most attack requests within both budgets.
    Dynamic programming over classes on the (legitimate hits, baseline hits) used."""
    states: dict[tuple[int, int], tuple[int, list[_Candidate]]] = {(0, 0): (0, [])}
    for cands in per_class:
        nxt: dict[tuple[int, int], tuple[int, list[_Candidate]]] = {}
        for (lh, bh), (score, chosen) in states.items():
            for cand in cands:
                state = (lh + cand.legit_hit, bh + cand.baseline_hit)
                if state[0] > legit_budget or state[1] > base_budget:
                    continue
                value = score + cand.attack_rejected
                if state not in nxt or value > nxt[state][0]:
                    nxt[state] = (value, [*chosen, cand])
        states = nxt
    best = max(states.items(), key=lambda kv: (kv[1][0], -(kv[0][0] + kv[0][1])))
    return best[1][1]


def _counts(rows: _Rows, out: _Outcome, cls: int, column: int, hit_clients: set[int]) -> ReplayCounts:
    in_cls = rows.cls == cls
    legit_in = in_cls & ~rows.attack
    return ReplayCounts(
        attack_requests=int(rows.count[in_cls & rows.attack].sum()),
        attack_rejected=int(out.attack_rejected[cls, column]),
        legit_requests=int(rows.count[legit_in].sum()),
        legit_rejected=int(out.legit_rejected[cls, column]),
        legit_clients=len(np.unique(rows.client[legit_in])), legit_clients_hit=len(hit_clients))


def _hit_clients(rows: _Rows, out: _Outcome, cls: int, column: int) -> set[int]:
    legit_cls = rows.cls[out.legit_rows] == cls
    hit = out.legit_hit[:, column] & legit_cls
    return set(rows.client[out.legit_rows[hit]].tolist())


# --- the entry points -------------------------------------------------------------------------------


def _arrays(grid: list[list[tuple[int, int, np.ndarray]]]) -> tuple[np.ndarray, np.ndarray]:
    """Rates (per second) and bursts per class and column; column 0 is "no limit", the exempt row too."""
    width = 1 + max(len(c) for c in grid)
    rates = np.full((len(PATH_CLASSES) + 1, width), _NONE)
    bursts = np.full((len(PATH_CLASSES) + 1, width), _NONE)
    for ci, cands in enumerate(grid):
        for j, (r, b, _) in enumerate(cands, start=1):
            rates[ci, j], bursts[ci, j] = r / 60.0, b
    return rates, bursts


def recommend(data: Dataset, window: tuple[datetime, datetime], baseline: Sequence[tuple[datetime, datetime]],
              attack: Collection[str], legit: Collection[str], protected: ProtectedRanges) -> RateLimitAdvice:
    """Propose per-class limits from the baseline and measure them by replaying ``window``."""
    incident = in_ranges(data.requests, [window])
    base = in_ranges(data.requests, list(baseline))
    exempt = set(_exempt_ips(data, incident, protected)) | set(_exempt_ips(data, base, protected))
    if exempt:
        base = base.filter(~base.client_ip.isin(_memtable(exempt).ip))
    origin = min((a for a, _ in baseline), default=window[0])
    needs = _needs(data, base, origin)
    baseline_clients = int(data.engine.scalar(base.client_ip.nunique()) or 0)
    grid = _grid(needs)
    per_key, retries = _replay_input(data, window, set(attack), set(legit) - set(attack), exempt)
    outcomes = {}
    for key, rows in per_key.items():
        rates, bursts = _arrays(grid[key])
        outcomes[key] = simulate(rows, rates, bursts)
    # legitimate clients over every class: the same in both keys' rows
    rows0 = per_key["ip"]
    legit_total = len(np.unique(rows0.client[~rows0.attack]))
    per_class: list[list[_Candidate]] = []
    for ci, pc in enumerate(PATH_CLASSES):
        cands = [_Candidate(Limit(pc.name, None), 0, 0, 0, 0)]
        for key in KEYS:
            out = outcomes[key]
            for j, (r, b, needs_at) in enumerate(grid[key][ci], start=1):
                hits = len(_hit_clients(per_key[key], out, ci, j))
                cands.append(_Candidate(Limit(pc.name, key, r, b), j, int(out.attack_rejected[ci, j]), hits,
                                        int((needs_at > b).sum())))
        per_class.append(_front(cands))
    settings = []
    for name, budget in BUDGETS:
        chosen = _choose(per_class, math.floor(budget * legit_total), math.floor(budget * baseline_clients))
        settings.append(_setting(name, budget, chosen, per_key, outcomes, baseline_clients))
    reaching = [s for s in settings if s.replay.attack_share >= TARGET_STOP]
    best = reaching[0] if reaching else max(settings, key=lambda s: s.replay.attack_rejected)
    notes = _notes(settings, retries, exempt)
    return RateLimitAdvice(tuple(settings), best.name, window, _class_stats(data, base), retries, len(exempt),
                           tuple(notes))


def _setting(name: str, budget: float, chosen: list[_Candidate], per_key: dict[str, _Rows],
             outcomes: dict[str, _Outcome], baseline_clients: int) -> Setting:
    per_class: dict[str, ReplayCounts] = {}
    hit_all: set[int] = set()
    for ci, cand in enumerate(chosen):
        key = cand.limit.key or "ip"
        rows, out = per_key[key], outcomes[key]
        hits = _hit_clients(rows, out, ci, cand.column)
        hit_all |= hits
        per_class[cand.limit.path_class] = _counts(rows, out, ci, cand.column, hits)
    rows = per_key["ip"]
    exempt_attack = int(rows.count[(rows.cls == len(PATH_CLASSES)) & rows.attack].sum())
    exempt_legit = int(rows.count[(rows.cls == len(PATH_CLASSES)) & ~rows.attack].sum())
    total = ReplayCounts(
        attack_requests=sum(c.attack_requests for c in per_class.values()) + exempt_attack,
        attack_rejected=sum(c.attack_rejected for c in per_class.values()),
        legit_requests=sum(c.legit_requests for c in per_class.values()) + exempt_legit,
        legit_rejected=sum(c.legit_rejected for c in per_class.values()),
        legit_clients=len(np.unique(rows.client[~rows.attack])), legit_clients_hit=len(hit_all))
    return Setting(name, budget, tuple(c.limit for c in chosen), total, per_class, baseline_clients,
                   sum(c.baseline_hit for c in chosen))


def _notes(settings: list[Setting], retries: int, exempt: set[str]) -> list[str]:
    notes = []
    if retries:
        notes.append(f"{retries:,} legitimate requests were retries of a request that had just failed; they are "
                     "left out of the replay (with the limits in place the first try would have been served)")
    if exempt:
        notes.append(f"{len(exempt):,} clients in verified-crawler, special-purpose or allowlisted ranges are exempt "
                     "from every limit")
    if not any(s.replay.attack_share >= TARGET_STOP for s in settings):
        best = max(s.replay.attack_share for s in settings)
        notes.append(f"no setting stops {TARGET_STOP:.0%} of the attack's requests within 1% of legitimate clients "
                     f"(best: {best:.1%}): per-client limits cannot stop sources that each send little; "
                     "block them (the blocklist) or filter upstream")
    return notes


def evaluate(data: Dataset, window: tuple[datetime, datetime], limits: Sequence[Limit], attack: Collection[str],
             legit: Collection[str], protected: ProtectedRanges) -> ReplayCounts:
    """Replay ``window`` through one set of limits with the given labels (benchmarks pass the truth)."""
    incident = in_ranges(data.requests, [window])
    exempt = set(_exempt_ips(data, incident, protected))
    per_key, _ = _replay_input(data, window, set(attack), set(legit) - set(attack), exempt)
    by_class = {x.path_class: x for x in limits}
    totals = [0, 0, 0, 0]
    hit_all: set[int] = set()
    legit_clients: set[int] = set()
    for key in KEYS:
        rows = per_key[key]
        if key == "ip":
            legit_clients = set(rows.client[~rows.attack].tolist())
            totals[0] += int(rows.count[rows.attack].sum())
            totals[2] += int(rows.count[~rows.attack].sum())
        rates = np.full((len(PATH_CLASSES) + 1, 1), _NONE)
        bursts = np.full((len(PATH_CLASSES) + 1, 1), _NONE)
        for ci, pc in enumerate(PATH_CLASSES):
            limit = by_class.get(pc.name)
            if limit is not None and limit.key == key:
                rates[ci, 0], bursts[ci, 0] = limit.rate_per_minute / 60.0, limit.burst
        out = simulate(rows, rates, bursts)
        totals[1] += int(out.attack_rejected.sum())
        totals[3] += int(out.legit_rejected.sum())
        hit_all |= set(rows.client[out.legit_rows[out.legit_hit[:, 0]]].tolist())
    return ReplayCounts(totals[0], totals[1], totals[2], totals[3], len(legit_clients), len(hit_all))


def limits_from_dict(setting: dict[str, Any]) -> tuple[Limit, ...]:
    """The limits of a setting as the report stores it."""
    return tuple(Limit(x["class"], x.get("key"), int(x.get("rate_per_minute") or 0), int(x.get("burst") or 0))
                 for x in setting.get("limits", []))


def replay_window(start: str, end: str) -> tuple[datetime, datetime]:
    """A report's ``replay_window`` (RFC 3339 strings) as naive UTC datetimes."""
    def parse(v: str) -> datetime:
        return datetime.fromisoformat(v.replace("Z", "+00:00")).replace(tzinfo=None)
    a, b = parse(start), parse(end)
    return a, max(b, a + timedelta(seconds=1))
