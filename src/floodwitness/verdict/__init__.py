"""Stage 6: the verdict. Weigh each hypothesis with the findings for and against it.

Signals (Jung, Krishnamurthy & Rabinovich 2002 on flash crowds vs DoS, and the classifier contrasts in
fingerprints.md): an attack's excess comes from networks the audience never used, behaves unlike browsers,
may match a tool; a flash crowd's comes from the usual networks and loads pages with their assets; an
internal failure shows errors the load does not explain, and a surge made of known clients retrying.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from floodwitness.detectors.base import Finding

KINDS = ("ddos", "dos", "flash_crowd", "internal_failure", "mixed", "no_incident")
#: the kinds that name an attack (and carry a blocklist)
ATTACK_KINDS = ("ddos", "dos", "mixed")


@dataclass
class Hypothesis:
    kind: str
    score: float = 0.0
    for_: list[str] = field(default_factory=list)
    against: list[str] = field(default_factory=list)

    def add(self, points: float, text: str) -> None:
        self.score += points
        (self.for_ if points > 0 else self.against).append(text)

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "score": round(self.score, 2), "for": self.for_, "against": self.against}


@dataclass(frozen=True)
class IncidentVerdict:
    kind: str
    confidence: float
    hypotheses: tuple[Hypothesis, ...]


def _get(findings: Sequence[Finding], kind: str) -> Finding | None:
    return next((f for f in findings if f.kind == kind), None)


def _cite(f: Finding) -> str:
    return f"{f.claim} [{f.id}]"


#: The reason given where the absence of server errors counts but the logs have no status.
_NO_STATUS = "no server errors seen, but the logs have no response status: errors are not known"


def judge_incident(findings: Sequence[Finding], *, new_network_share: float, known_share: float,
                   errors_logged: bool = True) -> IncidentVerdict:
    """Score the hypotheses for one incident from its findings. Without ``errors_logged`` (a log with no status)
    the reasons that count on the absence of server errors say that errors were not logged (same scores: no
    error finding could be made either way)."""
    attack, crowd, inside = Hypothesis("attack"), Hypothesis("flash_crowd"), Hypothesis("internal_failure")
    surge = _get(findings, "traffic_surge")
    newnets = _get(findings, "new_networks")
    bots = _get(findings, "bot_behaviour")
    cache = _get(findings, "cache_busting")
    few = _get(findings, "concentrated_sources")
    familiar = _get(findings, "familiar_crowd")
    known = _get(findings, "known_clients_surge")
    failure = _get(findings, "errors_without_surge")
    tools = [f for f in findings if f.kind == "tool_fingerprint" and float(f.metrics["share"]) >= 0.1]

    if newnets is not None:
        attack.add(2.0 if new_network_share >= 0.5 else 1.0, _cite(newnets))
        crowd.add(-2.0 if new_network_share >= 0.5 else -0.5, _cite(newnets))
        inside.add(-2.0, _cite(newnets))
    else:
        attack.add(-1.0, f"only {new_network_share:.0%} of the excess came from networks the audience never used")
    if bots is not None:
        attack.add(2.0, _cite(bots))
        crowd.add(-2.0, _cite(bots))
    if cache is not None:
        attack.add(1.0, _cite(cache))
    for tool in tools:
        attack.add(2.0, _cite(tool))
        crowd.add(-1.0, _cite(tool))
    if few is not None:
        attack.add(1.0, _cite(few))
        crowd.add(-1.0, _cite(few))
    _weigh_audience(_get(findings, "audience_shift"), surge is not None, attack, crowd)
    if familiar is not None:
        crowd.add(3.0, _cite(familiar))
        attack.add(-2.0, _cite(familiar))
    if known is not None:
        weight = 2.0 if known_share >= 0.6 else 1.0
        inside.add(weight, _cite(known))
        attack.add(-weight, _cite(known))
        crowd.add(-1.0, _cite(known))
    if failure is not None:
        inside.add(2.0 + (1.0 if surge is None else 0.0), _cite(failure))
        crowd.add(-1.0, _cite(failure))
    elif surge is not None:
        inside.add(-1.0, "every error minute coincides with the surge: the load explains the errors" if errors_logged
                   else _NO_STATUS)
    if surge is None:
        attack.add(-2.0, "no traffic surge: nothing an attack would have sent")
        crowd.add(-3.0, "no traffic surge")
    else:
        crowd.add(0.5, _cite(surge))
        attack.add(0.5, _cite(surge))

    hypotheses = _final(attack, crowd, inside, few is not None, failure, errors_logged=errors_logged)
    ranked = sorted(hypotheses, key=lambda h: -h.score)
    best = ranked[0]
    # ddos / dos / mixed share the attack evidence: the winner is judged against the best hypothesis of
    # another family, and (at double weight) against its siblings, which differ only in their extra signals
    family = set(ATTACK_KINDS)
    siblings = [h.score for h in ranked[1:] if (h.kind in family) == (best.kind in family)]
    others = [h.score for h in ranked[1:] if (h.kind in family) != (best.kind in family)]
    margin = min(best.score - max(others, default=best.score - 6.0),
                 2 * (best.score - max(siblings, default=best.score - 3.0)))
    confidence = round(0.5 + 0.45 * math.tanh(max(margin, 0.0) / 3.0), 2)
    return IncidentVerdict(best.kind, confidence, tuple(hypotheses))


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


def _final(attack: Hypothesis, crowd: Hypothesis, inside: Hypothesis, few: bool,
           failure: Finding | None, *, errors_logged: bool = True) -> list[Hypothesis]:
    """Split the attack hypothesis into ddos / dos / mixed."""
    ddos = Hypothesis("ddos", attack.score, list(attack.for_), list(attack.against))
    dos = Hypothesis("dos", attack.score, list(attack.for_), list(attack.against))
    mixed = Hypothesis("mixed", attack.score, list(attack.for_), list(attack.against))
    if few:
        ddos.add(-1.5, "the excess came from a handful of sources, not a distributed population")
        dos.add(1.0, "a handful of sources made most of the excess")
    else:
        dos.add(-1.5, "the excess was spread over many sources")
    if failure is not None and int(failure.metrics.get("attack_minutes", 0)) > 0 \
            and int(failure.metrics["failure_minutes"]) >= 3:
        mixed.add(1.5 + min(inside.score, 3.0) / 2, _cite(failure))
        ddos.add(-1.0, "errors outside the attack's minutes: the attack alone does not explain them")
        dos.add(-1.0, "errors outside the attack's minutes")
    else:
        mixed.add(-2.0, "no server errors beyond what the attack's load explains" if errors_logged else _NO_STATUS)
    return [ddos, dos, crowd, inside, mixed]


def summary_for(kind: str, confidence: float) -> str:
    text = {
        "ddos": "a distributed denial-of-service attack",
        "dos": "a denial-of-service attack from a handful of sources",
        "flash_crowd": "a flash crowd: a legitimate surge of visitors",
        "internal_failure": "an internal failure (the site's own errors, with its own clients retrying)",
        "mixed": "an attack made worse by an internal failure",
        "no_incident": "no incident: traffic and errors stayed within the baseline",
    }[kind]
    return f"The logs show {text} (confidence {confidence:.0%})."
