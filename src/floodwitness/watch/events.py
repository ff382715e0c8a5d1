"""The alert records live detection emits (``alert``, ``update``, ``resolved``) and the blocklist they
carry: whole on an incident's first alert and on its resolution, as changes on an update."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from floodwitness.mitigation import BlocklistPolicy, build_blocklist
from floodwitness.verdict import summary_for
from floodwitness.watch.parse import BUCKET

if TYPE_CHECKING:
    from floodwitness.analysis.composition import Composition
    from floodwitness.detectors import Finding
    from floodwitness.watch.incident import Incident


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def alert_record(kind: str, inc: Incident, log_time: int, c: Composition, findings: list[Finding],
                 confidence: float, *, level: float, now_wall: float | None, top_sources: int) -> dict[str, Any]:
    """The event of type ``kind`` for ``inc`` at ``log_time``, without its blocklist: the window so far,
    the verdict (``inc.kind``, ``confidence``) and its signals, the ``top_sources`` heaviest sources.
    ``level``: the baseline's requests per bucket; ``now_wall``: the wall clock in live runs."""
    end = inc.last_flag + 1 if kind == "resolved" else log_time
    seconds = max(end - inc.start, 1)
    top = inc.heavy.top(top_sources)
    known = inc.known_names
    return {
        "type": kind, "incident": f"W{inc.number}", "kind": inc.kind, "confidence": confidence,
        "log_time": iso(log_time),
        "detected_at": iso(now_wall) if now_wall is not None else iso(log_time),
        "window": {"start": iso(inc.start), "end": iso(end), "seconds": seconds,
                   "requests": c.requests, "expected_requests": round(c.expected),
                   "excess_requests": round(c.excess), "errors": int(inc.errors),
                   "peak_rps": inc.peak_rps, "baseline_rps": round(level / BUCKET, 2),
                   "distinct_clients": c.clients, "new_clients": c.new_clients},
        "summary": summary_for(inc.kind, confidence) + f" {c.requests:,} requests in {seconds:,} s against "
                   f"{c.expected:,.0f} expected; {c.clients:,} clients.",
        "signals": [{"id": f.id, "kind": f.kind, "claim": f.claim} for f in findings],
        "top_sources": [{"client_ip": name, "requests": n, "known": name in known} for name, n in top],
    }


def blocklist_fields(kind: str, inc: Incident, entries: list[dict[str, object]], *, full: bool) -> dict[str, Any]:
    """The blocklist as an event carries it: whole on an incident's first alert and on its resolution
    (and on every update with ``full``), and on an update only what changed since the incident's previous
    event (entries are known by their CIDR: an entry added carries its figures then; the resolution's
    whole list has the final ones). Remembers what was sent in ``inc``."""
    cidrs = [str(e["cidr"]) for e in entries]
    out: dict[str, Any]
    if kind == "update" and not full:
        before, now = set(inc.blocklist_sent), set(cidrs)
        out = {"blocklist_since": inc.last_event,
               "blocklist_added": [e for e, cidr in zip(entries, cidrs, strict=True) if cidr not in before],
               "blocklist_removed": [cidr for cidr in inc.blocklist_sent if cidr not in now]}
    else:
        out = {"blocklist": entries}
    out["blocklist_size"] = len(entries)
    inc.blocklist_sent = cidrs
    return out


def live_blocklist(inc: Incident, known: set[str], sources: int | None) -> list[dict[str, object]]:
    """The incident's suspect heavy hitters not in ``known``, among its ``sources`` heaviest (None: among
    all it tracks). Single addresses only: live, the audience is a bit set, so the collateral of a wider
    prefix cannot be measured, and a blocklist must never cover what must not be blocked."""
    candidates = inc.heavy.top(1000)
    if sources is not None:
        candidates = candidates[: max(min(sources, len(candidates)), 1)]
    attackers = {name: n for name, n in candidates if name in inc.suspect_names and name not in known}
    policy = BlocklistPolicy(aggregate_v4=32, aggregate_v6=128)
    return [e.to_dict() for e in build_blocklist(attackers, {}, policy=policy).entries]
