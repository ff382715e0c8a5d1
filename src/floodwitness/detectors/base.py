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
    from floodwitness.analysis.network_model import NetworkAnalysis
    from floodwitness.analysis.phases import Phases
    from floodwitness.analysis.timeline import Timeline
    from floodwitness.analysis.windows import Baseline
    from floodwitness.detectors.abuse_scan import AbuseScan
    from floodwitness.detectors.behaviour import RuleScan
    from floodwitness.detectors.fingerprints import Rule


@dataclass(frozen=True)
class Grade:
    """A verdict weight graded by a measure of the incident: ``high`` points when the measure is at least
    ``at_least``, else ``low``. The measures are the ones :func:`floodwitness.verdict.judge_incident` is given:
    ``new_network_share`` and ``known_share`` (of the excess), ``surge`` (1 when the traffic surged, else 0)."""

    measure: str
    at_least: float
    high: float
    low: float


#: a finding's weight on one hypothesis: fixed points, or points graded by a measure
Weight = float | Grade


@dataclass(frozen=True)
class FindingKind:
    """A finding kind's one home: what it says, how grave it is, the report section it belongs to, whether it
    names an attack vector (``targets.vectors``), and how the verdict weighs it. Renderers read
    ``findings[].section`` from the report.

    ``weights``: the points a finding of this kind adds to each hypothesis of the verdict (the names of
    ``floodwitness.verdict.HYPOTHESES``: ``attack``, the evidence the flood kinds share; ``flash_crowd``;
    ``internal_failure``; ``abuse``, the hostile behaviours that are not floods; ``no_incident``, what stood out
    was ordinary: weighed only when a finding speaks for it), each cited with the finding.
    ``counts_when``: (metric, least value) of the finding for it to count at all. ``behaviour``: the hostile
    behaviour it names (``scan``, ``brute_force``, ``scrape``), for the incident's ``behaviour`` and the ``abuse``
    verdict."""

    description: str
    severity: str  # info | low | medium | high
    technique: str | None = None  # MITRE ATT&CK: T1498 network DoS, T1499 endpoint DoS, T1595 scanning, T1110
    section: str = "traffic"  # one of SECTIONS
    vector: bool = False      # its claim describes how the attack was made
    weights: Mapping[str, Weight] = field(default_factory=dict)
    counts_when: tuple[str, float] | None = None
    behaviour: str | None = None


#: the report's sections that group findings: the traffic itself, who attacked and how, the audience, the impact
SECTIONS = ("traffic", "clusters", "audience", "impact")


@dataclass(frozen=True)
class DetectorPolicy:
    """The detectors' thresholds (shares of an incident's excess, unless said otherwise). A config file may set any
    of them; batch analysis and ``watch`` read the same ones."""

    #: new_networks: this share of the excess from networks the audience never used
    new_network_share: float = 0.25
    #: known_clients_surge: this share of the excess from clients seen in the baseline
    known_share: float = 0.4
    #: familiar_crowd: new clients made this share of the excess, at most ``crowd_new_network_share`` of it from new
    #: networks, and loaded assets at ``crowd_asset_ratio`` of the audience's rate or more
    crowd_new_share: float = 0.4
    crowd_new_network_share: float = 0.4
    crowd_asset_ratio: float = 0.6
    #: bot_behaviour: new clients sent this share of the excess, loading assets at under ``bot_asset_ratio`` of the
    #: audience's rate (never counted below ``bot_asset_floor``)
    bot_request_share: float = 0.2
    bot_asset_ratio: float = 0.3
    bot_asset_floor: float = 0.05
    #: cache_busting: this share of the new clients' requests with a query string, this share of those unique
    query_share: float = 0.5
    unique_query_share: float = 0.8
    #: concentrated_sources: at most this many sources made 80% of the excess, or the top 10 this share of it
    few_sources: int = 10
    top10_share: float = 0.8
    #: server_errors: the window's 5xx share this far above the baseline's, and at least this many errors
    error_share_delta: float = 0.02
    min_errors: int = 10
    #: tool_fingerprint: a rule's matches count from this many requests and this share of the window's
    tool_min_requests: int = 20
    tool_min_share: float = 0.02
    #: inhuman_rate (without history): a client at this many requests in one minute (5 a second, sustained) is no
    #: person browsing: a page with its assets is a burst of tens of requests, then reading
    inhuman_per_minute: int = 300
    #: scan_behaviour, brute_force, scraping: stated when the sources showing the behaviour (data/behaviours.json)
    #: sent this many requests and this share of the window's
    abuse_min_requests: int = 20
    abuse_min_share: float = 0.05


#: Every finding kind. The order is the one the verdict weighs them in (and cites its reasons in).
FINDING_KINDS: dict[str, FindingKind] = {
    "new_networks": FindingKind(
        "The excess came from networks the site's audience never used", "high", "T1498", section="clusters",
        weights={"attack": Grade("new_network_share", 0.5, 2.0, 1.0),
                 "flash_crowd": Grade("new_network_share", 0.5, -2.0, -0.5), "internal_failure": -2.0}),
    "bot_behaviour": FindingKind("New clients did not behave like browsers (no assets, fixed or random URLs)",
                                 "high", "T1499.002", section="clusters", vector=True,
                                 weights={"attack": 2.0, "flash_crowd": -2.0}),
    "cache_busting": FindingKind("Random query strings that defeat caches", "high", "T1499.002", section="clusters",
                                 vector=True, weights={"attack": 1.0}),
    "tool_fingerprint": FindingKind("Requests match a known attack tool or botnet", "high", "T1499.002",
                                    section="clusters", vector=True, weights={"attack": 2.0, "flash_crowd": -1.0},
                                    counts_when=("share", 0.1)),
    "concentrated_sources": FindingKind("A handful of sources made most of the excess", "high", "T1499.002",
                                        section="clusters", vector=True,
                                        weights={"attack": 1.0, "flash_crowd": -1.0}),
    # weighed by the verdict itself (verdict._weigh_audience): two graded levels, and only with a surge
    "audience_shift": FindingKind("Where the incident's sources sit against the site's usual audience: new "
                                  "networks, ASes and countries, and how concentrated the traffic is", "info",
                                  section="audience"),
    "familiar_crowd": FindingKind("The excess came from the audience's usual networks, behaving like people", "info",
                                  section="audience", weights={"flash_crowd": 3.0, "attack": -2.0}),
    "known_clients_surge": FindingKind(
        "The excess came from the site's own known clients (retries)", "medium", section="impact",
        weights={"internal_failure": Grade("known_share", 0.6, 2.0, 1.0),
                 "attack": Grade("known_share", 0.6, -2.0, -1.0), "flash_crowd": -1.0}),
    "errors_without_surge": FindingKind(
        "Server errors rose while traffic was normal: the failure is inside", "high", section="impact",
        weights={"internal_failure": Grade("surge", 1.0, 2.0, 3.0), "flash_crowd": -1.0}),
    "traffic_surge": FindingKind("Requests far above the baseline", "medium", "T1499",
                                 weights={"flash_crowd": 0.5, "attack": 0.5}),
    "scan_behaviour": FindingKind(
        "Sources scanned the site: scanner tools, probes for sensitive files, admin panels or exploits, mostly "
        "answered 4xx", "medium", "T1595", section="clusters", behaviour="scan",
        weights={"abuse": 3.0, "internal_failure": -3.0, "flash_crowd": -2.0}),
    "brute_force": FindingKind(
        "Sources repeated requests to a login or authentication endpoint: password guessing", "high", "T1110",
        section="clusters", behaviour="brute_force",
        weights={"abuse": 3.0, "internal_failure": -3.0, "flash_crowd": -2.0}),
    "scraping": FindingKind(
        "Sources fetched many distinct pages once each, without their assets, at a machine's steady pace", "low",
        section="clusters", behaviour="scrape",
        weights={"abuse": 2.0, "internal_failure": -2.0, "flash_crowd": -1.0}),
    "people_browsing": FindingKind(
        "A handful of new visitors browsed like people (pages with their assets and referers, at a person's pace): "
        "on a quiet site, volume alone", "info", section="audience",
        weights={"no_incident": 4.0, "attack": -2.0, "flash_crowd": -1.0}),
    "server_errors": FindingKind("Server errors (5xx) far above the baseline", "high", section="impact"),
    "legitimate_impact": FindingKind("Known clients received errors during the incident", "high", section="impact"),
    "traffic_collapse": FindingKind("Requests fell far below the baseline: the site stopped serving its audience",
                                    "high", section="impact"),
    "inhuman_rate": FindingKind("Clients sent requests at a rate no person browsing reaches", "high", "T1499.002",
                                section="clusters", vector=True),
    # network level (issue #21): from flow records and packet captures, only when flows were given
    "network_flood": FindingKind("A network-level flood reached the target (SYN, ACK, RST, UDP, ICMP, GRE or "
                                 "fragments), named by its flow signature", "high", "T1498.001", section="clusters",
                                 vector=True, weights={"attack": 3.0, "internal_failure": -2.0,
                                                       "flash_crowd": -2.0}),
    "reflection_amplification": FindingKind(
        "Reflected, amplified UDP answers from misused servers (reflectors) reached the target, which never asked "
        "them", "high", "T1498.002", section="clusters", vector=True,
        weights={"attack": 3.0, "internal_failure": -2.0, "flash_crowd": -2.0}),
    "carpet_bombing": FindingKind("A whole prefix was hit, many hosts moderately each (carpet bombing)", "high",
                                  "T1498", section="clusters", vector=True,
                                  weights={"attack": 2.0, "flash_crowd": -1.0}),
    "spoofed_sources": FindingKind("The flood's source addresses were forged (one packet per source, bogons): "
                                   "they are not the attacker's hosts", "medium", "T1498", section="clusters",
                                   weights={"attack": 1.0}),
    "network_quiet": FindingKind("Flows were given and the network was quiet during the incident: the cause "
                                 "points inside", "medium", section="impact",
                                 weights={"internal_failure": 1.0, "attack": -1.0}),
}

#: the default policy (the one ``watch`` uses)
DEFAULT_POLICY = DetectorPolicy()
INHUMAN_PER_MINUTE = DEFAULT_POLICY.inhuman_per_minute


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
    policy: DetectorPolicy = DEFAULT_POLICY  # the detectors' thresholds
    #: the window's sources classified by behaviour (scan, brute force, scrape), when the analysis already did
    abuse: AbuseScan | None = None
    #: the network analysis of the flows given beside the logs (issue #21); None: no flows
    network: NetworkAnalysis | None = None


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


@dataclass(frozen=True)
class LiveState:
    """What live detection (``watch``) knows of an open incident besides its composition, in seconds."""

    volume_seconds: int   # seconds flagged for volume
    attack_seconds: int   # seconds carrying the suspects' traffic
    failure_seconds: int  # seconds of server errors the attack does not explain


#: how a finding kind is stated live: from the live composition and state, its claim and metrics, or None
LiveEvaluation = Callable[["Composition", LiveState, DetectorPolicy], "tuple[str, dict[str, Any]] | None"]
#: the finding kinds ``watch`` states, in the order it states them: kind -> (id suffix, evaluation). Each sits
#: beside its detector (detectors/rules.py), on the same conditions, with the numbers a live composition has.
LIVE: dict[str, tuple[str, LiveEvaluation]] = {}


def live(kind: str, name: str) -> Callable[[LiveEvaluation], LiveEvaluation]:
    """Register how ``watch`` states finding ``kind`` (ids ``W<incident>-<name>``)."""
    if kind not in FINDING_KINDS:
        raise ValueError(f"unknown finding kind {kind!r}")

    def register(fn: LiveEvaluation) -> LiveEvaluation:
        LIVE[kind] = (name, fn)
        return fn
    return register


def detectors_for(has_history: bool) -> list[Detector]:
    """The detectors to run on an incident, in registration order, given whether a usable history exists."""
    wanted = ("needs", "any") if has_history else ("without", "any")
    return [fn for name, fn in DETECTORS.items() if HISTORY[name] in wanted]
