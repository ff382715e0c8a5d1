"""Build the report dictionary (the public JSON contract, :mod:`floodwitness.report.contract`) from what the
analysis found.

Field names of the top level, of ``inputs``, ``verdict``, ``incidents``, ``findings`` and
``mitigation.blocklist`` entries are a contract: add fields, never rename or remove them.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow.compute as pc

from floodwitness import __version__
from floodwitness.analysis.composition import BROWSING_MINUTES, heaviest
from floodwitness.analysis.history import whole_period
from floodwitness.analysis.sources import client_details, top_paths, top_user_agents
from floodwitness.analysis.timeline import first_seen_per_minute
from floodwitness.analysis.windows import window_times, window_weight
from floodwitness.detectors import FINDING_KINDS
from floodwitness.detectors.behaviour import flag_sources
from floodwitness.mitigation import Blocklist, build_blocklist
from floodwitness.mitigation.attackers import requests_by_client, select_attackers
from floodwitness.mitigation.protected import protected_ranges
from floodwitness.mitigation.ratelimit import recommend
from floodwitness.report.contract import SCHEMA
from floodwitness.report.results import iso as _iso
from floodwitness.report.series import timeline_dict
from floodwitness.verdict import ATTACK_KINDS, HOSTILE_KINDS, verdict_section
from floodwitness.verdict.behaviour import incident_behaviour

if TYPE_CHECKING:
    import pyarrow as pa

    from floodwitness.analysis.audience import Audience
    from floodwitness.analysis.dataset import Dataset
    from floodwitness.analysis.history import History
    from floodwitness.analysis.outage import Outage
    from floodwitness.analysis.span import Span
    from floodwitness.analysis.timeline import Timeline
    from floodwitness.analysis.windows import Baseline, Window
    from floodwitness.detectors import Finding
    from floodwitness.detectors.behaviour import RuleFlags
    from floodwitness.detectors.fingerprints import Rule
    from floodwitness.report.results import AnalyzeOptions, IncidentResult, PeriodResult


ATTRIBUTION = {
    "shows": ["which addresses sent the requests, when, what they asked for and how the server answered",
              "whether those addresses and networks were part of the site's usual audience"],
    "cannot_show": ["who operated the attack or why: addresses belong to compromised devices, proxies and "
                    "rented servers, not to the operator",
                    "The sources' countries and networks describe where the compromised devices and proxies "
                    "are, never where the attacker is.",
                    "anything that never reached these servers (traffic dropped upstream, other services)"],
}


def build_report(data: Dataset, options: AnalyzeOptions, tl: Timeline, base: Baseline, history: History,
                 span: Span | None, rules: tuple[Rule, ...], known_clients: pa.Table, results: list[IncidentResult],
                 flags: list[RuleFlags] | None, left_out: list[Window],
                 periods: tuple[PeriodResult, ...] = (), gaps: list[Outage] | None = None) -> dict[str, Any]:
    """The report of an analysis: its incidents, heaviest first (``known_clients``: the baseline's clients and their
    requests; ``flags``: the sources the rules flagged in a period without an incident, when already found;
    ``left_out``: the incident windows lighter than the ``max_incidents`` analysed in depth, on ``tl``;
    ``periods``: when the logs hold several periods weeks apart, each one's analysis, ``history`` and
    ``known_clients`` being the main incident's period's; ``gaps``: collapses that are gaps between log files)."""
    baseline_ranges = list(history.ranges)
    order = sorted(range(len(results)), key=lambda i: results[i].rank)
    results = [results[i] for i in order]
    main = results[0] if results else None
    # The blocklist is pure Python (per attacking address): built on a worker thread while this one runs
    # the report's remaining engine queries, which release the GIL.
    attack = main if main is not None and main.verdict.kind in HOSTILE_KINDS else None
    attackers = select_attackers(attack.verdict.kind, attack.suspected(), attack.composition.clients_table,
                                 attack.findings, attack.abusers) if attack else {}
    known = requests_by_client(known_clients) if attack else {}
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fw-blocklist") as pool:
        blocklist = pool.submit(_blocklist, attack, attackers, known, options) if attack else None
        report: dict[str, Any] = {
            "schema": SCHEMA,
            "tool": {"name": "floodwitness", "version": __version__},
            "generated_at": _iso(datetime.now(UTC).replace(tzinfo=None)),
            "parameters": parameters(data, options),
            "inputs": _inputs(data),
            "verdict": verdict_section(None if main is None else main.verdict, minutes=int(tl.in_periods().sum()),
                                       has_history=history.sufficient, behaviour=None if main is None else
                                       _behaviour(main)["summary"],
                                       incident=None if main is None else (_iso(main.times[0]), _iso(main.times[1])),
                                       inhuman_per_minute=options.detectors.inhuman_per_minute,
                                       impact=_impact_of(main)),
            "incidents": [_incident_dict(r) for r in results],
            "findings": [finding_dict(f) for r in results for f in r.findings],
            "timeline": timeline_dict(
                tl, base, baseline_ranges if not periods else [r for p in periods for r in p.history.ranges],
                first_seen_per_minute(data, tl, options.since, options.until),
                [(r.times[0], r.times[1], r.peak) for r in results],
                [(w.start_index, w.end_index, window_weight(tl, base, w)) for w in left_out]),
            "attribution": ATTRIBUTION,
            "baseline": history.to_dict(),
        }
        if periods:  # logs of periods weeks apart: each period's own history (the main incident's is above)
            report["baseline"]["periods"] = [p.to_dict() for p in periods]
        if span is not None and span.periods:
            report["time_span"] = span.to_dict()
        if left_out:
            report["incidents_left_out"] = [_left_out_dict(tl, base, w) for w in left_out]
        if gaps:
            report["log_gaps"] = [g.to_dict() for g in gaps]
        if main is not None:
            report["sources"] = _sources(data, main, baseline_ranges)
            report["sources"]["flagged"] = [f.to_dict() for f in main.flags]
            report["targets"] = _targets(data, main)
            report["impact"] = _impact(main, status_logged=data.has_values("status"))
            report["mitigation"] = _mitigation(data, main, baseline_ranges, options,
                                               None if blocklist is None else blocklist.result(), attackers, known)
        else:
            report["sources"], report["targets"] = {"top": [], "attribution_caveat": ATTRIBUTION["cannot_show"][1],
                                                    "flagged": [f.to_dict() for f in (
                                                        flags if flags is not None else
                                                        flag_sources(data, rules, whole_period(tl)))]}, {}
            report["impact"] = {}
            report["mitigation"] = {"blocklist": [], "note": "no incident: nothing to block"}
    return report


def parameters(data: Dataset, options: AnalyzeOptions) -> dict[str, Any]:
    return {"since": _iso(options.since) if options.since else None,
            "until": _iso(options.until) if options.until else None,
            "baseline": [_iso(x) for x in options.baseline] if options.baseline else "auto",
            "window_policy": asdict(options.policy), "blocklist_policy": asdict(options.blocklist_policy),
            "collapse_policy": asdict(options.collapse),
            "store": str(data.store), "store_is_temporary": data.temporary,
            "geoip": options.geoip, "asn": options.asn, "enrich": options.enrich,
            "fingerprints": list(options.fingerprints)}


def _inputs(data: Dataset) -> list[dict[str, Any]]:
    out = []
    for i in data.manifest.inputs:
        out.append({"path": i.path, "sha256": i.sha256, "bytes": i.bytes, "compression": i.compression,
                    "format": i.format, "format_confidence": i.format_confidence, "lines_read": i.lines_read,
                    "lines_parsed": i.lines_parsed, "lines_rejected": i.lines_rejected,
                    "rejected_by_reason": i.rejected_by_reason,
                    "reject_samples": [asdict(s) for s in i.reject_samples], "utf8_repaired": i.utf8_repaired,
                    "complete": i.complete, "damage": i.damage, "first_ts": i.first_ts, "last_ts": i.last_ts})
    return out


def _incident_dict(r: IncidentResult) -> dict[str, Any]:
    """One incident; without history its expected requests, excess and baseline rate are unknown (null)."""
    c = r.composition
    known = r.has_history
    return {"id": f"I{r.index + 1}",
            "kind": r.verdict.kind, "confidence": r.verdict.confidence,
            "start": _iso(r.times[0]), "end": _iso(r.times[1]), "peak": _iso(r.peak),
            "peak_second": _iso(r.peak_second), "peak_rps": r.peak_rps,
            "baseline_rps": round(r.baseline_rps, 2) if known else None,
            "requests": c.requests, "expected_requests": round(c.expected) if known else None,
            "excess_requests": round(c.excess) if known else None, "history": known,
            "clients": c.clients, "new_clients": c.new_clients if known else None,
            "volume_minutes": len(r.window.volume_minutes), "error_minutes": len(r.window.error_minutes),
            "attack_minutes": len(r.phases.attack_minutes), "failure_minutes": len(r.phases.failure_minutes),
            "impact": None if r.impact is None else r.impact.to_dict(), "behaviour": _behaviour(r),
            "outage": r.outage.to_dict() if r.outage is not None else None}


def _behaviour(r: IncidentResult) -> dict[str, Any]:
    """What the incident's hostile sources did (a flood's: its suspected attackers)."""
    flood = r.verdict.kind in ATTACK_KINDS
    return incident_behaviour(r.verdict.kind, r.findings, r.suspected().num_rows if flood else None)


def _impact_of(r: IncidentResult | None) -> tuple[str, bool] | None:
    """The main incident's impact level, and whether anything of it was measured (None: no incident)."""
    if r is None or r.impact is None:
        return None
    return r.impact.level, bool(r.impact.measured)


def _left_out_dict(tl: Timeline, base: Baseline, w: Window) -> dict[str, Any]:
    """An incident window not analysed in depth (lighter than the analysed ones), from the minute series."""
    start, end = window_times(tl, w)
    span = slice(w.start_index, w.end_index)
    return {"start": _iso(start), "end": _iso(end), "requests": int(tl.requests[span].sum()),
            "expected_requests": round(float(base.level[span].sum())), "server_errors": int(tl.status_5xx[span].sum()),
            "weight": round(window_weight(tl, base, w), 1),
            "note": "lighter than the incidents analysed in depth (their number is capped by max_incidents)"}


def finding_dict(f: Finding) -> dict[str, Any]:
    """A finding as the report lists it (``findings[]``)."""
    kind = FINDING_KINDS[f.kind]
    return {"id": f.id, "kind": f.kind, "severity": f.severity, "description": kind.description,
            "section": kind.section, "technique": f.technique, "claim": f.claim, "confidence": f.confidence,
            "window": {"start": _iso(f.window[0]), "end": _iso(f.window[1])},
            "metrics": dict(f.metrics), "evidence": [e.to_dict() for e in f.evidence]}


def _sources(data: Dataset, r: IncidentResult, baseline_ranges: list[tuple[datetime, datetime]]) -> dict[str, Any]:
    c = r.composition
    columns = ["client_ip", "requests", "known", "net", "known_net"]
    t = c.heaviest(20, columns)
    # the busiest sources are often the site's own clients (apps retrying): the suspects are listed apart
    all_suspects = r.suspected()
    sus = heaviest(all_suspects, 10, columns)
    # the listed sources' paths, agent and active minutes: a look at their requests only
    ips = sorted(set(t.column("client_ip").to_pylist()) | set(sus.column("client_ip").to_pylist()))
    detail = client_details(data, r.times, ips)
    seconds = max((r.times[1] - r.times[0]).total_seconds(), 1.0)

    def source(row: dict[str, Any]) -> dict[str, Any]:
        listed = detail[row["client_ip"]]
        minutes, busiest = listed.get("active_minutes", 1), listed.get("busiest_minute", row["requests"])
        history = r.has_history  # without one, nobody is known or new
        return {"client_ip": row["client_ip"], "requests": row["requests"],
                "rate_rps": round(row["requests"] / seconds, 3), "known": row["known"] if history else None,
                "network": row["net"], "known_network": row["known_net"] if history else None,
                "user_agent": listed["user_agent"], "distinct_paths": listed["distinct_paths"],
                "active_minutes": minutes, "active_rps": round(row["requests"] / min(60.0 * minutes, seconds), 3),
                "busiest_minute_requests": busiest}
    # networks from the per-client table (one row per client, already in memory): no new scan
    by_net = c.clients_table.group_by(["net", "known_net"]).aggregate([("requests", "sum"), ("client_ip", "count")])
    nets = sorted(({"net": row["net"], "requests": row["requests_sum"], "clients": row["client_ip_count"],
                    "known": row["known_net"] if r.has_history else None} for row in by_net.to_pylist()),
                  key=lambda n: (-int(n["requests"]), n["net"]))[:15]
    uas = top_user_agents(data, r.times)
    new_vs_known: dict[str, Any] = {
        "clients": c.clients, "new_clients": c.new_clients, "requests_from_new": c.new_requests,
        "requests_from_known": c.known_requests, "new_excess_share": round(c.new_excess_share, 3),
        "new_network_excess_share": round(c.new_network_excess_share, 3),
        "known_excess_share": round(c.known_excess_share, 3)}
    if not r.has_history:  # nobody is known without a baseline: new and known cannot be told apart
        new_vs_known = dict.fromkeys(new_vs_known) | {"clients": c.clients}
    return {
        "top": [source(row) for row in t.to_pylist()],
        "top_suspects": [source(row) for row in sus.to_pylist()],
        "suspects": {"clients": all_suspects.num_rows,
                     "requests": int(pc.sum(all_suspects.column("requests")).as_py() or 0)},
        "new_vs_known": new_vs_known,
        "networks": nets,
        "user_agents": uas,
        "concentration": {"top10_excess_share": round(c.top10_excess_share, 3),
                          "sources_for_80pct_of_excess": c.sources_for_80pct},
        "attribution_caveat": ATTRIBUTION["cannot_show"][1],
    } | _audience_fields(r.audience)


def _audience_fields(a: Audience | None) -> dict[str, Any]:
    """The audience model's fields of ``sources`` (added to the contract by the sources issue)."""
    if a is None:
        return {}
    return {"audience": {lv.level: lv.to_dict() for lv in a.levels}, "asns": a.asns, "countries": a.countries,
            "databases": a.databases, "audience_note": a.note}


def _targets(data: Dataset, r: IncidentResult) -> dict[str, Any]:
    vectors = [f.claim for f in r.findings if FINDING_KINDS[f.kind].vector]
    return {"top_paths": top_paths(data, r.times), "vectors": vectors}


def _impact(r: IncidentResult, *, status_logged: bool = True) -> dict[str, Any]:
    """What the incident did to the site's users; the errors are unknown (null, and ``status`` in
    ``not_logged``) when the log has no status field, never 0 as if measured; without history nobody is known,
    so the known clients' counts are null too."""
    c = r.composition
    known = r.has_history
    active = c.known_clients_active if known else None
    if not status_logged:
        return {"known_clients_active": active, "known_clients_with_errors": None, "error_share": None,
                "not_logged": ["status"]}
    return {"known_clients_active": active, "known_clients_with_errors": c.known_clients_with_errors if known else None,
            "error_share": round(float(r.phases.errors.sum()) / max(float(r.phases.requests.sum()), 1.0), 4),
            "not_logged": []}


def _blocklist(r: IncidentResult, attackers: dict[str, int], known: dict[str, int],
               options: AnalyzeOptions) -> Blocklist:
    """The attack's blocklist (no engine query: safe on a worker thread); ``known``: the baseline's clients
    and their requests."""
    c = r.composition
    incident = dict(zip(c.clients_table.column("client_ip").to_pylist(),
                        c.clients_table.column("requests").to_pylist(), strict=True))
    return build_blocklist(attackers, known, incident_clients=incident, policy=options.blocklist_policy)


def _mitigation(data: Dataset, r: IncidentResult, baseline_ranges: list[tuple[datetime, datetime]],
                options: AnalyzeOptions, blocklist: Blocklist | None, attackers: dict[str, int],
                known: dict[str, int]) -> dict[str, Any]:
    """The blocklist (built by :func:`_blocklist` for an attack, else None) and, when asked, rate limits."""
    if blocklist is None:
        return {"blocklist": [], "note": f"verdict {r.verdict.kind}: blocking clients would not help and would hurt "
                                         "legitimate users"}
    out = blocklist.to_dict()
    out["incident"] = {"id": f"I{r.index + 1}", "start": _iso(r.times[0]), "end": _iso(r.times[1])}
    if not r.has_history:
        out["note"] = ("no history: the blocklist holds only the sources the traffic itself condemns (an attack "
                       "tool's fingerprint, a rate no person reaches); its collateral on the site's known clients "
                       "cannot be measured without a baseline of their traffic")
    out["browsing_before"] = {
        "clients": r.composition.browsing_before,
        "note": f"new clients that loaded a page with its assets in the {BROWSING_MINUTES} minutes before the "
                "incident (people on the site as it began) are never counted as attackers"}
    if options.rate_limits:
        advice = recommend(data, r.times, baseline_ranges, attackers, known,
                           protected_ranges(options.blocklist_policy.allow))
        out["rate_limits"] = advice.to_dict()
    return out
