"""The terminal report: verdict first, then why, the timeline, sources, targets, impact, the blocklist,
and where the evidence is. Reads only the report dictionary; every log field goes through
:func:`terminal_safe` and is printed as plain text (never as rich markup)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from rich.text import Text

from floodwitness.render.report_view import (
    attribution_caveat,
    history_warning,
    impact_line,
    incident_label,
    incident_line,
    listed_sources,
    network_lines,
    network_rule_lines,
    outage_lines,
    span_warning,
    store_note,
    verdict_headline,
)
from floodwitness.render.timeline_view import period_columns
from floodwitness.safe import terminal_safe
from floodwitness.verdict import HOSTILE_KINDS

if TYPE_CHECKING:
    from rich.console import Console

_BARS = " ▁▂▃▄▅▆▇█"
#: the sparklines' width, leaving room on an 80-column line for the value of a full bar
SPARK_WIDTH = 56


def sparkline(values: list[float], width: int = 60, top: float | None = None) -> str:
    """``values`` in at most ``width`` bars (the highest of each bar's values), scaled to ``top`` (their highest
    when not given: the scale several sparklines share)."""
    if not values:
        return ""
    step = max(1, -(-len(values) // width))
    buckets = [max(values[i:i + step]) for i in range(0, len(values), step)]
    top = top or max(buckets) or 1.0
    return "".join(_BARS[min(len(_BARS) - 1, round(v / top * (len(_BARS) - 1)))] for v in buckets)


_LEAD = re.compile(r"^ *(?:[+-] )?")


def _line(console: Console, text: str, style: str = "", hang: int | None = None) -> None:
    """One item of the report; when it is wider than the terminal, its wrapped lines start under its text
    (a hanging indent after the leading spaces and ``+``/``-`` marker, or ``hang`` columns), not at the left
    edge."""
    lead = _LEAD.match(text)
    cut = lead.end() if lead else 0
    indent = cut if hang is None else hang
    for i, wrapped in enumerate(Text(text[cut:], style=style).wrap(console, max(console.width - max(cut, indent), 20),
                                                                    overflow="fold")):
        wrapped.rstrip()
        console.print(Text(text[:cut] if i == 0 else " " * indent, style=style) + wrapped, overflow="fold")


def _row(console: Console, head: str, tail: str) -> None:
    """``head`` (fixed-width cells) then ``tail``, wrapped onto continuation lines under its first character (a
    blocklist reason ends with what a reviewer must check: the known clients inside)."""
    width = max(console.width - len(head), 20)
    for i, wrapped in enumerate(Text(tail).wrap(console, width, overflow="fold")):
        wrapped.rstrip()
        console.print(Text(head if i == 0 else " " * len(head)) + wrapped, overflow="fold")


def print_report(console: Console, report: dict[str, Any]) -> None:
    """The report in 80 columns: verdict, why, timeline, sources, targets, impact, blocklist, evidence, inputs."""
    for section in (_verdict, _why, _incidents, _network, _sources_section, _targets, _impact, _blocklist,
                    _network_rules, _evidence, _inputs):
        section(console, report)


def _verdict(console: Console, report: dict[str, Any]) -> None:
    v = report["verdict"]
    style = {"ddos": "bold red", "dos": "bold red", "mixed": "bold red", "internal_failure": "bold yellow",
             "flash_crowd": "bold cyan", "no_incident": "bold green"}.get(v["kind"], "bold")
    if v.get("attempt"):  # an attack that denied no service measured: lower urgency
        style = "bold yellow"
    head, impact = verdict_headline(report)
    _line(console, f"Verdict: {head}  ({v['confidence']:.0%} confidence)" + (f" \u2014 {impact}" if impact else ""),
          style)
    _line(console, v["summary"])
    thin = history_warning(report)
    if thin:
        _line(console, f"warning: {terminal_safe(thin, 600)}", "yellow")
    console.print()


def _why(console: Console, report: dict[str, Any]) -> None:
    v = report["verdict"]
    best = next((h for h in v["hypotheses"] if h["kind"] == v["kind"]), v["hypotheses"][0])
    _line(console, "Why", "bold")
    for item in best["for"][:6]:
        _line(console, f"  + {terminal_safe(item, 300)}")
    for item in best["against"][:3]:
        _line(console, f"  - {terminal_safe(item, 300)}")
    others = [h for h in v["hypotheses"] if h is not best][:3]
    if others:
        _line(console, f"  score: {best['kind']} {best['score']:+.1f}; alternatives: "
                       + ", ".join(f"{h['kind']} {h['score']:+.1f}" for h in others), "dim", hang=4)
    console.print()


def _incidents(console: Console, report: dict[str, Any]) -> None:
    if report["timeline"].get("requests") is not None:
        _timeline(console, report["timeline"])
    _network_series(console, (report.get("network") or {}).get("series") or {})
    for inc in report["incidents"]:
        if inc.get("peak_rps") is None:  # seen in the flows only: its network lines say what it was
            _line(console, f"  {incident_label(inc)}: {inc['start']} -> {inc['end']}, seen in the flows")
        elif inc["kind"] == "outage" or (inc.get("network") or {}).get("explains_outage"):
            # no peak of requests to speak of: its outage lines say what it was
            _line(console, f"  {incident_label(inc)}: {inc['start']} -> {inc['end']}")
        else:
            _line(console, f"  {incident_label(inc)}: {inc['start']} -> {inc['end']}, peak {inc['peak_rps']:.0f} "
                           f"req/s at {inc['peak_second'][11:19]}; {incident_line(inc)}")
        for text in outage_lines(inc["outage"]) if inc.get("outage") else []:
            _line(console, f"    {terminal_safe(text, 1000)}", "yellow")
    for gap in report.get("log_gaps") or []:
        note = terminal_safe(gap["cause_note"], 600)
        _line(console, f"  gap in the logs from {gap['began']} to {gap['ended']}: {note}", "dim")
    if not report["incidents"]:
        _line(console, "  no incident window")
    left_out = report.get("incidents_left_out") or []
    if left_out:
        _line(console, f"  and {_count(len(left_out), 'lighter incident window')} not analysed in depth "
                       "(incidents_left_out in the JSON)", "dim")


def _network_series(console: Console, series: dict[str, Any]) -> None:
    """The watched addresses' packets per step (the flows' timeline), when flows were given."""
    packets = [float(x or 0) for x in series.get("packets") or []]
    if not packets or not series.get("start"):
        return
    step = int(series.get("step_seconds") or 1)
    start = datetime.fromisoformat(str(series["start"]).replace("Z", "+00:00"))
    end = start + timedelta(seconds=step * len(packets))
    _line(console, f"Network timeline (packets per {step} s toward the watched addresses, {start:%Y-%m-%d %H:%M:%S} "
                   f"to {end:%H:%M:%S} UTC)", "bold")
    _line(console, f"  {sparkline(packets, SPARK_WIDTH)}  max {max(packets):,.0f}")


def _network(console: Console, report: dict[str, Any]) -> None:
    lines = network_lines(report)
    if lines:
        console.print()
        _line(console, "Network (flows)", "bold")
        for text in lines:
            _line(console, f"  {terminal_safe(text, 1000)}", hang=4)


def _sources_section(console: Console, report: dict[str, Any]) -> None:
    sources = report.get("sources") or {}
    if sources.get("top"):
        console.print()
        _line(console, "Sources (main incident)", "bold")
        nv = sources["new_vs_known"]
        if nv.get("new_clients") is None:
            _line(console, f"  {nv['clients']:,} clients; no baseline to tell new clients from known ones")
        else:
            _line(console, f"  {nv['clients']:,} clients, {nv['new_clients']:,} never seen in the baseline; "
                           f"excess from new networks {nv['new_network_excess_share']:.0%}, "
                           f"from known clients {nv['known_excess_share']:.0%}")
        attack = report["verdict"]["kind"] in HOSTILE_KINDS and sources.get("top_suspects")
        lists = [("top_suspects", 5, "heaviest suspected attackers", "suspect")] if attack else []
        lists.append(("top", 3 if attack else 5, "busiest sources", "client"))
        for key, limit, title, what in lists:
            _sources(console, report, key, limit, title, what)
        _audience_lines(console, sources)
        caveat = attribution_caveat(report)
        if caveat:
            _line(console, f"  note: {caveat}", "dim")
    flagged = sources.get("flagged") or []
    if flagged and not sources.get("top"):
        console.print()
        _line(console, "Sources flagged by behaviour (no incident)", "bold")
    for f in flagged[:4]:
        ips = ", ".join(terminal_safe(t["client_ip"], 40) for t in f["top"][:3])
        _line(console, f"  {f['rule']}: {f['sources']:,} source(s), {f['requests']:,} req ({ips})")


def _targets(console: Console, report: dict[str, Any]) -> None:
    targets = report.get("targets") or {}
    if targets.get("top_paths"):
        console.print()
        _line(console, "Targets", "bold")
        for p in targets["top_paths"][:5]:
            _line(console, f"  {terminal_safe(p['method'], 8):<8}{terminal_safe(p['path'], 50):<50} "
                           f"{p['requests']:>9,}")


def _impact(console: Console, report: dict[str, Any]) -> None:
    impact = report.get("impact") or {}
    if impact:
        console.print()
        _line(console, "Impact", "bold")
        _line(console, f"  {impact_line(impact, 0)}")
    main = (report.get("incidents") or [{}])[0].get("impact") or {}
    if main.get("summary"):
        if not impact:
            console.print()
            _line(console, "Impact", "bold")
        _line(console, f"  {terminal_safe(main['summary'], 600)}")


def _blocklist(console: Console, report: dict[str, Any]) -> None:
    mit = report.get("mitigation") or {}
    console.print()
    _line(console, "Blocklist", "bold")
    entries = mit.get("blocklist") or []
    if not entries:
        _line(console, f"  empty: {mit.get('note', 'nothing to block')}")
        return
    collateral = sum(int(e["collateral_clients"]) for e in entries)
    covered = sum(int(e["requests"]) for e in entries)
    _line(console, f"  {len(entries):,} CIDRs covering {covered:,} attack requests; "
                   f"collateral: {collateral:,} known clients")
    for e in entries[:5]:
        _row(console, f"  {e['cidr']:<18} {e['requests']:>9,} req  ", terminal_safe(e["reason"], 200))
    if mit.get("note"):
        _line(console, f"  note: {mit['note']}", "dim")


def _network_rules(console: Console, report: dict[str, Any]) -> None:
    """The network countermeasures (``mitigation.network``): each rule with what it stops and costs."""
    rules = network_rule_lines(report, 6)
    if not rules:
        return
    console.print()
    _line(console, "Network countermeasures (floodwitness mitigate --to exabgp-flowspec | nftables-network ...)",
          "bold")
    for text in rules:
        _line(console, f"  {terminal_safe(text, 400)}", hang=4)


def _evidence(console: Console, report: dict[str, Any]) -> None:
    console.print()
    _line(console, "Evidence", "bold")
    for f in report["findings"][:8]:
        ev = f["evidence"][0] if f["evidence"] else {}
        where = f"{terminal_safe(ev.get('file'), 60)}:{ev.get('line')}" if ev.get("file") else "query only"
        _line(console, f"  [{f['id']}] {f['kind']}: {where}")
    _line(console, "  every finding carries sample lines and the SQL that reproduces it (--json)", "dim")
    note = store_note(report)
    if note:
        _line(console, f"  {terminal_safe(note, 400)}", "dim")


def _inputs(console: Console, report: dict[str, Any]) -> None:
    inputs = report["inputs"]
    read = sum(i["lines_read"] for i in inputs)
    rejected = sum(i["lines_rejected"] for i in inputs)
    flows = (report.get("network") or {}).get("inputs") or []
    flow_text = "" if not flows else (
        f"; {len(flows)} flow input(s), {sum(int(i.get('records_read') or 0) for i in flows):,} records read, "
        f"{sum(int(i.get('records_rejected') or 0) for i in flows):,} rejected")
    noun = "log file(s)" if flows else "file(s)"
    _line(console, f"Inputs: {len(inputs)} {noun}, {read:,} lines read, {rejected:,} rejected{flow_text}; "
                   f"SHA-256 in the JSON report", "dim")
    outside = span_warning(report)
    if outside:
        _line(console, f"warning: {terminal_safe(outside, 400)}", "yellow")
    for i in inputs:
        if not i.get("complete", True):
            damage = terminal_safe(i.get("damage"), 300)
            _line(console, f"warning: {terminal_safe(i['path'], 120)} is incomplete: {damage}", "yellow")


def _sources(console: Console, report: dict[str, Any], key: str, limit: int, title: str, what: str) -> None:
    """The heaviest sources that matter, their rate while they were active, and how many more were left out."""
    listed = listed_sources(report, key, limit)
    if not listed.rows and not listed.more:
        return
    _line(console, f"  {title} (req/s while active, busiest minute):", "dim")
    width = max((len(terminal_safe(s["client_ip"], 40)) for s in listed.rows), default=15)
    for s in listed.rows:
        tag = ("" if s["known"] is None else "known" if s["known"] else  # None: no baseline to know it
               "new, known net" if s["known_network"] else "new net")
        rate = _rate(float(s.get("active_rps", s["rate_rps"])))
        busiest = f", max {s['busiest_minute_requests']:,}/min" if "busiest_minute_requests" in s else ""
        _line(console, f"    {terminal_safe(s['client_ip'], 40):<{width}} {s['requests']:>9,} req "
                       f"{rate:>6}/s{busiest}  {tag}")
    if listed.more:
        lead = "and" if listed.rows else "none worth listing:"
        _line(console, f"    {lead} {_count(listed.more, 'more ' + what)} with "
                       f"{_count(listed.more_requests, 'request')} in all", "dim")


def _rate(rps: float) -> str:
    """A rate with two significant digits below 1/s (a pulse wave's bots send a few requests a minute)."""
    return f"{rps:,.1f}" if rps >= 1 else f"{rps:.2f}"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _clock(start: datetime, at: datetime) -> str:
    return at.strftime("%H:%M") if at.date() == start.date() else at.strftime("%m-%d %H:%M")


def _timeline(console: Console, tl: dict[str, Any]) -> None:
    """Requests per minute (and server errors) as sparklines, each with the value of its full bar, over an axis
    labelled with the first minute's start and the last minute's end (UTC)."""
    if tl.get("segments"):
        _long_timeline(console, tl)
        return
    requests = [float(x) for x in tl["requests"]]
    start = datetime.fromisoformat(str(tl["start"]).replace("Z", "+00:00"))
    end = start + timedelta(seconds=int(tl.get("step_seconds", 60)) * len(requests))
    _line(console, f"Timeline (requests per minute, {start:%Y-%m-%d %H:%M} to "
                   f"{end:%Y-%m-%d %H:%M} UTC)", "bold")
    line = sparkline(requests, SPARK_WIDTH)
    _line(console, f"  {line}  max {max(requests, default=0):,.0f}/min")
    errors = [float(x or 0) for x in tl["status_5xx"]]  # null in every minute when the logs have no status
    if any(errors):
        _line(console, f"  {sparkline(errors, SPARK_WIDTH)}  max {max(errors):,.0f}/min 5xx", "red")
    left, right = _clock(start, start), _clock(start, end)
    gap = len(line) - len(left) - len(right)
    _line(console, f"  {left}{' ' * gap}{right}" if gap >= 2 else f"  {left} to {right}", "dim")


def _long_timeline(console: Console, tl: dict[str, Any]) -> None:
    """A long timeline (stored per minute around incidents only): each period's sparkline of the highest
    requests per minute, side by side, the gaps between periods marked and their lengths said."""
    periods = period_columns(tl, SPARK_WIDTH - 2 * (len(tl.get("periods") or [1]) - 1))
    first, last = periods[0].start, periods[-1].end
    gaps = [(b.start - a.end) for a, b in pairwise(periods)]
    said = (f"; {len(periods)} periods, the gaps between them ({', '.join(f'{g.days:,} days' for g in gaps)}) "
            "hold no request and are not drawn" if gaps else "")
    _line(console, f"Timeline (requests per minute, {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC{said})",
          "bold")
    top = max((v for p in periods for v in p.requests), default=0.0)
    bars = " ┆".join(sparkline(p.requests, len(p.requests), top) for p in periods)
    _line(console, f"  {bars}  max {top:,.0f}/min")
    errors = max((v for p in periods for v in p.errors), default=0.0)
    if errors:
        _line(console, f"  {' ┆'.join(sparkline(p.errors, len(p.errors), errors) for p in periods)}  max "
                       f"{errors:,.0f}/min 5xx", "red")
    _line(console, "  " + "; ".join(f"{p.start:%Y-%m-%d} to {p.end:%Y-%m-%d}" for p in periods), "dim")
    if len(periods) > 1:
        _line(console, "  each period is analysed against its own baseline; their incidents are ranked together",
              "dim")
    _line(console, f"  (per minute within {tl['resolution']['margin_minutes']} minutes of each incident, else "
                   f"{tl['resolution']['coarse_seconds'] // 60}-minute means)", "dim")


_LEVELS = (("/24", "/24"), ("/16", "/16"), ("asn", "AS"), ("country", "country"))


def _audience_lines(console: Console, sources: dict[str, Any]) -> None:
    """The audience model in two lines: new networks per level, and the top ASes with the database's date."""
    levels = sources.get("audience") or {}
    parts = [f"{label} {levels[key]['new_excess_share']:.0%}" for key, label in _LEVELS if key in levels]
    if parts:
        _line(console, "  excess from networks new to the site: " + ", ".join(parts))
    asns = sources.get("asns") or []
    if asns:
        dbs = sources.get("databases") or []
        date = f" ({terminal_safe(dbs[0].get('date'), 12)} db)" if dbs and dbs[0].get("date") else ""
        top = ", ".join(f"{terminal_safe(a.get('as_name') or a.get('asn') or '?', 24)} {a['share']:.0%}"
                        for a in asns[:3])
        _line(console, f"  top AS: {top}{date}")
