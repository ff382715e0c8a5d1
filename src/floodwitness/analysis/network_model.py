"""The network analysis's results as frozen dataclasses; ``NetworkAnalysis.to_dict()`` is the report's ``network``
section (design21.md) without ``inputs`` (the store's accounting, which the report adds)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


def iso(second: int) -> str:
    return datetime.fromtimestamp(second, tz=UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class FlowSample:
    file: str
    record: int
    sample: str

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "record": self.record, "sample": self.sample}


@dataclass(frozen=True)
class VectorHit:
    """One vector of an episode, with the query that reproduces its counts and sample flows."""

    vector: str
    name: str
    technique: str
    proto: int | None
    port: int | None
    port_side: str | None
    packets: int
    bytes: int
    share: float
    peak_pps: float
    peak_bps: float
    sources: int
    source_role: str  # spoofed | reflectors | sources
    amplification: dict[str, Any] | None
    query: str
    samples: tuple[FlowSample, ...]
    claim: str
    nat_sources: int = 0  # reflectors tied by a translated port (reflection only)

    def to_dict(self) -> dict[str, Any]:
        return {"vector": self.vector, "name": self.name, "proto": self.proto, "port": self.port,
                "port_side": self.port_side, "packets": self.packets, "bytes": self.bytes,
                "share": round(self.share, 4), "peak_pps": round(self.peak_pps), "peak_bps": round(self.peak_bps),
                "sources": self.sources, "source_role": self.source_role, "amplification": self.amplification,
                "evidence": {"query": self.query, "samples": [s.to_dict() for s in self.samples]},
                "claim": self.claim}


@dataclass(frozen=True)
class Spoofing:
    distinct_sources: int
    one_packet_sources_share: float
    bogon_sources: int
    bogon_packets: int
    indicators: tuple[str, ...]

    @property
    def spoofed(self) -> bool:
        return bool(self.indicators)

    def to_dict(self) -> dict[str, Any]:
        return {"distinct_sources": self.distinct_sources,
                "one_packet_sources_share": round(self.one_packet_sources_share, 4),
                "bogon_sources": self.bogon_sources, "bogon_packets": self.bogon_packets,
                "indicators": list(self.indicators)}


@dataclass(frozen=True)
class Episode:
    id: str
    target: str
    target_hosts: int
    carpet_bombing: bool
    start_s: int  # epoch seconds, inclusive
    peak_s: int
    end_s: int    # inclusive
    peak_pps: float
    peak_bps: float
    packets: int
    bytes: int
    baseline_pps: float | None
    baseline_bps: float | None
    vectors: tuple[VectorHit, ...]
    spoofing: Spoofing
    hosts: tuple[str, ...] = field(default=(), repr=False)
    incident: str | None = None

    @property
    def start(self) -> datetime:
        return datetime.fromtimestamp(self.start_s, tz=UTC).replace(tzinfo=None)  # naive UTC, as every window

    @property
    def end(self) -> datetime:
        return datetime.fromtimestamp(self.end_s + 1, tz=UTC).replace(tzinfo=None)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "target": self.target, "target_hosts": self.target_hosts,
                "carpet_bombing": self.carpet_bombing, "start": iso(self.start_s), "peak": iso(self.peak_s),
                "end": iso(self.end_s), "duration_s": self.end_s - self.start_s + 1,
                "peak_pps": round(self.peak_pps), "peak_bps": round(self.peak_bps), "packets": self.packets,
                "bytes": self.bytes, "baseline_pps": _round(self.baseline_pps),
                "baseline_bps": _round(self.baseline_bps), "vectors": [v.to_dict() for v in self.vectors],
                "spoofing": self.spoofing.to_dict(), "incident": self.incident}


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


@dataclass(frozen=True)
class Series:
    step_seconds: int
    start_s: int
    packets: tuple[float, ...]
    bits: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"step_seconds": self.step_seconds, "start": iso(self.start_s),
                "t": [iso(self.start_s + i * self.step_seconds) for i in range(len(self.packets))],
                "packets": [round(p, 3) for p in self.packets], "bits": [round(b) for b in self.bits]}


@dataclass(frozen=True)
class Victims:
    given: tuple[str, ...] | None
    watched: tuple[str, ...]
    how: str

    def to_dict(self) -> dict[str, Any]:
        return {"given": list(self.given) if self.given is not None else None, "watched": list(self.watched),
                "how": self.how}


@dataclass(frozen=True)
class NetworkAnalysis:
    victims: Victims
    episodes: tuple[Episode, ...]
    series: Series
    flows: int  # parsed flows read
    span: tuple[int, int] | None  # first and last second of the flows

    def to_dict(self) -> dict[str, Any]:
        return {"victims": self.victims.to_dict(), "episodes": [e.to_dict() for e in self.episodes],
                "series": self.series.to_dict()}


@dataclass
class TargetSeries:
    """One target's dense per-second series from ``origin`` (epoch second): all its traffic and each vector's."""

    target: str
    hosts: tuple[str, ...]
    total_p: np.ndarray
    total_b: np.ndarray
    by_vector: dict[str, tuple[np.ndarray, np.ndarray]]
