"""The verdict with the network's evidence (#21): an incident the flows explain, or one only the flows show.

Each network finding adds its kind's registry weights (:data:`~floodwitness.detectors.base.FINDING_KINDS`), as the
access log's findings do. The attack evidence splits into ``ddos`` and ``dos`` by who sent it: spoofed addresses
and reflectors say nothing of how many machines the attacker used, so only real, unspoofed sources can make a flood
a ``dos`` (a handful of them) rather than a ``ddos``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from floodwitness.detectors.base import DEFAULT_POLICY, FINDING_KINDS, Grade
from floodwitness.verdict.hypothesis import Hypothesis, IncidentVerdict, family_confidence
from floodwitness.verdict.hypothesis import cite as _cite

if TYPE_CHECKING:
    from collections.abc import Sequence

    from floodwitness.detectors.base import Finding

#: the kinds the attack hypothesis stands for
_ATTACK = ("ddos", "dos", "mixed")


def _copy(h: Hypothesis) -> Hypothesis:
    return Hypothesis(h.kind, h.score, list(h.for_), list(h.against))




def few_real_sources(findings: Sequence[Finding], few: int = DEFAULT_POLICY.few_sources) -> bool:
    """Whether the floods came from a handful of real (unspoofed, not reflected) sources."""
    floods = [f for f in findings if FINDING_KINDS[f.kind].weights.get("attack")]
    if not floods:
        return False
    roles = {str(f.metrics.get("source_role") or "sources") for f in floods}
    if roles != {"sources"}:
        return False
    return max(int(f.metrics.get("sources") or 0) for f in floods) <= few


def judge_network(findings: Sequence[Finding], base: IncidentVerdict | None = None) -> IncidentVerdict:
    """``base`` (the access log's verdict on the incident, when there is one) with the network ``findings`` weighed
    in; without ``base``, an incident only the flows show, judged by them alone."""
    if base is not None:
        hyps = {h.kind: _copy(h) for h in base.hypotheses}
    else:
        hyps = {k: Hypothesis(k) for k in ("ddos", "dos", "internal_failure", "no_incident")}
        hyps["no_incident"].add(1.0, "no network-level flood would leave the flows unremarkable")
        hyps["internal_failure"].add(-1.0, "no access log given: the servers' own errors cannot be seen")
    if "dos" not in hyps:  # an outage's verdict weighs no dos: it starts where ddos does (they differ by sources)
        hyps["dos"] = _copy(hyps["ddos"]) if "ddos" in hyps else Hypothesis("dos")
        hyps["dos"].kind = "dos"
    hyps.setdefault("ddos", Hypothesis("ddos"))
    floods = [f for f in findings if FINDING_KINDS[f.kind].weights.get("attack")]
    if base is not None and base.kind == "outage" and floods:
        # the access log could not see a network-level flood: its silence is what such a flood leaves in it
        for kind in _ATTACK[:2]:
            hyps[kind].add(2.0, "the flows show the network-level flood the access log could not record: its "
                                "silence is that flood's effect")
    for f in findings:
        for name, weight in FINDING_KINDS[f.kind].weights.items():
            points = weight.high if isinstance(weight, Grade) else float(weight)
            for target in (_ATTACK if name == "attack" else (name,)):
                if target in hyps:
                    hyps[target].add(points, _cite(f))
    if floods:
        if few_real_sources(floods):
            hyps["dos"].add(1.0, "the flood came from a handful of real (unspoofed) sources")
            hyps["ddos"].add(-1.5, "a handful of real sources, not a distributed population")
        else:
            hyps["dos"].add(-1.5, "the flood came from many addresses (or spoofed ones, or reflectors)")
        for kind in ("no_incident", "outage"):
            if kind in hyps:
                hyps[kind].add(-3.0, f"the flows show a network-level flood: {_cite(floods[0])}")
    best, confidence = family_confidence(list(hyps.values()), _ATTACK)
    return IncidentVerdict(best.kind, confidence, tuple(hyps.values()))
