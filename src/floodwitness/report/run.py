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
from floodwitness.analysis.phases import Phases, analyse_phases
from floodwitness.analysis.span import Span, auto_span
from floodwitness.analysis.timeline import Timeline, minute_table, minutes_within, per_second, timeline_of
from floodwitness.analysis.windows import (
    Baseline,
    Window,
    baseline_and_flags,
    baseline_minutes,
    find_windows,
    heaviest_windows,
    minutes_to_ranges,
    outside_windows,
    refine_edges,
    window_times,
)
from floodwitness.detectors import Context, detectors_for
from floodwitness.detectors.behaviour import RuleFlags, flag_sources, rule_aggregates, scan_rules
from floodwitness.detectors.fingerprints import Rule, load_rules
from floodwitness.engine import memory_guard
from floodwitness.enrich import Enricher
from floodwitness.ingest.checks import no_requests_between
from floodwitness.report.build import build_report
from floodwitness.report.outages import Collapses, Linked, link, outage_incident, settle_collapses, with_verdict
from floodwitness.report.results import AnalyzeOptions, IncidentResult
from floodwitness.verdict import judge_incident, judge_without_history

if TYPE_CHECKING:
    from collections.abc import Callable

    from floodwitness.analysis.dataset import Dataset
    from floodwitness.detectors.base import DetectorPolicy


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
                  baseline_ranges=baseline_ranges, audience=audience, rules=shared.rules, rules_scan=scan,
                  policy=options.detectors)
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


def _without_history(data: Dataset, tl: Timeline, base: Baseline, shared: _Shared,
                     policy: DetectorPolicy) -> list[IncidentResult]:
    """The analysed period judged by what its traffic shows by itself (no usable baseline): one incident over the
    whole period when that shows an attack or server errors, else none."""
    times = whole_period(tl)
    comp = compose(data, times, [], 0.0, _NOBODY, extra=partial(rule_aggregates, rules=shared.rules))
    scan = scan_rules(data, shared.rules, times, per_client=comp.clients_table)
    inhuman = busiest_minutes(data, times, policy.inhuman_per_minute)
    ctx = Context(data, tl, base, times, (), (), comp, 0, None,
                  rules=shared.rules, rules_scan=scan, has_history=False, inhuman=inhuman, policy=policy)
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
            ) -> tuple[History, Baseline, list[Window], list[RuleFlags] | None, Collapses]:
    """The history the period is compared with, its baseline and incident windows. Without a given range, the
    minutes outside the windows are the history, unless they are too few, or the period has no window and its
    traffic is mostly an attack tool's (logs of the attack alone, where the rolling level is the attack); then the
    two hours before ``--since``, if it was given and they hold enough. Also the sources the rules flag in a period
    without a window that has enough minutes of history (None otherwise: the report, or the judgment without
    history, scans them itself, once)."""
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
    history, base, windows, flags, collapses = _settle(data, options, tl, history, prior, user_since, rules)
    baseline_ranges = list(history.ranges)
    enricher = Enricher(options.geoip, options.asn) if options.enrich else None
    left_out: list[Window] = []
    gaps = []
    try:
        shared = _Shared(baseline_clients(data, baseline_ranges) if (windows or collapses.found) and
                         history.sufficient else _NOBODY, enricher, rules)
        if not history.sufficient:
            stage("incident 1/1")
            results = _without_history(data, tl, base, shared, options.detectors) if tl.minutes else []
        else:
            linked = link(data, tl, windows, collapses, baseline_ranges, options)
            results, left_out = _incidents(data, tl, base, linked, baseline_ranges, options, shared, stage)
            gaps = linked.gaps
            if history.clients is None and (windows or collapses.found):
                history = replace(history, clients=shared.baseline_clients.num_rows)
    finally:
        if enricher is not None:
            enricher.close()
    stage("report")
    return build_report(data, options, tl, base, history, span, rules, shared.baseline_clients, results,
                        flags, left_out, gaps)


def _incidents(data: Dataset, tl: Timeline, base: Baseline, linked: Linked,
               baseline_ranges: list[tuple[datetime, datetime]], options: AnalyzeOptions, shared: _Shared,
               stage: Callable[[str], None]) -> tuple[list[IncidentResult], list[Window]]:
    """The heaviest windows analysed in depth (each with the outage it ended in, if any), then the outages no
    window came before; and the windows left out."""
    chosen, left_out = heaviest_windows(tl, base, linked.windows, options.max_incidents)
    alone = list(linked.alone)
    results = []
    for i, w in enumerate(chosen):
        stage(f"incident {i + 1}/{len(chosen) + len(alone)}")
        result = _incident(data, tl, base, w, i, baseline_ranges, options, shared)
        outage = linked.caused.get(id(w))
        results.append(result if outage is None else with_verdict(result, outage))
    alone += [o for w in left_out if (o := linked.caused.get(id(w))) is not None]  # its cause was not analysed
    for o in alone:
        stage(f"incident {len(results) + 1}/{len(chosen) + len(alone)}")
        results.append(outage_incident(data, tl, base, o, len(results), baseline_ranges, shared.baseline_clients))
    return results, left_out
