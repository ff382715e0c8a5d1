"""What the HTML and Markdown reports show, read from the report dictionary once: the hypotheses with the
findings they cite, findings grouped by section, the blocklist rows worth a table, input totals and the
command that reproduces the report. No escaping here: each renderer escapes for its own medium."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from floodwitness.report.contract import check_report
from floodwitness.report.network import episode_text, vector_text, who_text
from floodwitness.verdict import ATTACK_KINDS, HOSTILE_KINDS

#: The impact's errors when the logs have no status field (the report's ``impact.not_logged``).
ERRORS_NOT_LOGGED = "server errors not known: the logs have no response status"


def impact_line(impact: dict[str, Any], share_digits: int = 1) -> str:
    """The impact on the site's users in a sentence (plain text: each renderer escapes it): who got errors and
    how many requests failed, or what the logs cannot say (no status field; no baseline to know the clients)."""
    known = impact.get("known_clients_active")
    if impact.get("error_share") is None:
        who = "no baseline to know the site's clients" if known is None else f"{known:,} known clients active"
        return f"{who}; {ERRORS_NOT_LOGGED}"
    failed = f"{impact['error_share']:.{share_digits}%} of requests in the incident failed"
    if known is None:
        return f"{failed}; no baseline to say which of them were the site's known clients"
    return f"{impact['known_clients_with_errors']:,} of {known:,} known clients got server errors; {failed}"


def outage_lines(o: dict[str, Any]) -> list[str]:
    """An incident's outage (``incidents[].outage``) in plain sentences (each renderer escapes them): when the traffic
    collapsed and how deep, which networks dropped, what came before, the recovery, and what the logs can tell of its
    cause."""
    until = o["ended"] or "the end of the log"
    lines = [f"traffic collapsed from {o['began']} to {until}: {o['served']:,} requests served where "
             f"{o['expected']:,} were expected ({o['depth']:.1%} fewer)"]
    n = o["networks"]
    if n["total"]:
        how = {True: "all at once", False: "only some of them", None: "too few to compare"}[n["all_at_once"]]
        lines[0] += f"; {n['dropped']} of the audience's {n['total']} networks dropped ({how})"
    b = o["before"]
    what = {"surge": "a surge", "server_errors": "server errors"}.get(b["what"])
    lines.append(f"before it: {what} from {b['start']} to {b['end']} ({b['requests']:,} requests where "
                 f"{b['expected']:,} were expected, {b['server_errors']:,} server errors)" if what else
                 f"before it: nothing unusual ({b['requests']:,} requests where {b['expected']:,} were expected and "
                 f"{b['server_errors']:,} server errors from {b['start']} to {b['end']})")
    rec = o["recovery"]
    if rec["ended"]:
        back = f"back to its usual level at {rec['recovered']}" if rec["recovered"] else \
            "not back to its usual level within the log"
        surge = rec.get("retry_surge")
        retry = (f"; a retry surge followed: {surge['requests']:,} requests from {surge['start']} to {surge['end']} "
                 f"({surge['peak_share']:.1f}x the usual at its peak)" if surge else "; no retry surge followed")
        lines.append(f"recovery: traffic returned at {rec['ended']}, {back}{retry}")
    lines.append(o["cause_note"])
    return lines


def network_lines(report: dict[str, Any]) -> list[str]:
    """The flows' view (the report's ``network``: #21) in plain sentences (each renderer escapes them): what was read,
    each episode with its vectors and who sent them (reflectors as reflectors, spoofed addresses as spoofed), and
    what the flows say of each incident. Empty when no flows were given."""
    network = report.get("network")
    if not network:
        return []
    inputs = network.get("inputs") or []
    records = sum(int(i.get("records_parsed") or 0) for i in inputs)
    lines = [f"{len(inputs)} flow input(s), {records:,} flow records read"]
    episodes = network.get("episodes") or []
    if not episodes:
        lines.append("no network-level flood toward the watched addresses")
    for ep in episodes:
        tied = f" [{ep['incident']}]" if ep.get("incident") else ""
        lines.append(f"{ep['id']}{tied}: {episode_text(ep)}")
        for v in ep.get("vectors") or []:
            amp = v.get("amplification") or {}
            factor = f", amplification up to {amp['factor']}x ({amp.get('service')})" if amp.get("factor") else ""
            lines.append(f"  {vector_text(v)}: {int(v.get('packets') or 0):,} packets "
                         f"({float(v.get('share') or 0):.0%} of the episode's) from {who_text(v)}{factor}")
        for note in (ep.get("spoofing") or {}).get("indicators") or []:
            lines.append(f"  spoofing: {note}")
    for inc in report.get("incidents") or []:
        net = inc.get("network")
        if net and net.get("statement"):
            lines.append(f"{inc['id']}: {net['statement']}")
    return lines


def network_rule_lines(report: dict[str, Any], limit: int = 8) -> list[str]:
    """The network countermeasures (``mitigation.network.rules``) in plain sentences: each rule's name, action and
    what it stops and costs, as measured on the flows (each renderer escapes them)."""
    rules = ((report.get("mitigation") or {}).get("network") or {}).get("rules") or []
    return [f"{r['name']} ({r['action']}): " + "; ".join(r.get("statements") or []) for r in rules[:limit]]


def incident_attempt(inc: dict[str, Any]) -> bool:
    """Whether an incident is an attack attempt: an attack kind whose impact was measured and found none."""
    impact = inc.get("impact") or {}
    return inc.get("kind") in ATTACK_KINDS and impact.get("level") == "none" and bool(impact.get("measured"))


def incident_label(inc: dict[str, Any]) -> str:
    """An incident's id, kind ("attempt" after an attack with no service impact measured) and impact level."""
    impact = inc.get("impact") or {}
    level = impact.get("level")
    kind = f"{inc['kind']} attempt" if incident_attempt(inc) else inc["kind"]
    if kind == "no_incident":  # a window that stood out and was found ordinary (people browsing, no impact)
        kind = "no_incident (ordinary traffic)"
    if level is None:  # a report written before impacts were measured
        return f"{inc['id']} {kind}"
    if level == "none" and not impact.get("measured"):
        return f"{inc['id']} {kind}, impact not measured"
    affected = f", {impact['minutes_affected']:,} of {impact['minutes']:,} min" if level != "none" else ""
    return f"{inc['id']} {kind}, impact {level}{affected}"


def verdict_headline(report: dict[str, Any]) -> tuple[str, str | None]:
    """The verdict's kind as the headline names it ("DOS attempt" for an attack with no service impact measured),
    and what follows it: the main incident's impact, or None without an incident."""
    v = report["verdict"]
    head = v["kind"].upper() + (" attempt" if v.get("attempt") else "")
    incidents = report.get("incidents") or []
    impact = (incidents[0].get("impact") or {}) if incidents else {}
    level = impact.get("level")
    if level is None:
        return head, None
    if level != "none":
        return head, (f"service {level}: {impact['minutes_affected']:,} of {impact['minutes']:,} minutes affected")
    if not impact.get("measured"):
        return head, "service impact could not be measured"
    if not v.get("attempt"):
        return head, "no service impact measured"
    sources = report.get("sources") or {}
    few = int((sources.get("concentration") or {}).get("sources_for_80pct_of_excess") or 0)
    suspects = int((sources.get("suspects") or {}).get("clients") or 0)
    if few:
        origin = f"most of the excess from {few:,} source{'' if few == 1 else 's'}; "
    elif suspects:
        origin = f"from {suspects:,} suspected source{'' if suspects == 1 else 's'}; "
    else:
        origin = ""
    return head, f"{origin}no service impact measured"


_CITATION = re.compile(r"\s*\[([A-Za-z0-9_.:-]+)\]\s*$")


def span_warning(report: dict[str, Any]) -> str | None:
    """What the report left out of its span (stray timestamps far from the logs' main period), or None."""
    span = report.get("time_span") or {}
    outside = int(span.get("requests_outside") or 0)
    if not outside:
        return None
    first = (span.get("samples_outside") or [{}])[0]
    where = f", e.g. {first.get('file')}:{first.get('line')} at {first.get('ts')}" if first.get("file") else ""
    periods = span.get("periods") or []
    others = sum(1 for p in periods if p.get("analysed") is False) if any("analysed" in p for p in periods) \
        else len(periods) - 1  # a report written before several periods were analysed in one run
    return (f"{outside:,} request(s) in {others} other period(s) more than a week from the analysed span "
            f"({span.get('since')} to {span.get('until')}) were left out{where}; --since/--until analyse them")


def periods_line(report: dict[str, Any]) -> str | None:
    """The periods weeks apart the report analysed in one run, each against its own baseline (None: one period)."""
    periods = (report.get("baseline") or {}).get("periods") or []
    if len(periods) < 2:
        return None
    listed = "; ".join(
        f"{p['start'][:16]}Z to {p['end'][:16]}Z, {p['windows']:,} incident window(s)"
        + ("" if p.get("sufficient") else " (no usable history of its own: judged by what its traffic shows)")
        for p in periods)
    return (f"The logs hold {len(periods)} periods more than a week apart, each analysed against its own baseline "
            f"and their incidents ranked together: {listed}. The gaps between them hold no request.")


def history_warning(report: dict[str, Any]) -> str | None:
    """The report's note on a baseline too thin to compare with (no history), or None."""
    baseline = report.get("baseline") or {}
    if baseline.get("sufficient", True):
        return None
    return str(baseline.get("note") or "no usable history to compare with")


def incident_line(inc: dict[str, Any]) -> str:
    """How one incident stood against its baseline, and what its hostile sources did when that was a scan, a brute
    force or scraping (plain text: each renderer escapes it)."""
    if inc.get("baseline_rps") is None:  # no history: no baseline level, no expected requests, no excess
        line = f"{inc['requests']:,} requests from {inc['clients']:,} clients; no baseline to compare with"
    else:
        line = (f"baseline {inc['baseline_rps']:.1f} req/s, {inc['requests']:,} requests, "
                f"{inc['excess_requests']:,} excess, {inc['clients']:,} clients ({inc['new_clients']:,} new)")
    return line + behaviour_note(inc)


def behaviour_note(inc: dict[str, Any]) -> str:
    """``; behaviour: <what the sources did> [finding ids]`` for a scan, brute force or scraping (a report written
    before ``incidents[].behaviour``, or a flood, adds nothing: its verdict says it)."""
    b = inc.get("behaviour") or {}
    if b.get("kind") in (None, "flood", "none"):
        return ""
    return f"; behaviour: {b['summary']} [{', '.join(b['findings'])}]"


def store_note(report: dict[str, Any]) -> str | None:
    """Where the evidence queries can be rerun: on the store analysed, unless it was a temporary one (``analyze
    LOGS`` without ``--store``), deleted when the analysis ended; None for a report without findings (so without
    queries) or parameters."""
    params = report.get("parameters") or {}
    if "store_is_temporary" not in params or not report.get("findings"):
        return None
    if params["store_is_temporary"]:
        return ("the evidence queries run over a store of the parsed logs; this analysis's temporary store was "
                "deleted: rerun with --store DIR to keep it")
    return f"the evidence queries run over the store {params.get('store')}"


def attribution_caveat(report: dict[str, Any]) -> str | None:
    """The caveat that networks show the compromised devices, not the attacker: for an attack only (there are no
    attackers in an internal failure, a flash crowd or a quiet day)."""
    if report["verdict"]["kind"] not in HOSTILE_KINDS:
        return None
    return str((report.get("sources") or {}).get("attribution_caveat") or "") or None


#: A source is listed if it sent at least this share of the heaviest listed source's requests...
LIST_SHARE_OF_TOP = 0.1
#: ... and at least this many requests: a client with 3 requests says nothing about an incident.
LIST_MIN_REQUESTS = 10


@dataclass(frozen=True)
class Listed:
    """The sources of a list that matter, and how many more were left out with their requests."""

    rows: list[dict[str, Any]]
    more: int
    more_requests: int


def listed_sources(report: dict[str, Any], key: str, limit: int) -> Listed:
    """The first ``limit`` sources of ``sources[key]`` (``top`` or ``top_suspects``) that sent at least
    :data:`LIST_SHARE_OF_TOP` of the heaviest one's requests and :data:`LIST_MIN_REQUESTS`; the rest are counted
    against the totals (every suspect, or every client of the main incident)."""
    sources = report.get("sources") or {}
    rows = list(sources.get(key) or [])
    floor = max(LIST_MIN_REQUESTS, LIST_SHARE_OF_TOP * max((int(s["requests"]) for s in rows), default=0))
    shown = [s for s in rows[:limit] if int(s["requests"]) >= floor]
    if key == "top_suspects":
        total = sources.get("suspects") or {"clients": len(rows), "requests": sum(int(s["requests"]) for s in rows)}
        clients, requests = int(total["clients"]), int(total["requests"])
    else:
        incidents = report.get("incidents") or [{}]
        clients = int((sources.get("new_vs_known") or {}).get("clients") or len(rows))
        requests = int(incidents[0].get("requests") or sum(int(s["requests"]) for s in rows))
    return Listed(shown, max(clients - len(shown), 0), max(requests - sum(int(s["requests"]) for s in shown), 0))


@dataclass(frozen=True)
class Item:
    """One piece of evidence for or against a hypothesis, with the finding it cites (if any)."""

    text: str
    finding: dict[str, Any] | None


@dataclass(frozen=True)
class Hypothesis:
    kind: str
    score: float
    supports: tuple[Item, ...]
    against: tuple[Item, ...]


class ReportView:
    def __init__(self, report: dict[str, Any]) -> None:
        self.report = check_report(report)

    @cached_property
    def findings(self) -> dict[str, dict[str, Any]]:
        return {f["id"]: f for f in self.report["findings"]}

    def _item(self, text: str) -> Item:
        match = _CITATION.search(text)
        if match and match.group(1) in self.findings:
            return Item(text[: match.start()], self.findings[match.group(1)])
        return Item(text, None)

    @cached_property
    def hypotheses(self) -> list[Hypothesis]:
        return [Hypothesis(h["kind"], float(h["score"]), tuple(self._item(t) for t in h["for"]),
                           tuple(self._item(t) for t in h["against"]))
                for h in self.report["verdict"].get("hypotheses", [])]

    def findings_in(self, section: str) -> list[dict[str, Any]]:
        """The findings of a report section (``findings[].section``, from the finding kind's registry entry: a
        report written before that field shows its findings in the evidence list only)."""
        return [f for f in self.report["findings"] if f.get("section") == section]

    @property
    def attack(self) -> bool:
        """Whether the verdict names hostile sources, a flood's or abuse's (so its suspects are attackers, and a
        blocklist applies)."""
        return bool(self.report["verdict"]["kind"] in HOSTILE_KINDS)

    @property
    def main_incident(self) -> dict[str, Any] | None:
        incidents = self.report["incidents"]
        return incidents[0] if incidents else None

    def blocklist_rows(self, limit: int) -> list[dict[str, Any]]:
        """Entries with collateral first (they are what a reviewer must check), then the largest ones."""
        entries = (self.report.get("mitigation") or {}).get("blocklist") or []
        costly = [e for e in entries if e.get("collateral_clients")]
        rest = sorted((e for e in entries if not e.get("collateral_clients")), key=lambda e: -int(e["requests"]))
        return (costly + rest)[:limit]

    @property
    def blocklist_total(self) -> int:
        return len((self.report.get("mitigation") or {}).get("blocklist") or [])

    @property
    def span_warning(self) -> str | None:
        return span_warning(self.report)

    @property
    def history_warning(self) -> str | None:
        return history_warning(self.report)

    @property
    def periods_line(self) -> str | None:
        return periods_line(self.report)

    @property
    def timeline_resolution(self) -> str:
        """How the timeline chart's points are spaced: per minute, or coarser away from the incidents."""
        resolution = (self.report.get("timeline") or {}).get("resolution")
        if not resolution:
            return "Per minute, in UTC."
        return (f"In UTC, per minute within {resolution['margin_minutes']} minutes of each incident, elsewhere the "
                f"mean of each {int(resolution['coarse_seconds']) // 60} minutes; grey: the gaps between periods "
                "(no request).")

    @property
    def impact_text(self) -> str:
        return impact_line(self.report.get("impact") or {})

    @property
    def headline(self) -> tuple[str, str | None]:
        return verdict_headline(self.report)

    @property
    def main_impact(self) -> dict[str, Any]:
        """The main incident's impact (``incidents[0].impact``; empty without an incident or in an older report)."""
        inc = self.main_incident
        return (inc.get("impact") or {}) if inc else {}

    @cached_property
    def incident_rows(self) -> list[dict[str, Any]]:
        """The incidents with their impact level as a flat field (for a table)."""
        return [inc | {"impact_level": (inc.get("impact") or {}).get("level"), "label": incident_label(inc)}
                for inc in self.report["incidents"]]

    @property
    def store_note(self) -> str | None:
        return store_note(self.report)

    @property
    def attribution_caveat(self) -> str | None:
        return attribution_caveat(self.report)

    @cached_property
    def totals(self) -> dict[str, int]:
        inputs = self.report["inputs"]
        return {key: sum(int(i.get(key) or 0) for i in inputs)
                for key in ("lines_read", "lines_parsed", "lines_rejected", "bytes")}

    @cached_property
    def parameters(self) -> list[tuple[str, Any]]:
        """The parameters flattened to ``name, value`` pairs (``window_policy.sigma``)."""
        out: list[tuple[str, Any]] = []

        def walk(prefix: str, value: Any) -> None:
            if isinstance(value, dict):
                for key, inner in value.items():
                    walk(f"{prefix}.{key}" if prefix else str(key), inner)
            else:
                out.append((prefix, value))

        walk("", self.report.get("parameters") or {})
        return out

    @cached_property
    def command(self) -> str:
        """The command line that reproduces the analysis (on the store, when it was kept)."""
        params = self.report.get("parameters") or {}
        if params.get("store") and not params.get("store_is_temporary"):
            args = ["floodwitness", "analyze", str(params["store"])]
        else:
            args = ["floodwitness", "analyze", *(str(i["path"]) for i in self.report["inputs"])]
        for option in ("since", "until"):
            if params.get(option):
                args += [f"--{option}", str(params[option])]
        baseline = params.get("baseline")
        if isinstance(baseline, list) and len(baseline) == 2:
            args += ["--baseline", f"{baseline[0]}..{baseline[1]}"]
        return shlex.join(args)
