"""Findings, evidence and the detector registry."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, overload

if TYPE_CHECKING:
    from datetime import datetime

    import pyarrow as pa

    from floodwitness.analysis.audience import Audience
    from floodwitness.analysis.composition import Composition
    from floodwitness.analysis.dataset import Dataset
    from floodwitness.analysis.phases import Phases
    from floodwitness.analysis.timeline import Timeline
    from floodwitness.analysis.windows import Baseline
    from floodwitness.detectors.behaviour import RuleScan
    from floodwitness.detectors.fingerprints import Rule


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
    "inhuman_rate": FindingKind("Clients sent requests at a rate no person browsing reaches", "high", "T1499.002"),
}

#: a client that sends this many requests in one minute (5 a second, sustained) is no person browsing: a page
#: with its assets is a burst of tens of requests, then reading (shown where there is no history to compare with)
INHUMAN_PER_MINUTE = 300


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
    phases: Phases | None = None  # attack vs failure minutes (None without history)
    #: whether a usable baseline exists: without one, there are no known clients, no expected level, no excess
    has_history: bool = True
    #: the clients of the window at :data:`INHUMAN_PER_MINUTE` or more in a minute (``busiest_minutes``), when
    #: the analysis already counted them
    inhuman: pa.Table | None = None
    #: the baseline's time ranges (what "known" and "usual" were measured on)
    baseline_ranges: list[tuple[datetime, datetime]] = field(default_factory=list)
    audience: Audience | None = None  # the audience model of the incident's sources
    rules: tuple[Rule, ...] | None = None  # the fingerprint rules (None: the bundled ones)
    rules_scan: RuleScan | None = None  # their scan of the window, when the composition's pass made it
    #: sample lines of the heaviest suspects, looked up once per incident (several findings cite them)
    suspect_samples: tuple[Evidence, ...] | None = field(default=None, repr=False)


Detector = Callable[[Context], list[Finding]]
DETECTORS: dict[str, Detector] = {}
#: what each detector needs of the history (the baseline): "needs" (it compares with the baseline's level or
#: audience: silent without a usable one), "without" (it judges the traffic by itself and runs only when there is
#: no usable history, where the comparisons cannot speak), "any" (it runs either way, and says which it had)
HISTORY: dict[str, str] = {}


@overload
def detector(fn: Detector, *, history: str = ...) -> Detector: ...
@overload
def detector(fn: None = None, *, history: str = ...) -> Callable[[Detector], Detector]: ...
def detector(fn: Detector | None = None, *, history: str = "any") -> Detector | Callable[[Detector], Detector]:
    """Register a detector under its function's name; ``history``: see :data:`HISTORY`."""
    if history not in ("needs", "without", "any"):
        raise ValueError(f"unknown history requirement {history!r}")

    def register(f: Detector) -> Detector:
        DETECTORS[f.__name__] = f
        HISTORY[f.__name__] = history
        return f
    return register(fn) if fn is not None else register


def detectors_for(has_history: bool) -> list[Detector]:
    """The detectors to run on an incident, in registration order, given whether a usable history exists."""
    wanted = ("needs", "any") if has_history else ("without", "any")
    return [fn for name, fn in DETECTORS.items() if HISTORY[name] in wanted]
