"""Network episodes across re-detections, and the ``network_alert`` records they raise.

Each detection over the rolling window gives episodes numbered afresh; an episode keeps ONE id here (``F1``, ...)
while it is re-detected: matched by target and overlapping time (its run extended by the quiet gap). Events:
``open`` when an episode first appears, ``update`` when a vector joins or its peak grows by ``peak_change``
(rate-limited to one per ``update_seconds`` of flow time), ``close`` once no traffic of its vectors has reached
the target for ``quiet_seconds`` (the detection's own merge gap), or when the input ends (replay).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from floodwitness.watch.events import iso

if TYPE_CHECKING:
    from floodwitness.analysis.network import Episode, NetworkAnalysis

#: most episodes followed at once (the oldest open one is closed, said so, beyond)
MAX_OPEN = 1000


@dataclass
class Tracked:
    number: int
    target: str
    start_s: int
    end_s: int
    episode: Episode
    vectors: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> the vector as last reported
    peak_pps: float = 0.0
    peak_bps: float = 0.0
    peak_s: int = 0
    reported_peak: float = 0.0
    last_event: int = 0  # flow time of its last event

    @property
    def ident(self) -> str:
        return f"F{self.number}"


def _vector(v: Any) -> dict[str, Any]:
    d: dict[str, Any] = v.to_dict()
    d["evidence"] = {"query": d["evidence"]["query"], "samples": d["evidence"]["samples"][:3]}
    return d


class EpisodeTracker:
    def __init__(self, *, quiet_seconds: int, update_seconds: int = 30, peak_change: float = 0.5,
                 window_seconds: int = 600) -> None:
        self.quiet = quiet_seconds
        self.update_seconds = update_seconds
        self.peak_change = peak_change
        self.window_seconds = window_seconds
        self.open: list[Tracked] = []
        #: closed episodes, (target, start, end), kept while their traffic is still in the window: a detection
        #: over the window finds them again and must not open them anew
        self.closed: list[tuple[str, int, int]] = []
        self.count = 0

    def _match(self, e: Episode) -> Tracked | None:
        for t in self.open:
            if t.target == e.target and e.start_s <= t.end_s + self.quiet and e.end_s >= t.start_s - self.quiet:
                return t
        return None

    def observe(self, analysis: NetworkAnalysis, clock: int, now_wall: float | None) -> list[dict[str, Any]]:
        """Events for the episodes of one detection over the window at flow time ``clock``."""
        events: list[dict[str, Any]] = []
        self.closed = [c for c in self.closed if clock - c[2] <= self.window_seconds][-MAX_OPEN:]
        for e in analysis.episodes:
            if any(c[0] == e.target and e.end_s <= c[2] for c in self.closed):
                continue  # an episode already closed, still in the window
            t = self._match(e)
            if t is None:
                self.count += 1
                t = Tracked(self.count, e.target, e.start_s, e.end_s, e)
                self._merge(t, e)
                self.open.append(t)
                events.append(self._event("open", t, clock, now_wall))
                if len(self.open) > MAX_OPEN:
                    events.append(self._event("close", self.open.pop(0), clock, now_wall,
                                              reason=f"more than {MAX_OPEN} episodes open: the oldest let go"))
                continue
            grew = self._merge(t, e)
            if grew and clock - t.last_event >= self.update_seconds:
                events.append(self._event("update", t, clock, now_wall))
        return events + self.close_quiet(clock, now_wall)

    def _merge(self, t: Tracked, e: Episode) -> bool:
        """Fold a re-detection into ``t``; whether it changed materially (a new vector, a much higher peak)."""
        t.start_s, t.end_s, t.episode = min(t.start_s, e.start_s), max(t.end_s, e.end_s), e
        new = [v for v in e.vectors if v.vector not in t.vectors]
        for v in e.vectors:
            t.vectors[v.vector] = _vector(v)
        if e.peak_pps > t.peak_pps:
            t.peak_pps, t.peak_bps, t.peak_s = e.peak_pps, e.peak_bps, e.peak_s
        return bool(new) or t.peak_pps >= (1 + self.peak_change) * max(t.reported_peak, 1.0)

    def close_quiet(self, clock: int, now_wall: float | None) -> list[dict[str, Any]]:
        done = [t for t in self.open if clock - t.end_s > self.quiet]
        self.open = [t for t in self.open if t not in done]
        self.closed += [(t.target, t.start_s, t.end_s) for t in done]
        return [self._event("close", t, clock, now_wall, reason=f"no traffic of its vectors for {self.quiet} s")
                for t in done]

    def close_all(self, clock: int, now_wall: float | None, reason: str) -> list[dict[str, Any]]:
        done, self.open = self.open, []
        return [self._event("close", t, clock, now_wall, reason=reason) for t in done]

    def _event(self, kind: str, t: Tracked, clock: int, now_wall: float | None,
               reason: str | None = None) -> dict[str, Any]:
        t.last_event, t.reported_peak = clock, t.peak_pps
        e = t.episode
        vectors = sorted(t.vectors.values(), key=lambda v: -int(v["packets"]))
        main = vectors[0] if vectors else {}
        roles = sorted({str(v["source_role"]) for v in vectors})
        out: dict[str, Any] = {
            "type": "network_alert", "event": kind, "episode": t.ident, "target": t.target,
            "target_hosts": e.target_hosts, "carpet_bombing": e.carpet_bombing,
            "vectors": vectors, "start": iso(t.start_s), "peak": iso(t.peak_s), "end": iso(t.end_s),
            "peak_pps": round(t.peak_pps), "peak_bps": round(t.peak_bps),
            "packets_in_window": e.packets, "bytes_in_window": e.bytes,
            "sources": int(main.get("sources", 0)),
            "source_role": roles[0] if len(roles) == 1 else "mixed",
            "spoofing": e.spoofing.to_dict(), "window_seconds": self.window_seconds,
            "log_time": iso(clock), "detected_at": iso(now_wall) if now_wall is not None else iso(clock),
            "delay_s": clock - t.start_s,
        }
        if now_wall is not None:
            out["latency_s"] = round(now_wall - t.start_s, 3)
        if reason is not None:
            out["reason"] = reason
        if any(r == "reflectors" for r in roles):
            out["note"] = ("reflectors are misused servers answering requests sent with the target's address "
                           "forged: they are not the attacker")
        return out
