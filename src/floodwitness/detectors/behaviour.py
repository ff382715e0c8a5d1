"""Per-source behaviour flags: which client addresses a fingerprint rule flags, with or without an incident.

Each rule's requests are poured, per source, into a leaky bucket (CrowdSec's semantics: one unit per matching
request, or per new distinct value; one unit leaks every ``leak_seconds``; flagged when it holds more than
``capacity``). The bucket's level after request j of a source is Lindley's recursion unrolled,
``max over i <= j of (j - i + 1) - (t_j - t_i) / leak``, i.e. ``j + 1 - t_j / leak + cummax(t_i / leak - i)``:
one window function per rule over the matching requests, no loop per line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import ibis
import pyarrow as pa
import pyarrow.compute as pc

from floodwitness.analysis.composition import in_ranges

if TYPE_CHECKING:
    from datetime import datetime

    from floodwitness.analysis.dataset import Dataset
    from floodwitness.detectors.fingerprints import Rule

LISTED = 50  # sources listed per rule in the report (the count covers all)


@dataclass(frozen=True)
class FlaggedSource:
    client_ip: str
    requests: int       # the source's requests matching the rule
    peak: float | None  # the bucket's highest level (None for a rule without a bucket: one match flags)
    first: datetime     # its first matching request
    overflow: datetime  # when the bucket first overflowed


@dataclass(frozen=True)
class RuleFlags:
    rule: Rule
    sources: tuple[FlaggedSource, ...] = field(default_factory=tuple)

    @property
    def ips(self) -> set[str]:
        return {s.client_ip for s in self.sources}

    def to_dict(self) -> dict[str, Any]:
        b = self.rule.bucket
        return {"rule": self.rule.name, "description": self.rule.description,
                "capacity": b.capacity, "leak_seconds": b.leak_seconds, "distinct": b.distinct,
                "sources": len(self.sources), "requests": sum(s.requests for s in self.sources),
                "top": [{"client_ip": s.client_ip, "requests": s.requests,
                         "peak": None if s.peak is None else round(s.peak, 2),
                         "first": s.first.isoformat() + "Z", "overflow": s.overflow.isoformat() + "Z"}
                        for s in self.sources[:LISTED]]}


def bucket_levels(t: Any, leak_seconds: float) -> Any:
    """``t`` (``client_ip``, ``ts``) with ``level``: each source's bucket level after each of its requests."""
    t = t.mutate(sec=t.ts.epoch_seconds().cast("float64") / leak_seconds)
    w = ibis.window(group_by="client_ip", order_by=["ts"])
    t = t.mutate(rank=ibis.row_number().over(w))
    t = t.mutate(drain=t.sec - t["rank"])
    cum = ibis.window(group_by="client_ip", order_by=["ts", "rank"], rows=(None, 0))
    t = t.mutate(best=t.drain.max().over(cum))
    return t.mutate(level=t["rank"] + 1 - t.sec + t.best)


def _sources(rule: Rule, rows: list[dict[str, Any]]) -> RuleFlags:
    """``rows`` from :func:`_pylist` (naive UTC times)."""
    return RuleFlags(rule, tuple(FlaggedSource(r["client_ip"], int(r["requests"]),
                                               None if r["peak"] is None else float(r["peak"]), r["first"],
                                               r["overflow"])
                                 for r in sorted(rows, key=lambda r: (-int(r["requests"]), r["client_ip"]))))


def _naive(table: pa.Table) -> pa.Table:
    """``table`` with its zoned (UTC) times made naive in Arrow: tens of thousands of zoned Python datetimes,
    each then stripped of its zone, cost more than the query that found them."""
    for i, column in enumerate(table.schema):
        if pa.types.is_timestamp(column.type) and column.type.tz is not None:
            table = table.set_column(i, column.name, table.column(i).cast(pa.timestamp(column.type.unit)))
    return table


def _pylist(table: pa.Table) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = _naive(table).to_pylist()
    return rows


def _per_client(data: Dataset, t: Any, rules: tuple[Rule, ...]) -> pa.Table:
    """One grouped pass for every rule: per client, its matching requests (``n<i>``) and the first one
    (``f<i>``, naive UTC), as an Arrow table (read a rule's columns at a time, never as Python rows)."""
    m = t.mutate(**{f"p{i}": rule.predicate(t) for i, rule in enumerate(rules)})  # each predicate once
    aggs: dict[str, Any] = {}
    for i in range(len(rules)):
        aggs[f"n{i}"] = m[f"p{i}"].sum()
        aggs[f"f{i}"] = m.ts.min(where=m[f"p{i}"])
    per = m.group_by("client_ip").aggregate(**aggs)
    per = per.filter(ibis.or_(*[per[f"n{i}"] > 0 for i in range(len(rules))]))
    return _naive(data.engine.ibis.to_pyarrow(per))


def _matching(per: pa.Table, i: int, more_than: int) -> pa.Table:
    """The clients of ``per`` with more than ``more_than`` requests matching rule ``i``."""
    n = per.column(f"n{i}")
    return per.filter(pc.fill_null(pc.greater(n, more_than), False)).select(["client_ip", f"n{i}", f"f{i}"])


def _bucket_flags(data: Dataset, t: Any, rule: Rule, counts: dict[str, int] | None) -> RuleFlags:
    """The bucket of ``rule`` over the sources in ``counts`` (their matching requests), or over every source
    when ``counts`` is None (a distinct bucket pours one row per value: few rows)."""
    b = rule.bucket
    if counts is not None:  # a table, not a literal list: tens of thousands of addresses would bloat the SQL
        sources = ibis.memtable(pa.table({"client_ip": pa.array(sorted(counts), pa.string())}))
        m = t.filter(t.client_ip.isin(sources.client_ip))
    else:
        m = t
    m = m.filter(rule.predicate(m)) if rule.per_request else m
    poured = m.select("client_ip", "ts")
    if b.distinct is not None:  # only the first request of each distinct value pours
        poured = m.group_by(["client_ip", b.distinct]).aggregate(ts=m.ts.min()).select("client_ip", "ts")
    lv = bucket_levels(poured, b.leak_seconds)
    over = lv.level > b.capacity
    per = lv.group_by("client_ip").aggregate(peak=lv.level.max(), first=lv.ts.min(), overflow=lv.ts.min(where=over))
    per = per.filter(per.peak > b.capacity + 1e-9)
    if counts is None:
        per = per.join(m.group_by("client_ip").aggregate(requests=m.count()), "client_ip")
        return _sources(rule, _pylist(data.engine.ibis.to_pyarrow(per)))
    rows = _pylist(data.engine.ibis.to_pyarrow(per))
    return _sources(rule, [r | {"requests": counts[r["client_ip"]]} for r in rows])


def flag_sources(data: Dataset, rules: tuple[Rule, ...],
                 window: tuple[datetime, datetime] | None = None) -> list[RuleFlags]:
    """For each rule that flags at least one source (in ``window``, or the whole data), the flagged sources,
    busiest first, in the order of ``rules``. One scan finds, per rule, the sources with a matching request;
    a bucket then runs only over the sources that could overflow it (more matches than its capacity)."""
    if not rules:
        return []
    t = data.requests if window is None else in_ranges(data.requests, [window])
    scanned = [r for r in rules if r.per_request]  # a rule without conditions would list every client
    per = _per_client(data, t, tuple(scanned)) if scanned else None
    out = []
    for rule in rules:
        b = rule.bucket
        i = scanned.index(rule) if rule in scanned else -1
        if i < 0 or per is None:  # no request condition (e.g. distinct user agents): the bucket runs over all
            flags = _bucket_flags(data, t, rule, None)
        elif b.capacity == 0:
            flags = _sources(rule, [{"client_ip": r["client_ip"], "requests": r[f"n{i}"], "peak": None,
                                     "first": r[f"f{i}"], "overflow": r[f"f{i}"]}
                                    for r in _matching(per, i, 0).to_pylist()])
        else:  # only sources with more matching requests than the capacity can overflow it
            hits = _matching(per, i, b.capacity)
            counts = dict(zip(hits.column("client_ip").to_pylist(), hits.column(f"n{i}").to_pylist(), strict=True))
            flags = _bucket_flags(data, t, rule, counts) if counts else RuleFlags(rule)
        if flags.sources:
            out.append(flags)
    return out
