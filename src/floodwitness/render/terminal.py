"""The terminal report: verdict first, then why, the timeline, sources, targets, impact, the blocklist,
and where the evidence is. Reads only the report dictionary; every log field goes through
:func:`terminal_safe` and is printed as plain text (never as rich markup)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from rich.text import Text

from floodwitness.render.report_view import ERRORS_NOT_LOGGED, span_warning
from floodwitness.render.safe import terminal_safe
from floodwitness.verdict import ATTACK_KINDS

if TYPE_CHECKING:
    from rich.console import Console

_BARS = " ▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int = 60) -> str:
    if not values:
        return ""
    step = max(1, -(-len(values) // width))
    buckets = [max(values[i:i + step]) for i in range(0, len(values), step)]
    top = max(buckets) or 1.0
    return "".join(_BARS[min(len(_BARS) - 1, round(v / top * (len(_BARS) - 1)))] for v in buckets)


_LEAD = re.compile(r"^ *(?:[+-] )?")


def _line(console: Console, text: str, style: str = "") -> None:
    """One item of the report; when it is wider than the terminal, its wrapped lines start under its text
    (a hanging indent after the leading spaces and ``+``/``-`` marker), not at the left edge."""
    lead = _LEAD.match(text)
    cut = lead.end() if lead else 0
    body = Text(text[cut:], style=style)
    for i, wrapped in enumerate(body.wrap(console, max(console.width - cut, 20), overflow="fold")):
        wrapped.rstrip()
        console.print(Text(text[:cut] if i == 0 else " " * cut, style=style) + wrapped, overflow="fold")


def _row(console: Console, head: str, tail: str) -> None:
    """``head`` (fixed-width cells) then ``tail`` cut with an ellipsis to end the line at the terminal's edge."""
    rest = Text(tail)
    rest.truncate(max(console.width - len(head), 12), overflow="ellipsis")
    console.print(Text(head) + rest, overflow="fold")


def print_report(console: Console, report: dict[str, Any]) -> None:
    v = report["verdict"]
    style = {"ddos": "bold red", "dos": "bold red", "mixed": "bold red", "internal_failure": "bold yellow",
             "flash_crowd": "bold cyan", "no_incident": "bold green"}.get(v["kind"], "bold")
    _line(console, f"Verdict: {v['kind'].upper()}  ({v['confidence']:.0%} confidence)", style)
    _line(console, v["summary"])
    console.print()
    best = v["hypotheses"][0]
    _line(console, "Why", "bold")
    for item in best["for"][:6]:
        _line(console, f"  + {terminal_safe(item, 300)}")
    for item in best["against"][:3]:
        _line(console, f"  - {terminal_safe(item, 300)}")
    others = list(v["hypotheses"][1:4])
    if others:
        _line(console, "  alternatives: " + ", ".join(f"{h['kind']} ({h['score']:+.1f})" for h in others), "dim")
    console.print()
    tl = report["timeline"]
    _line(console, f"Timeline (requests/min, from {tl['start']})", "bold")
    _line(console, "  " + sparkline([float(x) for x in tl["requests"]]))
    errors = tl["status_5xx"]
    if any(errors):
        _line(console, "  " + sparkline([float(x) for x in errors]) + "  5xx", "red")
    for inc in report["incidents"]:
        _line(console, f"  {inc['id']} {inc['kind']}: {inc['start']} -> {inc['end']}, peak {inc['peak_rps']:.0f} req/s "
                       f"at {inc['peak_second'][11:19]} (baseline {inc['baseline_rps']:.1f} req/s), "
                       f"{inc['excess_requests']:,} excess requests")
    if not report["incidents"]:
        _line(console, "  no incident window")
    sources = report.get("sources") or {}
    if sources.get("top"):
        console.print()
        _line(console, "Sources (main incident)", "bold")
        nv = sources["new_vs_known"]
        _line(console, f"  {nv['clients']:,} clients, {nv['new_clients']:,} never seen in the baseline; "
                       f"excess from new networks {nv['new_network_excess_share']:.0%}, "
                       f"from known clients {nv['known_excess_share']:.0%}")
        attack = v["kind"] in ATTACK_KINDS and sources.get("top_suspects")
        listed = [(sources["top_suspects"][:5], "heaviest suspected attackers")] if attack else []
        listed.append((sources["top"][:3 if attack else 5], "busiest sources"))
        for rows, title in listed:
            _line(console, f"  {title}:", "dim")
            for s in rows:
                tag = "known" if s["known"] else ("new, known net" if s["known_network"] else "new net")
                _line(console, f"    {terminal_safe(s['client_ip'], 40):<40} {s['requests']:>8,} req "
                               f"{s['rate_rps']:>6.1f}/s  {tag}")
        _audience_lines(console, sources)
        _line(console, f"  note: {sources['attribution_caveat']}", "dim")
    flagged = sources.get("flagged") or []
    if flagged and not sources.get("top"):
        console.print()
        _line(console, "Sources flagged by behaviour (no incident)", "bold")
    for f in flagged[:4]:
        ips = ", ".join(terminal_safe(t["client_ip"], 40) for t in f["top"][:3])
        _line(console, f"  {f['rule']}: {f['sources']:,} source(s), {f['requests']:,} req ({ips})")
    targets = report.get("targets") or {}
    if targets.get("top_paths"):
        console.print()
        _line(console, "Targets", "bold")
        for p in targets["top_paths"][:5]:
            _line(console, f"  {terminal_safe(p['method'], 8):<8}{terminal_safe(p['path'], 50):<50} "
                           f"{p['requests']:>9,}")
    impact = report.get("impact") or {}
    if impact:
        console.print()
        _line(console, "Impact", "bold")
        if impact.get("error_share") is None:
            _line(console, f"  {impact['known_clients_active']:,} known clients active; {ERRORS_NOT_LOGGED}")
        else:
            _line(console, f"  {impact['known_clients_with_errors']:,} of {impact['known_clients_active']:,} known "
                           f"clients got server errors; {impact['error_share']:.0%} of requests in the incident failed")
    mit = report.get("mitigation") or {}
    console.print()
    _line(console, "Blocklist", "bold")
    entries = mit.get("blocklist") or []
    if not entries:
        _line(console, f"  empty: {mit.get('note', 'nothing to block')}")
    else:
        collateral = sum(int(e["collateral_clients"]) for e in entries)
        covered = sum(int(e["requests"]) for e in entries)
        _line(console, f"  {len(entries):,} CIDRs covering {covered:,} attack requests; "
                       f"collateral: {collateral:,} known clients")
        for e in entries[:5]:
            _row(console, f"  {e['cidr']:<18} {e['requests']:>9,} req  ", terminal_safe(e["reason"], 200))
    console.print()
    _line(console, "Evidence", "bold")
    for f in report["findings"][:8]:
        ev = f["evidence"][0] if f["evidence"] else {}
        where = f"{terminal_safe(ev.get('file'), 60)}:{ev.get('line')}" if ev.get("file") else "query only"
        _line(console, f"  [{f['id']}] {f['kind']}: {where}")
    _line(console, "  every finding carries sample lines and the SQL that reproduces it (--json)", "dim")
    inputs = report["inputs"]
    read = sum(i["lines_read"] for i in inputs)
    rejected = sum(i["lines_rejected"] for i in inputs)
    _line(console, f"Inputs: {len(inputs)} file(s), {read:,} lines read, {rejected:,} rejected; "
                   f"SHA-256 in the JSON report", "dim")
    outside = span_warning(report)
    if outside:
        _line(console, f"warning: {terminal_safe(outside, 400)}", "yellow")
    for i in inputs:
        if not i.get("complete", True):
            damage = terminal_safe(i.get("damage"), 300)
            _line(console, f"warning: {terminal_safe(i['path'], 120)} is incomplete: {damage}", "yellow")


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
