"""The report as Markdown, for an incident ticket or a postmortem.

Log fields are attacker-controlled and Markdown turns text into links, images and HTML. So a log field is
only ever shown inside a code span (:func:`md_code`, whose fence is longer than any backtick run inside)
or a fenced block (:func:`md_block`), where nothing is interpreted; every other text that may quote a log
field (finding claims, reasons) goes through :func:`md_text`, which backslash-escapes Markdown's
punctuation and breaks autolinks (``http:``, ``www.``, ``@``). Control characters are shown as ``\\xNN``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from floodwitness.render.report_view import CLUSTER_KINDS, ERRORS_NOT_LOGGED, Item, ReportView
from floodwitness.render.safe import terminal_safe
from floodwitness.verdict import ATTACK_KINDS

if TYPE_CHECKING:
    from collections.abc import Callable

# CommonMark lets any ASCII punctuation be backslash-escaped; these are the ones that make emphasis, links
# (an escaped "[" can open no link or image), HTML, entities, table cells, math, or autolinks (":" breaks
# "http://", "@" e-mail autolinks); at the start of a line also list, quote and heading markers.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~:@&$])")
_MD_LEADING = re.compile(r"^(\s*\d*)((?<=\d)[.)]|(?<!\d)[-+#>=])")
_WWW = re.compile(r"(?i)(w)(ww)\.")
_RUN = re.compile(r"`+")

TOP_ROWS = 10


def md_text(value: Any, limit: int | None = 400) -> str:
    """Text that Markdown shows as written: no emphasis, link, image, HTML or autolink."""
    text = terminal_safe(str(value), limit)
    text = _MD_SPECIAL.sub(r"\\\1", text)
    text = _MD_LEADING.sub(r"\1\\\2", text)
    return _WWW.sub(r"\1\2\\.", text)


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


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _item(it: Item, sign: str) -> str:
    cite = f" \\[{md_text(it.finding['id'])}\\]" if it.finding else ""
    return f"- {sign} {md_text(it.text)}{cite}"


def render_markdown(report: dict[str, Any]) -> str:
    """The report as GitHub-flavoured Markdown."""
    view = ReportView(report)
    v = report["verdict"]
    out = ["# floodwitness incident report", "",
           f"**{md_text(v['summary'])}**", ""]
    inc = view.main_incident
    if inc:
        out += [f"Incident {md_code(inc['id'])} from {md_code(inc['start'])} to {md_code(inc['end'])}: peak "
                f"{_n(inc['peak_rps'])} requests/s at {md_code(inc['peak_second'])} (baseline "
                f"{inc['baseline_rps']:.1f}/s), {_n(inc['requests'])} requests, {_n(inc['excess_requests'])} excess, "
                f"{_n(inc['clients'])} clients ({_n(inc['new_clients'])} new).", ""]
    out += ["## Hypotheses", ""]
    for h in view.hypotheses:
        out.append(f"- **{md_text(h.kind)}** (score {h.score:+.1f})")
        out += ["  " + _item(it, "for:") for it in h.supports]
        out += ["  " + _item(it, "against:") for it in h.against]
    out.append("")
    sources = report.get("sources") or {}
    if sources.get("top"):
        nv = sources["new_vs_known"]
        out += ["## Sources", "",
                f"{_n(nv['clients'])} clients, {_n(nv['new_clients'])} never seen in the baseline; "
                f"{nv['new_network_excess_share']:.0%} of the excess from new networks, "
                f"{nv['known_excess_share']:.0%} from known clients.", "",
                f"> {md_text(sources['attribution_caveat'])}", ""]
        out += _table(["network", "requests", "clients", "seen before"],
                      [[md_code(n["net"], table=True), _n(n["requests"]), _n(n["clients"]),
                        "yes" if n["known"] else "no"] for n in sources.get("networks", [])[:TOP_ROWS]])
        out += _shares("AS", _as_label, sources.get("asns", []))
        out += _shares("country", lambda c: c["country"] or "unknown", sources.get("countries", []))
        attack = report["verdict"]["kind"] in ATTACK_KINDS
        for title, key in (("Heaviest suspected attackers", "top_suspects"), ("Busiest clients", "top")):
            if sources.get(key) and (attack or key == "top"):
                out += [f"**{title}**", ""]
                out += _table(["client", "requests", "req/s", "known", "user agent"],
                              [[md_code(s["client_ip"], table=True), _n(s["requests"]), f"{s['rate_rps']:.1f}",
                                "yes" if s["known"] else "no", md_code(s["user_agent"], 120, table=True)]
                               for s in sources[key][:TOP_ROWS]])
    clusters = view.findings_of(CLUSTER_KINDS)
    if clusters:
        out += ["## Attacking clusters and fingerprints", ""]
        out += [f"- \\[{md_text(f['id'])}\\] {md_text(f['claim'])}" for f in clusters]
        out.append("")
    targets = report.get("targets") or {}
    if targets.get("top_paths"):
        out += ["## Targets", ""]
        out += _table(["method", "path", "requests", "server errors"],
                      [[md_code(p["method"], 12, table=True), md_code(p["path"], 120, table=True), _n(p["requests"]),
                        _n(p["errors"])] for p in targets["top_paths"][:TOP_ROWS]])
    impact = report.get("impact") or {}
    if impact:
        out += ["## Impact on legitimate users", "",
                f"{_n(impact['known_clients_active'])} known clients active; {ERRORS_NOT_LOGGED}."
                if impact.get("error_share") is None else
                f"{_n(impact['known_clients_with_errors'])} of {_n(impact['known_clients_active'])} known clients got "
                f"server errors; {impact['error_share']:.1%} of requests in the incident failed.", ""]
    out += _blocklist(view, report.get("mitigation") or {})
    out += ["## Evidence", ""]
    for f in report["findings"]:
        out.append(f"### {md_text(f['id'])}: {md_text(f['kind'])} ({md_text(f['severity'])})")
        out += ["", md_text(f["claim"]), ""]
        ev = f["evidence"][0] if f["evidence"] else None
        if ev and ev.get("file"):
            out += [f"Sample, {md_code(ev['file'])} line {ev['line']}:", "", md_block(ev["sample"]), ""]
        if ev:
            out += [md_block(ev["query"], "sql"), ""]
    out += _inputs(view)
    return "\n".join(out).rstrip() + "\n"


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
        return [*out, f"Empty: {md_text(mit.get('note', 'nothing to block'))}", ""]
    out += [f"{view.blocklist_total:,} CIDRs cover {_n(mit.get('attackers_covered'))} of "
            f"{_n(mit.get('attackers_total'))} attacking sources; {_n(mit.get('collateral_clients_total'))} known "
            "clients inside (collateral). The full list: `floodwitness analyze ... --blocklist FILE`.", ""]
    rows = view.blocklist_rows(TOP_ROWS)
    return out + _table(["CIDR", "attack requests", "attackers", "known clients inside", "reason"],
                        [[md_code(e["cidr"], table=True), _n(e["requests"]), _n(e["attackers"]),
                          _n(e["collateral_clients"]), md_text(e["reason"], 160)] for e in rows])


def _inputs(view: ReportView) -> list[str]:
    report, totals = view.report, view.totals
    out = ["## Inputs", "",
           f"{totals['lines_read']:,} lines read = {totals['lines_parsed']:,} parsed + {totals['lines_rejected']:,} "
           "rejected.", ""]
    out += _table(["file", "format", "read", "parsed", "rejected", "SHA-256"],
                  [[md_code(i["path"], table=True), md_code(i.get("format"), table=True), _n(i["lines_read"]),
                    _n(i["lines_parsed"]), _n(i["lines_rejected"]), md_code(i["sha256"], table=True)]
                   for i in report["inputs"]])
    damaged = [f"- **Warning:** {md_code(i['path'])} is incomplete: {md_text(i.get('damage'))}"
               for i in report["inputs"] if not i.get("complete", True)]
    if view.span_warning:
        damaged.append(f"- **Warning:** {md_text(view.span_warning, 600)}")
    if damaged:
        out += [*damaged, ""]
    out += ["## Reproduce", "",
            f"floodwitness {md_text(report['tool']['version'])}, report schema {md_code(report['schema'])}:", "",
            md_block(view.command, "sh"), ""]
    return out
