"""A live incident's state and what changes it: opening on the seconds already closed in its window,
each closed second and each closed bucket counted in, and the silence that resolves it.

The dataclass is saved field by field in the checkpoint (:mod:`floodwitness.watch.state`): its name and
its fields' names are the state format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from floodwitness.watch.buckets import BucketStats, fold
from floodwitness.watch.parse import BUCKET
from floodwitness.watch.sketch import HeavyHitters, Registers

if TYPE_CHECKING:
    from floodwitness.analysis.windows import WindowPolicy
    from floodwitness.watch.buckets import Heavy

KNOWN_NAMES_CAP = 10_000


@dataclass
class Incident:
    number: int
    start: int                 # epoch second: start of the first flagged 10-second window
    last_flag: int
    alerted_at: int
    requests: float = 0.0
    expected: float = 0.0
    errors: float = 0.0
    peak_rps: float = 0.0
    volume_seconds: int = 0
    error_seconds: int = 0
    attack_buckets: int = 0
    failure_buckets: int = 0
    stats: BucketStats = field(default_factory=BucketStats)
    clients: Registers = field(default_factory=Registers)  # every client of the incident's buckets
    new_clients: Registers = field(default_factory=Registers)  # those of them the audience did not know
    heavy: HeavyHitters = field(default_factory=HeavyHitters)
    kind: str = ""
    last_update: int = 0
    known_names: set[str] = field(default_factory=set)  # heavy hitters that were known clients (capped)
    suspect_names: set[str] = field(default_factory=set)  # heavy hitters that looked like attackers (capped)
    blocklist_sent: list[str] = field(default_factory=list)  # CIDRs of the blocklist as the last event left it
    last_event: str = ""  # log_time of the incident's last event


def quiet_seconds(window: WindowPolicy, inc: Incident) -> int:
    """Seconds without a flag that resolve ``inc``: a surge merges across a longer gap than errors alone."""
    return 60 * (window.merge_gap_minutes if inc.volume_seconds else window.short_gap_minutes)


def open_incident(number: int, start: int, sec: int, all_req: np.ndarray, all_err: np.ndarray, i: int,
                  level: float) -> Incident:
    """Incident ``number``, its window from ``start``, confirmed at second ``sec`` (``all_req[i + 9]``),
    with the seconds already closed in its window: up to 9 before this call's (``all_req``), and this
    call's. ``level``: the baseline's requests per bucket."""
    inc = Incident(number, start, sec, sec, last_update=sec)
    window = slice(max(i + BUCKET - 1 - (sec - start), 0), i + BUCKET)  # all_req[i + 9] is second sec
    inc.requests = float(all_req[window].sum())
    inc.errors = float(all_err[window].sum())
    inc.expected = level * (sec - start + 1) / BUCKET
    inc.peak_rps = float(all_req[window].max()) if len(all_req[window]) else 0.0
    return inc


def count_second(inc: Incident, requests: float, errors: float, level: float, *, volume: bool,
                 error: bool) -> None:
    """One closed second of ``inc``: its requests and errors, what the baseline expected, its flags."""
    inc.requests += requests
    inc.errors += errors
    inc.expected += level / BUCKET
    inc.peak_rps = max(inc.peak_rps, requests)
    inc.volume_seconds += int(volume)
    inc.error_seconds += int(error)


def count_bucket(inc: Incident, stats: BucketStats, heavy: list[Heavy], dropped: int, regs: Registers,
                 new_regs: Registers) -> None:
    """One closed bucket of ``inc``: its sums, heavy sources, distinct clients and distinct new clients."""
    fold(inc.stats, stats)
    feed(inc, heavy, dropped)
    inc.clients.merge(regs)
    inc.new_clients.merge(new_regs)


def feed(inc: Incident, heavy: list[Heavy], dropped: int) -> None:
    """The bucket's heavy sources into the incident's heavy hitters and its (capped) known and suspect names."""
    inc.heavy.add([h[0] for h in heavy], np.array([h[1] for h in heavy], dtype=np.int64), dropped)
    if len(inc.known_names) < KNOWN_NAMES_CAP:
        inc.known_names.update(h[0] for h in heavy if h[2])
    if len(inc.suspect_names) < KNOWN_NAMES_CAP:
        inc.suspect_names.update(h[0] for h in heavy if h[3])
