"""Per-source behaviour flags: which client addresses a fingerprint rule flags, with or without an incident.

Each rule's requests are poured, per source, into a leaky bucket (CrowdSec's semantics: one unit per matching
request, or per new distinct value; one unit leaks every ``leak_seconds``; flagged when it holds more than
``capacity``). The bucket's level after request j of a source is Lindley's recursion unrolled,
``max over i <= j of (j - i + 1) - (t_j - t_i) / leak``, i.e. ``j + 1 - t_j / leak + cummax(t_i / leak - i)``:
one window function per rule over the matching requests, no loop per line.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC
from typing import TYPE_CHECKING, Any

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from floodwitness.analysis.composition import in_ranges

if TYPE_CHECKING:
    from datetime import datetime

    from floodwitness.analysis.dataset import Dataset
    from floodwitness.detectors.fingerprints import Bucket, Rule

LISTED = 50  # sources listed per rule in the report (the count covers all)


@dataclass(frozen=True)
class FlaggedSource:
    """One source a rule flags. ``peak`` is None for a rule without a bucket (one match flags); ``peak`` and
    ``overflow`` are both None for a source whose matching requests are too many for the bucket's capacity
    over their whole span, so it overflowed for sure and its bucket was not run (see :func:`scan_rules`)."""

    client_ip: str
    requests: int               # the source's requests matching the rule
    peak: float | None          # the bucket's highest level
    first: datetime             # its first matching request
    overflow: datetime | None   # when the bucket first overflowed


#: The sources a rule flags, one row each: naive UTC times, busiest first (ties by address).
FLAGGED = pa.schema([("client_ip", pa.string()), ("requests", pa.int64()), ("peak", pa.float64()),
                     ("first", pa.timestamp("us")), ("overflow", pa.timestamp("us"))])


@dataclass(frozen=True)
class RuleFlags:
    """The sources one rule flags, kept as an Arrow table (:data:`FLAGGED`): a botnet's tens of thousands of
    sources become Python objects only when asked for (:attr:`sources`); the report lists the first few."""

    rule: Rule
    table: pa.Table = field(default_factory=FLAGGED.empty_table)

    @functools.cached_property
    def sources(self) -> tuple[FlaggedSource, ...]:
        return self.top(self.table.num_rows)

    def top(self, n: int) -> tuple[FlaggedSource, ...]:
        """The ``n`` busiest flagged sources."""
        return tuple(FlaggedSource(r["client_ip"], int(r["requests"]), r["peak"], r["first"], r["overflow"])
                     for r in self.table.slice(0, n).to_pylist())

    @property
    def count(self) -> int:
        return int(self.table.num_rows)

    @property
    def requests(self) -> int:
        """The flagged sources' requests matching the rule."""
        return int(pc.sum(self.table.column("requests")).as_py() or 0)

    @property
    def ips(self) -> set[str]:
        return set(self.table.column("client_ip").to_pylist())

    def to_dict(self) -> dict[str, Any]:
        b = self.rule.bucket
        return {"rule": self.rule.name, "description": self.rule.description,
                "capacity": b.capacity, "leak_seconds": b.leak_seconds, "distinct": b.distinct,
                "sources": self.count, "requests": self.requests,
                "top": [{"client_ip": s.client_ip, "requests": s.requests,
                         "peak": None if s.peak is None else round(s.peak, 2),
                         "first": s.first.isoformat() + "Z",
                         "overflow": None if s.overflow is None else s.overflow.isoformat() + "Z"}
                        for s in self.top(LISTED)]}


def bucket_levels(t: Any, leak_seconds: float) -> Any:
    """``t`` (``client_ip``, ``ts``) with ``level``: each source's bucket level after each of its requests."""
    t = t.mutate(sec=t.ts.epoch_seconds().cast("float64") / leak_seconds)
    w = ibis.window(group_by="client_ip", order_by=["ts"])
    t = t.mutate(rank=ibis.row_number().over(w))
    t = t.mutate(drain=t.sec - t["rank"])
    cum = ibis.window(group_by="client_ip", order_by=["ts", "rank"], rows=(None, 0))
    t = t.mutate(best=t.drain.max().over(cum))
    return t.mutate(level=t["rank"] + 1 - t.sec + t.best)


def _flags(rule: Rule, table: pa.Table) -> RuleFlags:
    """``table`` (the :data:`FLAGGED` columns, zoned or naive times, any order) as the rule's flags."""
    table = _naive(table.select(FLAGGED.names)).cast(FLAGGED)
    return RuleFlags(rule, table.sort_by([("requests", "descending"), ("client_ip", "ascending")]))


def _naive(table: pa.Table) -> pa.Table:
    """``table`` with its zoned (UTC) times made naive in Arrow: tens of thousands of zoned Python datetimes,
    each then stripped of its zone, cost more than the query that found them."""
    for i, column in enumerate(table.schema):
        if pa.types.is_timestamp(column.type) and column.type.tz is not None:
            table = table.set_column(i, column.name, table.column(i).cast(pa.timestamp(column.type.unit)))
    return table


def _spread(rules: tuple[Rule, ...]) -> list[Rule]:
    """The rules about a source as a whole that count its distinct values of a column (switching user agents)
    with a capacity of 2 or more: a source with one value of that column (null aside) cannot overflow them."""
    return [r for r in rules if not r.per_request and r.bucket.distinct is not None and r.bucket.capacity >= 2]


def rule_aggregates(t: Any, rules: tuple[Rule, ...]) -> tuple[Any, dict[str, Any]]:
    """Per-client aggregates for the rules, for a group-by by client. For the rules with request conditions
    (``Rule.per_request``): the client's matching requests (``n<i>``) and the first one (``f<i>``), ``i``
    counting those rules. For the :func:`_spread` rules: the least and the greatest hash of the column they
    count (``lo<k>``, ``hi<k>``: a source is passed over only when all its values share one hash; with two
    values it could not overflow anyway, with more that takes a multiple collision). Returns ``t`` with each
    predicate as a column (evaluated once for its aggregates), and the aggregates over it."""
    scanned = [r for r in rules if r.per_request]
    m = t.mutate(**{f"p{i}": rule.predicate(t) for i, rule in enumerate(scanned)})
    aggs: dict[str, Any] = {}
    for i in range(len(scanned)):
        aggs[f"n{i}"] = m[f"p{i}"].sum()
        aggs[f"f{i}"] = m.ts.min(where=m[f"p{i}"])
    for k, rule in enumerate(_spread(rules)):  # of the values' hashes: a tenth of the cost of comparing text
        aggs[f"lo{k}"] = m[rule.bucket.distinct].hash().min()
        aggs[f"hi{k}"] = m[rule.bucket.distinct].hash().max()
    return m, aggs


def _per_client(data: Dataset, t: Any, rules: tuple[Rule, ...]) -> pa.Table:
    """One grouped pass for every rule: per client that could be flagged, its requests and
    :func:`rule_aggregates`, as an Arrow table (naive UTC times; read a rule's columns at a time, never as
    Python rows)."""
    m, aggs = rule_aggregates(t, rules)
    per = m.group_by("client_ip").aggregate(requests=m.count(), **aggs)
    scanned = sum(1 for r in rules if r.per_request)
    per = per.filter(ibis.or_(*[per[f"n{i}"] > 0 for i in range(scanned)],
                              *[per[f"lo{k}"] != per[f"hi{k}"] for k in range(len(_spread(rules)))]))
    return _naive(data.engine.ibis.to_pyarrow(per))


def _matching(per: pa.Table, i: int, more_than: int) -> pa.Table:
    """The clients of ``per`` with more than ``more_than`` requests matching rule ``i``."""
    n = per.column(f"n{i}")
    return per.filter(pc.fill_null(pc.greater(n, more_than), False)).select(["client_ip", f"n{i}", f"f{i}"])


def _overflowed(hits: pa.Table, i: int, bucket: Bucket, end: datetime) -> pa.Array:
    """Whether each source of ``hits`` (:func:`_matching` rows of rule ``i``, a bucket without ``distinct``)
    overflowed for sure: the level after its last matching request is at least its matches minus what leaked
    since its first one, and the last one came before ``end``, so ``n - (end - first) / leak`` is a floor;
    above the capacity, so was the peak."""
    first = pc.cast(hits.column(f"f{i}"), pa.timestamp("us")).cast(pa.int64()).to_numpy(zero_copy_only=False)
    since = (end.replace(tzinfo=UTC).timestamp() * 1e6 - first) / (1e6 * bucket.leak_seconds)  # naive UTC end
    floor = hits.column(f"n{i}").to_numpy(zero_copy_only=False).astype(float) - since
    return pa.array(floor > bucket.capacity + 1e-9)


def _bucket_flags(data: Dataset, t: Any, rule: Rule, counts: pa.Table | None) -> RuleFlags:
    """The bucket of ``rule`` over the sources in ``counts`` (``client_ip``, ``requests``: their matching
    requests), or over every source when ``counts`` is None (a distinct bucket pours one row per value: few
    rows)."""
    b = rule.bucket
    if counts is not None:  # a table, not a literal list: tens of thousands of addresses would bloat the SQL
        sources = ibis.memtable(counts.select(["client_ip"]))
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
        return _flags(rule, data.engine.ibis.to_pyarrow(per))
    return _flags(rule, data.engine.ibis.to_pyarrow(per).join(counts, "client_ip"))


@dataclass(frozen=True)
class RuleScan:
    """What the fingerprint rules found in one scan of a window: the sources each rule flags, and for every
    rule with request conditions its matching requests and the clients that sent them (flagged or not)."""

    flags: list[RuleFlags]
    matches: dict[str, tuple[int, int]]  # rule name: (matching requests, clients with one)


def flag_sources(data: Dataset, rules: tuple[Rule, ...],
                 window: tuple[datetime, datetime] | None = None) -> list[RuleFlags]:
    """For each rule that flags at least one source (in ``window``, or the whole data), the flagged sources,
    busiest first, in the order of ``rules`` (see :func:`scan_rules`)."""
    return scan_rules(data, rules, window).flags


def scan_rules(data: Dataset, rules: tuple[Rule, ...], window: tuple[datetime, datetime] | None = None, *,
               per_client: pa.Table | None = None) -> RuleScan:
    """The rules' flags and matches in ``window`` (or the whole data). One scan finds, per rule, the sources
    with a matching request (or ``per_client`` has them already: :func:`rule_aggregates` of every client of
    ``window``); a bucket then runs only over the sources that could overflow it (more matches than its
    capacity), and of those that overflowed for sure (:func:`_overflowed`: a flood's thousands of bots) only
    over the :data:`LISTED` busiest, whose peak and overflow time the report shows."""
    if not rules:
        return RuleScan([], {})
    t = data.requests if window is None else in_ranges(data.requests, [window])
    scanned = [r for r in rules if r.per_request]  # a rule without conditions would list every client
    spread = _spread(rules)
    per = None
    if scanned or spread:
        per = _naive(per_client) if per_client is not None else _per_client(data, t, rules)
    matches: dict[str, tuple[int, int]] = {}
    out = []
    for rule in rules:
        b = rule.bucket
        i = scanned.index(rule) if rule in scanned else -1
        if i >= 0 and per is not None:
            n = pc.fill_null(per.column(f"n{i}"), 0)
            matches[rule.name] = (int(pc.sum(n).as_py() or 0), int(pc.sum(pc.greater(n, 0)).as_py() or 0))
        if rule in spread and per is not None:  # the bucket runs over the sources with two values or more
            k = spread.index(rule)  # (and more requests than the capacity: each value pours once)
            several = per.filter(pc.and_(
                pc.fill_null(pc.not_equal(per.column(f"lo{k}"), per.column(f"hi{k}")), False),
                pc.greater(per.column("requests"), b.capacity)))
            counts = several.select(["client_ip", "requests"])
            flags = _bucket_flags(data, t, rule, counts) if counts.num_rows else RuleFlags(rule)
        elif i < 0 or per is None:  # no request condition: the bucket runs over every source
            flags = _bucket_flags(data, t, rule, None)
        elif b.capacity == 0:  # no bucket: every source with a matching request, flagged at its first one
            hits = _matching(per, i, 0)
            flags = _flags(rule, pa.table({"client_ip": hits.column("client_ip"), "requests": hits.column(f"n{i}"),
                                           "peak": pa.nulls(hits.num_rows, pa.float64()),
                                           "first": hits.column(f"f{i}"), "overflow": hits.column(f"f{i}")}))
        else:  # only sources with more matching requests than the capacity can overflow it
            hits = _matching(per, i, b.capacity)
            sure = None
            if b.distinct is None and hits.num_rows and window is not None:  # run: the listed and the uncertain
                overflowed = _overflowed(hits, i, b, window[1])
                ranked = pc.sort_indices(hits, [(f"n{i}", "descending"), ("client_ip", "ascending")]).to_numpy()
                listed = np.zeros(hits.num_rows, dtype=bool)
                listed[ranked[:LISTED]] = True
                run = ~overflowed.to_numpy(zero_copy_only=False) | listed
                sure = hits.filter(pa.array(~run))
                hits = hits.filter(pa.array(run))
            counts = hits.select(["client_ip", f"n{i}"]).rename_columns(["client_ip", "requests"])
            flags = _bucket_flags(data, t, rule, counts) if counts.num_rows else RuleFlags(rule)
            if sure is not None and sure.num_rows:
                flags = _flags(rule, pa.concat_tables([flags.table, pa.table({
                    "client_ip": sure.column("client_ip"), "requests": sure.column(f"n{i}").cast(pa.int64()),
                    "peak": pa.nulls(sure.num_rows, pa.float64()), "first": sure.column(f"f{i}"),
                    "overflow": pa.nulls(sure.num_rows, pa.timestamp("us"))}, schema=FLAGGED)]))
        if flags.count:
            out.append(flags)
    return RuleScan(out, matches)
