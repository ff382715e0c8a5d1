"""A hypothesis of the verdict with its score and reasons, and an incident's verdict."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from floodwitness.detectors.base import Finding

KINDS = ("ddos", "dos", "flash_crowd", "internal_failure", "mixed", "abuse", "no_incident", "outage")
#: the kinds that name an attack (a flood)
ATTACK_KINDS = ("ddos", "dos", "mixed")
#: the kinds that name hostile sources (and carry a blocklist): the floods, and abuse (scan, brute force, scraping)
HOSTILE_KINDS = (*ATTACK_KINDS, "abuse")


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


def family_confidence(hypotheses: Sequence[Hypothesis], family: Collection[str]) -> tuple[Hypothesis, float]:
    """The best hypothesis and its confidence: the kinds of ``family`` share evidence (the floods share the attack
    evidence), so the winner is judged against the best hypothesis of the other side, and (at double weight) against
    its siblings, which differ only in their extra signals."""
    ranked = sorted(hypotheses, key=lambda h: -h.score)
    best = ranked[0]
    siblings = [h.score for h in ranked[1:] if (h.kind in family) == (best.kind in family)]
    others = [h.score for h in ranked[1:] if (h.kind in family) != (best.kind in family)]
    margin = min(best.score - max(others, default=best.score - 6.0),
                 2 * (best.score - max(siblings, default=best.score - 3.0)))
    return best, round(0.5 + 0.45 * math.tanh(max(margin, 0.0) / 3.0), 2)


def cite(f: Finding) -> str:
    """A finding as a reason of a hypothesis: its claim, and its id to look it up."""
    return f"{f.claim} [{f.id}]"
