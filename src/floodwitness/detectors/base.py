"""Findings, evidence and the detector registry."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime

    from floodwitness.analysis.composition import Composition
    from floodwitness.analysis.dataset import Dataset
    from floodwitness.analysis.timeline import Timeline
    from floodwitness.analysis.windows import Baseline


@dataclass(frozen=True)
class FindingKind:
    description: str
    severity: str  # info | low | medium | high
    technique: str | None = None  # MITRE ATT&CK: T1498 network DoS, T1499 endpoint DoS


FINDING_KINDS: dict[str, FindingKind] = {
    "traffic_surge": FindingKind("Requests far above the baseline", "medium", "T1499"),
    "server_errors": FindingKind("Server errors (5xx) far above the baseline", "high"),
    "errors_without_surge": FindingKind("Server errors rose while traffic was normal: the failure is inside", "high"),
    "new_networks": FindingKind("The excess came from networks the site's audience never used", "high", "T1498"),
    "known_clients_surge": FindingKind("The excess came from the site's own known clients (retries)", "medium"),
    "familiar_crowd": FindingKind("The excess came from the audience's usual networks, behaving like people", "info"),
    "bot_behaviour": FindingKind("New clients did not behave like browsers (no assets, fixed or random URLs)",
                                 "high", "T1499.002"),
    "cache_busting": FindingKind("Random query strings that defeat caches", "high", "T1499.002"),
    "concentrated_sources": FindingKind("A handful of sources made most of the excess", "high", "T1499.002"),
    "tool_fingerprint": FindingKind("Requests match a known attack tool or botnet", "high", "T1499.002"),
    "audience_shift": FindingKind("Where the incident's sources sit against the site's usual audience: new "
                                  "networks, ASes and countries, and how concentrated the traffic is", "info"),
    "legitimate_impact": FindingKind("Known clients received errors during the incident", "high"),
}


@dataclass(frozen=True)
class Evidence:
    """Where a number comes from: sample lines (file:line) and the query that reproduces it."""

    query: str
    file: str | None = None
    line: int | None = None
    sample: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "sample": self.sample, "query": self.query}


@dataclass(frozen=True)
class Finding:
    id: str
    kind: str
    claim: str
    window: tuple[datetime, datetime]
    metrics: Mapping[str, Any]
    confidence: float
    evidence: tuple[Evidence, ...] = ()
    severity: str = ""

    def __post_init__(self) -> None:
        if self.kind not in FINDING_KINDS:
            raise ValueError(f"unknown finding kind {self.kind!r}")
        if not self.severity:
            object.__setattr__(self, "severity", FINDING_KINDS[self.kind].severity)

    @property
    def technique(self) -> str | None:
        return FINDING_KINDS[self.kind].technique


@dataclass
class Context:
    """What detectors read: the dataset, the series, the baseline and one incident's composition."""

    data: Dataset
    timeline: Timeline
    baseline: Baseline
    window: tuple[datetime, datetime]
    volume_minutes: tuple[int, ...]
    error_minutes: tuple[int, ...]
    composition: Composition
    incident: int  # index of the incident (0 = main)
    phases: Any = None  # set by the phase analysis (attack vs failure minutes)
    extras: dict[str, Any] = field(default_factory=dict)


Detector = Callable[[Context], list[Finding]]
DETECTORS: dict[str, Detector] = {}


def detector(fn: Detector) -> Detector:
    DETECTORS[fn.__name__] = fn
    return fn
