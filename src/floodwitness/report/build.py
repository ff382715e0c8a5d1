"""Run the analysis stages and build the report dictionary (the public JSON contract).

Field names of the top level, of ``inputs``, ``verdict``, ``incidents``, ``findings`` and
``mitigation.blocklist`` entries are a contract: add fields, never rename or remove them.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from floodwitness import __version__
from floodwitness.analysis.audience import Audience, audience_of, baseline_clients
from floodwitness.analysis.composition import (
    BROWSING_MINUTES,
    Composition,
    busiest_minutes,
    compose,
    heaviest,
    in_ranges,
)
from floodwitness.analysis.history import (
    History,
    HistoryPolicy,
    Prior,
    auto_history,
    given_history,
    overlaps,
    preceding_history,
    whole_period,
)
from floodwitness.analysis.phases import Phases, analyse_phases, suspects
from floodwitness.analysis.span import Span, auto_span
from floodwitness.analysis.timeline import (
    Timeline,
    first_seen_per_minute,
    minute_table,
    minutes_within,
    per_second,
    timeline_of,
)
from floodwitness.analysis.windows import (
    Baseline,
    Window,
    WindowPolicy,
    baseline_and_flags,
    baseline_minutes,
    find_windows,
    minutes_to_ranges,
    outside_windows,
    refine_edges,
    window_times,
)
from floodwitness.detectors import FINDING_KINDS, Context, Finding, detectors_for
from floodwitness.detectors.base import INHUMAN_PER_MINUTE
from floodwitness.detectors.behaviour import RuleFlags, flag_sources, rule_aggregates, scan_rules
from floodwitness.detectors.fingerprints import Rule, load_rules
from floodwitness.engine import memory_guard
from floodwitness.enrich import Enricher
from floodwitness.errors import UsageError
from floodwitness.ingest.checks import no_requests_between
from floodwitness.mitigation import Blocklist, BlocklistPolicy, build_blocklist
from floodwitness.mitigation.protected import protected_ranges
from floodwitness.mitigation.ratelimit import recommend
from floodwitness.report.contract import SCHEMA
from floodwitness.verdict import (
    ATTACK_KINDS,
    IncidentVerdict,
    judge_incident,
    judge_without_history,
    summary_for,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    import ibis.expr.types as ir

    from floodwitness.analysis.dataset import Dataset


ATTRIBUTION = {
    "shows": ["which addresses sent the requests, when, what they asked for and how the server answered",
              "whether those addresses and networks were part of the site's usual audience"],
    "cannot_show": ["who operated the attack or why: addresses belong to compromised devices, proxies and "
                    "rented servers, not to the operator",
                    "The sources' countries and networks describe where the compromised devices and proxies "
                    "are, never where the attacker is.",
                    "anything that never reached these servers (traffic dropped upstream, other services)"],
}


@dataclass(frozen=True)
class AnalyzeOptions:
    since: datetime | None = None
    until: datetime | None = None
    baseline: tuple[datetime, datetime] | None = None
    policy: WindowPolicy = field(default_factory=WindowPolicy)
    history: HistoryPolicy = field(default_factory=HistoryPolicy)
    blocklist_policy: BlocklistPolicy = field(default_factory=BlocklistPolicy)
    max_incidents: int = 5
    #: Propose rate limits and replay the incident through them (attacks only). Off by default: the replay
    #: costs more than the rest of the analysis on big logs; `mitigate` turns it on.
    rate_limits: bool = False
    geoip: str | None = None         # a country .mmdb (else the bundled database)
    asn: str | None = None           # an ASN .mmdb (else the bundled database, AS names only)
    enrich: bool = True              # AS and country levels of the audience model
    fingerprints: tuple[str, ...] = ()  # rule files added to the bundled fingerprints

    def __post_init__(self) -> None:
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise UsageError("--since is not before --until: the time window is empty",
                             hint="Give --since an earlier time than --until (ISO 8601; UTC if no offset).")


@dataclass
class IncidentResult:
    index: int  # detection order: findings of this incident have ids "I{index + 1}-..."
    window: Window
    times: tuple[datetime, datetime]
    composition: Composition
    phases: Phases
    findings: list[Finding]
    verdict: IncidentVerdict
    peak: datetime         # start of the busiest minute
    peak_second: datetime  # the busiest second
    peak_rps: float        # requests in the busiest second
    baseline_rps: float
    audience: Audience | None = None
    flags: list[RuleFlags] = field(default_factory=list)  # sources flagged by a fingerprint rule in the window
    #: without history, the suspects are the sources the traffic itself condemns (a fingerprint rule, a rate no
    #: person reaches), not every "new" client: rows of the composition's clients (None: :func:`suspects` of it)
    suspects: pa.Table | None = None

    @property
    def has_history(self) -> bool:
        return self.suspects is None

    def suspected(self) -> pa.Table:
        return suspects(self.composition) if self.suspects is None else self.suspects

    @property
    def weight(self) -> float:
        return self.composition.excess + 10 * float(self.phases.errors.sum())


def _iso(value: datetime) -> str:
    return value.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def _refined(data: Dataset, tl: Timeline, base: Baseline, w: Window,
             options: AnalyzeOptions) -> tuple[datetime, datetime]:
    start, end = window_times(tl, w)
    minute = timedelta(minutes=1)
    around_start = per_second(data, start - minute, start, errors=True)
    around_end = per_second(data, end, end + minute, errors=True)
    earlier, later = refine_edges(tl, base, w, around_start, around_end, options.policy)
    return start - timedelta(seconds=earlier), end + timedelta(seconds=later)


@dataclass
class _Shared:
    """What every incident of one analysis reads: the baseline's clients, the enricher, the rules."""

    baseline_clients: pa.Table
    enricher: Enricher | None
    rules: tuple[Rule, ...]


def _incident(data: Dataset, tl: Timeline, base: Baseline, w: Window, index: int,
              baseline_ranges: list[tuple[datetime, datetime]], options: AnalyzeOptions,
              shared: _Shared) -> IncidentResult:
    times = _refined(data, tl, base, w, options)
    expected = float(base.level[w.start_index:w.end_index].sum())
    # the fingerprint rules' per-client counts come from the composition's pass over the window's clients
    comp = compose(data, times, baseline_ranges, expected, shared.baseline_clients,
                   extra=partial(rule_aggregates, rules=shared.rules))
    scan = scan_rules(data, shared.rules, times, per_client=comp.clients_table)
    phases = analyse_phases(data, tl, base, comp, w.start_index, w.end_index, options.policy)
    audience = audience_of(comp, shared.baseline_clients, shared.enricher)
    ctx = Context(data, tl, base, times, w.volume_minutes, w.error_minutes, comp, index, phases,
                  extras={"baseline_ranges": baseline_ranges, "audience": audience, "rules": shared.rules,
                          "rules_scan": scan})
    findings = [f for fn in detectors_for(True) for f in fn(ctx)]
    verdict = judge_incident(findings, new_network_share=comp.new_network_excess_share,
                             known_share=comp.known_excess_share, errors_logged="status_5xx" not in tl.not_logged)
    second0, counts = per_second(data, times[0], times[1], errors=False)
    peak_second = int(np.argmax(counts)) if len(counts) else 0
    # the peak is the busiest minute: by requests, or by server errors when the incident is a failure
    series = tl.status_5xx if verdict.kind == "internal_failure" else tl.requests
    peak_minute = w.start_index + int(np.argmax(series[w.start_index:w.end_index]))
    return IncidentResult(index, w, times, comp, phases, findings, verdict, tl.minute_at(peak_minute),
                          second0 + timedelta(seconds=peak_second),
                          float(counts[peak_second]) if len(counts) else 0.0,
                          float(np.median(base.level[w.start_index:w.end_index])) / 60.0, audience, scan.flags)


#: no known clients (the ``baseline_clients`` of no baseline)
_NOBODY = pa.table({"client_ip": pa.array([], pa.string()), "requests": pa.array([], pa.int64())})


def _without_history(data: Dataset, tl: Timeline, base: Baseline, shared: _Shared) -> list[IncidentResult]:
    """The analysed period judged by what its traffic shows by itself (no usable baseline): one incident over the
    whole period when that shows an attack or server errors, else none."""
    times = whole_period(tl)
    comp = compose(data, times, [], 0.0, _NOBODY, extra=partial(rule_aggregates, rules=shared.rules))
    scan = scan_rules(data, shared.rules, times, per_client=comp.clients_table)
    inhuman = busiest_minutes(data, times, INHUMAN_PER_MINUTE)
    ctx = Context(data, tl, base, times, (), (), comp, 0, None,
                  extras={"baseline_ranges": [], "rules": shared.rules, "rules_scan": scan},
                  has_history=False, inhuman=inhuman)
    findings = [f for fn in detectors_for(False) for f in fn(ctx)]
    verdict = judge_without_history(findings, comp.requests)
    if verdict.kind == "no_incident":
        return []
    condemned = set(inhuman.column("client_ip").to_pylist())
    for flags in scan.flags:
        condemned.update(flags.table.column("client_ip").to_pylist())
    clients = comp.clients_table
    suspected = clients.filter(_mask(clients.column("client_ip").to_pylist(), condemned))
    phases = Phases(0, tl.requests, tl.status_5xx, np.zeros(tl.minutes), (), (), 0, 0)
    window = Window(0, tl.minutes, (), ())
    second0, counts = per_second(data, times[0], times[1], errors=False)
    peak_second = int(np.argmax(counts)) if len(counts) else 0
    series = tl.status_5xx if verdict.kind == "internal_failure" else tl.requests
    return [IncidentResult(0, window, times, comp, phases, findings, verdict, tl.minute_at(int(np.argmax(series))),
                           second0 + timedelta(seconds=peak_second),
                           float(counts[peak_second]) if len(counts) else 0.0, 0.0, None, scan.flags, suspected)]


def _history(data: Dataset, options: AnalyzeOptions) -> tuple[History | None, Prior | None]:
    """A given ``--baseline`` measured (refused when it holds too little), with its typical minute."""
    if options.baseline is None:
        return None, None
    return given_history(data, *options.baseline, options.history, data.has_values("request_time"))


#: a period without an incident window whose traffic matches one attack tool's rule this much is no baseline
FLAGGED_SHARE = 0.5


def _settle(data: Dataset, options: AnalyzeOptions, tl: Timeline, given: History | None, prior: Prior | None,
            user_since: datetime | None, rules: tuple[Rule, ...]
            ) -> tuple[History, Baseline, list[Window], list[RuleFlags] | None]:
    """The history the period is compared with, its baseline and incident windows. Without a given range, the
    minutes outside the windows are the history, unless they are too few, or the period has no window and its
    traffic is mostly an attack tool's (logs of the attack alone, where the rolling level is the attack); then the
    two hours before ``--since``, if it was given and they hold enough. Also the sources the rules flag in a period
    without a window (None otherwise), which the report lists."""
    base = baseline_and_flags(tl, options.policy, prior)
    windows = find_windows(tl, base, options.policy)
    if given is not None:
        return given, base, windows, None
    quiet = baseline_minutes(tl, base, windows)
    history = auto_history(tl, outside_windows(tl, windows), None, options.history, minutes_to_ranges(tl, quiet))
    flags = None
    if not windows:
        flags = flag_sources(data, rules, whole_period(tl))
        top = max(flags, key=lambda f: f.requests, default=None)
        share = top.requests / max(float(tl.requests.sum()), 1.0) if top is not None else 0.0
        if history.sufficient and top is not None and share >= FLAGGED_SHARE:
            history = replace(history, sufficient=False, note=(
                f"no usable history: {share:.0%} of the analysed period's requests match {top.rule.name} (an attack "
                "tool's fingerprint), so its own traffic cannot stand for the site's usual one; the verdict rests "
                "on what the traffic itself shows, at lower confidence. Give the logs of the hours before, or a "
                "--baseline range of ordinary traffic"))
    before = None if history.sufficient or user_since is None else \
        preceding_history(data, user_since, options.history, tl.has_request_time)
    if before is None:
        return history, base, windows, flags
    history, prior = before  # a slice cut from longer logs: the hours before it are its history
    base = baseline_and_flags(tl, options.policy, prior)
    windows = find_windows(tl, base, options.policy)
    return history, base, windows, None


@memory_guard
def analyze(data: Dataset, options: AnalyzeOptions | None = None, *,
            stage: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Analyse ``data`` and return the report dictionary. ``stage``, when given, is told each stage's name as it
    starts (timeline, incident i/n, report): a progress display's hook, called a few times per run."""
    options = options or AnalyzeOptions()
    stage = stage or (lambda _name: None)
    stage("timeline")
    history, prior = _history(data, options)
    user_since = options.since
    minutes = minute_table(data, options.since, options.until)
    if minutes.num_rows == 0:  # a verdict on no request would be dated 1970 and mean nothing
        raise no_requests_between(options.since, options.until, data.manifest)
    span: Span | None = None
    if options.since is None and options.until is None:
        span = auto_span(data, minutes)
        if span.since is not None and span.until is not None:  # stray timestamps far from the main period
            options = replace(options, since=span.since, until=span.until)
            minutes = minutes_within(minutes, span.since, span.until)
    tl = timeline_of(minutes, data.has_values("request_time"))
    if history is not None and overlaps(tl, *history.ranges[0]):
        prior = None  # the given range lies in the analysed period: the rolling level there already holds it
    rules = load_rules(options.fingerprints)
    history, base, windows, flags = _settle(data, options, tl, history, prior, user_since, rules)
    baseline_ranges = list(history.ranges)
    enricher = Enricher(options.geoip, options.asn) if options.enrich else None
    try:
        shared = _Shared(baseline_clients(data, baseline_ranges) if windows and history.sufficient
                         else _NOBODY, enricher, rules)
        if not history.sufficient:
            stage("incident 1/1")
            results = _without_history(data, tl, base, shared) if tl.minutes else []
        else:
            chosen = windows[: options.max_incidents]
            results = []
            for i, w in enumerate(chosen):
                stage(f"incident {i + 1}/{len(chosen)}")
                results.append(_incident(data, tl, base, w, i, baseline_ranges, options, shared))
            if history.clients is None and windows:
                history = replace(history, clients=shared.baseline_clients.num_rows)
    finally:
        if enricher is not None:
            enricher.close()
    stage("report")
    return _report(data, options, tl, base, history, span, rules, shared, results, flags)


def _report(data: Dataset, options: AnalyzeOptions, tl: Timeline, base: Baseline, history: History,
            span: Span | None, rules: tuple[Rule, ...], shared: _Shared, results: list[IncidentResult],
            flags: list[RuleFlags] | None) -> dict[str, Any]:
    baseline_ranges = list(history.ranges)
    order = sorted(range(len(results)), key=lambda i: -results[i].weight)
    results = [results[i] for i in order]
    main = results[0] if results else None
    # The blocklist is pure Python (per attacking address): built on a worker thread while this one runs
    # the report's remaining engine queries, which release the GIL.
    attack = main if main is not None and main.verdict.kind in ATTACK_KINDS else None
    attackers = _attackers(attack) if attack else {}
    known = _known(shared.baseline_clients) if attack else {}
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fw-blocklist") as pool:
        blocklist = pool.submit(_blocklist, attack, attackers, known, options) if attack else None
        report: dict[str, Any] = {
            "schema": SCHEMA,
            "tool": {"name": "floodwitness", "version": __version__},
            "generated_at": _iso(datetime.now(UTC).replace(tzinfo=None)),
            "parameters": _parameters(data, options),
            "inputs": _inputs(data),
            "verdict": _verdict(main, tl, history),
            "incidents": [_incident_dict(r) for r in results],
            "findings": [_finding_dict(f) for r in results for f in r.findings],
            "timeline": _timeline_dict(tl, base, baseline_ranges)
            | {"new_clients": [int(x) for x in first_seen_per_minute(data, tl, options.since, options.until)]},
            "attribution": ATTRIBUTION,
            "baseline": history.to_dict(),
        }
        if span is not None and span.periods:
            report["time_span"] = span.to_dict()
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


def _parameters(data: Dataset, options: AnalyzeOptions) -> dict[str, Any]:
    return {"since": _iso(options.since) if options.since else None,
            "until": _iso(options.until) if options.until else None,
            "baseline": [_iso(x) for x in options.baseline] if options.baseline else "auto",
            "window_policy": asdict(options.policy), "blocklist_policy": asdict(options.blocklist_policy),
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


def _verdict(main: IncidentResult | None, tl: Timeline, history: History) -> dict[str, Any]:
    if main is None:
        minutes = tl.minutes
        if history.sufficient:
            text = (f"{minutes:,} minutes of traffic examined; no minute's volume or server errors stood out from "
                    "the rolling baseline")
            confidence = 0.9 if minutes >= 60 else 0.6
        else:
            text = (f"{minutes:,} minute(s) of traffic examined with no history to compare with: no attack tool's "
                    f"fingerprint, no client at {INHUMAN_PER_MINUTE} requests a minute or more, no server errors")
            confidence = 0.5
        hyps = [{"kind": "no_incident", "score": 3.0 if history.sufficient else 1.0, "for": [text], "against": []}]
        hyps += [{"kind": k, "score": -3.0, "for": [], "against": [text]}
                 for k in ("ddos", "dos", "flash_crowd", "internal_failure", "mixed")]
        return {"kind": "no_incident", "confidence": confidence,
                "summary": summary_for("no_incident", confidence, history.sufficient), "hypotheses": hyps}
    v = main.verdict
    if not main.has_history:
        hyps = sorted((h.to_dict() for h in v.hypotheses), key=lambda h: -float(h["score"]))  # type: ignore[arg-type]
        return {"kind": v.kind, "confidence": v.confidence,
                "summary": summary_for(v.kind, v.confidence, False), "hypotheses": hyps}
    hyps = sorted((h.to_dict() for h in v.hypotheses), key=lambda h: -float(h["score"]))  # type: ignore[arg-type]
    hyps.append({"kind": "no_incident", "score": -3.0, "for": [],
                 "against": [f"incident from {_iso(main.times[0])} to {_iso(main.times[1])} [I1]"]})
    return {"kind": v.kind, "confidence": v.confidence, "summary": summary_for(v.kind, v.confidence),
            "hypotheses": hyps}


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
            "attack_minutes": len(r.phases.attack_minutes), "failure_minutes": len(r.phases.failure_minutes)}


def _finding_dict(f: Finding) -> dict[str, Any]:
    return {"id": f.id, "kind": f.kind, "severity": f.severity, "description": FINDING_KINDS[f.kind].description,
            "technique": f.technique, "claim": f.claim, "confidence": f.confidence,
            "window": {"start": _iso(f.window[0]), "end": _iso(f.window[1])},
            "metrics": dict(f.metrics), "evidence": [e.to_dict() for e in f.evidence]}


def _timeline_dict(tl: Timeline, base: Baseline, baseline_ranges: list[tuple[datetime, datetime]]) -> dict[str, Any]:
    def clean(a: np.ndarray) -> list[float | None]:
        return [None if not np.isfinite(x) else round(float(x), 4) for x in a]

    def counts(name: str, a: np.ndarray) -> list[int | None]:  # null in every minute when the log has no such field
        return [None] * len(a) if name in tl.not_logged else [int(x) for x in a]
    return {"start": _iso(tl.start), "step_seconds": 60, "requests": [int(x) for x in tl.requests],
            "clients": [int(x) for x in tl.clients], "status_4xx": counts("status_4xx", tl.status_4xx),
            "status_5xx": counts("status_5xx", tl.status_5xx), "bytes": counts("bytes", tl.bytes),
            "p50_request_time": clean(tl.p50_time), "p95_request_time": clean(tl.p95_time),
            "baseline_requests": [round(float(x), 1) for x in base.level],
            "baseline_ranges": [[_iso(a), _iso(b)] for a, b in baseline_ranges]}


def _sources(data: Dataset, r: IncidentResult, baseline_ranges: list[tuple[datetime, datetime]]) -> dict[str, Any]:
    c = r.composition
    columns = ["client_ip", "requests", "known", "net", "known_net"]
    t = c.heaviest(20, columns)
    # the busiest sources are often the site's own clients (apps retrying): the suspects are listed apart
    all_suspects = r.suspected()
    sus = heaviest(all_suspects, 10, columns)
    w = in_ranges(data.requests, [r.times])
    # the listed sources' paths and agent: a look at their requests only, not a count for every client
    ips = sorted(set(t.column("client_ip").to_pylist()) | set(sus.column("client_ip").to_pylist()))
    listed = w.filter(w.client_ip.isin(ips))
    detail = {row["client_ip"]: row for row in data.engine.ibis.to_pyarrow(listed.group_by("client_ip").aggregate(
        distinct_paths=listed.path.nunique(), user_agent=listed.user_agent.max())).to_pylist()}
    active = _active_minutes(data, listed)
    seconds = max((r.times[1] - r.times[0]).total_seconds(), 1.0)

    def source(row: dict[str, Any]) -> dict[str, Any]:
        minutes, busiest = active.get(row["client_ip"], (1, row["requests"]))
        history = r.has_history  # without one, nobody is known or new
        return {"client_ip": row["client_ip"], "requests": row["requests"],
                "rate_rps": round(row["requests"] / seconds, 3), "known": row["known"] if history else None,
                "network": row["net"], "known_network": row["known_net"] if history else None,
                "user_agent": detail[row["client_ip"]]["user_agent"],
                "distinct_paths": detail[row["client_ip"]]["distinct_paths"],
                "active_minutes": minutes, "active_rps": round(row["requests"] / min(60.0 * minutes, seconds), 3),
                "busiest_minute_requests": busiest}
    # networks from the per-client table (one row per client, already in memory): no new scan
    by_net = c.clients_table.group_by(["net", "known_net"]).aggregate([("requests", "sum"), ("client_ip", "count")])
    nets = sorted(({"net": row["net"], "requests": row["requests_sum"], "clients": row["client_ip_count"],
                    "known": row["known_net"] if r.has_history else None} for row in by_net.to_pylist()),
                  key=lambda n: (-int(n["requests"]), n["net"]))[:15]
    uas = data.engine.ibis.to_pyarrow(w.group_by("user_agent").aggregate(
        requests=w.count(), clients=w.client_ip.nunique()).order_by(
        [ibis.desc("requests"), "user_agent"]).limit(10)).to_pylist()
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


def _active_minutes(data: Dataset, listed: ir.Table) -> dict[str, tuple[int, int]]:
    """Per listed client: the minutes it sent requests in and its busiest minute's requests (a pulse wave's bots
    are idle between bursts: their rate over the whole incident says little about the rate they hit at). Its
    rate while active is over those minutes, at most the incident's length (whose edges cut minutes short)."""
    per_minute = listed.group_by([listed.client_ip, listed.ts.truncate("m").name("minute")]).aggregate(
        n=listed.count())
    rows = data.engine.ibis.to_pyarrow(per_minute.group_by("client_ip").aggregate(
        minutes=per_minute.count(), busiest=per_minute.n.max())).to_pylist()
    return {row["client_ip"]: (int(row["minutes"]), int(row["busiest"])) for row in rows}


def _audience_fields(a: Audience | None) -> dict[str, Any]:
    """The audience model's fields of ``sources`` (added to the contract by the sources issue)."""
    if a is None:
        return {}
    return {"audience": {lv.level: lv.to_dict() for lv in a.levels}, "asns": a.asns, "countries": a.countries,
            "databases": a.databases, "audience_note": a.note}



def _targets(data: Dataset, r: IncidentResult) -> dict[str, Any]:
    w = in_ranges(data.requests, [r.times])
    paths = data.engine.ibis.to_pyarrow(w.group_by(["method", "path"]).aggregate(
        requests=w.count(), distinct_queries=w.query.nunique(), errors=(w.status >= 500).sum()).order_by(
        [ibis.desc("requests"), "method", "path"]).limit(10)).to_pylist()
    vectors = [f.claim for f in r.findings if f.kind in ("bot_behaviour", "cache_busting", "tool_fingerprint",
                                                           "concentrated_sources")]
    return {"top_paths": paths, "vectors": vectors}


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


def _attackers(r: IncidentResult) -> dict[str, int]:
    """The incident's attacking sources and their requests: the suspects, or for a DoS the few heaviest."""
    c = r.composition
    attackers_table = r.suspected()
    if r.verdict.kind == "dos":
        few = next((f for f in r.findings if f.kind == "concentrated_sources"), None)
        chosen = set(few.metrics["top_sources"][: max(int(few.metrics["sources_for_80pct"]), 1)]) if few else set()
        attackers_table = c.clients_table.filter(_mask(c.clients_table.column("client_ip").to_pylist(), chosen))
    return dict(zip(attackers_table.column("client_ip").to_pylist(), attackers_table.column("requests").to_pylist(),
                    strict=True))


def _known(known_rows: pa.Table) -> dict[str, int]:
    return dict(zip(known_rows.column("client_ip").to_pylist(), known_rows.column("requests").to_pylist(),
                    strict=True))


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


def _mask(values: list[str], chosen: set[str]) -> pa.Array:
    return pa.array([v in chosen for v in values])
