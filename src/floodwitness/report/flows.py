"""The flows in the analysis (#21): the network analysis run beside the access logs' (or alone), its findings
weighed into the incidents they overlap, and the report's ``network`` section with the incidents only the flows
show."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import duckdb

from floodwitness import __version__
from floodwitness.analysis.network import NetworkAnalysis, analyze_network
from floodwitness.detectors.network import network_findings
from floodwitness.mitigation.network import network_plan
from floodwitness.mitigation.network_model import NetworkOptions
from floodwitness.report.build import ATTRIBUTION, finding_dict, parameters
from floodwitness.report.contract import SCHEMA
from floodwitness.report.network import SLACK, episode_text, link, parse_time
from floodwitness.report.results import iso
from floodwitness.verdict import verdict_section
from floodwitness.verdict.behaviour import incident_behaviour
from floodwitness.verdict.network import judge_network

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pyarrow as pa

    from floodwitness.analysis.dataset import Dataset
    from floodwitness.detectors.base import Finding
    from floodwitness.report.results import AnalyzeOptions, IncidentResult
    from floodwitness.verdict.hypothesis import IncidentVerdict


def network_of(data: Dataset, options: AnalyzeOptions) -> NetworkAnalysis | None:
    """The network analysis of the flows in the store (None when none were given)."""
    parts = data.flow_parts
    if not parts:
        return None
    files = {i.file_id: i.path for i in data.manifest.flow_inputs}
    return analyze_network(_duckdb(data), parts, list(options.victims) or None, files)


def _duckdb(data: Dataset) -> Any:
    """The DuckDB connection the flows are analysed on: the engine's (its memory limit and spill folder), or on
    another engine (Spark) one of its own: the network analysis is DuckDB SQL (a gap the README states)."""
    if data.engine.name == "duckdb":
        return data.engine.raw
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con


def flows_toward(parts: list[str], network: dict[str, Any] | None,
                 hosts: Sequence[str] | None = None) -> pa.Table | None:
    """The flows to and from the targets of a report's network episodes, read from a store's flow parts: what the
    network countermeasures are measured on (``mitigate --to <network target>``, the report's mitigation.network).
    ``hosts``: the episodes' hosts when the analysis knows them; else each episode's target (a carpet-bombed IPv4
    /24 by its addresses' text, another prefix: every flow). None without parts or episodes."""
    episodes = (network or {}).get("episodes") or []
    if not parts or not episodes:
        return None
    if hosts:
        listed = ", ".join(_sql_text(h) for h in sorted(set(hosts)))
        keep = [f"dst_ip IN ({listed}) OR src_ip IN ({listed})"]
    else:
        keep = _target_filters(episodes)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    listed = ", ".join(_sql_text(p) for p in parts)
    table: pa.Table = con.sql(f"SELECT * FROM read_parquet([{listed}]) WHERE reject_reason IS NULL AND "
                              f"({' OR '.join(keep)})").to_arrow_table()
    con.close()
    return table


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _target_filters(episodes: list[dict[str, Any]]) -> list[str]:
    keep = []
    for ep in episodes:
        target = str(ep.get("target") or "")
        if target.endswith("/24") and target.count(".") == 3:  # a carpet-bombed IPv4 /24: its addresses' text
            stem = target[:-4].rsplit(".", 1)[0].replace("'", "''") + ".%"
            keep.append(f"dst_ip LIKE '{stem}' OR src_ip LIKE '{stem}'")
        elif "/" not in target:
            keep.append(f"dst_ip = {_sql_text(target)} OR src_ip = {_sql_text(target)}")
        else:  # another prefix: every flow (the plan matches them itself)
            return ["TRUE"]
    return keep


def outage_explained(r: IncidentResult, network: NetworkAnalysis) -> IncidentResult:
    """An outage incident (the access log went quiet) with the network's findings during it weighed in: a flood the
    flows show makes it an attack; a quiet network keeps it an outage, said so."""
    if r.outage is None and r.verdict.kind != "outage":
        return r
    end = r.times[1] if r.outage is None or r.outage.ended is None else r.outage.ended
    found = network_findings(network, (r.times[0] - SLACK, end + SLACK), r.index)
    if not found:
        return r
    verdict = judge_network(found, base=r.verdict)
    return replace(r, findings=[*r.findings, *found], verdict=verdict)


def _span(data: Dataset) -> dict[str, str | None]:
    """Where the flows read begin and end (a quiet network means something only where flows were read)."""
    first = [i.first_ts for i in data.manifest.flow_inputs if i.first_ts]
    last = [i.last_ts for i in data.manifest.flow_inputs if i.last_ts]
    return {"start": min(first) if first else None, "end": max(last) if last else None}


def _inputs(data: Dataset) -> list[dict[str, Any]]:
    keep = ("file_id", "path", "sha256", "bytes", "kind", "reader", "records_read", "records_parsed",
            "records_rejected", "rejected_by_reason", "packets_read", "packets_in_flows", "packets_outside_flows",
            "sampling", "first_ts", "last_ts")
    return [{k: getattr(record, k) for k in keep} for record in data.manifest.flow_inputs]


def _network_incident(ep: dict[str, Any], number: int, findings: list[Finding],
                      verdict: IncidentVerdict) -> dict[str, Any]:
    """An incident only the flows show (no access log, or none that saw it): the access log's measures are null."""
    return {"id": f"I{number}", "kind": verdict.kind, "confidence": verdict.confidence,
            "start": ep["start"], "end": ep["end"], "peak": ep["peak"], "peak_second": ep["peak"],
            "peak_rps": None, "baseline_rps": None, "requests": None, "expected_requests": None,
            "excess_requests": None, "history": ep.get("baseline_pps") is not None, "clients": None,
            "new_clients": None, "volume_minutes": 0, "error_minutes": 0, "attack_minutes": 0, "failure_minutes": 0,
            "impact": None, "behaviour": incident_behaviour(verdict.kind, findings, None), "outage": None,
            "seen_in": "flows"}


def network_section(report: dict[str, Any], data: Dataset, network: NetworkAnalysis,
                    main_verdict: IncidentVerdict | None) -> None:
    """Add the ``network`` section to ``report``, tie its episodes to the incidents, and make the episodes no
    incident covers incidents of their own (the verdict theirs when the access logs showed none)."""
    section = network.to_dict()
    section["inputs"] = _inputs(data)
    section["span"] = _span(data)
    report["network"] = section
    hosts = [h for ep in network.episodes for h in (ep.hosts or (ep.target,))]
    plan = network_plan(list(section.get("episodes") or []), flows_toward(data.flow_parts, section, hosts),
                        NetworkOptions())
    report.setdefault("mitigation", {})["network"] = plan.to_dict()
    link(section, report["incidents"])
    orphans = [ep for ep in section.get("episodes") or [] if ep.get("incident") is None]
    first_new = len(report["incidents"]) + 1
    verdicts: list[IncidentVerdict] = []
    for n, ep in enumerate(orphans):
        window = (parse_time(ep["start"]), parse_time(ep["end"]) + timedelta(seconds=1))
        found = network_findings(network, window, first_new + n - 1)
        verdict = judge_network(found)
        verdicts.append(verdict)
        report["findings"] += [_finding(f) for f in found]
        inc = _network_incident(ep, first_new + n, found, verdict)
        ep["incident"] = inc["id"]
        inc["network"] = {"episodes": [ep["id"]], "vectors": sorted({v["vector"] for v in ep.get("vectors") or []}),
                          "explains_outage": False, "statement": "seen in the flows only: the access logs read show "
                          "no incident at this time" if report.get("inputs") else "seen in the flows (no access log "
                          "given)"}
        report["incidents"].append(inc)
    if orphans and (main_verdict is None or main_verdict.kind == "no_incident"):
        # the access logs showed no incident: the heaviest flood in the flows is the verdict's incident
        new = report["incidents"][-len(orphans):]
        best = max(range(len(orphans)), key=lambda i: float(orphans[i].get("packets") or 0))
        report["incidents"].remove(new[best])
        report["incidents"].insert(0, new[best])
        v = verdicts[best]
        report["verdict"] = verdict_section(v, minutes=0, has_history=True, inhuman_per_minute=0,
                                            incident=(new[best]["start"], new[best]["end"]))
        report["verdict"]["summary"] = (f"The flows show {_kind_text(v.kind)} (confidence {v.confidence:.0%}): "
                                        f"{episode_text(orphans[best])}.")


def _kind_text(kind: str) -> str:
    return {"ddos": "a network-level distributed denial-of-service attack",
            "dos": "a network-level denial-of-service attack from a handful of sources"}.get(
        kind, f"no network-level attack (verdict {kind})")


def _finding(f: Finding) -> dict[str, Any]:
    return finding_dict(f)


def flows_only_report(data: Dataset, options: AnalyzeOptions, network: NetworkAnalysis) -> dict[str, Any]:
    """The report of flows given without any access log: the network's view alone; every measure of requests is
    absent, and said to be."""
    verdict = verdict_section(None, minutes=0, has_history=False, inhuman_per_minute=0)
    verdict["summary"] = ("The flows show no network-level flood toward the watched addresses; no access log was "
                          "given, so the service itself was not observed.")
    verdict["hypotheses"][0]["for"] = ["no network-level flood in the flows read"]
    report: dict[str, Any] = {
        "schema": SCHEMA, "tool": {"name": "floodwitness", "version": __version__},
        "generated_at": iso(datetime.now(UTC).replace(tzinfo=None)), "parameters": parameters(data, options),
        "inputs": [], "verdict": verdict, "incidents": [], "findings": [], "timeline": {},
        "attribution": ATTRIBUTION, "sources": {"top": [], "flagged": []}, "targets": {}, "impact": {},
        "mitigation": {"blocklist": [], "note": "no access log, so no address to block from it: see the network "
                                             "countermeasures (mitigation.network)"},
    }
    network_section(report, data, network, None)
    return report


__all__ = ["flows_only_report", "flows_toward", "network_of", "network_section", "outage_explained"]
