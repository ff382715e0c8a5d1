"""The live verdict's inputs: an incident's composition, as ``analyze`` defines it, from the live sums
and sketches, and the findings whose conditions (the detectors' own, from
:mod:`floodwitness.detectors.rules`) hold on it, stated with the live numbers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from floodwitness.analysis.composition import Behaviour, Composition, concentration, excess_share
from floodwitness.detectors import Finding
from floodwitness.detectors.base import DEFAULT_POLICY, LIVE, LiveState
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
    """The findings whose conditions hold, stated with the live numbers (no evidence queries live): each finding
    kind's live evaluation from its registry entry (``detectors.base.LIVE``), in its order."""
    state = LiveState(inc.volume_seconds, inc.attack_buckets * BUCKET, inc.failure_buckets * BUCKET)
    out: list[Finding] = []
    for kind, (name, evaluate) in LIVE.items():
        said = evaluate(c, state, DEFAULT_POLICY)
        if said is not None:
            out.append(Finding(f"W{inc.number}-{name}", kind, said[0], (c.start, c.end), said[1], confidence=0.7))
    return out
