"""The web server: nginx in front of an application of finite capacity, which may also be broken.

Offered load above capacity makes nginx shed requests (503, small body, no upstream time) and makes
the served ones slow (queueing). A bad deploy makes the application answer 500/502/503/504 with
high upstream times, first partially (degraded) and then mostly (broken), until it is rolled back.
API clients retry 502/503 with exponential backoff; people reload error pages now and then.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from floodwitness.simulate import events as ev
from floodwitness.simulate.events import F64, I16, Events

#: nginx's own error pages (server_tokens off) and the application's error bodies.
NGINX_503 = 197
NGINX_502 = 157
NGINX_504 = 167
APP_500_HTML = 1_853
APP_503_HTML = 1_192
API_ERROR = 71
#: proxy_read_timeout: how long nginx waits for the application before a 504.
UPSTREAM_TIMEOUT = 30.0

MAX_RETRIES = 10
#: Share of requests a healthy application fails anyway (bugs, deadlocks, a restarting worker).
BACKGROUND_ERRORS = 0.0003
RETRY_BASE = 0.5
RETRY_CAP = 10.0


@dataclass(frozen=True)
class Failure:
    """A bad deploy: degraded from ``start``, mostly broken from ``broken``, rolled back at ``recover``,
    healthy again at ``end`` (seconds from the start of the log)."""

    start: float
    broken: float
    recover: float
    end: float
    p_degraded: float  # share of failing requests at the end of the degraded phase
    p_broken: float  # share of failing requests while broken


@dataclass
class Profile:
    """Per-second state of the server."""

    p_fail: F64
    phase: npt.NDArray[np.int8]  # 0 healthy, 1 degraded, 2 broken, 3 recovering
    slow: F64  # latency multiplier of the application
    p_shed: F64
    rho: F64

    @staticmethod
    def build(n_sec: int, failure: Failure | None, rng: np.random.Generator) -> Profile:
        p = np.zeros(n_sec)
        phase = np.zeros(n_sec, dtype=np.int8)
        slow = np.ones(n_sec)
        if failure is not None:
            s = np.arange(n_sec, dtype=np.float64)
            f = failure
            noise = np.repeat(rng.normal(1.0, 0.08, size=n_sec // 10 + 1), 10)[:n_sec]
            deg = (s >= f.start) & (s < f.broken)
            x = (s - f.start) / max(f.broken - f.start, 1.0)
            p = np.where(deg, 0.04 + (f.p_degraded - 0.04) * x, p)
            slow = np.where(deg, 2.0 + 10.0 * x, slow)
            phase[deg] = 1
            brk = (s >= f.broken) & (s < f.recover)
            p = np.where(brk, f.p_broken * noise, p)
            slow = np.where(brk, 6.0, slow)
            phase[brk] = 2
            rec = (s >= f.recover) & (s < f.end)
            y = (s - f.recover) / max(f.end - f.recover, 1.0)
            p = np.where(rec, f.p_broken * (1 - y) ** 2, p)
            slow = np.where(rec, 1.0 + 5.0 * (1 - y), slow)
            phase[rec] = 3
        p = np.maximum(p, BACKGROUND_ERRORS)
        return Profile(p_fail=np.clip(p, 0.0, 0.99), phase=phase, slow=slow,
                       p_shed=np.zeros(n_sec), rho=np.zeros(n_sec))

    def set_load(self, t: F64, dynamic: npt.NDArray[np.bool_], capacity: float, extra: float = 0.0) -> None:
        """Derive overload (utilisation and shedding probability) from the dynamic requests offered."""
        n = self.p_fail.shape[0]
        sec = np.clip(t[dynamic].astype(np.int64), 0, n - 1)
        load = np.bincount(sec, minlength=n).astype(np.float64) + extra
        kernel = np.ones(5) / 5.0
        smooth = np.convolve(load, kernel, mode="same")
        self.rho = smooth / capacity
        self.p_shed = np.clip(1.0 - 0.95 / np.maximum(self.rho, 1e-9), 0.0, 0.97).astype(np.float64)


# Status mix of failing requests, by phase (degraded, broken, recovering).
_MIX_CODES = np.array([500, 502, 503, 504], dtype=np.int16)
_MIX = np.array([
    [0.75, 0.15, 0.0, 0.10],
    [0.70, 0.00, 0.00, 0.30],
    [0.12, 0.45, 0.38, 0.05],
    [0.35, 0.30, 0.30, 0.05],
])


def decide(rng: np.random.Generator, t: F64, prof: Profile) -> tuple[I16, npt.NDArray[np.bool_]]:
    """For dynamic requests arriving at ``t``: the error status (0 = none) and whether nginx shed it."""
    n = t.shape[0]
    s = np.clip(t.astype(np.int64), 0, prof.p_fail.shape[0] - 1)
    u = rng.random(n)
    shed = u < prof.p_shed[s]
    status = np.zeros(n, dtype=np.int16)
    status[shed] = 503
    fail = ~shed & (rng.random(n) < prof.p_fail[s])
    if fail.any():
        ph = prof.phase[s[fail]]
        cum = np.cumsum(_MIX[ph], axis=1)
        r = rng.random(int(ph.shape[0]))[:, None]
        status[fail] = _MIX_CODES[np.minimum((r > cum).sum(axis=1), 3)]
    # An application past capacity also times out now and then.
    over = ~shed & ~fail & (prof.rho[s] > 1.0)
    slow_out = over & (rng.random(n) < 0.05 * np.clip(prof.rho[s] - 1.0, 0.0, 1.0))
    status[slow_out] = 504
    return status, shed


def finish(rng: np.random.Generator, e: Events, prof: Profile,
           chunk: int = 1_000_000) -> tuple[I16, npt.NDArray[np.int32], F64, F64]:
    """Status, body bytes, request time and upstream time (-1 for none) of every row."""
    n = len(e)
    status = np.empty(n, dtype=np.int16)
    size = np.empty(n, dtype=np.int32)
    rt = np.empty(n, dtype=np.float64)
    ut = np.empty(n, dtype=np.float64)
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        status[a:b], size[a:b], rt[a:b], ut[a:b] = _finish(rng, e.take(np.arange(a, b)), prof)
    return status, size, rt, ut


def _finish(rng: np.random.Generator, e: Events,
            prof: Profile) -> tuple[I16, npt.NDArray[np.int32], F64, F64]:
    n = len(e)
    s = np.clip(e.t.astype(np.int64), 0, prof.p_fail.shape[0] - 1)
    dyn = e.cls == ev.DYNAMIC
    fixed = (e.flags & ev.FIXED) != 0
    status = e.status.copy()
    noup = (e.flags & ev.NOUP) != 0
    todo = np.flatnonzero(dyn & ~fixed)
    err, shed = decide(rng, e.t[todo], prof)
    status[todo] = np.where(err > 0, err, status[todo])
    noup[todo] |= shed
    noup |= ~dyn

    api = e.role == ev.API
    size = e.size.copy()
    size = np.where(status == 500, np.where(api, API_ERROR, APP_500_HTML), size)
    size = np.where(status == 502, NGINX_502, size)
    size = np.where((status == 503) & noup, NGINX_503, size)
    size = np.where((status == 503) & ~noup, np.where(api, API_ERROR, APP_503_HTML), size)
    size = np.where(status == 504, NGINX_504, size)

    rho = prof.rho[s]
    r = np.minimum(rho, 0.97)
    queue = 1.0 + 0.4 * r**3 / (1.0 - r)
    backlog = np.where(rho > 1.0, rng.uniform(0.3, 2.5, size=n) * np.minimum(rho - 1.0, 3.0), 0.0)
    ut = e.svc * queue * prof.slow[s] * rng.lognormal(0.0, 0.25, size=n) + backlog
    ut = np.where(status == 500, rng.lognormal(np.log(np.where(prof.phase[s] == 1, 2.0, 0.4)), 0.7), ut)
    ut = np.where(status == 502, rng.uniform(0.0, 0.002, size=n), ut)
    ut = np.where(status == 503, rng.lognormal(np.log(0.01), 0.5, size=n), ut)
    # Whatever the application has not answered by proxy_read_timeout becomes nginx's 504.
    late = ~noup & (ut > UPSTREAM_TIMEOUT)
    status = np.where(late, 504, status).astype(np.int16)
    size = np.where(late, NGINX_504, size)
    ut = np.where(status == 504, UPSTREAM_TIMEOUT + rng.uniform(0.0, 0.005, size=n), ut)
    ut = np.where(noup, -1.0, ut)

    bandwidth = rng.lognormal(np.log(4e6), 0.8, size=n)
    transfer = size / bandwidth + rng.exponential(0.0015, size=n)
    rt = np.where(noup, transfer * (1.0 + 0.3 * np.minimum(rho, 5.0)), ut + transfer)
    rt = np.where(noup & (status == 503), rng.uniform(0.0, 0.002, size=n), rt)

    # Clients that give up: people after 5-30 s, apps at their 10 s read timeout, and now and then
    # someone who navigates away. nginx logs 499 with what was spent until then.
    waits = np.isin(e.role, (ev.HUMAN, ev.SURGE, ev.API)) & dyn & ~noup & ((status < 500) | (status == 504))
    patience = np.where(api, 10.0, rng.lognormal(np.log(12.0), 0.5, size=n))
    gone = waits & ((rt > patience) | (rng.random(n) < 0.0008))
    cut = np.minimum(patience, rt * rng.uniform(0.2, 1.0, size=n))
    status = np.where(gone, 499, status).astype(np.int16)
    size = np.where(gone, 0, size)
    rt = np.where(gone, cut, rt)
    ut = np.where(gone, cut, ut)
    return status, size.astype(np.int32), rt, ut


def retry_chains(rng: np.random.Generator, polls: Events, prof: Profile, *, duration: float,
                 app: npt.NDArray[np.bool_], refresh_path: int) -> Events:
    """API polls and the retries they cause: a 502/503 is retried after 0.5, 1, 2, 4 ... s (capped at
    10 s, +-25 % jitter) up to 10 times; mobile apps also POST a session refresh after each failure.
    Statuses are decided here (FIXED) because whether a client retries depends on them."""
    blocks: list[Events] = []
    cur = polls
    for k in range(MAX_RETRIES + 1):
        if len(cur) == 0:
            break
        err, shed = decide(rng, cur.t, prof)
        cur.status = np.where(err > 0, err, cur.status).astype(np.int16)
        cur.flags = (cur.flags | ev.FIXED | np.where(shed, ev.NOUP, 0)).astype(np.int8)
        blocks.append(cur)
        retry = (err == 502) | (err == 503)
        if k == MAX_RETRIES or not retry.any():
            break
        nxt = cur.take(retry)
        is_app = app[nxt.grp]
        if is_app.any():
            ref = nxt.take(is_app)
            ref.t = ref.t + rng.uniform(0.05, 0.3, size=len(ref))
            ref.path = np.full(len(ref), refresh_path, dtype=np.int32)
            ref.meth = np.full(len(ref), ev.POST, dtype=np.int8)
            ref.size = np.full(len(ref), 412, dtype=np.int32)
            ref.status = np.full(len(ref), 200, dtype=np.int16)
            ref.flags = np.full(len(ref), ev.RETRY, dtype=np.int8)
            ref = ref.take(ref.t < duration)
            if len(ref):
                rerr, rshed = decide(rng, ref.t, prof)
                ref.status = np.where(rerr > 0, rerr, ref.status).astype(np.int16)
                ref.flags = (ref.flags | ev.FIXED | np.where(rshed, ev.NOUP, 0)).astype(np.int8)
                blocks.append(ref)
        backoff = min(RETRY_BASE * 2.0**k, RETRY_CAP) * rng.uniform(0.75, 1.25, size=len(nxt))
        nxt.t = nxt.t + 0.05 + backoff
        nxt.status = np.full(len(nxt), 200, dtype=np.int16)
        nxt.flags = np.full(len(nxt), ev.RETRY, dtype=np.int8)
        cur = nxt.take(nxt.t < duration)
    return Events.concat(blocks)
