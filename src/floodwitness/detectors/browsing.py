"""people_browsing: what stood out was a handful of visitors browsing like people.

On a quiet site (a few requests a minute), two people reading a few pages with their images make a window that
stands far above the baseline: 165 requests in two minutes against 0.1 a second, from networks the site never
saw. Volume, new networks and a few sources then read as a denial of service. What tells them apart is what the
sources did: they loaded pages with their assets and referers at the audience's rate, and none came near a rate
no person reaches. Such a window is not an incident when it denied no one service (the verdict weighs this finding
with the incident's measured impact: :func:`floodwitness.verdict.judge_incident`).
"""

from __future__ import annotations

import pyarrow.compute as pc

from floodwitness.analysis.composition import busiest_minutes, heaviest
from floodwitness.detectors.base import Context, Finding, detector
from floodwitness.detectors.evidence import samples, sql_text, window_sql
from floodwitness.detectors.rules import loads_assets_like_people


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _browsing_holds(ctx: Context) -> bool:
    """The window's excess came from a handful of new clients that loaded assets (and sent referers, when logged)
    at the audience's rate or more: the behaviour judged against an audience that loads assets at all."""
    c, p = ctx.composition, ctx.policy
    if c.excess <= 0 or c.sources_for_80pct > p.few_sources or c.new_excess_share < p.crowd_new_share:
        return False
    if not loads_assets_like_people(c, p):
        return False
    return "referer" in c.not_logged or \
        c.new_behaviour.referer_share >= p.crowd_asset_ratio * c.baseline_behaviour.referer_share


@detector(history="needs")
def people_browsing(ctx: Context) -> list[Finding]:
    c, p = ctx.composition, ctx.policy
    if not _browsing_holds(ctx):
        return []
    fast = busiest_minutes(ctx.data, ctx.window, p.inhuman_per_minute)
    if fast.num_rows:  # a client at a rate no person reaches is no visitor browsing
        return []
    new = c.clients_table.filter(pc.invert(c.clients_table.column("known")))
    top = heaviest(new, 3, ["client_ip", "requests"]).column("client_ip").to_pylist()
    nb, bb = c.new_behaviour, c.baseline_behaviour
    referer = "" if "referer" in c.not_logged else \
        f", {_pct(nb.referer_share)} with a referer (baseline {_pct(bb.referer_share)})"
    query = _client_query(ctx, top)
    return [Finding(
        f"I{ctx.incident + 1}-browsing", "people_browsing",
        f"{c.sources_for_80pct} new client(s) made 80% of the excess and browsed like people: "
        f"{_pct(nb.asset_share)} asset requests (baseline {_pct(bb.asset_share)}){referer}; none reached "
        f"{p.inhuman_per_minute} requests in a minute", ctx.window,
        {"sources_for_80pct": c.sources_for_80pct, "asset_share": round(nb.asset_share, 3),
         "baseline_asset_share": round(bb.asset_share, 3),
         "referer_share": None if "referer" in c.not_logged else round(nb.referer_share, 3),
         "baseline_referer_share": None if "referer" in c.not_logged else round(bb.referer_share, 3),
         "inhuman_per_minute": p.inhuman_per_minute, "top_sources": top},
        confidence=0.8, evidence=samples(ctx, lambda t: t.client_ip.isin(top), query))]


def _client_query(ctx: Context, top: list[str]) -> str:
    """Per top client: its requests, asset requests and busiest minute in the window."""
    ips = ", ".join(sql_text(ip) for ip in top) or "NULL"
    per_minute = window_sql(ctx, select="client_ip, date_trunc('minute', ts) AS minute, count(*) AS n",
                            where=f"client_ip IN ({ips})", group="1, 2")
    return (f"SELECT client_ip, sum(n) AS requests, max(n) AS busiest_minute FROM ({per_minute}) GROUP BY 1 "
            "ORDER BY 2 DESC")
