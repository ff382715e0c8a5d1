"""The findings of hostile behaviour that is not a flood (scan, brute force, scraping), with their numbers,
sample lines and reproducing query, from the sources' classification (:mod:`floodwitness.detectors.abuse_scan`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow.compute as pc

from floodwitness.analysis.composition import in_ranges
from floodwitness.detectors.abuse_scan import AbuseScan, shows
from floodwitness.detectors.base import Context, Finding, detector
from floodwitness.detectors.evidence import abuse_scan, samples, sql_text, window_sql

if TYPE_CHECKING:
    import pyarrow as pa

    from floodwitness.detectors.abuse_rules import Behaviour, Signature


_IDS = {"scan": "scan", "brute_force": "bruteforce", "scrape": "scrape"}


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _sum(t: pa.Table, column: str) -> int:
    return int(pc.sum(t.column(column)).as_py() or 0)


def _claim(b: Behaviour, rows: pa.Table, share: float, top_paths: list[str]) -> str:
    n, requests = rows.num_rows, _sum(rows, "requests")
    who = f"{n:,} source{'s' if n != 1 else ''}"
    s4, s5, auth, posts = (_sum(rows, c) for c in ("status_4xx", "status_5xx", "auth_refused", "posts"))
    drawn = f"; {s5:,} server errors, drawn by their own requests" if s5 else "; no server errors"
    if b.name == "brute_force":
        return (f"{who} repeated requests to a login endpoint ({', '.join(top_paths)}): {requests:,} requests "
                f"({_pct(share)} of the window's), {_pct(posts / max(requests, 1))} POST, "
                f"{_pct(auth / max(requests, 1))} refused 401/403" + drawn)
    if b.name == "scrape":
        return (f"{who} fetched {_sum(rows, 'paths'):,} distinct pages once each without their assets: "
                f"{requests:,} requests ({_pct(share)} of the window's), {_pct(s4 / max(requests, 1))} answered 4xx"
                + drawn)
    return (f"{who} scanned the site: {requests:,} requests ({_pct(share)} of the window's) for "
            f"{_sum(rows, 'paths'):,} distinct paths, {_pct(s4 / max(requests, 1))} answered 4xx" + drawn)


def _finding(ctx: Context, scan: AbuseScan, b: Behaviour) -> Finding | None:
    rows, everyone = scan.of(b.name), scan.table
    requests, total = _sum(rows, "requests"), max(_sum(everyone, "requests"), 1)
    p = ctx.policy
    if not rows.num_rows or requests < p.abuse_min_requests or requests / total < p.abuse_min_share:
        return None
    c = ctx.composition
    # the share of the incident it makes: of the excess with a baseline, of the requests without one
    of_incident = min(requests / c.excess, 1.0) if ctx.has_history and c.excess > 0 else requests / total
    top = rows.slice(0, 10)
    ips = top.column("client_ip").to_pylist()
    signatures = {s.name: int(np.sum(shows(rows, i, s))) for i, s in enumerate(scan.rules.signatures)
                  if s.behaviour == b.name}
    shown = [scan.rules.signatures[i] for i, s in enumerate(scan.rules.signatures) if signatures.get(s.name)]
    sig = next((s for s in shown if not s.supporting), shown[0])
    paths = ctx.data.engine.ibis.to_pyarrow(_top_paths(ctx, ips[:3], sig)).column("path").to_pylist()
    others = max(total - requests, 0)
    other_errors = _sum(everyone, "status_5xx") - _sum(rows, "status_5xx")
    query = (f"-- behaviour {b.name} ({scan.rules.origin}), signature {sig.name}: {json.dumps(sig.spec)}\n"
             + window_sql(ctx, select="client_ip, count(*) AS requests, count(DISTINCT path) AS paths, "
                          "count(*) FILTER (WHERE status BETWEEN 400 AND 499) AS status_4xx, "
                          "count(*) FILTER (WHERE status >= 500) AS status_5xx",
                          where="client_ip IN (" + ", ".join(sql_text(ip) for ip in ips) + ")",
                          group="1", order="2 DESC"))
    seconds = max((ctx.window[1] - ctx.window[0]).total_seconds(), 1.0)
    return Finding(
        f"I{ctx.incident + 1}-{_IDS[b.name]}", b.finding, _claim(b, rows, requests / total, paths), ctx.window,
        {"behaviour": b.name, "sources": rows.num_rows, "requests": requests, "share": round(requests / total, 3),
         "incident_share": round(of_incident, 3), "names_incident": of_incident >= b.names_incident,
         "top_sources": ips, "top_requests": top.column("requests").to_pylist(),
         "top_rate_rps": round(int(top.column("requests")[0].as_py()) / seconds, 2), "top_paths": paths,
         "distinct_paths": _sum(rows, "paths"), "status_4xx": _sum(rows, "status_4xx"),
         "status_5xx": _sum(rows, "status_5xx"), "auth_refused": _sum(rows, "auth_refused"),
         "posts": _sum(rows, "posts"), "signatures": signatures,
         "others_requests": others, "others_errors": other_errors,
         "others_error_share": round(other_errors / max(others, 1), 4),
         "baseline_error_share": round(c.baseline_behaviour.error_share, 4) if ctx.has_history else 0.0,
         "errors_logged": "status_5xx" not in ctx.timeline.not_logged},
        confidence=0.9 if of_incident >= b.names_incident else 0.7,
        evidence=samples(ctx, lambda t: t.client_ip.isin(ips[:3]) & sig.predicate(t), query))


def _top_paths(ctx: Context, ips: list[str], sig: Signature) -> Any:
    t = in_ranges(ctx.data.requests, [ctx.window])
    t = t.filter(t.client_ip.isin(ips) & sig.predicate(t))
    per = t.group_by("path").aggregate(n=t.count())
    return per.order_by([per.n.desc(), per.path]).limit(3)


@detector
def abuse_behaviour(ctx: Context) -> list[Finding]:
    """Sources that scanned, brute-forced a login or scraped the site (data/behaviours.json): one finding per
    behaviour whose sources sent at least ``policy.abuse_min_requests`` requests and ``abuse_min_share`` of the
    window's."""
    scan = abuse_scan(ctx)
    return [f for b in scan.rules.behaviours if (f := _finding(ctx, scan, b)) is not None]
