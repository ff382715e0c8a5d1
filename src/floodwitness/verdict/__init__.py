"""Stage 6: the verdict. Weigh each hypothesis with the findings for and against it.

Signals (Jung, Krishnamurthy & Rabinovich 2002 on flash crowds vs DoS, and the classifier contrasts in
fingerprints.md): an attack's excess comes from networks the audience never used, behaves unlike browsers,
may match a tool; a flash crowd's comes from the usual networks and loads pages with their assets; an
internal failure shows errors the load does not explain, and a surge made of known clients retrying.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from floodwitness.verdict.behaviour import behaviours, counts, hostile_behaviour, kinds
from floodwitness.verdict.hypothesis import (
    ATTACK_KINDS,
    HOSTILE_KINDS,
    KINDS,
    Hypothesis,
    IncidentVerdict,
    family_confidence,
)
from floodwitness.verdict.hypothesis import cite as _cite

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from floodwitness.analysis.impact import Impact
    from floodwitness.detectors.base import Finding, Weight

#: the hypotheses the verdict with history weighs (the flood kinds ddos, dos and mixed share ``attack``); the
#: finding kinds' ``weights`` name them
HYPOTHESES = ("attack", "flash_crowd", "internal_failure", "abuse", "no_incident")

__all__ = ["ATTACK_KINDS", "HOSTILE_KINDS", "KINDS", "Hypothesis", "IncidentVerdict", "judge_incident",
           "judge_without_history", "summary_for", "verdict_section"]


def _get(findings: Sequence[Finding], kind: str) -> Finding | None:
    return next((f for f in findings if f.kind == kind), None)




#: The reason given where the absence of server errors counts but the logs have no status.
_NO_STATUS = "no server errors seen, but the logs have no response status: errors are not known"


def _points(weight: Weight, measures: Mapping[str, float]) -> float:
    if isinstance(weight, float | int):
        return float(weight)
    return weight.high if measures[weight.measure] >= weight.at_least else weight.low


def judge_incident(findings: Sequence[Finding], *, new_network_share: float, known_share: float,
                   errors_logged: bool = True, impact: Impact | None = None) -> IncidentVerdict:
    """Score the hypotheses for one incident from its findings: each finding adds the weights of its kind's
    registry entry (:data:`~floodwitness.detectors.base.FINDING_KINDS`, in the registry's order). The exceptions,
    kept here: the audience model (two graded levels, only with a surge: :func:`_weigh_audience`) and the
    absences that count (no new networks, no surge, no errors beyond the surge's). Without ``errors_logged`` (a log
    with no status) the reasons that count on the absence of server errors say that errors were not logged (same
    scores: no error finding could be made either way)."""
    hyps = {name: Hypothesis(name) for name in HYPOTHESES}
    attack, crowd, inside = hyps["attack"], hyps["flash_crowd"], hyps["internal_failure"]
    surge = _get(findings, "traffic_surge")
    measures = {"new_network_share": new_network_share, "known_share": known_share,
                "surge": 0.0 if surge is None else 1.0}
    for name, kind in kinds().items():
        found = [f for f in findings if f.kind == name and counts(f)]
        if name == "audience_shift":
            _weigh_audience(found[0] if found else None, surge is not None, attack, crowd)
        for f in found:
            for hypothesis, weight in kind.weights.items():
                hyps[hypothesis].add(_points(weight, measures), _cite(f))
        if found:
            continue
        if name == "new_networks":
            attack.add(-1.0, f"only {new_network_share:.0%} of the excess came from networks the audience never used")
        elif name == "errors_without_surge" and surge is not None:
            inside.add(-1.0, "every error minute coincides with the surge: the load explains the errors"
                       if errors_logged else _NO_STATUS)
        elif name == "traffic_surge":
            attack.add(-2.0, "no traffic surge: nothing an attack would have sent")
            crowd.add(-3.0, "no traffic surge")
    few = _get(findings, "concentrated_sources")
    failure = _get(findings, "errors_without_surge")
    hypotheses = _final(attack, crowd, inside, few is not None, failure, errors_logged=errors_logged)
    hypotheses += hostile_behaviour(findings, attack, hyps["abuse"], hypotheses, impact)
    hypotheses += _ordinary(hyps["no_incident"], impact)
    # ddos / dos / mixed (and abuse) share the attack evidence
    best, confidence = family_confidence(hypotheses, set(HOSTILE_KINDS))
    return IncidentVerdict(best.kind, confidence, tuple(hypotheses))


def _ordinary(quiet: Hypothesis, impact: Impact | None) -> list[Hypothesis]:
    """The ``no_incident`` hypothesis of a window that stood out, weighed only when a finding speaks for it (a
    handful of visitors browsing like people): it holds only if the incident denied no one service, as measured."""
    if not quiet.for_:
        return []
    if impact is None or not impact.measured:
        quiet.add(-2.0, "the service the site's usual clients received could not be measured")
    elif impact.level != "none":
        quiet.add(-6.0, f"service impact measured: {impact.summary}")
    else:
        quiet.add(1.0, f"no service impact measured: {impact.summary}")
    return [quiet]


#: without history, a verdict rests on the traffic alone: its confidence stays below this
NO_HISTORY_CONFIDENCE = 0.75
#: ... and below this on fewer requests than this
FEW_REQUESTS, FEW_REQUESTS_CONFIDENCE = 1000, 0.6
NO_HISTORY = "no history to compare with: the site's usual level and audience are unknown"


def judge_without_history(findings: Sequence[Finding], requests: int, impact: Impact | None = None) -> IncidentVerdict:
    """Score the hypotheses when no baseline is usable (logs of the attack alone, a few minutes of traffic).

    Nothing can be compared: no surge or fall, no new or known clients, no new networks. What the traffic shows by
    itself still speaks: an attack tool's fingerprint, rates no person reaches, a few sources' share, pages
    without their assets, server errors. A flash crowd (a surge of the usual audience) cannot be told from
    ordinary traffic without history, nor a failure from an overload: both stay low, and every confidence stays
    below :data:`NO_HISTORY_CONFIDENCE` (below :data:`FEW_REQUESTS_CONFIDENCE` on fewer than
    :data:`FEW_REQUESTS` ``requests``: a handful of lines is an anecdote)."""
    attack, crowd, inside = Hypothesis("attack"), Hypothesis("flash_crowd"), Hypothesis("internal_failure")
    quiet = Hypothesis("no_incident", 1.0, ["no attack signature and no server errors would leave the traffic "
                                            "unremarkable by itself"])
    crowd.add(-1.0, f"{NO_HISTORY}: a surge of the usual audience cannot be measured")
    tools = [f for f in findings if f.kind == "tool_fingerprint" and float(f.metrics["share"]) >= 0.1]
    rate, bots = _get(findings, "inhuman_rate"), _get(findings, "bot_behaviour")
    cache, few, errors = _get(findings, "cache_busting"), _get(findings, "concentrated_sources"), \
        _get(findings, "server_errors")
    signals = 0
    for tool in tools:
        attack.add(2.0, _cite(tool))
        crowd.add(-1.0, _cite(tool))
        signals += 1
    # a scan, a brute force or scraping speaks by itself too, with its kind's weights (abuse, not a flood)
    hyps = {"attack": attack, "flash_crowd": crowd, "internal_failure": inside, "abuse": Hypothesis("abuse")}
    for f in behaviours(findings):
        for hypothesis, weight in kinds()[f.kind].weights.items():
            hyps[hypothesis].add(_points(weight, {}), _cite(f))
        signals += 1
    if rate is not None and float(rate.metrics["share"]) >= 0.2:
        attack.add(2.0, _cite(rate))
        crowd.add(-1.0, _cite(rate))
        signals += 1
    if bots is not None:  # a weak signal alone: sites that serve their assets elsewhere log none
        attack.add(0.5, _cite(bots))
    if cache is not None:
        attack.add(1.0, _cite(cache))
        signals += 1
    if few is not None and signals:
        attack.add(0.5, _cite(few))
    if signals == 0:
        attack.add(-1.0, "no attack tool's fingerprint, and no client at a rate no person reaches")
    else:
        quiet.add(-3.0, "the traffic itself carries an attack's signature")
    if errors is not None:
        quiet.add(-2.0, _cite(errors))
        if signals:
            inside.add(-1.0, "the server errors came with attack traffic: its load may explain them")
        else:
            inside.add(1.5, f"{_cite(errors)}, with no attack traffic to explain them")
    else:
        inside.add(-2.0, "no server errors")
    # which errors the attack explains needs the minutes before and after it, against their usual level
    hypotheses = _final(attack, crowd, inside, few is not None, None, what="the requests",
                        unexplained=f"{NO_HISTORY}: errors the attack does not explain cannot be told apart")
    hypotheses += hostile_behaviour(findings, attack, hyps["abuse"], hypotheses, impact)
    hypotheses.append(quiet)
    ranked = sorted(hypotheses, key=lambda h: -h.score)
    margin = ranked[0].score - ranked[1].score
    cap = NO_HISTORY_CONFIDENCE if requests >= FEW_REQUESTS else FEW_REQUESTS_CONFIDENCE
    confidence = round(min(0.5 + 0.45 * math.tanh(max(margin, 0.0) / 3.0), cap), 2)
    return IncidentVerdict(ranked[0].kind, confidence, tuple(hypotheses))


def _weigh_audience(audience: Finding | None, surge: bool, attack: Hypothesis, crowd: Hypothesis) -> None:
    """The audience model as evidence: a botnet's excess comes from networks *and* ASes the site's audience
    never used; a flash crowd's from the usual ones. Needs the AS level (an IP database) and a surge."""
    if audience is None or not surge:
        return
    asn, net = audience.metrics.get("asn"), audience.metrics.get("/16")
    if not isinstance(asn, dict) or not isinstance(net, dict):
        return
    a, n = float(asn["new_excess_share"]), float(net["new_excess_share"])
    text = (f"{n:.0%} of the excess came from /16 networks and {a:.0%} from ASes never seen in the baseline "
            f"(normal churn {float(net['baseline_churn']):.0%} and {float(asn['baseline_churn']):.0%})")
    if a >= 0.5 and n >= 0.5:
        attack.add(1.0, f"{text}: new networks, as a botnet's [{audience.id}]")
        crowd.add(-1.0, f"{text} [{audience.id}]")
    elif a <= 0.25 and n <= 0.4:
        crowd.add(1.0, f"{text}: the audience's usual networks, as a flash crowd's [{audience.id}]")
        attack.add(-1.0, f"{text} [{audience.id}]")


def _final(attack: Hypothesis, crowd: Hypothesis, inside: Hypothesis, few: bool, failure: Finding | None, *,
           errors_logged: bool = True, unexplained: str | None = None, what: str = "the excess") -> list[Hypothesis]:
    """Split the attack hypothesis into ddos / dos / mixed (``what``: the traffic judged, the excess over the
    baseline or, without one, the requests; ``unexplained``: why no errors are left unexplained, if not the
    usual reason)."""
    ddos = Hypothesis("ddos", attack.score, list(attack.for_), list(attack.against))
    dos = Hypothesis("dos", attack.score, list(attack.for_), list(attack.against))
    mixed = Hypothesis("mixed", attack.score, list(attack.for_), list(attack.against))
    if few:
        ddos.add(-1.5, f"{what} came from a handful of sources, not a distributed population")
        dos.add(1.0, f"a handful of sources made most of {what}")
    else:
        dos.add(-1.5, f"{what} was spread over many sources")
    if failure is not None and int(failure.metrics.get("attack_minutes", 0)) > 0 \
            and int(failure.metrics["failure_minutes"]) >= 3:
        mixed.add(1.5 + min(inside.score, 3.0) / 2, _cite(failure))
        ddos.add(-1.0, "errors outside the attack's minutes: the attack alone does not explain them")
        dos.add(-1.0, "errors outside the attack's minutes")
    else:
        mixed.add(-2.0, unexplained or ("no server errors beyond what the attack's load explains" if errors_logged
                                         else _NO_STATUS))
    return [ddos, dos, crowd, inside, mixed]


def is_attempt(kind: str, impact: tuple[str, bool] | None) -> bool:
    """Whether an attack verdict is an attempt: its incident's impact was measured (``impact``: level, whether
    anything was measured) and no service impact was found. Lower urgency; the kind stays the same."""
    return kind in ATTACK_KINDS and impact is not None and impact[0] == "none" and impact[1]


def verdict_section(v: IncidentVerdict | None, *, minutes: int, has_history: bool, inhuman_per_minute: int,
                    incident: tuple[str, str] | None = None, impact: tuple[str, bool] | None = None,
                    behaviour: str | None = None) -> dict[str, Any]:
    """The report's ``verdict``: the main incident's verdict ``v`` (``incident``: its start and end, cited against
    ``no_incident``; ``impact``: its impact level and whether anything of it was measured), or without one,
    ``no_incident`` over the ``minutes`` examined, as sure as the history allows (``inhuman_per_minute``: the rate
    looked for without history, to say so)."""
    if v is None:
        if has_history:
            text = (f"{minutes:,} minutes of traffic examined; no minute's volume or server errors stood out from "
                    "the rolling baseline")
            confidence = 0.9 if minutes >= 60 else 0.6
        else:
            text = (f"{minutes:,} minute(s) of traffic examined with no history to compare with: no attack tool's "
                    f"fingerprint, no client at {inhuman_per_minute} requests a minute or more, no server errors")
            confidence = 0.5
        hyps = [{"kind": "no_incident", "score": 3.0 if has_history else 1.0, "for": [text], "against": []}]
        hyps += [{"kind": k, "score": -3.0, "for": [], "against": [text]} for k in KINDS if k != "no_incident"]
        return {"kind": "no_incident", "confidence": confidence,
                "summary": summary_for("no_incident", confidence, has_history), "hypotheses": hyps,
                "impact": None, "attempt": False}
    ranked = sorted((h.to_dict() for h in v.hypotheses), key=lambda h: -float(h["score"]))  # type: ignore[arg-type]
    if has_history and incident is not None and not any(h.kind == "no_incident" for h in v.hypotheses):
        ranked.append({"kind": "no_incident", "score": -3.0, "for": [],
                       "against": [f"incident from {incident[0]} to {incident[1]} [I1]"]})
    attempt = is_attempt(v.kind, impact)
    summary = ORDINARY.format(confidence=v.confidence) if v.kind == "no_incident" else \
        summary_for(v.kind, v.confidence, has_history, attempt=attempt, behaviour=behaviour)
    return {"kind": v.kind, "confidence": v.confidence, "summary": summary,
            "hypotheses": ranked,
            "impact": None if impact is None else impact[0], "attempt": attempt}


#: the summary when every window that stood out was ordinary (a handful of visitors browsing like people)
ORDINARY = ("The logs show no incident: what stood out from the baseline came from a handful of visitors browsing "
            "like people, and no service impact was measured (confidence {confidence:.0%}).")
#: an attack whose impact was measured and found none is an attempt: what the logs show, in the same words
_ATTEMPTS = {
    "ddos": "a distributed denial-of-service attempt",
    "dos": "a denial-of-service attempt from a handful of sources",
    "mixed": "an attack attempt beside an internal failure",
}
NO_IMPACT = "no service impact was measured (the incident's impact says what was measured and what could not be)"


def summary_for(kind: str, confidence: float, has_history: bool = True, *, attempt: bool = False,
                behaviour: str | None = None) -> str:
    """The verdict in a sentence (``attempt``: an attack with no service impact measured; ``behaviour``: what the
    hostile sources did, said of ``abuse``)."""
    if kind == "abuse":
        text = "hostile traffic that denied no service" + (f": {behaviour}" if behaviour else "")
        return f"The logs show {text} (confidence {confidence:.0%})" + (
            "." if has_history else "; with no history to compare with, the usual traffic is unknown.")
    if attempt:
        if has_history:
            return f"The logs show {_ATTEMPTS[kind]} (confidence {confidence:.0%}); {NO_IMPACT}."
        return (f"The logs show {_ATTEMPTS[kind]}, by what the traffic itself shows (confidence {confidence:.0%}); "
                f"{NO_IMPACT}; with no history to compare with, a surge, a fall or a change of audience cannot be "
                "measured.")
    if not has_history:
        text = {
            "ddos": "a distributed denial-of-service attack, by what the traffic itself shows",
            "dos": "a denial-of-service attack from a handful of sources, by what the traffic itself shows",
            "internal_failure": "server errors with no attack traffic to explain them",
            "no_incident": "no attack signature and no server errors in the traffic itself",
        }.get(kind, kind)
        return (f"The logs show {text} (confidence {confidence:.0%}); with no history to compare with, a surge, "
                "a fall or a change of audience cannot be measured.")
    text = {
        "ddos": "a distributed denial-of-service attack",
        "dos": "a denial-of-service attack from a handful of sources",
        "flash_crowd": "a flash crowd: a legitimate surge of visitors",
        "internal_failure": "an internal failure (the site's own errors, with its own clients retrying)",
        "mixed": "an attack made worse by an internal failure",
        "no_incident": "no incident: traffic and errors stayed within the baseline",
        "outage": ("an outage: requests fell far below the baseline with no attack traffic or server errors "
                   "before it in the access log"),
    }[kind]
    return f"The logs show {text} (confidence {confidence:.0%})."


#: an outage's confidence when the log ends during it (a log cut as traffic fell looks the same)
LOG_ENDS_CONFIDENCE = 0.7


def judge_outage(collapse: Finding, *, log_ends: bool, all_at_once: bool | None) -> IncidentVerdict:
    """The verdict on a collapse that no incident came just before (no surge, no server errors): an ``outage`` whose
    cause lies outside what an access log records. Its confidence stays below :data:`LOG_ENDS_CONFIDENCE` when the
    log ends during it."""
    cite = _cite(collapse)
    outage = Hypothesis("outage", 3.0, [cite])
    quiet = Hypothesis("no_incident", -3.0, [], [cite])
    attack = Hypothesis("ddos", -2.0, [], ["no surge of requests or new sources before the collapse: the access log "
                                           "shows no attack (a network-level flood would not reach it)"])
    inside = Hypothesis("internal_failure", -2.0, [], ["no server errors or slow answers before the collapse"])
    crowd = Hypothesis("flash_crowd", -3.0, [], ["no surge"])
    if all_at_once:
        outage.add(1.0, "every network of the audience dropped at once: the server or its network was unreachable")
    elif all_at_once is False:
        outage.add(0.5, "only some of the audience's networks dropped: routing, a region or a CDN edge")
    if log_ends:
        outage.add(-1.0, "the log ends during the collapse: a log cut as traffic fell would look the same")
    hypotheses = [outage, quiet, attack, inside, crowd]
    margin = outage.score - max(h.score for h in hypotheses[1:])
    confidence = round(0.5 + 0.45 * math.tanh(max(margin, 0.0) / 3.0), 2)
    return IncidentVerdict("outage", min(confidence, LOG_ENDS_CONFIDENCE) if log_ends else confidence,
                           tuple(hypotheses))
