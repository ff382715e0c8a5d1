"""Who and what made an incident window different from the baseline.

Requests of a window are split into what the baseline predicts and the excess. The excess is then
attributed: to clients never seen in the baseline, to networks the audience never used, to known clients
(a retry storm), to a handful of heavy sources (a DoS). The behaviour of the new clients is compared with
the baseline audience's: do they load assets and carry referers like people, or hammer a few URLs?
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import ibis
import numpy as np
import pyarrow.compute as pc

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    import pyarrow as pa

    from floodwitness.analysis.dataset import Dataset

#: minutes before an incident in which a client loading a page's assets is someone browsing as it began
BROWSING_MINUTES = 5

ASSET_PATTERN = r"\.(css|js|mjs|png|jpe?g|gif|svg|ico|webp|avif|woff2?|ttf|eot|map)$"


def range_condition(t: Any, ranges: list[tuple[datetime, datetime]]) -> Any:
    """True for the rows of ``t`` inside one of ``ranges``."""
    cond = ibis.literal(False)
    for start, end in ranges:
        cond |= (t.ts >= ibis.literal(start, type="timestamp('UTC')")) & \
            (t.ts < ibis.literal(end, type="timestamp('UTC')"))
    return cond


def in_ranges(t: Any, ranges: list[tuple[datetime, datetime]]) -> Any:
    return t.filter(range_condition(t, ranges))


def network(ip: Any, family: Any) -> Any:
    """The client's network: IPv4 /16, IPv6 /32 (first two groups), a host name's parent domain.

    Regular expressions rather than splitting the address into lists: on DuckDB the splits cost eight
    times more (measured on 70k rows: 33 ms against 4 ms), and this runs on every distinct client.
    """
    v6 = ip.re_extract(r"^[^:]*:([^:]*)", 1)
    return ibis.cases(
        (family == 4, ip.re_extract(r"^([^.]*\.[^.]*)\.", 1) + ".0.0/16"),
        (family == 6, ip.re_extract(r"^([^:]*):", 1) + ":" + ibis.ifelse(v6 == "", "0", v6) + "::/32"),
        else_=ibis.ifelse(ip.contains("."), ip.re_extract(r"([^.]*\.[^.]*)$", 1), ip),
    )


def is_asset(t: Any) -> Any:
    """Whether the request is for a static asset (by the path's extension). Paths without a dot skip the
    regular expression (a CASE, not an AND: engines evaluate an AND's every operand): a quarter of the cost on
    a flood of ``/``."""
    return ibis.ifelse(t.path.contains("."), t.path.lower().re_search(ASSET_PATTERN), False)


@dataclass(frozen=True)
class Behaviour:
    """How a set of requests looks (shares of its requests)."""

    requests: int
    asset_share: float
    referer_share: float
    query_share: float
    unique_query_share: float  # distinct query strings / requests with a query
    error_share: float
    top_path: str | None
    top_path_share: float


@dataclass(frozen=True)
class Composition:
    start: datetime
    end: datetime
    requests: int
    expected: float
    excess: float
    clients: int
    new_clients: int
    new_requests: int
    new_network_requests: int
    known_requests: int
    churn_share: float          # share of normal traffic from clients unseen before (measured on the baseline)
    network_churn_share: float  # same for networks
    new_excess_share: float
    new_network_excess_share: float
    known_excess_share: float
    top10_excess_share: float
    sources_for_80pct: int
    new_behaviour: Behaviour
    baseline_behaviour: Behaviour
    known_clients_active: int
    known_clients_with_errors: int
    clients_table: pa.Table = field(repr=False)  # one row per client of the window
    #: new clients of the window that loaded a page with its assets in the minutes before it began
    browsing_before: int = 0
    #: Fields the behaviour is judged by ("path" for assets, "referer") that neither the baseline's requests nor
    #: the new clients' have: their shares are 0 for everyone, not measured, so nothing may be judged by them (a
    #: client is not "without assets" when the log has no paths). See :func:`_not_logged`.
    not_logged: frozenset[str] = frozenset()

    def heaviest(self, n: int, columns: list[str] | None = None) -> pa.Table:
        """The ``n`` clients with the most requests (ties by address) of :attr:`clients_table`."""
        return heaviest(self.clients_table, n, columns)


def heaviest(table: pa.Table, n: int, columns: list[str] | None = None) -> pa.Table:
    """The ``n`` rows of a per-client ``table`` with the most requests, ties by address (only ``columns``)."""
    keys = [("requests", "descending"), ("client_ip", "ascending")]
    if columns is not None:
        table = table.select(columns)
    return table.take(pc.sort_indices(table.select(["requests", "client_ip"]), keys)[:n])


def excess_share(part: float, excess: float) -> float:
    """``part`` of the requests as a share of the ``excess`` (clipped to 0..1; 0 without excess)."""
    return float(min(max(part / excess, 0.0), 1.0)) if excess > 0 else 0.0


def concentration(per_source: np.ndarray, excess: float) -> tuple[float, int]:
    """(requests of the 10 heaviest sources, how many of the heaviest sources make 80% of ``excess``) from
    requests per source (every source, or the heavy hitters of a sketch: the rest are lighter)."""
    ordered = np.sort(np.asarray(per_source, dtype=float))[::-1]
    cumulative = np.cumsum(ordered)
    sources_80 = int(np.searchsorted(cumulative, 0.8 * excess) + 1) if excess > 0 else 0
    return float(ordered[:10].sum()), sources_80


def _behaviour(data: Dataset, t: Any, sums: dict[str, int] | None = None) -> Behaviour:
    """How the requests of ``t`` look; ``sums`` (``n, assets, refs, q, err``), when already known from a
    per-client table, leave only the distinct query strings and the top path to count."""
    e = data.engine.ibis
    if sums is None:
        row = e.to_pyarrow(t.aggregate(
            n=t.count(), assets=is_asset(t).sum(), refs=t.referer.notnull().sum(), q=t.query.notnull().sum(),
            dq=t.query.nunique(), err=(t.status >= 500).sum())).to_pylist()[0]
    else:
        row = sums | e.to_pyarrow(t.aggregate(dq=t.query.nunique())).to_pylist()[0]
    n = int(row["n"] or 0)
    logged = t.filter(t.path.notnull())  # a log without paths has no top path (not a top path "None")
    top = e.to_pyarrow(logged.group_by("path").aggregate(c=logged.count()).order_by([ibis.desc("c"), "path"])
                       .limit(1))
    top = top.to_pylist()
    div = max(n, 1)
    return Behaviour(
        requests=n, asset_share=(row["assets"] or 0) / div, referer_share=(row["refs"] or 0) / div,
        query_share=(row["q"] or 0) / div, unique_query_share=(row["dq"] or 0) / max(row["q"] or 0, 1),
        error_share=(row["err"] or 0) / div, top_path=top[0]["path"] if top else None,
        top_path_share=(top[0]["c"] / div) if top else 0.0)


def _not_logged(new: Behaviour, baseline: Behaviour) -> frozenset[str]:
    """The behaviour fields no request of ``new`` or ``baseline`` had (no top path: no path at all): the log
    does not have them, or, for referers, nobody sent one; either way no comparison by them. Read from the
    behaviours already counted (the Parquet statistics cannot tell: a temporary store keeps none for strings)."""
    out = set()
    if new.top_path is None and baseline.top_path is None:
        out.add("path")
    if new.referer_share == 0 and baseline.referer_share == 0:
        out.add("referer")
    return frozenset(out)


def _sums(table: pa.Table, rows: np.ndarray) -> dict[str, int]:
    """The :func:`_behaviour` sums of the clients ``rows`` (a mask) of a per-client table."""
    def total(column: str) -> int:
        return int(table.column(column).to_numpy(zero_copy_only=False)[rows].sum())
    return {"n": total("requests"), "assets": total("assets"), "refs": total("referers"), "q": total("queries"),
            "err": total("errors")}


def client_rates(data: Dataset, t: Any) -> tuple[float, float]:
    """Median and 99th percentile over the clients of ``t`` of their requests per active minute (a look at
    every request: asked for by the findings that show it, not by every analysis)."""
    minute = data.engine.time_bucket(t.ts, 60)
    per = t.group_by("client_ip").aggregate(n=t.count(), minutes=minute.approx_nunique())
    per = per.mutate(rate=per.n / per.minutes)
    row = data.engine.ibis.to_pyarrow(per.aggregate(p50=per.rate.approx_quantile(0.5),
                                                    p99=per.rate.approx_quantile(0.99)))
    values = row.to_pylist()[0]
    return float(values["p50"] or 0.0), float(values["p99"] or 0.0)


def busiest_minutes(data: Dataset, window: tuple[datetime, datetime], at_least: int) -> pa.Table:
    """The clients of ``window`` that sent ``at_least`` requests in one minute: ``client_ip``, ``requests``
    (in the window), ``peak`` (requests in their busiest minute), busiest first (ties by address). Two group-bys
    over the window's requests, filtered before the second to the clients that could qualify."""
    t = in_ranges(data.requests, [window])
    per_minute = t.group_by(["client_ip", data.engine.time_bucket(t.ts, 60).name("minute")]).aggregate(n=t.count())
    per = per_minute.group_by("client_ip").aggregate(requests=per_minute.n.sum(), peak=per_minute.n.max())
    per = per.filter(per.peak >= at_least).order_by([ibis.desc("peak"), "client_ip"])
    table: pa.Table = data.engine.ibis.to_pyarrow(per)
    return table


def split_baseline(baseline: list[tuple[datetime, datetime]]) -> tuple[list[tuple[datetime, datetime]],
                                                                     list[tuple[datetime, datetime]]]:
    """The baseline's last half hour (at most a third of it) as the reference, and the part before it: how
    many of the reference's clients (or networks) the prior part never saw is the site's ordinary churn."""
    if not baseline:
        return [], []
    total = sum((b - a).total_seconds() for a, b in baseline)
    cut_seconds = min(1800.0, total / 3)
    remaining = cut_seconds
    reference: list[tuple[datetime, datetime]] = []
    prior: list[tuple[datetime, datetime]] = list(baseline)
    while remaining > 0 and prior:
        a, b = prior.pop()
        span = (b - a).total_seconds()
        if span <= remaining:
            reference.append((a, b))
            remaining -= span
        else:
            split = b - (b - a) * (remaining / span)
            reference.append((split, b))
            prior.append((a, split))
            remaining = 0
    return prior, reference


def _clients(t: Any) -> Any:
    """The clients of ``t`` with their requests (``n``) and network: the network's regular expressions run
    once per client, not once per request."""
    per = t.group_by("client_ip").aggregate(n=t.count(), family=t.ip_family.max())
    return per.mutate(net=network(per.client_ip, per.family))


def _churn(data: Dataset, baseline: list[tuple[datetime, datetime]]) -> tuple[float, float]:
    """Share of requests (and of their networks) in the last part of the baseline from clients unseen
    in the part before it: how much "new" an ordinary stretch of this site's traffic has."""
    prior, reference = split_baseline(baseline)
    if not prior:
        return 0.0, 0.0
    t = data.requests
    known_ips = _clients(in_ranges(t, prior))
    ref = _clients(in_ranges(t, reference))
    ref = ref.mutate(known=ref.client_ip.isin(known_ips.client_ip), known_net=ref.net.isin(known_ips.net))
    row = data.engine.ibis.to_pyarrow(ref.aggregate(
        n=ref.n.sum(), new=ref.n.sum(where=~ref.known), newnet=ref.n.sum(where=~ref.known & ~ref.known_net))
    ).to_pylist()[0]
    n = max(int(row["n"] or 0), 1)
    return (row["new"] or 0) / n, (row["newnet"] or 0) / n


def _browsing(t: Any, start: datetime) -> Any:
    """The clients that loaded an asset with a referer (a page with its images and scripts, as a browser does)
    in the :data:`BROWSING_MINUTES` before ``start``: people on the site when the incident began, who reload
    its failing pages during it. The baseline stops a few minutes earlier, so to it they are new clients."""
    before = in_ranges(t, [(start - timedelta(minutes=BROWSING_MINUTES), start)])
    return before.filter(is_asset(before) & before.referer.notnull()).select("client_ip").distinct()


def compose(data: Dataset, window: tuple[datetime, datetime], baseline: list[tuple[datetime, datetime]],
            expected: float, baseline_clients: pa.Table | None = None,
            extra: Callable[[Any], tuple[Any, dict[str, Any]]] | None = None) -> Composition:
    """Attribute the requests of ``window`` against the ``baseline`` ranges (``expected``: baseline
    requests for the window's length). ``baseline_clients`` (``client_ip, requests``, as made by
    ``audience.baseline_clients``) saves grouping the baseline by client again. ``extra(window_rows)``: more
    per-client aggregates for the same pass over the window, kept in ``clients_table``, as the rows with any
    columns they need added, and the aggregates (name: expression over those rows)."""
    e = data.engine.ibis
    t = data.requests
    base = in_ranges(t, baseline)
    w = in_ranges(t, [window])
    more: dict[str, Any] = {}
    if extra is not None:
        w, more = extra(w)
    if baseline_clients is not None:
        known = ibis.memtable(baseline_clients.select(["client_ip", "requests"]).rename_columns(
            ["client_ip", "base_requests"]))
    else:
        known = base.group_by("client_ip").aggregate(base_requests=base.count())
    nets = _clients(base)
    per = w.group_by("client_ip").aggregate(
        requests=w.count(), family=w.ip_family.max(), assets=is_asset(w).sum(),
        referers=w.referer.notnull().sum(), errors=(w.status >= 500).sum(),
        queries=w.query.notnull().sum(), first=w.ts.min(), **more)
    per = per.mutate(net=network(per.client_ip, per.family))
    per = per.left_join(known, "client_ip").drop("client_ip_right")
    per = per.mutate(known=per.base_requests.notnull(), known_net=per.net.isin(nets.net),
                     browsed_before=per.client_ip.isin(_browsing(t, window[0]).client_ip))
    table = e.to_pyarrow(per)
    # a log without statuses has null sums of errors: none known, as in the timeline (every column a count)
    table = table.set_column(table.schema.get_field_index("errors"), "errors", pc.fill_null(table.column("errors"), 0))

    n = table.column("requests").to_numpy(zero_copy_only=False).astype(float)
    is_known = table.column("known").to_numpy(zero_copy_only=False).astype(bool)
    known_net = table.column("known_net").to_numpy(zero_copy_only=False).astype(bool)
    errors = table.column("errors").to_numpy(zero_copy_only=False).astype(float)
    requests = float(n.sum())
    excess = max(requests - expected, 0.0)
    churn, net_churn = _churn(data, baseline)
    new_requests = float(n[~is_known].sum())
    new_net_requests = float(n[~is_known & ~known_net].sum())
    known_requests = requests - new_requests

    share = functools.partial(excess_share, excess=excess)
    top10, sources_80 = concentration(n, excess)
    new_rows = in_ranges(t, [window])
    new_rows = new_rows.filter(~new_rows.client_ip.isin(known.client_ip))
    new_b, base_b = _behaviour(data, new_rows, _sums(table, ~is_known)), _behaviour(data, base)
    return Composition(
        start=window[0], end=window[1], requests=int(requests), expected=expected, excess=excess,
        clients=len(n), new_clients=int((~is_known).sum()), new_requests=int(new_requests),
        new_network_requests=int(new_net_requests), known_requests=int(known_requests),
        churn_share=churn, network_churn_share=net_churn,
        new_excess_share=share(new_requests - churn * expected),
        new_network_excess_share=share(new_net_requests - net_churn * expected),
        known_excess_share=share(known_requests - (1 - churn) * expected),
        top10_excess_share=share(top10), sources_for_80pct=sources_80,
        new_behaviour=new_b, baseline_behaviour=base_b,
        known_clients_active=int(is_known.sum()), known_clients_with_errors=int((is_known & (errors > 0)).sum()),
        clients_table=table,
        browsing_before=int((~is_known & table.column("browsed_before").to_numpy(zero_copy_only=False)).sum()),
        not_logged=_not_logged(new_b, base_b))
