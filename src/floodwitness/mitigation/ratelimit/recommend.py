"""Choosing the settings: candidate limits per class (rates x bursts the baseline needs), the Pareto
front of each class, and per budget of legitimate clients the combination that stops the most attack
requests; :func:`recommend` runs the whole measurement."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np

from floodwitness.analysis.composition import in_ranges
from floodwitness.mitigation.ratelimit.limits import KEYS, NO_LIMIT, PATH_CLASSES, RATES_PER_MINUTE, Limit
from floodwitness.mitigation.ratelimit.needs import class_stats, client_needs, exempt_ips, memtable
from floodwitness.mitigation.ratelimit.replay import Outcome, ReplayCounts, Rows, replay_input, simulate
from floodwitness.mitigation.ratelimit.report import TARGET_STOP, RateLimitAdvice, Setting

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from datetime import datetime

    from floodwitness.analysis.dataset import Dataset
    from floodwitness.mitigation.protected import ProtectedRanges

#: Candidate bursts: these quantiles of what the baseline's clients need at each rate.
BURST_QUANTILES: Final = (1.0, 0.999, 0.995, 0.99)
#: Bursts tried for a class the baseline never saw (nothing to measure them on).
FALLBACK_BURSTS: Final = (5, 10, 20)
#: The settings offered: name and the share of legitimate clients it may limit at least once.
BUDGETS: Final = (("gentle", 0.0), ("balanced", 0.005), ("firm", 0.01))
#: Candidates kept per class before combining classes (the Pareto front, thinned to this many).
MAX_FRONT: Final = 24


@dataclass(frozen=True)
class _Candidate:
    limit: Limit
    column: int  # column in its key's outcome
    attack_rejected: int
    legit_hit: int
    baseline_hit: int


def _bursts(needs: np.ndarray) -> list[int]:
    if not len(needs):
        return list(FALLBACK_BURSTS)
    ordered = np.sort(needs)
    out = set()
    for q in BURST_QUANTILES:
        index = max(0, math.ceil(q * len(ordered)) - 1)
        out.add(max(0, int(ordered[index])))
    return sorted(out)


def _grid(needs: dict[str, list[np.ndarray]]) -> dict[str, list[list[tuple[int, int, np.ndarray]]]]:
    """Per key, per class: candidate (rate, burst, needs of the baseline's clients at that rate)."""
    out: dict[str, list[list[tuple[int, int, np.ndarray]]]] = {k: [[] for _ in PATH_CLASSES] for k in KEYS}
    for key in KEYS:
        for ci in range(len(PATH_CLASSES)):
            for k, r in enumerate(RATES_PER_MINUTE):
                sel = needs[key][ci][:, k]
                out[key][ci].extend((r, b, sel) for b in _bursts(sel))
    return out


def _front(cands: list[_Candidate]) -> list[_Candidate]:
    """The candidates no other beats on attack stopped, legitimate hits and baseline hits (thinned)."""
    ordered = sorted(cands, key=lambda x: (x.legit_hit + x.baseline_hit, -x.attack_rejected,
                                           -x.limit.rate_per_minute, -x.limit.burst))
    kept: list[_Candidate] = []
    for cand in ordered:
        if not any(k.attack_rejected >= cand.attack_rejected and k.legit_hit <= cand.legit_hit
                   and k.baseline_hit <= cand.baseline_hit for k in kept):
            kept.append(cand)
    if len(kept) > MAX_FRONT:
        step = len(kept) / MAX_FRONT
        kept = [kept[int(i * step)] for i in range(MAX_FRONT)]
    return kept


def _choose(per_class: list[list[_Candidate]], legit_budget: int, base_budget: int) -> list[_Candidate]:
    """The combination (one candidate per class) stopping the most attack requests within both budgets.
    Dynamic programming over classes on the (legitimate hits, baseline hits) used."""
    states: dict[tuple[int, int], tuple[int, list[_Candidate]]] = {(0, 0): (0, [])}
    for cands in per_class:
        nxt: dict[tuple[int, int], tuple[int, list[_Candidate]]] = {}
        for (lh, bh), (score, chosen) in states.items():
            for cand in cands:
                state = (lh + cand.legit_hit, bh + cand.baseline_hit)
                if state[0] > legit_budget or state[1] > base_budget:
                    continue
                value = score + cand.attack_rejected
                if state not in nxt or value > nxt[state][0]:
                    nxt[state] = (value, [*chosen, cand])
        states = nxt
    best = max(states.items(), key=lambda kv: (kv[1][0], -(kv[0][0] + kv[0][1])))
    return best[1][1]


def _counts(rows: Rows, out: Outcome, cls: int, column: int, hit_clients: set[int]) -> ReplayCounts:
    in_cls = rows.cls == cls
    legit_in = in_cls & ~rows.attack
    return ReplayCounts(
        attack_requests=int(rows.count[in_cls & rows.attack].sum()),
        attack_rejected=int(out.attack_rejected[cls, column]),
        legit_requests=int(rows.count[legit_in].sum()),
        legit_rejected=int(out.legit_rejected[cls, column]),
        legit_clients=len(np.unique(rows.client[legit_in])), legit_clients_hit=len(hit_clients))


def _hit_clients(rows: Rows, out: Outcome, cls: int, column: int) -> set[int]:
    legit_cls = rows.cls[out.legit_rows] == cls
    hit = out.legit_hit[:, column] & legit_cls
    return set(rows.client[out.legit_rows[hit]].tolist())


def _arrays(grid: list[list[tuple[int, int, np.ndarray]]]) -> tuple[np.ndarray, np.ndarray]:
    """Rates (per second) and bursts per class and column; column 0 is "no limit", the exempt row too."""
    width = 1 + max(len(c) for c in grid)
    rates = np.full((len(PATH_CLASSES) + 1, width), NO_LIMIT)
    bursts = np.full((len(PATH_CLASSES) + 1, width), NO_LIMIT)
    for ci, cands in enumerate(grid):
        for j, (r, b, _) in enumerate(cands, start=1):
            rates[ci, j], bursts[ci, j] = r / 60.0, b
    return rates, bursts


def recommend(data: Dataset, window: tuple[datetime, datetime], baseline: Sequence[tuple[datetime, datetime]],
              attack: Collection[str], legit: Collection[str], protected: ProtectedRanges) -> RateLimitAdvice:
    """Propose per-class limits from the baseline and measure them by replaying ``window``."""
    incident = in_ranges(data.requests, [window])
    base = in_ranges(data.requests, list(baseline))
    exempt = set(exempt_ips(data, incident, protected)) | set(exempt_ips(data, base, protected))
    if exempt:
        base = base.filter(~base.client_ip.isin(memtable(exempt).ip))
    origin = min((a for a, _ in baseline), default=window[0])
    needs = client_needs(data, base, origin)
    baseline_clients = int(data.engine.scalar(base.client_ip.nunique()) or 0)
    grid = _grid(needs)
    per_key, retries = replay_input(data, window, set(attack), set(legit) - set(attack), exempt)
    outcomes = {}
    for key, rows in per_key.items():
        rates, bursts = _arrays(grid[key])
        outcomes[key] = simulate(rows, rates, bursts)
    # legitimate clients over every class: the same in both keys' rows
    rows0 = per_key["ip"]
    legit_total = len(np.unique(rows0.client[~rows0.attack]))
    per_class: list[list[_Candidate]] = []
    for ci, pc in enumerate(PATH_CLASSES):
        cands = [_Candidate(Limit(pc.name, None), 0, 0, 0, 0)]
        for key in KEYS:
            out = outcomes[key]
            for j, (r, b, needs_at) in enumerate(grid[key][ci], start=1):
                hits = len(_hit_clients(per_key[key], out, ci, j))
                cands.append(_Candidate(Limit(pc.name, key, r, b), j, int(out.attack_rejected[ci, j]), hits,
                                        int((needs_at > b).sum())))
        per_class.append(_front(cands))
    settings = []
    for name, budget in BUDGETS:
        chosen = _choose(per_class, math.floor(budget * legit_total), math.floor(budget * baseline_clients))
        settings.append(_setting(name, budget, chosen, per_key, outcomes, baseline_clients))
    reaching = [s for s in settings if s.replay.attack_share >= TARGET_STOP]
    best = reaching[0] if reaching else max(settings, key=lambda s: s.replay.attack_rejected)
    notes = _notes(settings, retries, exempt)
    return RateLimitAdvice(tuple(settings), best.name, window, class_stats(data, base), retries, len(exempt),
                           tuple(notes))


def _setting(name: str, budget: float, chosen: list[_Candidate], per_key: dict[str, Rows],
             outcomes: dict[str, Outcome], baseline_clients: int) -> Setting:
    per_class: dict[str, ReplayCounts] = {}
    hit_all: set[int] = set()
    for ci, cand in enumerate(chosen):
        key = cand.limit.key or "ip"
        rows, out = per_key[key], outcomes[key]
        hits = _hit_clients(rows, out, ci, cand.column)
        hit_all |= hits
        per_class[cand.limit.path_class] = _counts(rows, out, ci, cand.column, hits)
    rows = per_key["ip"]
    exempt_attack = int(rows.count[(rows.cls == len(PATH_CLASSES)) & rows.attack].sum())
    exempt_legit = int(rows.count[(rows.cls == len(PATH_CLASSES)) & ~rows.attack].sum())
    total = ReplayCounts(
        attack_requests=sum(c.attack_requests for c in per_class.values()) + exempt_attack,
        attack_rejected=sum(c.attack_rejected for c in per_class.values()),
        legit_requests=sum(c.legit_requests for c in per_class.values()) + exempt_legit,
        legit_rejected=sum(c.legit_rejected for c in per_class.values()),
        legit_clients=len(np.unique(rows.client[~rows.attack])), legit_clients_hit=len(hit_all))
    return Setting(name, budget, tuple(c.limit for c in chosen), total, per_class, baseline_clients,
                   sum(c.baseline_hit for c in chosen))


def _notes(settings: list[Setting], retries: int, exempt: set[str]) -> list[str]:
    notes = []
    if retries:
        notes.append(f"{retries:,} legitimate requests were retries of a request that had just failed; they are "
                     "left out of the replay (with the limits in place the first try would have been served)")
    if exempt:
        notes.append(f"{len(exempt):,} clients in verified-crawler, special-purpose or allowlisted ranges are exempt "
                     "from every limit")
    if not any(s.replay.attack_share >= TARGET_STOP for s in settings):
        best = max(s.replay.attack_share for s in settings)
        notes.append(f"no setting stops {TARGET_STOP:.0%} of the attack's requests within 1% of legitimate clients "
                     f"(best: {best:.1%}): per-client limits cannot stop sources that each send little; "
                     "block them (the blocklist) or filter upstream")
    return notes
