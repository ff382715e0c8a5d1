"""A hypothesis of the verdict with its score and reasons, and an incident's verdict."""

from __future__ import annotations

from dataclasses import dataclass, field

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
