"""The live verdict's inputs: an incident's composition, as ``analyze`` defines it, from the live sums
and sketches, and the findings whose conditions (the detectors' own, from
:mod:`floodwitness.detectors.rules`) hold on it, stated with the live numbers."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from floodwitness.analysis.composition import Behaviour, Composition, concentration, excess_share
from floodwitness.detectors import Finding
from floodwitness.detectors.rules import (
    bot_behaviour_holds,
    cache_busting_holds,
    concentrated_sources_hold,
    familiar_crowd_holds,
    known_clients_hold,
    new_networks_hold,
)
from floodwitness.watch.parse import BUCKET

if TYPE_CHECKING:
    from floodwitness.watch.buckets import BucketStats
    from floodwitness.watch.incident import Incident
    from floodwitness.watch.sketch import Registers


def live_composition(inc: Incident, s: BucketStats, regs: Registers, new_regs: Registers,
                     heavy_items: list[tuple[str, int]], history: dict[str, np.ndarray], share: float) -> Composition:
    """The composition of ``inc`` from its sums ``s``, distinct clients ``regs`` and new clients
    ``new_regs``, heavy hitters (heaviest first), the baseline's ``history`` rows and its error ``share``."""
    h = {k: float(v.sum()) for k, v in history.items()}
    base_req = max(h["requests"], 1.0)
    churn = h["new"] / base_req
    net_churn = h["new_network"] / base_req
    requests = max(inc.requests, s.requests)
    excess = max(requests - inc.expected, 0.0)
    known_requests = max(s.requests - s.new, 0.0)
    heavy = np.array([c for _, c in heavy_items], dtype=float)
    top10, sources_80 = concentration(heavy, excess) if len(heavy) else (0.0, 0)
    if excess > 0 and heavy.sum() < 0.8 * excess:  # the heavy hitters alone do not reach 80%
        sources_80 = max(sources_80, int(regs.estimate()))
    new_b = Behaviour(requests=int(s.new), asset_share=s.new_assets / max(s.new, 1),
                      referer_share=s.new_referers / max(s.new, 1), query_share=s.new_queries / max(s.new, 1),
                      unique_query_share=s.new_distinct_queries / max(s.new_queries, 1),
                      error_share=0.0, top_path=None, top_path_share=0.0)
    base_b = Behaviour(requests=int(base_req), asset_share=h["assets"] / base_req,
                       referer_share=h["referers"] / base_req, query_share=0.0,
                       unique_query_share=0.0, error_share=share, top_path=None, top_path_share=0.0)
    when = (datetime.fromtimestamp(inc.start, UTC), datetime.fromtimestamp(inc.last_flag + 1, UTC))
    # both estimates from the same buckets; the new clients are a subset, so never counted above the rest
    # (the two estimates could cross only where HyperLogLog switches to linear counting)
    clients = int(regs.estimate())
    new_clients = min(int(new_regs.estimate()), clients)
    return Composition(
        start=when[0], end=when[1], requests=int(requests), expected=inc.expected, excess=excess,
        clients=clients, new_clients=new_clients, new_requests=int(s.new),
        new_network_requests=int(s.new_network), known_requests=int(known_requests), churn_share=churn,
        network_churn_share=net_churn,
        new_excess_share=excess_share(s.new - churn * inc.expected, excess),
        new_network_excess_share=excess_share(s.new_network - net_churn * inc.expected, excess),
        known_excess_share=excess_share(known_requests - (1 - churn) * inc.expected, excess),
        top10_excess_share=excess_share(top10, excess), sources_for_80pct=sources_80, new_behaviour=new_b,
        baseline_behaviour=base_b,
        known_clients_active=0, known_clients_with_errors=0, clients_table=pa.table({}))


def live_findings(inc: Incident, c: Composition) -> list[Finding]:
    """The findings whose conditions hold, stated with the live numbers (no evidence queries live)."""
    fid = f"W{inc.number}"
    window = (c.start, c.end)
    out: list[Finding] = []

    def add(kind: str, name: str, claim: str, metrics: dict[str, Any]) -> None:
        out.append(Finding(f"{fid}-{name}", kind, claim, window, metrics, confidence=0.7))

    if inc.volume_seconds:
        add("traffic_surge", "surge", f"{c.requests:,} requests, {c.excess:,.0f} above the baseline",
            {"requests": c.requests, "expected": round(c.expected), "excess": round(c.excess)})
    if new_networks_hold(c):
        add("new_networks", "newnets", f"{c.new_network_excess_share:.0%} of the excess from networks the "
            "audience never used", {"new_network_excess_share": round(c.new_network_excess_share, 3)})
    if bot_behaviour_holds(c):
        add("bot_behaviour", "bots", f"new clients requested {c.new_behaviour.asset_share:.0%} assets "
            f"(baseline {c.baseline_behaviour.asset_share:.0%})",
            {"asset_share": round(c.new_behaviour.asset_share, 3)})
        if cache_busting_holds(c):
            add("cache_busting", "cachebust", f"{c.new_behaviour.query_share:.0%} of the new clients' "
                "requests carried a query string, nearly all unique", {})
    if concentrated_sources_hold(c):
        add("concentrated_sources", "few", f"{c.sources_for_80pct} source(s) made 80% of the excess",
            {"sources_for_80pct": c.sources_for_80pct, "top10_excess_share": round(c.top10_excess_share, 3)})
    if familiar_crowd_holds(c):
        add("familiar_crowd", "crowd", "the new clients came from the audience's usual networks and loaded "
            "assets like people", {"asset_share": round(c.new_behaviour.asset_share, 3)})
    if known_clients_hold(c):
        add("known_clients_surge", "known", f"{c.known_excess_share:.0%} of the excess came from known clients",
            {"known_excess_share": round(c.known_excess_share, 3)})
    if inc.failure_buckets:
        minutes = math.ceil(inc.failure_buckets * BUCKET / 60)
        add("errors_without_surge", "inside", f"server errors stood out in {inc.failure_buckets * BUCKET} s "
            "without attack traffic", {"failure_minutes": minutes,
                                       "attack_minutes": math.ceil(inc.attack_buckets * BUCKET / 60)})
    return out
