"""Inside an incident: which minutes carry the attack's traffic, and which carry failures that the attack
does not explain (errors before it starts or after it ends: our own failure, the `mixed` case)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from floodwitness.analysis.composition import Composition, in_ranges
from floodwitness.analysis.timeline import MINUTE, aligned
from floodwitness.analysis.windows import error_anomaly

if TYPE_CHECKING:
    from floodwitness.analysis.dataset import Dataset
    from floodwitness.analysis.timeline import Timeline
    from floodwitness.analysis.windows import Baseline, WindowPolicy


@dataclass(frozen=True)
class Phases:
    start_index: int
    requests: np.ndarray
    errors: np.ndarray
    suspect_requests: np.ndarray   # requests from the suspected attacking clients, per minute
    attack_minutes: tuple[int, ...]   # timeline minute indexes where the suspects are a real share of traffic
    failure_minutes: tuple[int, ...]  # error-anomalous minutes with (almost) no suspect traffic
    errors_lead: int      # failure minutes before the first attack minute
    errors_outlast: int   # failure minutes after the last attack minute


def suspects(comp: Composition) -> pa.Table:
    """Clients of the window that look like attackers: never seen before, and either from a network the
    audience never used, or behaving unlike a browser (several requests, no asset, no referer). Not those
    who loaded a page with its assets just before the incident (people browsing as it began, reloading the
    pages that failed: a flood's bots do not fetch the images first). When the log has no paths or no referers,
    the behaviour is not known: only the network makes a suspect."""
    t = comp.clients_table
    new = pc.and_(pc.invert(t.column("known")), pc.invert(t.column("browsed_before")))
    new_net = pc.invert(t.column("known_net"))
    if comp.not_logged:  # no asset or referer to judge by: only the network tells
        return t.filter(pc.and_(new, new_net))
    botlike = pc.and_(pc.and_(pc.equal(t.column("assets"), 0), pc.greater_equal(t.column("requests"), 3)),
                      pc.equal(t.column("referers"), 0))
    return t.filter(pc.and_(new, pc.or_(new_net, botlike)))


def attack_and_failure(requests: np.ndarray, errors: np.ndarray, suspect: np.ndarray, suspect_errors: np.ndarray,
                       level: np.ndarray, expected_errors: np.ndarray, usual_share: float, policy: WindowPolicy,
                       seconds: float = 60.0) -> tuple[np.ndarray, np.ndarray]:
    """Per stretch (minute, or ``seconds``): does the suspects' traffic make a real share of it (attack), and
    are its server errors anomalous with (almost) no suspect traffic (a failure the attack does not explain)?
    Only the errors the suspects' own requests did not get count for a failure: the first or last seconds of
    a burst, failing on an overloaded server, are the attack's edge, not our own failure."""
    anomalous = error_anomaly(requests - suspect, errors - suspect_errors, expected_errors, usual_share, policy,
                              seconds)
    suspect_share = np.where(requests > 0, suspect / np.maximum(requests, 1), 0.0)
    floor = policy.min_excess_per_minute * seconds / 60
    attack = (suspect > np.maximum(floor, 0.5 * level)) & (suspect_share > 0.2)
    return np.asarray(attack), np.asarray(anomalous & (suspect_share < 0.05))


def analyse_phases(data: Dataset, tl: Timeline, base: Baseline, comp: Composition, start_index: int,
                   end_index: int, policy: WindowPolicy, margin: int = 5, hostile: pa.Table | None = None) -> Phases:
    """``hostile``: more clients (``client_ip``) whose requests are the incident's and not the site's own traffic
    (sources that scanned or brute-forced it, even when seen before): the errors their requests drew never make
    a failure of the site."""
    lo, hi = max(0, start_index - margin), min(tl.minutes, end_index + margin)
    since, until = tl.minute_at(lo), tl.minute_at(hi)
    sus = suspects(comp).select(["client_ip"])
    if hostile is not None and hostile.num_rows:
        both = pa.concat_tables([sus, hostile.select(["client_ip"]).cast(sus.schema)])
        sus = both.group_by("client_ip").aggregate([])
    suspect_per_minute = suspect_errors = np.zeros(hi - lo)
    if sus.num_rows:
        ips = ibis.memtable(sus.select(["client_ip"]))
        t = in_ranges(data.requests, [(since, until)])
        t = t.filter(t.client_ip.isin(ips.client_ip))
        grouped = data.engine.ibis.to_pyarrow(
            t.group_by(minute=data.engine.time_bucket(t.ts, MINUTE)).aggregate(
                n=t.count(), e=(t.status >= 500).sum()))
        series = aligned(grouped, "minute", since, hi - lo, MINUTE, ["n", "e"])
        suspect_per_minute, suspect_errors = series["n"], series["e"]
    requests = tl.requests[lo:hi]
    errors = tl.status_5xx[lo:hi]
    level = base.level[lo:hi]
    expected_errors = base.errors[lo:hi]
    attack, failure = attack_and_failure(requests, errors, suspect_per_minute, suspect_errors, level,
                                         expected_errors, base.error_share, policy)
    attack_idx = [lo + i for i in np.flatnonzero(attack).tolist()]
    failure_idx = [lo + i for i in np.flatnonzero(failure).tolist()]
    lead = sum(1 for i in failure_idx if attack_idx and i < attack_idx[0])
    outlast = sum(1 for i in failure_idx if attack_idx and i > attack_idx[-1])
    return Phases(lo, requests, errors, suspect_per_minute, tuple(attack_idx), tuple(failure_idx), lead, outlast)


def minute_span(tl: Timeline, indexes: tuple[int, ...]) -> tuple[datetime, datetime] | None:
    if not indexes:
        return None
    return tl.minute_at(indexes[0]), tl.minute_at(indexes[-1]) + timedelta(minutes=1)
