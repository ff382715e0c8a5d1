"""What the baseline's audience needs (exact, in SQL and integer numpy): the path class of each request,
the clients exempt from every limit, the smallest burst each baseline client needs at each candidate rate,
and each class's busiest minutes per client."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ibis
import numpy as np
import pyarrow as pa

from floodwitness.mitigation.ratelimit.limits import PATH_CLASSES, RATES_PER_MINUTE

if TYPE_CHECKING:
    from collections.abc import Collection
    from datetime import datetime

    from floodwitness.analysis.dataset import Dataset
    from floodwitness.mitigation.protected import ProtectedRanges


def path_class(t: Any) -> Any:
    """ibis expression: the class name of each request (see :data:`PATH_CLASSES`)."""
    path = t.path.lower()
    cases = [(path.re_search(c.pattern), c.name) for c in PATH_CLASSES if c.pattern is not None]
    default = next(c.name for c in PATH_CLASSES if c.pattern is None)
    return ibis.cases(*cases, else_=default)


def class_index(t: Any) -> Any:
    path = t.path.lower()
    cases = [(path.re_search(c.pattern), i) for i, c in enumerate(PATH_CLASSES) if c.pattern is not None]
    return ibis.cases(*cases, else_=next(i for i, c in enumerate(PATH_CLASSES) if c.pattern is None))


def exempt_ips(data: Dataset, t: Any, protected: ProtectedRanges) -> list[str]:
    """Distinct clients of ``t`` inside a protected range (one lookup per distinct address)."""
    ips = data.engine.ibis.to_pyarrow(t.select("client_ip").distinct()).column("client_ip").to_pylist()
    return [ip for ip in ips if ip is not None and protected.kind_of(ip) is not None]


def memtable(values: Collection[str]) -> Any:
    return ibis.memtable(pa.table({"ip": pa.array(sorted(values), pa.string())}))


def segments(keys: np.ndarray) -> np.ndarray:
    """Start index of each run of equal values in ``keys`` (sorted so equal values are contiguous)."""
    return np.r_[0, np.flatnonzero(np.diff(keys)) + 1] if len(keys) else np.zeros(0, dtype=np.int64)


def group_needs(group: np.ndarray, t_ms: np.ndarray) -> np.ndarray:
    """Per group (rows contiguous per group, in time order; times in whole milliseconds, nginx's own
    resolution): the smallest burst that never rejects the group at each candidate rate, shape
    (groups, rates). That is ``ceil(max_i W_i)`` with ``W_i = (i - r t_i) + max_{j <= i} (r t_j - j)``.

    Computed exactly in integers (W scaled by 60,000 ms per minute). The running maximum is taken over
    the whole array at once: each group's values are lifted by more than any spread of values, so a
    maximum never carries over from one group into the next.
    """
    starts = segments(group)
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


def client_needs(data: Dataset, base: Any, origin: datetime) -> dict[str, list[np.ndarray]]:
    """Per key and class: the burst each baseline client needs at each candidate rate (clients x rates)."""
    base = base.mutate(cls=class_index(base),
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
    per_client = group_needs(client, t)  # rows are contiguous per (class, client) already
    client_cls = cls[segments(client)]
    out["ip"] = [per_client[client_cls == ci] for ci in range(len(PATH_CLASSES))]
    order = np.argsort(uri, kind="stable")  # contiguous per (class, client, path), still in time order
    per_uri = group_needs(uri[order], t[order])
    uri_starts = segments(uri[order])
    owner = client[order][uri_starts]  # groups of one client are contiguous (uri ranks by class, client, path)
    worst = np.maximum.reduceat(per_uri, segments(owner), axis=0) if len(owner) else per_uri
    out["ip_uri"] = [worst[client_cls == ci] for ci in range(len(PATH_CLASSES))]
    return out


def class_stats(data: Dataset, base: Any) -> dict[str, dict[str, Any]]:
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
