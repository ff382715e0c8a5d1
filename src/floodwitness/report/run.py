"""Run the analysis stages in order: the timeline and its history, the incident windows, each incident's
composition, findings and verdict; then the report (:mod:`floodwitness.report.build`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from floodwitness.analysis.audience import audience_of, baseline_clients
from floodwitness.analysis.composition import busiest_minutes, compose
from floodwitness.analysis.history import (
    History,
    Prior,
    auto_history,
    given_history,
    overlaps,
    preceding_history,
    whole_period,
)
from floodwitness.analysis.impact import Usual, expected_minutes, measure_impact, usual_service
from floodwitness.analysis.outage import Outage
from floodwitness.analysis.phases import Phases, analyse_phases
from floodwitness.analysis.span import Span, auto_span, split_periods
from floodwitness.analysis.timeline import Timeline, minute_table, minutes_within, per_second, timeline_of
from floodwitness.analysis.windows import (
    Baseline,
    Window,
    baseline_and_flags,
    baseline_minutes,
    find_windows,
    heaviest_of,
    minutes_to_ranges,
    outside_windows,
    refine_edges,
    window_times,
    window_weight,
)
from floodwitness.detectors import Context, detectors_for
from floodwitness.detectors.abuse_scan import AbuseScan, classify_sources
from floodwitness.detectors.behaviour import RuleFlags, flag_sources, rule_aggregates, scan_rules
from floodwitness.detectors.fingerprints import Rule, load_rules
from floodwitness.engine import memory_guard
from floodwitness.enrich import Enricher
from floodwitness.ingest.checks import no_requests_between
from floodwitness.report.build import build_report
from floodwitness.report.flows import flows_only_report, network_of, network_section, outage_explained
from floodwitness.report.outages import Collapses, link, outage_incident, settle_collapses, with_verdict
from floodwitness.report.results import AnalyzeOptions, IncidentResult, PeriodResult
from floodwitness.verdict import judge_incident, judge_without_history

if TYPE_CHECKING:
    from collections.abc import Callable

    from floodwitness.analysis.dataset import Dataset
    from floodwitness.analysis.network import NetworkAnalysis


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
    usual: Usual | None = None  # the baseline's service, what each incident's impact is held against
    network: NetworkAnalysis | None = None  # the flows' analysis, when flows were given (#21)


def _incident(data: Dataset, tl: Timeline, base: Baseline, w: Window, index: int,
              baseline_ranges: list[tuple[datetime, datetime]], options: AnalyzeOptions,
              shared: _Shared) -> IncidentResult:
    times = _refined(data, tl, base, w, options)
    expected = float(base.level[w.start_index:w.end_index].sum())
    # the fingerprint rules' per-client counts come from the composition's pass over the window's clients
    comp = compose(data, times, baseline_ranges, expected, shared.baseline_clients,
                   extra=partial(rule_aggregates, rules=shared.rules))
    scan = scan_rules(data, shared.rules, times, per_client=comp.clients_table)
    # the sources that scanned, brute-forced or scraped: the errors their own requests drew are theirs
    abuse = classify_sources(data, times)
    phases = analyse_phases(data, tl, base, comp, w.start_index, w.end_index, options.policy,
                            hostile=abuse.hostile)
    audience = audience_of(comp, shared.baseline_clients, shared.enricher)
    ctx = Context(data, tl, base, times, w.volume_minutes, w.error_minutes, comp, index, phases,
                  baseline_ranges=baseline_ranges, audience=audience, rules=shared.rules, rules_scan=scan,
                  policy=options.detectors, abuse=abuse, network=shared.network)
    findings = [f for fn in detectors_for(True) for f in fn(ctx)]
    # what the incident did to the site's usual clients: measured before the verdict, which may weigh it
    impact = measure_impact(data, times, comp, expected_per_minute=expected_minutes(base.level, tl.start, times),
                            usual=shared.usual, baseline=baseline_ranges,
                            status_logged="status_5xx" not in tl.not_logged, policy=options.impact,
                            hostile=abuse.hostile)
    verdict = judge_incident(findings, new_network_share=comp.new_network_excess_share,
                             known_share=comp.known_excess_share, errors_logged="status_5xx" not in tl.not_logged,
                             impact=impact)
    second0, counts = per_second(data, times[0], times[1], errors=False)
    peak_second = int(np.argmax(counts)) if len(counts) else 0
    # the peak is the busiest minute: by requests, or by server errors when the incident is a failure
    series = tl.status_5xx if verdict.kind == "internal_failure" else tl.requests
    peak_minute = w.start_index + int(np.argmax(series[w.start_index:w.end_index]))
    return IncidentResult(index, w, times, comp, phases, findings, verdict, tl.minute_at(peak_minute),
                          second0 + timedelta(seconds=peak_second),
                          float(counts[peak_second]) if len(counts) else 0.0,
                          float(np.median(base.level[w.start_index:w.end_index])) / 60.0, audience, scan.flags,
                          impact=impact, abusers=_abusers(abuse))


#: no known clients (the ``baseline_clients`` of no baseline)
_NOBODY = pa.table({"client_ip": pa.array([], pa.string()), "requests": pa.array([], pa.int64())})


def _without_history(data: Dataset, tl: Timeline, base: Baseline, shared: _Shared,
                     options: AnalyzeOptions, index: int = 0) -> list[IncidentResult]:
    """The analysed period judged by what its traffic shows by itself (no usable baseline): one incident over the
    whole period when that shows an attack or server errors, else none."""
    times = whole_period(tl)
    comp = compose(data, times, [], 0.0, _NOBODY, extra=partial(rule_aggregates, rules=shared.rules))
    scan = scan_rules(data, shared.rules, times, per_client=comp.clients_table)
    policy = options.detectors
    inhuman = busiest_minutes(data, times, policy.inhuman_per_minute)
    ctx = Context(data, tl, base, times, (), (), comp, index, None,
                  rules=shared.rules, rules_scan=scan, has_history=False, inhuman=inhuman, policy=policy,
                  network=shared.network)
    findings = [f for fn in detectors_for(False) for f in fn(ctx)]
    verdict = judge_without_history(findings, comp.requests)
    if verdict.kind == "no_incident":
        return []
    condemned = set(inhuman.column("client_ip").to_pylist())
    for flags in scan.flags:
        condemned.update(flags.table.column("client_ip").to_pylist())
    clients = comp.clients_table
    suspected = clients.filter(pc.is_in(clients.column("client_ip"),
                                        value_set=pa.array(sorted(condemned), pa.string())))
    phases = Phases(0, tl.requests, tl.status_5xx, np.zeros(tl.minutes), (), (), 0, 0)
    window = Window(0, tl.minutes, (), ())
    second0, counts = per_second(data, times[0], times[1], errors=False)
    peak_second = int(np.argmax(counts)) if len(counts) else 0
    series = tl.status_5xx if verdict.kind == "internal_failure" else tl.requests
    impact = measure_impact(data, times, comp, expected_per_minute=None, usual=None, suspects=suspected,
                            status_logged="status_5xx" not in tl.not_logged, policy=options.impact)
    return [IncidentResult(index, window, times, comp, phases, findings, verdict,
                           tl.minute_at(int(np.argmax(series))),
                           second0 + timedelta(seconds=peak_second),
                           float(counts[peak_second]) if len(counts) else 0.0, 0.0, None, scan.flags, suspected,
                           impact=impact, abusers=_abusers(ctx.abuse))]


def _abusers(abuse: AbuseScan | None) -> pa.Table | None:
    """The sources that scanned, brute-forced or scraped (``client_ip``, ``requests``, ``behaviour``)."""
    if abuse is None:
        return None
    return abuse.table.filter(pc.is_valid(abuse.table.column("behaviour"))).select(
        ["client_ip", "requests", "behaviour"])


def _history(data: Dataset, options: AnalyzeOptions) -> tuple[History | None, Prior | None]:
    """A given ``--baseline`` measured (refused when it holds too little), with its typical minute."""
    if options.baseline is None:
        return None, None
    return given_history(data, *options.baseline, options.history, data.has_values("request_time"))


#: a period without an incident window whose traffic matches one attack tool's rule this much is no baseline
FLAGGED_SHARE = 0.5


def _settle(data: Dataset, options: AnalyzeOptions, tl: Timeline, given: History | None, prior: Prior | None,
            user_since: datetime | None, rules: tuple[Rule, ...]
            ) -> tuple[History, Baseline, list[Window], list[RuleFlags] | None, Collapses]:
    """The history the period is compared with, its baseline and incident windows. Without a given range, the
    minutes outside the windows are the history, unless they are too few, or the period has no window and its
    traffic is mostly an attack tool's (logs of the attack alone, where the rolling level is the attack); then the
    two hours before ``--since``, if it was given and they hold enough. Also the sources the rules flag in a period
    without a window that has enough minutes of history (None otherwise: the report, or the judgment without
    history, scans them itself, once); and the collapses of its traffic (outages)."""
    base = baseline_and_flags(tl, options.policy, prior)
    base, windows, collapses = settle_collapses(tl, base, find_windows(tl, base, options.policy), options, prior)
    if given is not None:
        return given, base, windows, None, collapses
    apart = sorted(windows + collapses.windows(), key=lambda w: w.start_index)  # the collapses are no usual traffic
    quiet = baseline_minutes(tl, base, apart)
    history = auto_history(tl, outside_windows(tl, apart), None, options.history, minutes_to_ranges(tl, quiet))
    flags = None
    if not windows and history.sufficient:  # (too little history already: the rules' scan would be the verdict's)
        flags = flag_sources(data, rules, whole_period(tl))
        top = max(flags, key=lambda f: f.requests, default=None)
        share = top.requests / max(float(tl.requests.sum()), 1.0) if top is not None else 0.0
        if top is not None and share >= FLAGGED_SHARE:
            history = replace(history, sufficient=False, note=(
                f"no usable history: {share:.0%} of the analysed period's requests match {top.rule.name} (an attack "
                "tool's fingerprint), so its own traffic cannot stand for the site's usual one; the verdict rests "
                "on what the traffic itself shows, at lower confidence. Give the logs of the hours before, or a "
                "--baseline range of ordinary traffic"))
    before = None if history.sufficient or user_since is None else \
        preceding_history(data, user_since, options.history, tl.has_request_time)
    if before is None:
        return history, base, windows, flags, collapses
    history, prior = before  # a slice cut from longer logs: the hours before it are its history
    base = baseline_and_flags(tl, options.policy, prior)
    base, windows, collapses = settle_collapses(tl, base, find_windows(tl, base, options.policy), options, prior)
    return history, base, windows, None, collapses


@dataclass
class _Part:
    """One period's own analysis (the whole timeline when it is one period): its timeline, history, baseline and
    incident windows, found as :func:`_settle` finds them for a period alone."""

    index: int
    offset: int  # its first minute on the whole timeline
    tl: Timeline
    history: History
    base: Baseline
    windows: list[Window]
    flags: list[RuleFlags] | None
    collapses: Collapses  # the collapses of its traffic (outages)
    known: pa.Table | None = None  # the baseline's clients, once measured
    usual: Usual | None = None  # the baseline's service (what impact is held against), once measured

    def known_clients(self, data: Dataset) -> pa.Table:
        if self.known is None:
            self.known = baseline_clients(data, list(self.history.ranges)) if self.history.sufficient \
                else _NOBODY
            if self.history.clients is None:
                self.history = replace(self.history, clients=self.known.num_rows)
        return self.known

    def usual_service(self, data: Dataset) -> Usual | None:
        if self.usual is None and self.history.sufficient:
            self.usual = usual_service(data, list(self.history.ranges))
        return self.usual

    def summary(self) -> PeriodResult:
        return PeriodResult(self.offset, self.offset + self.tl.minutes, self.tl.start,
                            self.tl.minute_at(self.tl.minutes), self.history, len(self.windows))


def _shifted(w: Window, offset: int) -> Window:
    return Window(w.start_index + offset, w.end_index + offset, tuple(i + offset for i in w.volume_minutes),
                  tuple(i + offset for i in w.error_minutes))


def _incidents(data: Dataset, parts: list[_Part], options: AnalyzeOptions, enricher: Enricher | None,
               rules: tuple[Rule, ...], stage: Callable[[str], None], network: NetworkAnalysis | None = None
               ) -> tuple[list[IncidentResult], list[Window], list[Outage]]:
    """The incidents of every period: the windows of the periods with a history of their own, ranked together by
    weight (:func:`window_weight`), the ``max_incidents`` heaviest analysed in depth wherever they fall in time
    (the others returned, on the whole timeline), each with the outage it ended in, if any; the outages no analysed
    window came before, as incidents of kind ``outage``; each period without a usable history judged by what its
    traffic shows by itself (one incident at most, as a log without history is). Also the gaps between log files."""
    linked = {p.index: link(data, p.tl, p.windows, p.collapses, list(p.history.ranges), options)
              for p in parts if p.history.sufficient}
    candidates = [(p, w) for p in parts if p.history.sufficient for w in linked[p.index].windows]
    keep = heaviest_of([window_weight(p.tl, p.base, w) for p, w in candidates], options.max_incidents)
    left_out = [_shifted(w, p.offset) for i, (p, w) in enumerate(candidates) if i not in keep]
    todo: list[tuple[_Part, Window | Outage | None]] = [(p, None) for p in parts
                                                         if not p.history.sufficient and p.tl.minutes]
    todo += [c for i, c in enumerate(candidates) if i in keep]
    for p in parts:  # the outages alone, and those whose window was not analysed in depth
        if p.history.sufficient:
            orphans = [o for i, (q, w) in enumerate(candidates) if i not in keep and q is p
                       if (o := linked[p.index].caused.get(id(w))) is not None]
            todo += [(p, o) for o in linked[p.index].alone + orphans]
    todo.sort(key=lambda c: (c[0].index, _start(c[1])))
    results: list[IncidentResult] = []
    for n, (part, w) in enumerate(todo):
        stage(f"incident {n + 1}/{len(todo)}")
        shared = _Shared(part.known_clients(data) if w is not None else _NOBODY, enricher, rules,
                         part.usual_service(data) if w is not None else None, network)
        ranges = list(part.history.ranges)
        if isinstance(w, Outage):
            found = [outage_incident(data, part.tl, part.base, w, len(results), ranges, shared.baseline_clients,
                                     shared.usual, options)]
        elif w is not None:
            found = [_incident(data, part.tl, part.base, w, len(results), ranges, options, shared)]
            outage = linked[part.index].caused.get(id(w))
            found = found if outage is None else [with_verdict(found[0], outage)]
        else:
            found = _without_history(data, part.tl, part.base, shared, options, len(results))
        results += [replace(r, period=part.index, offset=part.offset) for r in found]
    return results, left_out, [g for one in linked.values() for g in one.gaps]


def _start(item: Window | Outage | None) -> int:
    """Where an item to analyse starts on its period's timeline (a period judged without history: first)."""
    if item is None:
        return -1
    return item.start_index if isinstance(item, Window) else item.collapse.start_index


def _stitched(tl: Timeline, parts: list[_Part], main: _Part) -> Baseline:
    """The periods' baselines on the whole timeline (nothing expected in the gaps between them); the usual error
    share and request time are the main period's."""
    if len(parts) == 1:
        return parts[0].base
    level, errors = np.zeros(tl.minutes), np.zeros(tl.minutes)
    flagged, volume = np.zeros(tl.minutes, dtype=bool), np.zeros(tl.minutes, dtype=bool)
    for p in parts:
        cut = slice(p.offset, p.offset + p.tl.minutes)
        level[cut], errors[cut], flagged[cut], volume[cut] = p.base.level, p.base.errors, p.base.flagged, \
            p.base.volume
    return Baseline(level, errors, main.base.error_share, main.base.p95_time, flagged, volume)


def _timeline(data: Dataset, options: AnalyzeOptions) -> tuple[Timeline, Span | None, AnalyzeOptions]:
    """The analysed span's timeline, its periods marked; the span found when none was given (and the options
    narrowed to it when it leaves stray timestamps out)."""
    minutes = minute_table(data, options.since, options.until)
    if minutes.num_rows == 0:  # a verdict on no request would be dated 1970 and mean nothing
        raise no_requests_between(options.since, options.until, data.manifest)
    span: Span | None = None
    if options.since is None and options.until is None:
        span = auto_span(data, minutes)
        if span.since is not None and span.until is not None:  # stray timestamps far from the main periods
            options = replace(options, since=span.since, until=span.until)
            minutes = minutes_within(minutes, span.since, span.until)
    tl = timeline_of(minutes, data.has_values("request_time"))
    return replace(tl, periods=split_periods(tl)), span, options


@memory_guard
def analyze(data: Dataset, options: AnalyzeOptions | None = None, *,
            stage: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Analyse ``data`` and return the report dictionary. ``stage``, when given, is told each stage's name as it
    starts (timeline, incident i/n, report): a progress display's hook, called a few times per run. Logs of
    periods weeks apart are analysed period by period, each against its own baseline, and their incident
    windows ranked together."""
    options = options or AnalyzeOptions()
    stage = stage or (lambda _name: None)
    network = None
    if data.flow_parts:
        stage("network")
        network = network_of(data, options)
        if not data.manifest.inputs and network is not None:  # flows alone, no access log
            return flows_only_report(data, options, network)
    stage("timeline")
    history, prior = _history(data, options)
    user_since = options.since
    tl, span, options = _timeline(data, options)
    if history is not None and overlaps(tl, *history.ranges[0]):
        prior = None  # the given range lies in the analysed period: the rolling level there already holds it
    rules = load_rules(options.fingerprints)
    parts = []
    for n, (first, end) in enumerate(tl.period_bounds):
        sub = tl.part(first, end)  # a slice cut from longer logs: its first period has the hours before
        parts.append(_Part(n, first, sub, *_settle(data, options, sub, history, prior,
                                                    user_since if n == 0 else None, rules)))
    enricher = Enricher(options.geoip, options.asn) if options.enrich else None
    try:
        results, left_out, gaps = _incidents(data, parts, options, enricher, rules, stage, network)
    finally:
        if enricher is not None:
            enricher.close()
    # the report's history and known clients are the main incident's period's (else the busiest period's)
    main = parts[min(results, key=lambda r: r.rank).period] if results else \
        max(parts, key=lambda p: (p.history.sufficient, float(p.tl.requests.sum())))
    known = main.known if main.known is not None else _NOBODY
    if network is not None:
        results = [outage_explained(r, network) for r in results]
    stage("report")
    report = build_report(data, options, tl, _stitched(tl, parts, main), main.history, span, rules, known, results,
                        main.flags if len(parts) == 1 else None, left_out,
                        tuple(p.summary() for p in parts) if len(parts) > 1 else (), gaps)
    if network is not None:
        network_section(report, data, network, min(results, key=lambda r: r.rank).verdict if results else None)
    return report
