"""The detectors. Each states one claim with its numbers, samples and reproducing query, or stays silent."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, replace
from functools import partial
from typing import TYPE_CHECKING, Any

import ibis
import pyarrow as pa
import pyarrow.compute as pc

from floodwitness.analysis.composition import (
    busiest_minutes,
    client_rates,
    excess_share,
    heaviest,
    in_ranges,
    is_asset,
)
from floodwitness.analysis.phases import minute_span, suspects
from floodwitness.detectors.base import (
    DEFAULT_POLICY,
    Context,
    DetectorPolicy,
    Evidence,
    Finding,
    LiveState,
    detector,
    live,
)
from floodwitness.detectors.behaviour import scan_rules
from floodwitness.detectors.evidence import ASSET_SQL, abuse_scan, baseline_sql, samples, sql_text, window_sql
from floodwitness.detectors.fingerprints import Rule, bundled_rules

if TYPE_CHECKING:
    from collections.abc import Callable

    from floodwitness.analysis.composition import Composition


def _suspect_samples(ctx: Context, query: str) -> tuple[Evidence, ...]:
    """Sample lines of the 20 heaviest suspects (ties by address), or of the window when there is none: looked up
    once per incident, since several findings cite them."""
    cached = ctx.suspect_samples
    if cached is None:
        top = heaviest(suspects(ctx.composition), 20, ["client_ip", "requests", "first"])
        ips = top.column("client_ip").to_pylist()
        start = pc.min(top.column("first")).as_py() if ips else None  # when the first of them came: look there
        span = (start.replace(tzinfo=None), ctx.window[1]) if start is not None else None
        cached = samples(ctx, (lambda t: t.client_ip.isin(ips)) if ips else None, "", window=span)
        ctx.suspect_samples = cached
    return tuple(replace(e, query=query) for e in cached)


def _fid(ctx: Context, name: str) -> str:
    return f"I{ctx.incident + 1}-{name}"


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


# -- The conditions each detector states, on a composition alone: shared with live detection (watch), which
# -- computes the same composition from sketches and cannot run the evidence queries.

def new_networks_hold(c: Composition, p: DetectorPolicy = DEFAULT_POLICY) -> bool:
    return c.excess > 0 and c.new_network_excess_share >= p.new_network_share


def known_clients_hold(c: Composition, p: DetectorPolicy = DEFAULT_POLICY) -> bool:
    return c.excess > 0 and c.known_excess_share >= p.known_share


def loads_assets_like_people(c: Composition, p: DetectorPolicy = DEFAULT_POLICY) -> bool:
    """The new clients requested assets at ``crowd_asset_ratio`` of the audience's rate or more, judged only against
    an audience that loads assets at all (0% against 0% says nothing) and a log that has paths."""
    nb, bb = c.new_behaviour, c.baseline_behaviour
    return "path" not in c.not_logged and bb.asset_share >= p.bot_asset_floor and \
        nb.asset_share >= p.crowd_asset_ratio * bb.asset_share


def familiar_crowd_holds(c: Composition, p: DetectorPolicy = DEFAULT_POLICY) -> bool:
    # a crowd is many people: a handful of sources making most of the excess is none
    return c.excess > 0 and c.new_excess_share >= p.crowd_new_share and \
        c.new_network_excess_share <= p.crowd_new_network_share and loads_assets_like_people(c, p) and \
        c.sources_for_80pct > p.few_sources


def bot_behaviour_holds(c: Composition, p: DetectorPolicy = DEFAULT_POLICY) -> bool:
    nb, bb = c.new_behaviour, c.baseline_behaviour
    if "path" in c.not_logged:  # no asset share to judge by (it reads 0 for everyone)
        return False
    return c.excess > 0 and nb.requests >= p.bot_request_share * c.excess and \
        nb.asset_share < p.bot_asset_ratio * max(bb.asset_share, p.bot_asset_floor)


def cache_busting_holds(c: Composition, p: DetectorPolicy = DEFAULT_POLICY) -> bool:
    return c.new_behaviour.query_share >= p.query_share and c.new_behaviour.unique_query_share >= p.unique_query_share


def concentrated_sources_hold(c: Composition, p: DetectorPolicy = DEFAULT_POLICY) -> bool:
    return c.excess > 0 and (c.sources_for_80pct <= p.few_sources or c.top10_excess_share >= p.top10_share)


@detector(history="needs")
def traffic_surge(ctx: Context) -> list[Finding]:
    c = ctx.composition
    if not ctx.volume_minutes:
        return []
    minutes = max((c.end - c.start).total_seconds() / 60, 1)
    factor = c.requests / max(c.expected, 1.0)
    query = window_sql(ctx, select="date_trunc('minute', ts) AS minute, count(*) AS requests", group="1", order="1")
    return [Finding(
        _fid(ctx, "surge"), "traffic_surge",
        f"{c.requests:,} requests in {minutes:.0f} min, {factor:.1f}x the {c.expected / minutes / 60:.1f} req/s "
        f"the baseline predicts ({c.excess:,.0f} excess requests)",
        ctx.window, {"requests": c.requests, "expected": round(c.expected), "excess": round(c.excess),
                     "factor": round(factor, 2), "volume_minutes": len(ctx.volume_minutes)},
        confidence=0.95, evidence=samples(ctx, None, query, n=2))]


@detector
def server_errors(ctx: Context) -> list[Finding]:
    c = ctx.composition
    base = c.baseline_behaviour.error_share
    window_errors = int(ctx.timeline.status_5xx[ctx.timeline.index_of(c.start):ctx.timeline.index_of(c.end)].sum())
    window_share = window_errors / max(c.requests, 1)
    if window_share - base < ctx.policy.error_share_delta or window_errors < ctx.policy.min_errors:
        return []
    query = window_sql(ctx, select="status, count(*) AS n", where="status >= 500", group="1", order="2 DESC")
    against = f"against {_pct(base)} in the baseline" if ctx.has_history else "no baseline to compare with"
    findings = [Finding(
        _fid(ctx, "errors"), "server_errors",
        f"{window_errors:,} server errors (5xx): {_pct(window_share)} of requests, {against}",
        ctx.window, {"errors": window_errors, "share": round(window_share, 4), "baseline_share": round(base, 4),
                     "shed_503": int(ctx.timeline.shed_503[ctx.timeline.index_of(c.start):
                                                           ctx.timeline.index_of(c.end)].sum())},
        confidence=0.95, evidence=samples(ctx, lambda t: t.status >= 500, query))]
    ph = ctx.phases
    if ph is not None and ph.failure_minutes:
        span = minute_span(ctx.timeline, ph.failure_minutes)
        assert span is not None
        where_attack = ("before the attack traffic began" if ph.errors_lead and not ph.errors_outlast else
                        "after the attack traffic ended" if ph.errors_outlast and not ph.errors_lead else
                        "while the suspected attack traffic was absent")
        if not ph.attack_minutes:
            where_attack = "without any attack traffic"
        q2 = window_sql(ctx, select="date_trunc('minute', ts) AS minute, count(*) AS requests, "
                        "count(*) FILTER (WHERE status >= 500) AS errors", group="1", order="1", window=span)
        findings.append(Finding(
            _fid(ctx, "inside"), "errors_without_surge",
            f"server errors stood out in {len(ph.failure_minutes)} minute(s) {where_attack}: "
            f"the load does not explain them", span,
            {"failure_minutes": len(ph.failure_minutes), "errors_lead_minutes": ph.errors_lead,
             "errors_outlast_minutes": ph.errors_outlast, "attack_minutes": len(ph.attack_minutes)},
            confidence=0.8, evidence=samples(ctx, lambda t: t.status >= 500, q2, window=span)))
    return findings


@detector(history="needs")
def new_networks(ctx: Context) -> list[Finding]:
    c = ctx.composition
    if not new_networks_hold(c, ctx.policy):
        return []
    query = window_sql(ctx, select="client_ip, count(*) AS requests",
                       where=f"client_ip NOT IN (SELECT client_ip FROM read_parquet('{ctx.data.parquet_glob}') "
                             f"WHERE reject_reason IS NULL AND ({baseline_sql(ctx)}))",
                       group="1", order="2 DESC")
    return [Finding(
        _fid(ctx, "newnets"), "new_networks",
        f"{_pct(c.new_network_excess_share)} of the excess came from {c.new_clients:,} clients never seen before, "
        f"in networks (/16, IPv6 /32) the baseline audience never used",
        ctx.window, {"new_network_excess_share": round(c.new_network_excess_share, 3),
                     "new_excess_share": round(c.new_excess_share, 3), "new_clients": c.new_clients,
                     "new_network_requests": c.new_network_requests, "normal_network_churn": round(
                         c.network_churn_share, 3)},
        confidence=min(0.5 + c.new_network_excess_share / 2, 0.97), evidence=_suspect_samples(ctx, query))]


def _hostile_known(ctx: Context) -> pa.Table:
    """The known clients of the incident (seen in the baseline) that scanned, brute-forced or scraped it: hostile
    sources, not the site's own clients (their errors and their surge are theirs)."""
    t = ctx.composition.clients_table
    hostile = abuse_scan(ctx).hostile.column("client_ip")
    return t.filter(pc.and_(pc.is_in(t.column("client_ip"), value_set=hostile), t.column("known")))


@detector(history="needs")
def known_clients_surge(ctx: Context) -> list[Finding]:
    c = ctx.composition
    if not known_clients_hold(c, ctx.policy):
        return []
    hostile = _hostile_known(ctx)
    if hostile.num_rows:  # without the hostile sources' requests, the site's own clients may have sent no more
        own = c.known_requests - int(pc.sum(hostile.column("requests")).as_py() or 0)
        if excess_share(own - (1 - c.churn_share) * c.expected, c.excess) < ctx.policy.known_share:
            return []
    query = window_sql(ctx, select="client_ip, count(*) AS requests, count(*) FILTER (WHERE status >= 500) AS errors",
                       where=f"client_ip IN (SELECT client_ip FROM read_parquet('{ctx.data.parquet_glob}') "
                             f"WHERE reject_reason IS NULL AND ({baseline_sql(ctx)}))", group="1", order="2 DESC")
    return [Finding(
        _fid(ctx, "known"), "known_clients_surge",
        f"{_pct(c.known_excess_share)} of the excess came from clients already seen in the baseline "
        f"({c.known_clients_active:,} known clients active): the site's own clients sent more, as retries do",
        ctx.window, {"known_excess_share": round(c.known_excess_share, 3), "known_requests": c.known_requests,
                     "known_clients_active": c.known_clients_active},
        confidence=min(0.4 + c.known_excess_share / 2, 0.9),
        evidence=samples(ctx, lambda t: t.status >= 500, query))]


@detector(history="needs")
def familiar_crowd(ctx: Context) -> list[Finding]:
    c = ctx.composition
    nb, bb = c.new_behaviour, c.baseline_behaviour
    if not familiar_crowd_holds(c, ctx.policy):
        return []
    # requests per active minute of the new clients and of the baseline's: people's pace, or not
    new_ips = ibis.memtable(c.clients_table.filter(pc.invert(c.clients_table.column("known"))).select(["client_ip"]))
    window = in_ranges(ctx.data.requests, [ctx.window])
    new_p50, _ = client_rates(ctx.data, window.filter(window.client_ip.isin(new_ips.client_ip)))
    base_p50, _ = client_rates(ctx.data, in_ranges(ctx.data.requests, ctx.baseline_ranges))
    query = window_sql(ctx, select="referer, count(*) AS n", group="1", order="2 DESC")
    return [Finding(
        _fid(ctx, "crowd"), "familiar_crowd",
        f"the new clients came mostly from the audience's usual networks ({_pct(1 - c.new_network_excess_share)} "
        f"of the excess) and behaved like people: {_pct(nb.asset_share)} asset requests (baseline "
        f"{_pct(bb.asset_share)})" + (" (no referer in the logs)" if "referer" in c.not_logged else
                                      f", {_pct(nb.referer_share)} with a referer (baseline {_pct(bb.referer_share)})"),
        ctx.window, {"known_network_share": round(1 - c.new_network_excess_share, 3),
                     "asset_share": round(nb.asset_share, 3), "baseline_asset_share": round(bb.asset_share, 3),
                     "referer_share": None if "referer" in c.not_logged else round(nb.referer_share, 3),
                     "baseline_referer_share": None if "referer" in c.not_logged else round(bb.referer_share, 3),
                     "client_rate_p50": round(new_p50, 2), "baseline_rate_p50": round(base_p50, 2)},
        confidence=0.8, evidence=samples(ctx, lambda t: t.referer.notnull(), query))]


@detector
def bot_behaviour(ctx: Context) -> list[Finding]:
    c = ctx.composition
    nb, bb = c.new_behaviour, c.baseline_behaviour
    if not bot_behaviour_holds(c, ctx.policy):
        return []
    out = []
    query = window_sql(ctx, select="path, count(*) AS n, count(*) FILTER (WHERE " + ASSET_SQL + ") AS assets",
                       group="1", order="2 DESC")
    referer = (" (no referer in the logs)" if "referer" in c.not_logged else
               f" and {_pct(nb.referer_share)} carried a referer"
               + (f" (baseline {_pct(bb.referer_share)})" if ctx.has_history else ""))
    if ctx.has_history:
        said = f"the new clients requested {_pct(nb.asset_share)} assets (baseline {_pct(bb.asset_share)}){referer}"
    else:  # every client is "new" without a baseline: the shares are the window's own
        said = (f"the clients requested {_pct(nb.asset_share)} assets{referer} (no baseline to compare with: pages "
                "normally come with their images and scripts)")
    out.append(Finding(
        _fid(ctx, "bots"), "bot_behaviour",
        said + (f"; top target {nb.top_path!r} took {_pct(nb.top_path_share)} of their requests"
                if nb.top_path is not None else ""),
        ctx.window, {"asset_share": round(nb.asset_share, 3), "baseline_asset_share": round(bb.asset_share, 3),
                     "referer_share": None if "referer" in c.not_logged else round(nb.referer_share, 3),
                     "top_path": nb.top_path,
                     "top_path_share": round(nb.top_path_share, 3)},
        confidence=0.85, evidence=samples(ctx, lambda t: ~is_asset(t) & t.referer.isnull(), query)))
    if cache_busting_holds(c, ctx.policy):
        q = window_sql(ctx, select="count(*) AS requests, count(DISTINCT query) AS distinct_queries",
                       where="query IS NOT NULL")
        out.append(Finding(
            _fid(ctx, "cachebust"), "cache_busting",
            f"{_pct(nb.query_share)} of the {'new ' if ctx.has_history else ''}clients' requests had a query string "
            "and "
            f"{_pct(nb.unique_query_share)} of those strings were unique: cache-busting",
            ctx.window,
            {"query_share": round(nb.query_share, 3), "unique_query_share": round(nb.unique_query_share, 3)},
            confidence=0.85, evidence=samples(ctx, lambda t: t.query.notnull(), q)))
    return out


@detector
def concentrated_sources(ctx: Context) -> list[Finding]:
    c = ctx.composition
    if not concentrated_sources_hold(c, ctx.policy):
        return []
    table = c.heaviest(10, ["client_ip", "requests"])
    top = table.column("client_ip").to_pylist()
    minutes = max((c.end - c.start).total_seconds(), 1)
    rates = [round(n / minutes, 1) for n in table.column("requests").to_pylist()]
    query = window_sql(ctx, select="client_ip, count(*) AS requests", group="1", order="2 DESC LIMIT 10")
    of = "the excess" if ctx.has_history else "the requests"  # without a baseline, every request is excess
    return [Finding(
        _fid(ctx, "few"), "concentrated_sources",
        f"{c.sources_for_80pct} source(s) made 80% of {of}; the top 10 sent {_pct(c.top10_excess_share)} of it "
        f"(up to {max(rates):.1f} req/s each)", ctx.window,
        {"sources_for_80pct": c.sources_for_80pct, "top10_excess_share": round(c.top10_excess_share, 3),
         "top_sources": top, "top_rates": rates},
        confidence=0.9, evidence=samples(ctx, lambda t: t.client_ip.isin(top[:3]), query))]


@detector(history="without")
def inhuman_rate(ctx: Context) -> list[Finding]:
    """Without a baseline, a rate is judged by itself: clients that kept up ``policy.inhuman_per_minute`` requests
    in a minute. (With one, the comparisons with the audience say more, and this count is not run.)"""
    table = ctx.inhuman if ctx.inhuman is not None else busiest_minutes(ctx.data, ctx.window,
                                                                                ctx.policy.inhuman_per_minute)
    if table.num_rows == 0:
        return []
    requests = int(pc.sum(table.column("requests")).as_py() or 0)
    share = requests / max(ctx.composition.requests, 1)
    top = table.slice(0, 10).to_pylist()
    ips = [r["client_ip"] for r in top]
    query = window_sql(ctx, select="client_ip, date_trunc('minute', ts) AS minute, count(*) AS requests",
                       group="1, 2", order="3 DESC LIMIT 20")
    return [Finding(
        _fid(ctx, "rate"), "inhuman_rate",
        f"{table.num_rows:,} client(s) sent {ctx.policy.inhuman_per_minute} or more requests in a minute (up to "
        f"{int(top[0]['peak']):,}, {int(top[0]['peak']) / 60:.0f}/s), a pace no person browsing keeps: "
        f"{requests:,} requests, {_pct(share)} of the window's", ctx.window,
        {"clients": table.num_rows, "requests": requests, "share": round(share, 3),
         "threshold_per_minute": ctx.policy.inhuman_per_minute, "top_sources": ips,
         "top_peaks": [int(r["peak"]) for r in top]},
        confidence=0.9 if share >= 0.2 else 0.7,
        evidence=samples(ctx, lambda t: t.client_ip.isin(ips[:3]), query))]


def _rules(ctx: Context) -> tuple[Rule, ...]:
    return ctx.rules if ctx.rules is not None else bundled_rules()


def _from_sources(t: Any, ips: list[str]) -> Any:
    return t.client_ip.isin(ips)


@detector
def tool_fingerprint(ctx: Context) -> list[Finding]:
    """Rules with request conditions count their matching requests; rules about a source's behaviour as a
    whole (a bucket only, e.g. switching user agents) count the requests of the sources they flag. Both come
    from the rules' scan of the window (``ctx.rules_scan``, else scanned here)."""
    rules = _rules(ctx)
    scan = ctx.rules_scan
    if scan is None:
        scan = scan_rules(ctx.data, rules, ctx.window)
    flagged = {f.rule.name: f for f in scan.flags}
    out = []
    total = max(ctx.composition.requests, 1)
    for rule in rules:
        predicate: Callable[[Any], Any]
        if rule.per_request:
            (hits, clients), predicate = scan.matches[rule.name], rule.predicate
        elif rule.name in flagged:
            hits, clients = flagged[rule.name].requests, flagged[rule.name].count
            predicate = partial(_from_sources, ips=sorted(flagged[rule.name].ips))
        else:
            continue
        if hits < ctx.policy.tool_min_requests or hits / total < ctx.policy.tool_min_share:
            continue
        out.append(Finding(
            _fid(ctx, f"tool-{rule.name}"), "tool_fingerprint",
            f"{hits:,} requests ({_pct(hits / total)}) from {clients:,} clients match {rule.name}: {rule.description}",
            ctx.window, {"rule": rule.name, "requests": hits, "share": round(hits / total, 3), "clients": int(clients)},
            confidence=0.9 if hits / total > 0.2 else 0.7,
            evidence=samples(ctx, predicate, f"-- rule {rule.name} ({rule.origin}): {json.dumps(rule.spec)}"
                             + (f", per source {json.dumps(asdict(rule.bucket))}" if not rule.per_request else "")
                             + "\n" + window_sql(ctx, select="count(*)"))))
    return out


_LEVEL_NAMES = {"ip": "addresses", "/24": "/24s", "/16": "/16s", "asn": "ASes", "country": "countries"}


@detector(history="needs")
def audience_shift(ctx: Context) -> list[Finding]:
    """Where the excess came from against the site's usual audience, level by level."""
    audience = ctx.audience
    c = ctx.composition
    if audience is None or c.excess <= 0:
        return []
    levels = [lv for lv in audience.levels if lv.level != "ip"]
    parts = [f"{_LEVEL_NAMES[lv.level]} {_pct(lv.new_excess_share)} (normal churn {_pct(lv.baseline_churn)})"
             for lv in levels]
    conc = [f"{_LEVEL_NAMES[lv.level]} {_pct(lv.top10_share)} (baseline {_pct(lv.baseline_top10_share)})"
            for lv in levels if lv.level in ("/16", "asn", "country")]
    claim = ("share of the excess from networks never seen in the baseline: " + ", ".join(parts)
             + "; top-10 share of requests: " + ", ".join(conc))
    if audience.note:
        claim += f" ({audience.note})"
    net = "split_part(client_ip, '.', 1) || '.' || split_part(client_ip, '.', 2)"
    query = window_sql(ctx, select=f"{net} AS net16, count(*) AS requests, count(DISTINCT client_ip) AS clients",
                       where=f"{net} NOT IN (SELECT {net} FROM read_parquet('{ctx.data.parquet_glob}') "
                             f"WHERE reject_reason IS NULL AND ({baseline_sql(ctx)}))",
                       group="1", order="2 DESC")
    metrics: dict[str, Any] = {lv.level: lv.to_dict() for lv in audience.levels}
    metrics["databases"] = [f"{d['name']} ({d['date']})" for d in audience.databases]
    return [Finding(_fid(ctx, "audience"), "audience_shift", claim, ctx.window, metrics, confidence=0.8,
                    evidence=_suspect_samples(ctx, query))]


@detector(history="needs")
def legitimate_impact(ctx: Context) -> list[Finding]:
    """Known clients that received server errors; not the hostile sources among them (a scanner seen before
    draws its own errors)."""
    c = ctx.composition
    if not c.known_clients_with_errors:
        return []
    hostile = _hostile_known(ctx)
    with_errors = c.known_clients_with_errors - int(pc.sum(pc.greater(hostile.column("errors"), 0)).as_py() or 0)
    active = c.known_clients_active - hostile.num_rows
    if with_errors <= 0:
        return []
    but = "" if not hostile.num_rows else (
        f" ({hostile.num_rows:,} hostile source(s) seen before left out: their own requests drew theirs)")
    where = "" if not hostile.num_rows else " AND client_ip NOT IN (" + ", ".join(
        sql_text(ip) for ip in hostile.column("client_ip").to_pylist()) + ")"
    query = window_sql(ctx, select="count(DISTINCT client_ip)", where=f"status >= 500 AND client_ip IN (SELECT "
                       f"client_ip FROM read_parquet('{ctx.data.parquet_glob}') WHERE reject_reason IS NULL AND "
                       f"({baseline_sql(ctx)})){where}")
    share = with_errors / max(active, 1)
    return [Finding(
        _fid(ctx, "impact"), "legitimate_impact",
        f"{with_errors:,} of the {active:,} known clients active in the incident "
        f"({_pct(share)}) received at least one server error" + but, ctx.window,
        {"known_clients_with_errors": with_errors, "known_clients_active": active,
         "share": round(share, 3)}, confidence=0.95,
        evidence=samples(ctx, lambda t: t.status >= 500, query, n=2))]



# -- How watch states each finding live, in the order it states them: the same conditions as the detectors above,
# -- with the numbers a live composition (sums and sketches, no evidence queries) has.

@live("traffic_surge", "surge")
def _surge_live(c: Composition, s: LiveState, p: DetectorPolicy) -> tuple[str, dict[str, Any]] | None:
    if not s.volume_seconds:
        return None
    return (f"{c.requests:,} requests, {c.excess:,.0f} above the baseline",
            {"requests": c.requests, "expected": round(c.expected), "excess": round(c.excess)})


@live("new_networks", "newnets")
def _new_networks_live(c: Composition, s: LiveState, p: DetectorPolicy) -> tuple[str, dict[str, Any]] | None:
    if not new_networks_hold(c, p):
        return None
    return (f"{c.new_network_excess_share:.0%} of the excess from networks the audience never used",
            {"new_network_excess_share": round(c.new_network_excess_share, 3)})


@live("bot_behaviour", "bots")
def _bots_live(c: Composition, s: LiveState, p: DetectorPolicy) -> tuple[str, dict[str, Any]] | None:
    if not bot_behaviour_holds(c, p):
        return None
    return (f"new clients requested {c.new_behaviour.asset_share:.0%} assets "
            f"(baseline {c.baseline_behaviour.asset_share:.0%})",
            {"asset_share": round(c.new_behaviour.asset_share, 3)})


@live("cache_busting", "cachebust")
def _cache_busting_live(c: Composition, s: LiveState, p: DetectorPolicy) -> tuple[str, dict[str, Any]] | None:
    if not (bot_behaviour_holds(c, p) and cache_busting_holds(c, p)):  # stated with the bots, as in batch
        return None
    return (f"{c.new_behaviour.query_share:.0%} of the new clients' requests carried a query string, nearly all "
            "unique", {})


@live("concentrated_sources", "few")
def _few_live(c: Composition, s: LiveState, p: DetectorPolicy) -> tuple[str, dict[str, Any]] | None:
    if not concentrated_sources_hold(c, p):
        return None
    return (f"{c.sources_for_80pct} source(s) made 80% of the excess",
            {"sources_for_80pct": c.sources_for_80pct, "top10_excess_share": round(c.top10_excess_share, 3)})


@live("familiar_crowd", "crowd")
def _crowd_live(c: Composition, s: LiveState, p: DetectorPolicy) -> tuple[str, dict[str, Any]] | None:
    if not familiar_crowd_holds(c, p):
        return None
    return ("the new clients came from the audience's usual networks and loaded assets like people",
            {"asset_share": round(c.new_behaviour.asset_share, 3)})


@live("known_clients_surge", "known")
def _known_live(c: Composition, s: LiveState, p: DetectorPolicy) -> tuple[str, dict[str, Any]] | None:
    if not known_clients_hold(c, p):
        return None
    return (f"{c.known_excess_share:.0%} of the excess came from known clients",
            {"known_excess_share": round(c.known_excess_share, 3)})


@live("errors_without_surge", "inside")
def _inside_live(c: Composition, s: LiveState, p: DetectorPolicy) -> tuple[str, dict[str, Any]] | None:
    if not s.failure_seconds:
        return None
    return (f"server errors stood out in {s.failure_seconds} s without attack traffic",
            {"failure_minutes": math.ceil(s.failure_seconds / 60), "attack_minutes": math.ceil(s.attack_seconds / 60)})
