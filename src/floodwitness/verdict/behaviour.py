"""Hostile traffic that is not a flood: what the incident's sources did (``incidents[].behaviour``), whether the
incident denied anyone service, and the ``abuse`` hypothesis.

A scan, a brute force or a scraping run from outside sources that denied no service is ``abuse``: hostile, worth
naming and blocking, but no denial of service. With service denied to others it stays ``dos`` (few sources) or
``ddos``. The errors the behaving sources' own requests drew are theirs: they never make the site's failure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from floodwitness.verdict.hypothesis import ATTACK_KINDS, Hypothesis

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from floodwitness.analysis.impact import Impact
    from floodwitness.detectors.base import Finding, FindingKind

#: what ``incidents[].behaviour.kind`` can say: a hostile behaviour's name, ``mixed`` (several name it together),
#: ``flood`` (an attack with none of them: volume), ``none`` (no hostile behaviour: a flash crowd, a failure)
BEHAVIOUR_KINDS = ("flood", "scan", "brute_force", "scrape", "mixed", "none")
_NAMES = {"scan": "a scan", "brute_force": "a brute force against a login", "scrape": "scraping",
          "mixed": "scanning, brute force or scraping"}


def kinds() -> Mapping[str, FindingKind]:
    """The finding kinds' registry, imported when a verdict is judged: reading a saved report (renderers, which
    import the verdict's kinds and wording) never loads the detectors and their engine."""
    from floodwitness.detectors.base import FINDING_KINDS  # noqa: PLC0415 - see the docstring
    return FINDING_KINDS


def counts(f: Finding) -> bool:
    """Whether finding ``f`` counts in the verdict (its kind's ``counts_when``, if any, holds)."""
    when = kinds()[f.kind].counts_when
    return when is None or float(f.metrics.get(when[0]) or 0) >= when[1]


def behaviours(findings: Sequence[Finding]) -> list[Finding]:
    """The findings of a hostile behaviour (scan, brute force, scraping) whose sources made enough of the
    incident to name it; none when a flood tool's fingerprint counts (a botnet flooding a login page is a flood)."""
    if any(f.kind == "tool_fingerprint" and counts(f) for f in findings):
        return []
    return [f for f in findings if kinds()[f.kind].behaviour is not None and counts(f)]


def _what(named: Sequence[Finding]) -> str:
    shown = {kinds()[f.kind].behaviour for f in named}
    kind = shown.pop() if len(shown) == 1 else "mixed"
    n = sum(int(f.metrics["sources"]) for f in named)
    return f"{_NAMES[str(kind)]} by {n:,} outside source{'s' if n != 1 else ''}"


def denied_service(findings: Sequence[Finding], impact: Impact | None = None) -> str | None:
    """Why the incident denied service to someone other than its hostile sources, or None when nothing shows it
    did. The one place that decides it for the ``abuse`` verdict: the incident's measured ``impact`` (its level
    and reasons) where anything of it was measured; otherwise, from the findings: known clients, the hostile
    sources apart, received server errors (``legitimate_impact``); or the other clients' server-error share rose
    above the baseline's (``others_*`` metrics of the behaviour findings, thresholds of ``server_errors``). When
    the logs have no status, no denial cannot be shown: the reason says it is not known (abuse is ruled out)."""
    if impact is not None and impact.measured:  # the incident's measured impact decides, where it was measured
        return None if impact.level == "none" else impact.summary
    known = next((f for f in findings if f.kind == "legitimate_impact"), None)
    if known is not None:
        return f"{known.claim} [{known.id}]"
    unknown = next((f for f in behaviours(findings) if not f.metrics.get("errors_logged", True)), None)
    if unknown is not None:  # "denied no service" needs the statuses that would show it
        return (f"whether service was denied is not known: the logs have no response status, so errors cannot be "
                f"ruled out [{unknown.id}]")
    from floodwitness.detectors.base import DEFAULT_POLICY as p  # noqa: PLC0415, N811 - see kinds()
    for f in behaviours(findings):
        m = f.metrics
        errors, share, usual = int(m["others_errors"]), float(m["others_error_share"]), float(m["baseline_error_share"])
        if errors >= p.min_errors and share - usual >= p.error_share_delta:
            return (f"the other clients received {errors:,} server errors ({share:.0%} of their requests, against "
                    f"{usual:.0%} usually) [{f.id}]")
    return None


def hostile_behaviour(findings: Sequence[Finding], attack: Hypothesis, abuse: Hypothesis,
                      hypotheses: list[Hypothesis], impact: Impact | None = None) -> list[Hypothesis]:
    """The ``abuse`` hypothesis when a hostile behaviour names the incident (else none): the attack's evidence
    (the sources are hostile either way) plus the behaviour's weights (``abuse``), then whether service was
    denied. Without a denial the flood kinds of ``hypotheses`` lose: hostile, but no denial of service."""
    named = behaviours(findings)
    if not named:
        return []
    h = Hypothesis("abuse", attack.score + abuse.score, attack.for_ + abuse.for_, attack.against + abuse.against)
    what = _what(named)
    denial = denied_service(findings, impact)
    if denial is None:
        h.add(1.0, f"{what} that denied no service: no server errors for the other clients above the usual")
        for other in hypotheses:
            if other.kind in ATTACK_KINDS:
                other.add(-2.0, f"{what}, which denied no service: hostile traffic, not a denial of service")
    else:  # abuse is hostile traffic that denied no service: ruled out, whatever the behaviour's weight
        h.add(-8.0, denial if denial.startswith("whether") else f"service was denied: {denial}")
    return [h]


def incident_behaviour(kind: str, findings: Sequence[Finding], flood_sources: int | None = None) -> dict[str, Any]:
    """``incidents[].behaviour``: what the hostile sources did, with the findings that show it. ``kind``: the
    incident's verdict; ``flood_sources``: the suspected attackers of a flood. A flood (ddos, dos, mixed) is a
    ``flood`` even when its requests hit a login page: the behaviours its sources showed are listed in ``also``."""
    named = behaviours(findings) if kind not in ATTACK_KINDS else []  # a flood's is listed in ``also``
    present = [f for f in findings if kinds()[f.kind].behaviour is not None]
    others = [{"kind": kinds()[f.kind].behaviour, "finding": f.id, "sources": int(f.metrics["sources"]),
               "requests": int(f.metrics["requests"])} for f in present if f not in named]
    if named:
        shown = {str(kinds()[f.kind].behaviour) for f in named}
        name = shown.pop() if len(shown) == 1 else "mixed"
        requests = sum(int(f.metrics["requests"]) for f in named)
        return {"kind": name, "sources": sum(int(f.metrics["sources"]) for f in named), "requests": requests,
                "share": round(sum(float(f.metrics["share"]) for f in named), 3),
                "findings": [f.id for f in named], "summary": _what(named), "also": others}
    if kind in ATTACK_KINDS:
        vectors = [f.id for f in findings if kinds()[f.kind].vector]
        also = sorted({str(o["kind"]).replace("_", " ") for o in others})
        return {"kind": "flood", "sources": flood_sources, "requests": None, "share": None, "findings": vectors,
                "summary": "a flood: requests far above the usual" + (
                    f" (its sources' requests also show {' and '.join(also)})" if also else ""), "also": others}
    return {"kind": "none", "sources": None, "requests": None, "share": None, "findings": [],
            "summary": "no hostile behaviour named", "also": others}
