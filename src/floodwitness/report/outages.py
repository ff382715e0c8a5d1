"""Outages in the analysis: collapses of traffic found beside the incident windows, tied to the incident that came
just before them (an attack that took the site down, a failure from the inside), or judged on their own (the cause
lies outside what an access log records)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from floodwitness.analysis.collapse import Collapse, find_collapses
from floodwitness.analysis.composition import compose
from floodwitness.analysis.impact import expected_minutes, measure_impact
from floodwitness.analysis.outage import Outage, describe, linked_windows
from floodwitness.analysis.phases import Phases
from floodwitness.analysis.windows import Baseline, Window, baseline_and_flags, find_windows
from floodwitness.detectors.base import Evidence, Finding
from floodwitness.report.results import IncidentResult
from floodwitness.verdict import ATTACK_KINDS, judge_outage

if TYPE_CHECKING:
    import pyarrow as pa

    from floodwitness.analysis.dataset import Dataset
    from floodwitness.analysis.history import Prior
    from floodwitness.analysis.impact import Impact, Usual
    from floodwitness.analysis.timeline import Timeline
    from floodwitness.report.results import AnalyzeOptions


@dataclass
class Collapses:
    """The collapses of an analysis and the level they were measured against."""

    found: list[Collapse] = field(default_factory=list)
    expected: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def windows(self) -> list[Window]:
        return [c.window() for c in self.found]


def settle_collapses(tl: Timeline, base: Baseline, windows: list[Window], options: AnalyzeOptions,
                     prior: Prior | None) -> tuple[Baseline, list[Window], Collapses]:
    """The collapses of ``tl``; when there are some, the baseline and windows again without their minutes (the site
    down is not its usual level: traffic coming back after it would look like a surge)."""
    found, expected = find_collapses(tl, base, options.collapse, options.policy.baseline_half_width)
    if not found:
        return base, windows, Collapses([], expected)
    down = np.zeros(tl.minutes, dtype=bool)
    for c in found:
        down[c.start_index:c.end_index] = True
    base = baseline_and_flags(tl, options.policy, prior, exclude=down)
    return base, find_windows(tl, base, options.policy), Collapses(found, expected)


@dataclass
class Linked:
    """The windows still incidents of their own, the outage each cause window ended in, the outages with no
    window before them, and the gaps between log files."""

    windows: list[Window]
    caused: dict[int, Outage]  # id() of a window: the outage that followed it
    alone: list[Outage]
    gaps: list[Outage]


def link(data: Dataset, tl: Timeline, windows: list[Window], collapses: Collapses,
         baseline: list[tuple[datetime, datetime]], options: AnalyzeOptions) -> Linked:
    """Describe each collapse and tie it to the windows around it: the one just before is its cause, a surge just
    after is its retry surge (part of the outage, not an incident of its own), windows inside it are its own."""
    policy = options.collapse
    drop: set[int] = set()
    caused: dict[int, Outage] = {}
    alone, gaps = [], []
    for c in collapses.found:
        outage = describe(data, tl, collapses.expected, c, windows, baseline, policy)
        before, after, inside = linked_windows(c, windows, policy)
        drop.update(inside)
        if after is not None:
            drop.add(after)
        if outage.cause == "log_gap":
            gaps.append(outage)
        elif before is not None:
            caused[id(windows[before])] = outage
        else:
            alone.append(outage)
    kept = [w for i, w in enumerate(windows) if i not in drop]
    return Linked(kept, caused, alone, gaps)


def cause_of(kind: str) -> str:
    """The cause family of an outage that followed an incident judged ``kind``."""
    if kind in ATTACK_KINDS:
        return "attack"
    return "internal" if kind == "internal_failure" else "crowd" if kind == "flash_crowd" else "outside"


def with_verdict(result: IncidentResult, outage: Outage) -> IncidentResult:
    """``result`` with the outage it ended in, its cause named by the incident's verdict; the incident ends where the
    outage began (the seconds after it are the site stopping, not the incident's own traffic)."""
    start, end = result.times
    times = (start, max(start, min(end, outage.began)))
    return replace(result, times=times, impact=_down(result.impact, outage),
                   outage=replace(outage, cause=cause_of(result.verdict.kind), cause_kind=result.verdict.kind))


def _down(impact: Impact | None, o: Outage) -> Impact | None:
    """``impact`` raised to ``outage``: the site stopped answering (the collapse ``o``)."""
    if impact is None or impact.level == "outage":
        return impact
    c = o.collapse
    reason = (f"the site stopped answering from {o.began:%Y-%m-%d %H:%M:%S}: {int(c.served):,} requests served in "
              f"{c.minutes:,} minutes where {round(c.expected):,} were expected (incidents[].outage)")
    return replace(impact, level="outage", reasons=(*impact.reasons, reason),
                   minutes_affected=max(impact.minutes_affected, c.minutes))


def collapse_finding(index: int, o: Outage) -> Finding:
    c = o.collapse
    served = f"{int(c.served):,} requests were served in {c.minutes:,} minutes where {round(c.expected):,} were " \
             f"expected ({1 - c.served / max(c.expected, 1e-9):.1%} fewer)"
    claim = f"from {o.began:%Y-%m-%d %H:%M:%S} UTC, {served}"
    if o.log_ends:
        claim += "; the log ends during the fall"
    n = o.networks
    if n.total:
        claim += f"; {n.dropped} of the audience's {n.total} networks dropped"
    metrics = {"served": int(c.served), "expected": round(c.expected), "minutes": c.minutes,
               "significance_log10": round(c.log10_p, 1), "burst_size": round(c.burst_size, 2),
               "networks_dropped": n.dropped, "networks": n.total}
    end = o.ended or o.began + timedelta(minutes=c.minutes)
    confidence = 0.95 if c.log10_p <= -12 else 0.8
    return Finding(f"I{index + 1}-traffic_collapse", "traffic_collapse", claim, (o.began, end), metrics, confidence,
                   (Evidence(query=o.query),))


def outage_incident(data: Dataset, tl: Timeline, base: Baseline, o: Outage, index: int,
                    baseline: list[tuple[datetime, datetime]], known: pa.Table, usual: Usual | None,
                    options: AnalyzeOptions) -> IncidentResult:
    """An incident of kind ``outage``: the collapse ``o`` with no incident before it; its impact measured as any
    incident's (``usual``: the baseline's service), and ``outage`` whatever the measure found (the site was down)."""
    c = o.collapse
    times = (o.began, o.ended or tl.minute_at(tl.minutes))
    comp = compose(data, times, baseline, c.expected, known)
    span = slice(c.start_index, c.end_index)
    phases = Phases(c.start_index, tl.requests[span], tl.status_5xx[span], np.zeros(c.minutes), (), (), 0, 0)
    finding = collapse_finding(index, o)
    verdict = judge_outage(finding, log_ends=o.log_ends, all_at_once=o.networks.all_at_once)
    impact = measure_impact(data, times, comp, expected_per_minute=expected_minutes(base.level, tl.start, times),
                            usual=usual, baseline=baseline, status_logged="status_5xx" not in tl.not_logged,
                            policy=options.impact)
    return IncidentResult(index, c.window(), times, comp, phases, [finding], verdict, o.began, o.began, 0.0,
                          float(np.median(base.level[span])) / 60.0, impact=_down(impact, o), outage=o)


__all__ = ["Collapses", "Linked", "cause_of", "link", "outage_incident", "settle_collapses", "with_verdict"]
