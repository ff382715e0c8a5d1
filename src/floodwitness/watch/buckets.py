"""Per-bucket statistics of live detection: a 10-second bucket's client rows, what they say against the
audience known when the bucket closed, and its heaviest sources for the heavy-hitters sketch.

The rows of a bucket not yet closed are held as chunks of columns (:data:`ROW_FIELDS` plus the client
names); everything here reads them without keeping anything: the sums are a :class:`BucketStats`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pyarrow as pa

from floodwitness.watch.parse import BUCKET
from floodwitness.watch.sketch import Registers, kll

if TYPE_CHECKING:
    from floodwitness.watch.parse import ChunkStats
    from floodwitness.watch.sketch import SeenSet

ROW_FIELDS = ("second", "client_hash", "net_hash", "n", "n_errors", "assets", "referers", "queries", "distinct_queries")

#: a heavy source of a bucket: (client name, requests, known to the audience, suspect)
Heavy = tuple[str, int, bool, bool]


@dataclass
class BucketStats:
    """What one 10-second bucket's client rows say, against the audience known when it closed."""

    requests: float = 0.0
    errors: float = 0.0
    new: float = 0.0
    new_network: float = 0.0
    suspect: float = 0.0
    suspect_errors: float = 0.0  # the suspects' own 5xx
    assets: float = 0.0
    referers: float = 0.0
    new_assets: float = 0.0
    new_referers: float = 0.0
    new_queries: float = 0.0
    new_distinct_queries: float = 0.0
    new_clients: float = 0.0  # client-seconds of new clients (not distinct ones: see Incident.new_clients)
    early_suspect: float = 0.0  # requests of new clients from new networks that loaded no asset


class BucketSummary(NamedTuple):
    """A bucket's sums, heaviest sources (and the requests of the others), distinct clients and distinct
    new clients, and its client and network hashes (for the known audience, later)."""

    stats: BucketStats
    heavy: list[Heavy]
    dropped: int
    regs: Registers
    new_regs: Registers
    hashes: tuple[np.ndarray, np.ndarray]


def fold(into: BucketStats, add: BucketStats) -> None:
    """Add ``add``'s sums to ``into``."""
    for name in BucketStats.__dataclass_fields__:
        setattr(into, name, getattr(into, name) + getattr(add, name))


def take(values: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` values, zero-padded."""
    out = np.zeros(n)
    k = min(n, len(values))
    out[:k] = values[:k]
    return out


def bucket_rows(chunk: ChunkStats, base: int, rows: dict[int, list[dict[str, Any]]], times: dict[int, Any]) -> None:
    """File a chunk's client rows and request times under their open buckets (``base``: the first open
    second; rows of seconds already closed go to the first open bucket)."""
    first_open = base - base % BUCKET
    buckets = np.maximum(chunk.second // BUCKET * BUCKET, first_open)
    order = np.argsort(buckets, kind="stable")
    sorted_b = buckets[order]
    bounds = np.flatnonzero(np.diff(sorted_b)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(order)]])
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        if s == e:
            continue
        idx = order[s:e]
        part = {name: getattr(chunk, name)[idx] for name in ROW_FIELDS}
        part["client"] = chunk.client.take(pa.array(idx))
        rows.setdefault(int(sorted_b[s]), []).append(part)
    if len(chunk.request_time):
        tb = np.maximum(chunk.time_bucket, first_open)
        order = np.argsort(tb, kind="stable")
        tb, rt = tb[order], chunk.request_time[order].astype(np.float32)
        cuts = np.flatnonzero(np.diff(tb)) + 1
        for lo, hi in zip(np.concatenate([[0], cuts]).tolist(), np.concatenate([cuts, [len(tb)]]).tolist(),
                          strict=True):
            sketch = times.setdefault(int(tb[lo]), kll())
            sketch.update(rt[lo:hi])


def suspect_seconds(parts: list[dict[str, Any]], start: int, n: int, known: SeenSet,
                    known_nets: SeenSet) -> tuple[np.ndarray, np.ndarray]:
    """Requests per second, from ``start`` for ``n`` seconds, of clients new to the audience and from
    networks it never used, loading no asset (what ``analyze`` calls suspects), and how many such
    clients were active each second; from the open bucket's rows ``parts``."""
    out = np.zeros(n)
    clients = np.zeros(n)
    for part in parts:
        offset = part["second"] - start
        keep = (offset >= 0) & (offset < n)
        if not keep.any():
            continue
        sus = ~known.contains(part["client_hash"][keep]) & \
            ~known_nets.contains(part["net_hash"][keep]) & (part["assets"][keep] == 0)
        out += np.bincount(offset[keep][sus], weights=part["n"][keep][sus], minlength=n)[:n]
        clients += np.bincount(offset[keep][sus], minlength=n)[:n]
    return out, clients


def bucket_stats(parts: list[dict[str, Any]], known: SeenSet, known_nets: SeenSet, heavy_per_bucket: int, *,
                 heavy: bool = True) -> BucketSummary:
    """A bucket's sums against the known audience, its distinct clients and distinct new clients, its
    client hashes, and (with ``heavy``) its ``heavy_per_bucket`` heaviest sources."""
    regs, new_regs = Registers(), Registers()
    if not parts:
        empty = np.zeros(0, np.uint64)
        return BucketSummary(BucketStats(), [], 0, regs, new_regs, (empty, empty))
    col = {name: np.concatenate([p[name] for p in parts]) for name in ROW_FIELDS}
    n = col["n"].astype(float)
    is_known = known.contains(col["client_hash"])
    known_net = known_nets.contains(col["net_hash"])
    new = ~is_known
    botlike = (col["assets"] == 0) & (col["referers"] == 0)
    suspect = new & (~known_net | botlike)
    s = BucketStats(
        requests=float(n.sum()), errors=float(col["n_errors"].sum()), new=float(n[new].sum()),
        new_network=float(n[new & ~known_net].sum()), suspect=float(n[suspect].sum()),
        suspect_errors=float(col["n_errors"][suspect].sum()),
        assets=float(col["assets"].sum()), referers=float(col["referers"].sum()),
        new_assets=float(col["assets"][new].sum()), new_referers=float(col["referers"][new].sum()),
        new_queries=float(col["queries"][new].sum()),
        new_distinct_queries=float(col["distinct_queries"][new].sum()), new_clients=float(new.sum()),
        early_suspect=float(n[new & ~known_net & (col["assets"] == 0)].sum()))
    regs.add(col["client_hash"])
    new_regs.add(col["client_hash"][new])
    hashes = (col["client_hash"], col["net_hash"])
    if not heavy:
        return BucketSummary(s, [], 0, regs, new_regs, hashes)
    top_sources, dropped = _heaviest(parts, col, n, is_known, new & ~known_net, heavy_per_bucket)
    return BucketSummary(s, top_sources, dropped, regs, new_regs, hashes)


def _heaviest(parts: list[dict[str, Any]], col: dict[str, np.ndarray], n: np.ndarray, known: np.ndarray,
              new_network: np.ndarray, k_max: int) -> tuple[list[Heavy], int]:
    """The bucket's ``k_max`` heaviest sources (one client may have rows from several chunks: summed by
    hash) and the requests of all the others."""
    uniq, inverse = np.unique(col["client_hash"], return_inverse=True)
    per = np.bincount(inverse, weights=n)
    k = min(k_max, len(per))
    top = np.argpartition(-per, k - 1)[:k] if k < len(per) else np.arange(len(per))
    dropped = int(per.sum() - per[top].sum())
    first_row = np.full(len(uniq), -1)
    first_row[inverse[::-1]] = np.arange(len(inverse))[::-1]
    clients = pa.concat_arrays([p["client"] for p in parts])
    names = clients.take(pa.array(first_row[top])).to_pylist()
    # a heavy source is a suspect (blockable) when new, from a new network, and it loaded no asset
    assets = np.bincount(inverse, weights=col["assets"])[top]
    rows = first_row[top]
    suspect = new_network[rows] & (assets == 0)
    top_sources = [(str(name), int(count), bool(k), bool(x))
                   for name, count, k, x in zip(names, per[top].tolist(), known[rows].tolist(),
                                                suspect.tolist(), strict=True)]
    return top_sources, dropped
