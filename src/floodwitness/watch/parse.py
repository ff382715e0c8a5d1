"""Parse appended log bytes and aggregate them per second and per client, all in the engine.

A chunk of whole lines becomes Arrow line batches (:class:`~floodwitness.inputs.lines.LineBatcher`, the
same cutter ingest uses), the format's parse SQL (:func:`~floodwitness.ingest.pipeline.parse_sql`, the
same parse ingest runs) turns them into normalized requests, and three small group-bys reduce them to
what the live detector keeps: per-second counts, per (second, client) counts, and the request
times. No Python code runs per line.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ibis
import numpy as np
import pyarrow as pa

from floodwitness.analysis.composition import is_asset, network
from floodwitness.ingest.common import compile_sql
from floodwitness.ingest.pipeline import LINES_TABLE, engine_table, parse_sql
from floodwitness.inputs.lines import FileAccount, LineBatcher
from floodwitness.schema import ARROW_SCHEMA

if TYPE_CHECKING:
    from floodwitness.engine import Engine
    from floodwitness.formats.base import LogFormat

#: Seconds per bucket of the per-client aggregation (and of the live baseline).
BUCKET = 10
PARSED = "fw_parsed"
CHUNK = "fw_live_chunk"


@dataclass
class ChunkStats:
    """One parsed chunk, reduced. Per-second arrays are aligned on ``seconds`` (epoch seconds, sorted)."""

    lines: int
    parsed: int
    rejected: dict[str, int]
    seconds: np.ndarray      # int64 epoch seconds
    requests: np.ndarray     # per second
    errors: np.ndarray       # 5xx per second
    # per (second, client) rows
    second: np.ndarray       # int64 epoch second
    client: pa.Array         # client_ip strings (Arrow: turned into Python only for the heavy hitters)
    client_hash: np.ndarray  # uint64
    net_hash: np.ndarray     # uint64
    n: np.ndarray            # requests
    n_errors: np.ndarray
    assets: np.ndarray
    referers: np.ndarray
    queries: np.ndarray
    distinct_queries: np.ndarray
    # request times (seconds) with their bucket
    time_bucket: np.ndarray
    request_time: np.ndarray

    @classmethod
    def empty(cls) -> ChunkStats:
        i, u, f = np.zeros(0, np.int64), np.zeros(0, np.uint64), np.zeros(0)
        return cls(0, 0, {}, i, i, i, i, pa.array([], pa.string()), u, u, i, i, i, i, i, i, i, f)

    def split_at_gaps(self, gap: int) -> list[ChunkStats]:
        """The chunk cut where its seconds jump by more than ``gap`` (itself when they never do); the parts
        carry no line counts (the chunk's are counted once)."""
        secs = self.seconds
        cuts = np.flatnonzero(np.diff(secs) > gap) + 1
        if not len(cuts):
            return [self]
        bounds = [int(secs[0]), *(int(secs[c]) for c in cuts), int(secs[-1]) + 1]
        parts = []
        for lo, hi in itertools.pairwise(bounds):
            sec = (secs >= lo) & (secs < hi)
            row = np.flatnonzero((self.second >= lo) & (self.second < hi))
            rt = (self.time_bucket >= lo - lo % BUCKET) & (self.time_bucket < hi)
            parts.append(ChunkStats(
                0, 0, {}, secs[sec], self.requests[sec], self.errors[sec], self.second[row],
                self.client.take(pa.array(row)), self.client_hash[row], self.net_hash[row], self.n[row],
                self.n_errors[row], self.assets[row], self.referers[row], self.queries[row],
                self.distinct_queries[row], self.time_bucket[rt], self.request_time[rt]))
        return parts


NARROW = ibis.schema({"sec": "int64", "client_ip": "string", "ip_family": "int8", "status": "int16",
                      "asset": "int8", "ref": "int8", "query": "string", "request_time": "float64",
                      "reject_reason": "string"})


@functools.lru_cache(maxsize=16)
def _live_sql(fmt: LogFormat) -> tuple[str, str, str, str]:
    """(materialise, per-second, per-client, request-times) SQL for ``fmt``. The shared signals (what is an
    asset, what is a client's network) are the analysis stage's own expressions; the network is computed
    on the per-client rows, not per line."""
    t = ibis.table(ibis.Schema.from_pyarrow(ARROW_SCHEMA), name=PARSED)
    ok = t.reject_reason.isnull()
    narrow = t.select(
        sec=ibis.ifelse(ok, t.ts.epoch_seconds(), None).cast("int64"), client_ip=t.client_ip,
        ip_family=t.ip_family, status=t.status, asset=ibis.ifelse(ok, is_asset(t).cast("int8"), 0).cast("int8"),
        ref=t.referer.notnull().cast("int8"), query=t.query, request_time=t.request_time,
        reject_reason=t.reject_reason)
    materialise = (f"CREATE OR REPLACE TEMP TABLE {CHUNK} AS WITH {PARSED} AS ({parse_sql(fmt)}) "
                   f"{compile_sql(narrow, 'duckdb')}")
    c = ibis.table(NARROW, name=CHUNK)
    c = c.filter(c.reject_reason.isnull())
    grouped = c.group_by(
        second=c.sec, client_ip=c.client_ip).aggregate(
        family=c.ip_family.max(), n=c.count(), e=(c.status >= 500).sum().cast("int64"),
        a=c.asset.sum().cast("int64"), r=c.ref.sum().cast("int64"), q=c.query.notnull().sum().cast("int64"),
        dq=c.query.nunique())
    per_client = grouped.mutate(ch=grouped.client_ip.hash(),
                                nh=network(grouped.client_ip, grouped.family).hash()).drop("family")
    per_second = (f"SELECT sec, count(*) AS n, count(*) FILTER (WHERE status >= 500) AS e, reject_reason "
                  f"FROM {CHUNK} GROUP BY sec, reject_reason")
    times = (f"SELECT sec // {BUCKET} * {BUCKET} AS bucket, request_time FROM {CHUNK} "
             "WHERE reject_reason IS NULL AND request_time IS NOT NULL")
    return materialise, per_second, compile_sql(per_client, "duckdb"), times


def _np(table: pa.Table, name: str, dtype: Any) -> np.ndarray:
    column = table.column(name)
    if pa.types.is_decimal(column.type):
        # DuckDB sums small integers into HUGEINT, which reaches Arrow as decimal128 (ibis drops the cast
        # to int64 as a no-op): converted by numpy that is one Python Decimal per row; cast in Arrow instead.
        column = column.cast(pa.int64())
    if column.null_count and np.issubdtype(dtype, np.integer):
        column = column.fill_null(0)  # a sum over a field the log lacks (errors without statuses): none counted
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=dtype)


class ChunkParser:
    """Parses chunks of whole lines of one input (``file_id``), numbering lines like ingest does."""

    def __init__(self, engine: Engine, fmt: LogFormat, account: FileAccount, *, max_line_bytes: int) -> None:
        self.engine = engine
        self.fmt = fmt
        self.batcher = LineBatcher(account, max_line_bytes=max_line_bytes, batch_bytes=64 << 20)

    def parse(self, data: bytes) -> ChunkStats:
        """``data`` holds whole lines (each ending with a newline)."""
        if not data:
            return ChunkStats.empty()
        before = self.batcher.account.lines_read
        batches = list(self.batcher.batches(iter([data])))
        lines = self.batcher.account.lines_read - before
        table = engine_table(batches)  # small batches: one big one would be parsed on one core
        materialise, per_second, per_client, times = _live_sql(self.fmt)
        raw = self.engine.raw
        raw.register(LINES_TABLE, table)
        try:
            raw.execute(materialise)
        finally:
            raw.unregister(LINES_TABLE)
        seconds = raw.sql(per_second).to_arrow_table()
        clients = raw.sql(per_client).to_arrow_table()
        rt = raw.sql(times).to_arrow_table()
        raw.execute(f"DROP TABLE IF EXISTS {CHUNK}")
        return _reduce(lines, seconds, clients, rt)


def _reduce(lines: int, seconds: pa.Table, clients: pa.Table, rt: pa.Table) -> ChunkStats:
    reasons = seconds.column("reject_reason").to_pylist()
    counts = _np(seconds, "n", np.int64)
    rejected: dict[str, int] = {}
    keep = np.array([r is None for r in reasons], dtype=bool)
    for reason, n in zip(reasons, counts.tolist(), strict=True):
        if reason is not None:
            rejected[reason] = rejected.get(reason, 0) + int(n)
    sec = seconds.column("sec").to_numpy(zero_copy_only=False)
    good = keep & ~np.isnan(np.asarray(sec, dtype=float)) if len(sec) else keep
    sec = np.asarray(sec, dtype=float)[good].astype(np.int64)
    order = np.argsort(sec)
    parsed = int(counts[keep].sum())
    return ChunkStats(
        lines=lines, parsed=parsed, rejected=rejected, seconds=sec[order], requests=counts[good][order],
        errors=_np(seconds, "e", np.int64)[good][order],
        second=_np(clients, "second", np.int64), client=clients.column("client_ip").combine_chunks(),
        client_hash=_np(clients, "ch", np.uint64), net_hash=_np(clients, "nh", np.uint64),
        n=_np(clients, "n", np.int64), n_errors=_np(clients, "e", np.int64), assets=_np(clients, "a", np.int64),
        referers=_np(clients, "r", np.int64), queries=_np(clients, "q", np.int64),
        distinct_queries=_np(clients, "dq", np.int64),
        time_bucket=_np(rt, "bucket", np.int64), request_time=_np(rt, "request_time", np.float64))
