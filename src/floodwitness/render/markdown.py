"""The report as Markdown, for an incident ticket or a postmortem.

Log fields are attacker-controlled and Markdown turns text into links, images and HTML. So a log field is
only ever shown inside a code span (:func:`md_code`, whose fence is longer than any backtick run inside)
or a fenced block (:func:`md_block`), where nothing is interpreted; every other text that may quote a log
field (finding claims, reasons) goes through :func:`md_text`, which backslash-escapes the characters that
would start emphasis, a link, an image, HTML, an entity, math or an autolink where they stand, and the
block markers only at the start of a line: ``12:05`` and ``0.1.0`` stay as they are. Control characters
are shown as ``\\xNN``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from floodwitness.render.report_view import (
    Item,
    ReportView,
    impact_line,
    incident_label,
    incident_line,
    listed_sources,
    network_lines,
    network_rule_lines,
    outage_lines,
)
from floodwitness.safe import terminal_safe

if TYPE_CHECKING:
    from collections.abc import Callable

# CommonMark lets any ASCII punctuation be backslash-escaped; these are escaped where they would mean something
# anywhere in a line: code spans, emphasis ("*" always; "_" only at a word's edge, since an underscore inside a
# word opens nothing), an escaped "[" opens no link or image, "<" no HTML or autolink, "~" strikethrough, "$"
# math, "&" only where it would start an entity, ":" only before "//" (http://), "@" only inside an address
# (e-mail autolinks), and a backslash only where it would escape the next character.
_MD_SPECIAL = re.compile(r"[`*\[<~$]|\\(?=[!-/:-@\[-`{-~]|$)|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])"
                         r"|&(?=#?[A-Za-z0-9]+;)|:(?=//)|(?<=[A-Za-z0-9._%+-])@(?=[A-Za-z0-9])")
# at the start of a line: an ordered list item ("1. ", "2)"), a bullet, heading, quote or setext underline
_MD_LEADING = re.compile(r"^(\s*(?:\d{1,9}(?=[.)](?:\s|$)))?)([.)]|[-+#>=])")
_WWW = re.compile(r"(?i)(w)(ww)\.")
_RUN = re.compile(r"`+")

TOP_ROWS = 10


def md_text(value: Any, limit: int | None = 400, *, line_start: bool = True, table: bool = False) -> str:
    """Text that Markdown shows as written: no emphasis, link, image, HTML or autolink. ``line_start``: the text
    may begin a line (so a leading ``1.``, ``-`` or ``#`` is escaped); ``table``: it is a table cell (``|``)."""
    text = terminal_safe(str(value), limit)
    text = _MD_SPECIAL.sub(lambda m: "\\" + m.group(), text)
    if table:
        text = text.replace("|", "\\|")
    if line_start and not table:
        text = _MD_LEADING.sub(_escape_marker, text, count=1)
    return _WWW.sub(r"\1\2\\.", text)


def _escape_marker(match: re.Match[str]) -> str:
    lead, marker = match.groups()
    if marker in ".)" and not lead.strip():
        return match.group()  # ".htaccess": no list without a number before it
    return f"{lead}\\{marker}"


def md_code(value: Any, limit: int | None = 200, *, table: bool = False) -> str:
    """A code span that holds ``value`` literally (``|`` escaped in table cells, as GFM tables require)."""
    if value is None:
        return "\u2013"  # en dash: no value
    text = terminal_safe(str(value), limit)
    if table:
        text = text.replace("|", "\\|")
    fence = "`" * (max((len(m) for m in _RUN.findall(text)), default=0) + 1)
    pad = " " if text.startswith(("`", " ")) or text.endswith(("`", " ")) or not text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_block(value: Any, language: str = "", limit: int | None = 4000) -> str:
    """A fenced code block that cannot be closed early by the text it holds."""
    text = terminal_safe(str(value), limit)
    fence = "`" * max(3, max((len(m) for m in _RUN.findall(text)), default=0) + 1)
    return f"{fence}{language}\n{text}\n{fence}"


def _n(value: Any) -> str:
    if value is None:
        return "\u2013"  # en dash: not known (a count the log has no field for)
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _yes(value: bool | None) -> str:
    """A yes/no cell; unknown (no baseline to know it) is a dash."""
    return "\u2014" if value is None else "yes" if value else "no"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _cite(finding: dict[str, Any]) -> str:
    return f"\\[{md_text(finding['id'], line_start=False)}\\]"


def _item(it: Item, sign: str) -> str:
    cite = f" {_cite(it.finding)}" if it.finding else ""
    return f"- {sign} {md_text(it.text, line_start=False)}{cite}"


def _hypotheses(view: ReportView) -> list[str]:
    """Each hypothesis with its score and the evidence for and against it. A finding's claim is written out the
    first time a hypothesis cites it; a later hypothesis citing it again refers to its id (the attack's three
    kinds share their evidence, which was written three times)."""
    out, stated = ["## Hypotheses", ""], set()
    chosen = view.report["verdict"]["kind"]
    for h in view.hypotheses:
        out.append(f"- **{md_text(h.kind, line_start=False)}** (score {h.score:+.1f}"
                   f"{', the verdict' if h.kind == chosen else ''})")
        for items, sign in ((h.supports, "for:"), (h.against, "against:")):
            again = [it.finding for it in items if it.finding and it.finding["id"] in stated]
            out += ["  " + _item(it, sign) for it in items if not (it.finding and it.finding["id"] in stated)]
            if again:
                out.append(f"  - {sign} " + ", ".join(_cite(f) for f in again) + " (stated above)")
            stated |= {it.finding["id"] for it in items if it.finding}
    return [*out, ""]


def render_markdown(report: dict[str, Any]) -> str:
    """The report as GitHub-flavoured Markdown."""
    view = ReportView(report)
    v = report["verdict"]
    head, tail = view.headline
    out = ["# floodwitness incident report", "",
           f"Verdict: **{md_text(head, line_start=False)}** ({v['confidence']:.0%} confidence)"
           + (f" \u2014 {md_text(tail, line_start=False)}" if tail else ""), "",
           f"**{md_text(v['summary'], line_start=False)}**", ""]
    if view.history_warning:
        out += [f"**Warning:** {md_text(view.history_warning, 800, line_start=False)}", ""]
    inc = view.main_incident
    if inc:
        out += [f"Incident {md_code(inc['id'])} from {md_code(inc['start'])} to {md_code(inc['end'])}: peak "
                f"{_n(inc['peak_rps'])} requests/s at {md_code(inc['peak_second'])}; "
                f"{md_text(incident_line(inc), line_start=False)}.", ""]
    if view.periods_line:
        out += [md_text(view.periods_line, 1200), ""]
    out += _outages(report)
    out += _network(report)
    out += _hypotheses(view)
    sources = report.get("sources") or {}
    if sources.get("top"):
        nv = sources["new_vs_known"]
        out += ["## Sources", "",
                f"{_n(nv['clients'])} clients; no baseline to tell new clients from known ones." if nv.get(
                    "new_clients") is None else
                f"{_n(nv['clients'])} clients, {_n(nv['new_clients'])} never seen in the baseline; "
                f"{nv['new_network_excess_share']:.0%} of the excess from new networks, "
                f"{nv['known_excess_share']:.0%} from known clients.", ""]
        if view.attribution_caveat:
            out += [f"> {md_text(view.attribution_caveat)}", ""]
        out += _table(["network", "requests", "clients", "seen before"],
                      [[md_code(n["net"], table=True), _n(n["requests"]), _n(n["clients"]),
                        _yes(n["known"])] for n in sources.get("networks", [])[:TOP_ROWS]])
        out += _shares("AS", _as_label, sources.get("asns", []))
        out += _shares("country", lambda c: c["country"] or "unknown", sources.get("countries", []))
        for title, key, what in (("Heaviest suspected attackers", "top_suspects", "suspect"),
                                 ("Busiest clients", "top", "client")):
            if sources.get(key) and (view.attack or key == "top"):
                out += _clients(view.report, title, key, what)
    clusters = view.findings_in("clusters")
    if clusters:
        out += ["## Attacking clusters and fingerprints", ""]
        out += [f"- {_cite(f)} {md_text(f['claim'], line_start=False)}" for f in clusters]
        out.append("")
    targets = report.get("targets") or {}
    if targets.get("top_paths"):
        out += ["## Targets", ""]
        out += _table(["method", "path", "requests", "server errors"],
                      [[md_code(p["method"], 12, table=True), md_code(p["path"], 120, table=True), _n(p["requests"]),
                        _n(p["errors"])] for p in targets["top_paths"][:TOP_ROWS]])
    out += _impact(view)
    out += _blocklist(view, report.get("mitigation") or {})
    out += ["## Evidence", ""]
    if view.store_note:
        out += [f"Note: {md_text(view.store_note, 600, line_start=False)}.", ""]
    for f in report["findings"]:
        out.append(f"### {md_text(f['id'], line_start=False)}: {md_text(f['kind'], line_start=False)} "
                   f"({md_text(f['severity'], line_start=False)})")
        out += ["", md_text(f["claim"]), ""]
        ev = f["evidence"][0] if f["evidence"] else None
        if ev and ev.get("file"):
            out += [f"Sample, {md_code(ev['file'])} line {ev['line']}:", "", md_block(ev["sample"]), ""]
        if ev:
            out += [md_block(ev["query"], "sql"), ""]
    out += _inputs(view)
    return "\n".join(out).rstrip() + "\n"


def _network(report: dict[str, Any]) -> list[str]:
    """The flows' view (#21): episodes, vectors, who sent them, and what they mean for each incident."""
    lines = network_lines(report)
    if not lines:
        return []
    out = ["## Network (flows)", ""] + [f"- {md_text(text, 1200, line_start=False)}" for text in lines] + [""]
    rules = network_rule_lines(report)
    if rules:
        out += ["### Network countermeasures", "",
                "Exported by `floodwitness mitigate STORE --to exabgp-flowspec` (or gobgp-flowspec, exabgp-rtbh, "
                "gobgp-rtbh, nftables-network, iptables-network); measured on the flows:", ""]
        out += [f"- {md_text(text, 1600, line_start=False)}" for text in rules] + [""]
    return out


def _outages(report: dict[str, Any]) -> list[str]:
    """Each incident's outage, and the gaps between log files, in plain sentences."""
    out = []
    for inc in report["incidents"]:
        if inc.get("outage"):
            out += [f"## Outage ({md_text(inc['id'], line_start=False)}, {md_text(inc['kind'], line_start=False)})", ""]
            out += [f"- {md_text(text, 1200, line_start=False)}" for text in outage_lines(inc["outage"])] + [""]
    for gap in report.get("log_gaps") or []:
        out += [f"Gap in the logs from {md_code(gap['began'])} to {md_code(gap['ended'])}: "
                f"{md_text(gap['cause_note'], 1200, line_start=False)}", ""]
    return out


def _impact(view: ReportView) -> list[str]:
    """The main incident's impact on the site's users, then each incident's level with its reasons."""
    impact = view.report.get("impact") or {}
    if not impact and not view.report["incidents"]:
        return []
    out = ["## Impact on legitimate users", ""]
    if impact:
        out += [f"{md_text(impact_line(impact), line_start=False)}.", ""]
    for inc in view.report["incidents"]:
        measured = inc.get("impact") or {}
        if measured.get("summary"):
            out.append(f"- {md_text(incident_label(inc), line_start=False)}: "
                       f"{md_text(measured['summary'], 800, line_start=False)}")
    return [*out, ""]


def _clients(report: dict[str, Any], title: str, key: str, what: str) -> list[str]:
    """The heaviest clients worth listing, their rate while active (a pulse wave's bots idle between bursts) and
    busiest minute, and how many more were left out."""
    listed = listed_sources(report, key, TOP_ROWS)
    out = [f"**{title}**", ""]
    if listed.rows:
        out += _table(["client", "requests", "req/s while active", "busiest minute", "known", "user agent"],
                      [[md_code(s["client_ip"], table=True), _n(s["requests"]),
                        f"{float(s.get('active_rps', s['rate_rps'])):.2f}",
                        _n(s.get("busiest_minute_requests", "\u2013")), _yes(s["known"]),
                        md_code(s["user_agent"], 120, table=True)] for s in listed.rows])
    if listed.more:
        plural = "" if listed.more == 1 else "s"
        out += [f"{'And' if listed.rows else 'None worth listing:'} {listed.more:,} more {what}{plural} with "
                f"{listed.more_requests:,} request{'' if listed.more_requests == 1 else 's'} in all.", ""]
    return out


def _shares(what: str, label: Callable[[dict[str, Any]], str], rows: list[dict[str, Any]]) -> list[str]:
    """A table of the incident's requests by AS or country, with its share against the baseline's."""
    if not rows:
        return []
    return _table([what, "requests", "clients", "share", "baseline share", "seen before"],
                  [[md_code(label(r), 60, table=True), _n(r["requests"]), _n(r["clients"]), f"{r['share']:.1%}",
                    f"{r['baseline_share']:.1%}", "yes" if r["known"] else "no"] for r in rows[:TOP_ROWS]])


def _as_label(a: dict[str, Any]) -> str:
    """``AS4134 Chinanet``; the bundled database has names only, an ASN database numbers too."""
    return " ".join(x for x in (f"AS{a['asn']}" if a.get("asn") is not None else "", a.get("as_name") or "") if x) \
        or "unknown"


def _blocklist(view: ReportView, mit: dict[str, Any]) -> list[str]:
    out = ["## Blocklist", ""]
    if not view.blocklist_total:
        return [*out, f"Empty: {md_text(mit.get('note', 'nothing to block'), line_start=False)}", ""]
    out += [f"{view.blocklist_total:,} CIDRs cover {_n(mit.get('attackers_covered'))} of "
            f"{_n(mit.get('attackers_total'))} attacking sources; {_n(mit.get('collateral_clients_total'))} known "
            "clients inside (collateral). The full list: `floodwitness analyze ... --blocklist FILE`.", ""]
    rows = view.blocklist_rows(TOP_ROWS)
    return out + _table(["CIDR", "attack requests", "attackers", "known clients inside", "reason"],
                        [[md_code(e["cidr"], table=True), _n(e["requests"]), _n(e["attackers"]),
                          _n(e["collateral_clients"]), md_text(e["reason"], 160, table=True)] for e in rows])


def _inputs(view: ReportView) -> list[str]:
    report, totals = view.report, view.totals
    out = ["## Inputs", "",
           f"{totals['lines_read']:,} lines read = {totals['lines_parsed']:,} parsed + {totals['lines_rejected']:,} "
           "rejected.", ""]
    out += _table(["file", "format", "read", "parsed", "rejected", "SHA-256"],
                  [[md_code(i["path"], table=True), md_code(i.get("format"), table=True), _n(i["lines_read"]),
                    _n(i["lines_parsed"]), _n(i["lines_rejected"]), md_code(i["sha256"], table=True)]
                   for i in report["inputs"]])
    damaged = [f"- **Warning:** {md_code(i['path'])} is incomplete: {md_text(i.get('damage'), line_start=False)}"
               for i in report["inputs"] if not i.get("complete", True)]
    if view.span_warning:
        damaged.append(f"- **Warning:** {md_text(view.span_warning, 600, line_start=False)}")
    if damaged:
        out += [*damaged, ""]
    out += ["## Reproduce", "",
            f"floodwitness {md_text(report['tool']['version'], line_start=False)}, report schema "
            f"{md_code(report['schema'])}:", "",
            md_block(view.command, "sh"), ""]
    return out
