"""The recommendation as the report holds it: the settings on the trade-off curve, the recommended one,
and their report dict; and the report's limits and replay window read back (mitigate, benchmarks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from floodwitness.mitigation.ratelimit.limits import KEYS, PATH_CLASSES, Limit

if TYPE_CHECKING:
    from floodwitness.mitigation.ratelimit.replay import ReplayCounts

#: The recommended setting is the gentlest that stops at least this share of the attack's requests.
TARGET_STOP: Final = 0.9


@dataclass(frozen=True)
class Setting:
    """One point of the trade-off curve: a limit per class and what it did."""

    name: str
    budget: float  #: share of legitimate clients it was allowed to limit
    limits: tuple[Limit, ...]
    replay: ReplayCounts
    per_class: dict[str, ReplayCounts]
    baseline_clients: int
    baseline_clients_hit: int  #: baseline clients that would have been limited at least once on a normal day

    def to_dict(self, recommended: bool) -> dict[str, Any]:
        return {"name": self.name, "budget_share": self.budget, "recommended": recommended,
                "limits": [x.to_dict() for x in self.limits], "replay": self.replay.to_dict(),
                "replay_by_class": {k: v.to_dict() for k, v in self.per_class.items()},
                "baseline": {"clients": self.baseline_clients, "clients_hit": self.baseline_clients_hit,
                             "clients_hit_share": round(self.baseline_clients_hit / self.baseline_clients, 5)
                             if self.baseline_clients else 0.0}}


@dataclass(frozen=True)
class RateLimitAdvice:
    """The settings, the recommended one, and what they were measured on."""

    settings: tuple[Setting, ...]
    recommended: str
    window: tuple[datetime, datetime]
    class_stats: dict[str, dict[str, Any]]
    retries_left_out: int
    exempt_clients: int
    notes: tuple[str, ...] = field(default=())

    def setting(self, name: str) -> Setting:
        return next(s for s in self.settings if s.name == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": "nginx limit_req leaky bucket (nodelay) per path class; bursts from the baseline's "
                      "per-client needs (exact), incident replayed in 1-second slots",
            "classes": [{"name": c.name, "pattern": c.pattern, "description": c.description,
                         "baseline": self.class_stats.get(c.name, {})} for c in PATH_CLASSES],
            "keys": KEYS,
            "replay_window": [iso(self.window[0]), iso(self.window[1])],
            "retries_left_out": self.retries_left_out, "exempt_clients": self.exempt_clients,
            "target_attack_share": TARGET_STOP, "recommended": self.recommended,
            "settings": [s.to_dict(s.name == self.recommended) for s in self.settings],
            "notes": list(self.notes),
        }


def iso(value: datetime) -> str:
    return value.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def limits_from_dict(setting: dict[str, Any]) -> tuple[Limit, ...]:
    """The limits of a setting as the report stores it."""
    return tuple(Limit(x["class"], x.get("key"), int(x.get("rate_per_minute") or 0), int(x.get("burst") or 0))
                 for x in setting.get("limits", []))


def replay_window(start: str, end: str) -> tuple[datetime, datetime]:
    """A report's ``replay_window`` (RFC 3339 strings) as naive UTC datetimes."""
    def parse(v: str) -> datetime:
        return datetime.fromisoformat(v.replace("Z", "+00:00")).replace(tzinfo=None)
    a, b = parse(start), parse(end)
    return a, max(b, a + timedelta(seconds=1))
