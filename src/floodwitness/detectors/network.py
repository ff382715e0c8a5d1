"""Network-level findings (issue #21): the episodes of the flow analysis that overlap an incident's window, as
findings with evidence (the query that reproduces each count, sample flows as file:record)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from floodwitness.detectors.base import Evidence, Finding, detector

if TYPE_CHECKING:
    from floodwitness.analysis.network_model import Episode, NetworkAnalysis, VectorHit
    from floodwitness.detectors.base import Context


def _evidence(hit: VectorHit) -> tuple[Evidence, ...]:
    if not hit.samples:
        return (Evidence(hit.query),)
    return tuple(Evidence(hit.query, s.file, s.record, s.sample) for s in hit.samples)


def _kind(hit: VectorHit) -> str:
    return "reflection_amplification" if hit.source_role == "reflectors" else "network_flood"


def _episode_findings(e: Episode, window: tuple[datetime, datetime], prefix: str) -> list[Finding]:
    span = (e.start, e.end)
    out = [Finding(f"{prefix}-{e.id}-{hit.vector}", _kind(hit), hit.claim, span,
                   {"episode": e.id, "target": e.target, "vector": hit.vector, "packets": hit.packets,
                    "bytes": hit.bytes, "share": hit.share, "peak_pps": hit.peak_pps, "peak_bps": hit.peak_bps,
                    "sources": hit.sources, "source_role": hit.source_role, "port": hit.port,
                    "port_side": hit.port_side},
                   0.9 if hit.share >= 0.5 or hit.source_role == "reflectors" else 0.7, _evidence(hit))
           for hit in e.vectors]
    if e.carpet_bombing and e.vectors:
        out.append(Finding(f"{prefix}-{e.id}-carpet", "carpet_bombing",
                           f"Carpet bombing: {e.target_hosts} hosts of {e.target} were hit together "
                           f"({', '.join(v.vector for v in e.vectors)}), {e.packets:,} packets, peak "
                           f"{e.peak_pps:,.0f} pps", span,
                           {"episode": e.id, "target": e.target, "hosts": e.target_hosts, "packets": e.packets},
                           0.8, _evidence(e.vectors[0])))
    if e.spoofing.spoofed and e.vectors:
        out.append(Finding(f"{prefix}-{e.id}-spoofed", "spoofed_sources",
                           f"Spoofed sources toward {e.target}: " + "; ".join(e.spoofing.indicators), span,
                           {"episode": e.id, **e.spoofing.to_dict()}, 0.8, _evidence(e.vectors[0])))
    return out


def network_findings(analysis: NetworkAnalysis, window: tuple[datetime, datetime],
                     incident_index: int) -> list[Finding]:
    """The findings of the episodes overlapping ``window``; none overlapping while the flows cover the window:
    one ``network_quiet`` (the network was quiet: the cause points inside). Flows that do not cover the window
    say nothing."""
    prefix = f"I{incident_index + 1}-net"
    window = (_naive(window[0]), _naive(window[1]))
    overlapping = [e for e in analysis.episodes if e.start < window[1] and e.end > window[0]]
    out = [f for e in overlapping for f in _episode_findings(e, window, prefix)]
    if out or analysis.span is None:
        return out
    first, last = analysis.span
    if first <= _epoch(window[0]) and last + 1 >= _epoch(window[1]):
        watched = ", ".join(analysis.victims.watched) or "no destination"
        return [Finding(f"{prefix}-quiet", "network_quiet",
                        f"The network was quiet during the incident: {analysis.flows:,} flows cover the window and "
                        f"no flood or reflection vector reached {watched}; the cause points inside", window,
                        {"flows": analysis.flows, "episodes": 0}, 0.6,
                        (Evidence("SELECT count(*) FROM flows WHERE reject_reason IS NULL"),))]
    return []


def _naive(t: datetime) -> datetime:
    """``t`` as the naive UTC time every window of the analysis is."""
    return t if t.tzinfo is None else t.astimezone(UTC).replace(tzinfo=None)


def _epoch(t: datetime) -> float:
    return t.replace(tzinfo=UTC).timestamp()


@detector
def network_evidence(ctx: Context) -> list[Finding]:
    """Findings from the flows given beside the logs (none without flows)."""
    if ctx.network is None:
        return []
    return network_findings(ctx.network, ctx.window, ctx.incident)
