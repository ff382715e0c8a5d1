"""The replay: the incident's requests counted per key and 1-second slot (one query), run through every
candidate limit at once as nginx's leaky bucket would (numpy, vectorised over clients and candidates),
and :func:`evaluate`, one set of limits replayed with given labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import ibis
import numpy as np

from floodwitness.analysis.composition import in_ranges
from floodwitness.mitigation.ratelimit.limits import KEYS, NO_LIMIT, PATH_CLASSES
from floodwitness.mitigation.ratelimit.needs import class_index, exempt_ips, memtable

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence
    from datetime import datetime

    from floodwitness.analysis.dataset import Dataset
    from floodwitness.mitigation.protected import ProtectedRanges
    from floodwitness.mitigation.ratelimit.limits import Limit

SLOT_SECONDS: Final = 1
RETRY_SECONDS: Final = 120
_EPS: Final = 1e-6  # float slack: nginx counts in whole milliseconds


@dataclass(frozen=True)
class ReplayCounts:
    """What a set of limits did to the replayed incident."""

    attack_requests: int
    attack_rejected: int
    legit_requests: int
    legit_rejected: int
    legit_clients: int
    legit_clients_hit: int  #: legitimate clients with at least one request rejected

    @property
    def attack_share(self) -> float:
        return self.attack_rejected / self.attack_requests if self.attack_requests else 0.0

    @property
    def legit_client_share(self) -> float:
        return self.legit_clients_hit / self.legit_clients if self.legit_clients else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"attack_requests": self.attack_requests, "attack_rejected": self.attack_rejected,
                "attack_rejected_share": round(self.attack_share, 4),
                "legit_requests": self.legit_requests, "legit_rejected": self.legit_rejected,
                "legit_rejected_share": round(self.legit_rejected / self.legit_requests, 5)
                if self.legit_requests else 0.0,
                "legit_clients": self.legit_clients, "legit_clients_hit": self.legit_clients_hit,
                "legit_clients_hit_share": round(self.legit_client_share, 5)}


@dataclass
class Rows:
    """Replay input for one key: (group, slot) counts sorted by slot, with class, client and label."""

    group: np.ndarray
    slot: np.ndarray
    count: np.ndarray
    cls: np.ndarray  # index into PATH_CLASSES; len(PATH_CLASSES) for exempt clients
    client: np.ndarray  # client id (dense rank over the window's clients)
    attack: np.ndarray  # bool
    groups: int


def replay_input(data: Dataset, window: tuple[datetime, datetime], attack: Collection[str],
                  legit: Collection[str], exempt: Collection[str]) -> tuple[dict[str, Rows], int]:
    """The incident's attack and legitimate requests counted per key and slot (one query), and how many
    legitimate requests were provoked retries (left out)."""
    w = in_ranges(data.requests, [window])
    attack_t, legit_t, exempt_t = memtable(attack), memtable(legit), memtable(exempt)
    w = w.mutate(is_attack=w.client_ip.isin(attack_t.ip), is_legit=w.client_ip.isin(legit_t.ip))
    w = w.filter(w.is_attack | w.is_legit)
    order = ibis.window(group_by=["client_ip", "path"], order_by=["ts", "file_id", "line"])
    failed = (w.status >= 500) | w.status.isin([408, 429, 499])
    w = w.mutate(prev_failed=failed.lag().over(order), prev_ts=w.ts.lag().over(order))
    retry = (~w.is_attack & w.prev_failed.fill_null(False)
             & (w.ts.delta(w.prev_ts, unit="second") <= RETRY_SECONDS).fill_null(False))
    start = ibis.literal(window[0], type="timestamp('UTC')")
    w = w.mutate(retry=retry, slot=w.ts.delta(start, unit="second") // SLOT_SECONDS,
                 cls=ibis.ifelse(w.client_ip.isin(exempt_t.ip), len(PATH_CLASSES), class_index(w)))
    per = w.group_by(["cls", "client_ip", "path", "slot", "retry"]).aggregate(n=w.count(), attack=w.is_attack.max())
    per = per.mutate(uri=ibis.dense_rank().over(order_by=["cls", "client_ip", "path"]),
                     ip=ibis.dense_rank().over(order_by=["cls", "client_ip"]),
                     client=ibis.dense_rank().over(order_by="client_ip"))
    table = data.engine.ibis.to_pyarrow(per.select("uri", "ip", "client", "cls", "slot", "retry", "n", "attack"))

    def col(name: str, dtype: Any) -> np.ndarray:
        return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=dtype)

    retry_rows = col("retry", bool)
    keep = ~retry_rows
    n = col("n", np.int64)
    cols = {name: col(name, np.int64)[keep] for name in ("uri", "ip", "client", "cls", "slot")}
    attack_rows, count = col("attack", bool)[keep], n[keep]
    out = {}
    for key, group in (("ip_uri", cols["uri"]), ("ip", cols["ip"])):
        groups = int(group.max()) + 1 if len(group) else 0
        combined = cols["slot"] * max(groups, 1) + group  # sorted by slot, then group
        uniq, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
        out[key] = Rows(group[first], cols["slot"][first], np.bincount(inverse, weights=count).astype(np.int64)
                         if len(uniq) else count[:0], cols["cls"][first], cols["client"][first], attack_rows[first],
                         groups)
    return out, int(n[retry_rows].sum())


@dataclass
class Outcome:
    """Per class and candidate: attack and legitimate requests rejected, and which legitimate rows were hit."""

    attack_rejected: np.ndarray  # (classes + 1, C)
    legit_rejected: np.ndarray  # (classes + 1, C)
    legit_hit: np.ndarray  # (legit rows, C) bool
    legit_rows: np.ndarray  # indexes of the legitimate rows in Rows


def simulate(rows: Rows, rates: np.ndarray, bursts: np.ndarray) -> Outcome:
    """Run every candidate limit over the rows at once. ``rates`` (requests per second) and ``bursts``
    have shape (classes + 1, C): candidate c of the row's class applies to each row."""
    ncls, ncand = rates.shape
    level = np.zeros((rows.groups, ncand))
    last = np.zeros(rows.groups)
    legit = ~rows.attack
    legit_index = np.cumsum(legit) - 1
    attack_rej = np.zeros((ncls, ncand), dtype=np.int64)
    legit_rej = np.zeros((ncls, ncand), dtype=np.int64)
    legit_hit = np.zeros((int(legit.sum()), ncand), dtype=bool)
    if not len(rows.slot):
        return Outcome(attack_rej, legit_rej, legit_hit, np.flatnonzero(legit))
    cuts = np.flatnonzero(np.diff(rows.slot)) + 1
    for a, e in zip(np.r_[0, cuts], np.r_[cuts, len(rows.slot)], strict=True):
        g, c = rows.group[a:e], rows.cls[a:e]
        now = float(rows.slot[a] * SLOT_SECONDS)
        drained = np.maximum(0.0, level[g] - rates[c] * (now - last[g])[:, None])
        room = np.maximum(0.0, np.floor(bursts[c] - drained + _EPS) + 1.0)
        count = rows.count[a:e, None]
        accepted = np.minimum(count, room)
        level[g] = drained + accepted
        last[g] = now
        rejected = (count - accepted).astype(np.int64)
        att = rows.attack[a:e]
        if att.any():
            np.add.at(attack_rej, c[att], rejected[att])
        if not att.all():
            np.add.at(legit_rej, c[~att], rejected[~att])
            legit_hit[legit_index[a:e][~att]] = rejected[~att] > 0
    return Outcome(attack_rej, legit_rej, legit_hit, np.flatnonzero(legit))


def evaluate(data: Dataset, window: tuple[datetime, datetime], limits: Sequence[Limit], attack: Collection[str],
             legit: Collection[str], protected: ProtectedRanges) -> ReplayCounts:
    """Replay ``window`` through one set of limits with the given labels (benchmarks pass the truth)."""
    incident = in_ranges(data.requests, [window])
    exempt = set(exempt_ips(data, incident, protected))
    per_key, _ = replay_input(data, window, set(attack), set(legit) - set(attack), exempt)
    by_class = {x.path_class: x for x in limits}
    totals = [0, 0, 0, 0]
    hit_all: set[int] = set()
    legit_clients: set[int] = set()
    for key in KEYS:
        rows = per_key[key]
        if key == "ip":
            legit_clients = set(rows.client[~rows.attack].tolist())
            totals[0] += int(rows.count[rows.attack].sum())
            totals[2] += int(rows.count[~rows.attack].sum())
        rates = np.full((len(PATH_CLASSES) + 1, 1), NO_LIMIT)
        bursts = np.full((len(PATH_CLASSES) + 1, 1), NO_LIMIT)
        for ci, pc in enumerate(PATH_CLASSES):
            limit = by_class.get(pc.name)
            if limit is not None and limit.key == key:
                rates[ci, 0], bursts[ci, 0] = limit.rate_per_minute / 60.0, limit.burst
        out = simulate(rows, rates, bursts)
        totals[1] += int(out.attack_rejected.sum())
        totals[3] += int(out.legit_rejected.sum())
        hit_all |= set(rows.client[out.legit_rows[out.legit_hit[:, 0]]].tolist())
    return ReplayCounts(totals[0], totals[1], totals[2], totals[3], len(legit_clients), len(hit_all))
