"""What the analysis hands the report: its options, and each incident's result."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from floodwitness.analysis.collapse import CollapsePolicy
from floodwitness.analysis.history import HistoryPolicy
from floodwitness.analysis.impact import ImpactPolicy
from floodwitness.analysis.phases import suspects
from floodwitness.analysis.windows import WindowPolicy
from floodwitness.detectors.base import DetectorPolicy
from floodwitness.errors import UsageError
from floodwitness.mitigation import BlocklistPolicy

if TYPE_CHECKING:
    import pyarrow as pa

    from floodwitness.analysis.audience import Audience
    from floodwitness.analysis.composition import Composition
    from floodwitness.analysis.history import History
    from floodwitness.analysis.impact import Impact
    from floodwitness.analysis.outage import Outage
    from floodwitness.analysis.phases import Phases
    from floodwitness.analysis.windows import Window
    from floodwitness.detectors import Finding
    from floodwitness.detectors.behaviour import RuleFlags
    from floodwitness.verdict import IncidentVerdict


@dataclass(frozen=True)
class AnalyzeOptions:
    since: datetime | None = None
    until: datetime | None = None
    baseline: tuple[datetime, datetime] | None = None
    policy: WindowPolicy = field(default_factory=WindowPolicy)
    detectors: DetectorPolicy = field(default_factory=DetectorPolicy)  # the detectors' thresholds
    history: HistoryPolicy = field(default_factory=HistoryPolicy)
    impact: ImpactPolicy = field(default_factory=ImpactPolicy)  # how far from the usual counts as impact
    collapse: CollapsePolicy = field(default_factory=CollapsePolicy)  # what makes a fall of traffic an outage
    blocklist_policy: BlocklistPolicy = field(default_factory=BlocklistPolicy)
    max_incidents: int = 5
    #: Propose rate limits and replay the incident through them (attacks only). Off by default: the replay
    #: costs more than the rest of the analysis on big logs; `mitigate` turns it on.
    rate_limits: bool = False
    geoip: str | None = None         # a country .mmdb (else the bundled database)
    asn: str | None = None           # an ASN .mmdb (else the bundled database, AS names only)
    enrich: bool = True              # AS and country levels of the audience model
    fingerprints: tuple[str, ...] = ()  # rule files added to the bundled fingerprints
    #: the addresses or prefixes the flows are watched for (``--victim``); empty: chosen from the flows (#21)
    victims: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise UsageError("--since is not before --until: the time window is empty",
                             hint="Give --since an earlier time than --until (ISO 8601; UTC if no offset).")


@dataclass
class IncidentResult:
    index: int  # detection order: findings of this incident have ids "I{index + 1}-..."
    window: Window
    times: tuple[datetime, datetime]
    composition: Composition
    phases: Phases
    findings: list[Finding]
    verdict: IncidentVerdict
    peak: datetime         # start of the busiest minute
    peak_second: datetime  # the busiest second
    peak_rps: float        # requests in the busiest second
    baseline_rps: float
    audience: Audience | None = None
    flags: list[RuleFlags] = field(default_factory=list)  # sources flagged by a fingerprint rule in the window
    #: without history, the suspects are the sources the traffic itself condemns (a fingerprint rule, a rate no
    #: person reaches), not every "new" client: rows of the composition's clients (None: :func:`suspects` of it)
    suspects: pa.Table | None = None
    #: what the incident did to the people the site normally serves (None only for a result made without it)
    impact: Impact | None = None
    #: the period of the timeline it lies in (logs of periods weeks apart: each analysed against its own baseline)
    #: and that period's first minute on the whole timeline: ``window`` and ``phases`` count minutes on the
    #: period's own timeline, so ``offset + window.start_index`` is the window's minute on the whole one
    period: int = 0
    offset: int = 0
    #: the sources that scanned, brute-forced or scraped (``client_ip``, ``requests``, ``behaviour``): an abuse
    #: verdict's attackers
    abusers: pa.Table | None = None
    #: the collapse of traffic this incident ended in (an outage: the site stopped answering), if any
    outage: Outage | None = None

    @property
    def has_history(self) -> bool:
        return self.suspects is None

    def suspected(self) -> pa.Table:
        return suspects(self.composition) if self.suspects is None else self.suspects

    @property
    def weight(self) -> float:
        missing = self.outage.missing if self.outage is not None else 0.0
        return self.composition.excess + 10 * float(self.phases.errors.sum()) + missing

    @property
    def rank(self) -> tuple[bool, float]:
        """Its place in the report: heaviest first, the windows found ordinary (``no_incident``) after every
        incident, so the main incident is the heaviest that was one."""
        return self.verdict.kind == "no_incident", -self.weight


@dataclass(frozen=True)
class PeriodResult:
    """One period's analysis, for the report: where it lies on the whole timeline, the history its incidents
    were compared with, and its incident windows (all, analysed in depth or not)."""

    first: int  # its first minute on the whole timeline
    end: int    # its end (excluded)
    start: datetime
    until: datetime
    history: History
    windows: int

    def to_dict(self) -> dict[str, object]:
        return {"start": iso(self.start), "end": iso(self.until), "windows": self.windows} | self.history.to_dict()


def iso(value: datetime) -> str:
    """A naive UTC time as RFC 3339 with ``Z``."""
    return value.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")
