"""Live detection: the analysis stage's signals over a sliding window of the traffic as it arrives.

The clock is the logs' own time. A second is *closed* once lines ``lateness`` seconds younger have been
seen; then the requests and server errors of the 10 seconds ending there are checked against the rolling
baseline with the same flag functions ``analyze`` applies to minutes (:mod:`floodwitness.analysis.windows`,
scaled to 10 seconds). The baseline is the median of the last ``baseline_half_width`` minutes of unflagged
10-second buckets. A few consecutive flagged seconds raise an alert; while the incident lasts, the same
composition ``analyze`` computes (new clients, new networks, behaviour, concentration) is kept from
sketches, the detectors' own conditions turn it into findings and the verdict stage judges them, so the
alert's kind is the verdict so far.

Memory is bounded: a fixed number of buckets, fixed-size sketches and bit sets; only the client rows of the
buckets not yet closed (and of the last ``known_delay`` buckets) are held, whatever the number of clients.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from floodwitness.analysis.composition import Behaviour, Composition, concentration, excess_share
from floodwitness.analysis.phases import attack_and_failure
from floodwitness.analysis.windows import WindowPolicy, error_anomaly, latency_anomaly, volume_anomaly
from floodwitness.detectors import Finding
from floodwitness.detectors.rules import (
    bot_behaviour_holds,
    cache_busting_holds,
    concentrated_sources_hold,
    familiar_crowd_holds,
    known_clients_hold,
    new_networks_hold,
)
from floodwitness.mitigation import BlocklistPolicy, build_blocklist
from floodwitness.verdict import ATTACK_KINDS, judge_incident, summary_for
from floodwitness.watch.parse import BUCKET
from floodwitness.watch.sketch import HeavyHitters, Registers, SeenSet, kll

if TYPE_CHECKING:
    from floodwitness.watch.parse import ChunkStats

KNOWN_NAMES_CAP = 10_000
HISTORY = ("requests", "errors", "p95", "assets", "referers", "new", "new_network", "suspect")
#: the history rows whose rolling median is the baseline (p95: NaN-free median, buckets without times skipped)
MEDIANS = ("requests", "errors", "suspect", "p95")
ROW_FIELDS = ("second", "client_hash", "net_hash", "n", "n_errors", "assets", "referers", "queries", "distinct_queries")


@dataclass(frozen=True)
class LivePolicy:
    """Thresholds of live detection; the flag thresholds themselves are the analysis's WindowPolicy."""

    window: WindowPolicy = field(default_factory=WindowPolicy)
    lateness: int = 2              #: seconds a second stays open for lines that arrive out of order
    warmup_minutes: float = 10.0   #: baseline history needed before any alert
    confirm_seconds: int = 3       #: consecutive flagged seconds that raise an alert
    update_seconds: int = 60       #: an "update" per this many seconds of an incident (and on a new kind)
    known_delay_buckets: int = 6   #: a bucket's clients join the known audience only this much later
    heavy_per_bucket: int = 200    #: heaviest sources of each bucket fed to the heavy-hitters sketch
    known_bits: int = 26           #: bit set of known clients: 2**26 bits = 8 MiB
    network_bits: int = 22
    top_sources: int = 10
    #: suspects (new clients from new networks, no assets) flag on their own only when this many are active
    #: in the 10 seconds (client-seconds): a lone crawler from a new network is no attack
    min_suspect_clients: int = 10
    #: every update carries the whole blocklist, as the first alert and the resolution do; by default an
    #: update carries only its changes since the incident's previous event (blocklist_added/_removed)
    full_blocklists: bool = False

    @property
    def history_buckets(self) -> int:
        return self.window.baseline_half_width * 60 // BUCKET


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class BucketStats:
    """What one 10-second bucket's client rows say, against the audience known when it closed."""

    requests: float = 0.0
    errors: float = 0.0
    new: float = 0.0
    new_network: float = 0.0
    suspect: float = 0.0
    suspect_errors: float = 0.0  # the suspects' own 5xx
    assets: float = 0.0
    referers: float = 0.0
    new_assets: float = 0.0
    new_referers: float = 0.0
    new_queries: float = 0.0
    new_distinct_queries: float = 0.0
    new_clients: float = 0.0  # client-seconds of new clients (not distinct ones: see Incident.new_clients)
    early_suspect: float = 0.0  # requests of new clients from new networks that loaded no asset


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


class LiveDetector:
    """Feed it parsed chunks (:meth:`add`) and the clock (:meth:`advance`); it returns alert events."""

    def __init__(self, policy: LivePolicy | None = None) -> None:
        self.policy = policy or LivePolicy()
        p = self.policy
        self._start_clock(-1)  # nothing seen yet
        self.known = SeenSet(p.known_bits)
        self.known_nets = SeenSet(p.network_bits)
        self.delayed: deque[tuple[int, np.ndarray, np.ndarray]] = deque()
        self.incident: Incident | None = None
        self.incidents = 0
        self.lines = self.parsed = self.late = 0
        self.gaps = 0  #: jumps in the logs' time the clock restarted after (see add)
        self.rejected: dict[str, int] = {}
        self.last_bucket = Registers()
        self.now_wall: float | None = None  # set by live runs: detected_at is the wall clock then

    def _start_clock(self, closed: int) -> None:
        """The clock at ``closed`` (the last closed second; -1: none yet) with an empty window and baseline:
        at the start, and after a jump in the logs' time (:meth:`_jump`)."""
        self.closed = closed
        self.max_sec = closed
        self.pending_req = np.zeros(0)   # per second from closed + 1
        self.pending_err = np.zeros(0)
        self.recent_req = np.zeros(BUCKET - 1)  # the 9 seconds before the next one to close
        self.recent_err = np.zeros(BUCKET - 1)
        self.recent_sus = np.zeros(BUCKET - 1)
        self.recent_sus_clients = np.zeros(BUCKET - 1)
        self.rows: dict[int, list[dict[str, Any]]] = {}   # open bucket -> client row chunks
        self.times: dict[int, Any] = {}                   # open bucket -> KLL of request times
        # the baseline: one row per unflagged bucket, the last ``history_buckets`` of them (a ring)
        self.history = np.full((len(HISTORY), self.policy.history_buckets), np.nan)
        self.history_count = 0
        self.sorted_history: dict[str, list[float]] | None = None  # MEDIANS kept sorted (rebuilt, not saved)
        self.level = self.err_level = self.share = self.sus_level = 0.0
        self.usual_p95 = math.nan
        self.recent_buckets: deque[tuple[int, BucketStats, list[dict[str, Any]], Registers]] = deque(maxlen=3)
        self.streak = 0
        self.slow_until = -1
        self.minute_clients = deque[Registers](maxlen=60 // BUCKET)

    def _learn(self, keep: int) -> None:
        """Clients and networks of the delayed buckets join the known audience, all but the last ``keep``."""
        while len(self.delayed) > keep:
            _, clients, nets = self.delayed.popleft()
            self.known.add(clients)
            self.known_nets.add(nets)

    # -- input ------------------------------------------------------------------------------------------

    def add(self, chunk: ChunkStats) -> list[dict[str, Any]]:
        """Count a parsed chunk and close every second it makes old enough; returns the events raised.

        The clock goes second by second, so a jump in the logs' time longer than the baseline's history (a
        stray timestamp years off, last week's rotated file before today's) is not walked through: the
        traffic before it is closed, an open incident is let resolve in the silence, and the clock and the
        baseline restart after the gap (the known audience is kept); see :meth:`_jump`."""
        self.lines += chunk.lines
        self.parsed += chunk.parsed
        for reason, n in chunk.rejected.items():
            self.rejected[reason] = self.rejected.get(reason, 0) + n
        if chunk.parsed == 0:
            return []
        gap = self.policy.history_buckets * BUCKET
        events: list[dict[str, Any]] = []
        for part in chunk.split_at_gaps(gap):
            if self.max_sec >= 0 and int(part.seconds.min()) - self.max_sec > gap:
                events += self._jump(int(part.seconds.min()))
            events += self._add(part)
        return events

    def _jump(self, to_second: int) -> list[dict[str, Any]]:
        """Restart the clock at ``to_second``, a gap after the last traffic (see :meth:`add`)."""
        # close the last bucket whole (nothing arrives late for seconds that far behind): its clients join
        # the audience, its rows count in an open incident, which the silence after it then resolves
        last = self.max_sec - self.max_sec % BUCKET + BUCKET - 1
        events = self.advance(last)
        if self.incident is not None:
            events += self.advance(last + self._quiet_seconds(self.incident) + BUCKET)
        self.gaps += 1
        self._learn(0)  # the audience stays known across the gap
        self._start_clock(to_second - 1 - to_second % BUCKET)  # the bucket boundary before it
        return events

    def _add(self, chunk: ChunkStats) -> list[dict[str, Any]]:
        secs = chunk.seconds
        if self.closed < 0:
            self.closed = int(secs.min()) - 1
            self.closed -= (self.closed + 1) % BUCKET  # start on a bucket boundary
        base = self.closed + 1
        late = secs < base
        self.late += int(chunk.requests[late].sum())
        offsets = np.maximum(secs - base, 0)
        need = int(offsets.max()) + 1
        if need > len(self.pending_req):
            grow = need - len(self.pending_req)
            self.pending_req = np.concatenate([self.pending_req, np.zeros(grow)])
            self.pending_err = np.concatenate([self.pending_err, np.zeros(grow)])
        np.add.at(self.pending_req, offsets, chunk.requests)
        np.add.at(self.pending_err, offsets, chunk.errors)
        self.max_sec = max(self.max_sec, int(secs.max()))
        self._add_rows(chunk, base)
        return self.advance(self.max_sec - self.policy.lateness)

    def _add_rows(self, chunk: ChunkStats, base: int) -> None:
        first_open = base - base % BUCKET
        buckets = np.maximum(chunk.second // BUCKET * BUCKET, first_open)
        order = np.argsort(buckets, kind="stable")
        sorted_b = buckets[order]
        bounds = np.flatnonzero(np.diff(sorted_b)) + 1
        starts = np.concatenate([[0], bounds])
        ends = np.concatenate([bounds, [len(order)]])
        for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
            if s == e:
                continue
            idx = order[s:e]
            part = {name: getattr(chunk, name)[idx] for name in ROW_FIELDS}
            part["client"] = chunk.client.take(pa.array(idx))
            self.rows.setdefault(int(sorted_b[s]), []).append(part)
        if len(chunk.request_time):
            tb = np.maximum(chunk.time_bucket, first_open)
            order = np.argsort(tb, kind="stable")
            tb, rt = tb[order], chunk.request_time[order].astype(np.float32)
            cuts = np.flatnonzero(np.diff(tb)) + 1
            for lo, hi in zip(np.concatenate([[0], cuts]).tolist(), np.concatenate([cuts, [len(tb)]]).tolist(),
                              strict=True):
                sketch = self.times.setdefault(int(tb[lo]), kll())
                sketch.update(rt[lo:hi])

    # -- the clock --------------------------------------------------------------------------------------

    def advance(self, until: int) -> list[dict[str, Any]]:
        """Close every second up to ``until`` (inclusive), bucket by bucket."""
        events: list[dict[str, Any]] = []
        while self.max_sec >= 0 and self.closed < until:
            start = self.closed + 1
            bucket_end = start - start % BUCKET + BUCKET - 1
            stop = min(until, bucket_end)
            n = stop - start + 1
            req = self._take(self.pending_req, n)
            err = self._take(self.pending_err, n)
            self.pending_req, self.pending_err = self.pending_req[n:], self.pending_err[n:]
            events += self._seconds(start, req, err, self._suspect_seconds(start, n))
            self.closed = stop
            if stop == bucket_end:
                events += self._close_bucket(bucket_end - BUCKET + 1)
        return events

    @staticmethod
    def _take(values: np.ndarray, n: int) -> np.ndarray:
        out = np.zeros(n)
        k = min(n, len(values))
        out[:k] = values[:k]
        return out

    def warm(self) -> bool:
        return self.history_count * BUCKET >= self.policy.warmup_minutes * 60

    def _suspect_seconds(self, start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Requests per second, from ``start`` for ``n`` seconds, of clients new to the audience and from
        networks it never used, loading no asset (what ``analyze`` calls suspects), and how many such
        clients were active each second; from the open bucket's rows."""
        out = np.zeros(n)
        clients = np.zeros(n)
        for part in self.rows.get(start - start % BUCKET, []):
            offset = part["second"] - start
            keep = (offset >= 0) & (offset < n)
            if not keep.any():
                continue
            sus = ~self.known.contains(part["client_hash"][keep]) & \
                ~self.known_nets.contains(part["net_hash"][keep]) & (part["assets"][keep] == 0)
            out += np.bincount(offset[keep][sus], weights=part["n"][keep][sus], minlength=n)[:n]
            clients += np.bincount(offset[keep][sus], minlength=n)[:n]
        return out, clients

    def _seconds(self, start: int, req: np.ndarray, err: np.ndarray,
                 suspects: tuple[np.ndarray, np.ndarray]) -> list[dict[str, Any]]:
        """Flag each second by its trailing 10 seconds (the shared flag functions, at 10-second scale): its
        requests, its server errors, and the requests of new clients from new networks against their own
        usual level (an attack shows there first, while the total is still within the noise)."""
        wp = self.policy.window
        all_req = np.concatenate([self.recent_req, req])
        all_err = np.concatenate([self.recent_err, err])
        all_sus = np.concatenate([self.recent_sus, suspects[0]])
        all_sc = np.concatenate([self.recent_sus_clients, suspects[1]])
        self.recent_req, self.recent_err = all_req[-(BUCKET - 1):], all_err[-(BUCKET - 1):]
        self.recent_sus, self.recent_sus_clients = all_sus[-(BUCKET - 1):], all_sc[-(BUCKET - 1):]
        kernel = np.ones(BUCKET)
        r10 = np.convolve(all_req, kernel, mode="valid")
        e10 = np.convolve(all_err, kernel, mode="valid")
        s10 = np.convolve(all_sus, kernel, mode="valid")
        c10 = np.convolve(all_sc, kernel, mode="valid")
        expected = np.full(len(r10), self.level)
        early = volume_anomaly(s10, np.full(len(r10), self.sus_level), wp, seconds=BUCKET) & \
            (c10 >= self.policy.min_suspect_clients)
        volume = volume_anomaly(r10, expected, wp, seconds=BUCKET) | early
        errors = error_anomaly(r10, e10, np.full(len(r10), self.err_level), self.share, wp, seconds=BUCKET)
        events: list[dict[str, Any]] = []
        if not self.warm():
            return events
        if self.incident is None and not volume.any() and not errors.any() and self.slow_until < start:
            self.streak = 0
            return events
        for i in range(len(req)):
            sec = start + i
            flagged = bool(volume[i] or errors[i] or sec <= self.slow_until)
            self.streak = self.streak + 1 if flagged else 0
            inc = self.incident
            if inc is not None:
                inc.requests += float(req[i])
                inc.errors += float(err[i])
                inc.expected += self.level / BUCKET
                inc.peak_rps = max(inc.peak_rps, float(req[i]))
                inc.volume_seconds += int(volume[i])
                inc.error_seconds += int(errors[i])
                if flagged:
                    inc.last_flag = sec
                if sec - inc.last_flag >= self._quiet_seconds(inc):
                    events.append(self._event("resolved", inc, sec + 1))
                    self.incident = None
                elif sec - inc.last_update >= self.policy.update_seconds:
                    events.append(self._event("update", inc, sec + 1))
            elif flagged and self.streak >= self.policy.confirm_seconds:
                first = sec - self.streak + 1
                inc = self._open(first - (BUCKET - 1), sec, all_req, all_err, i)
                inc.volume_seconds = int(volume[max(i - self.streak + 1, 0): i + 1].sum())
                inc.error_seconds = int(errors[max(i - self.streak + 1, 0): i + 1].sum())
                events.append(self._event("alert", inc, sec + 1))
        return events

    def _quiet_seconds(self, inc: Incident) -> int:
        wp = self.policy.window
        return 60 * (wp.merge_gap_minutes if inc.volume_seconds else wp.short_gap_minutes)

    def _open(self, start: int, sec: int, all_req: np.ndarray, all_err: np.ndarray, i: int) -> Incident:
        self.incidents += 1
        inc = Incident(self.incidents, start, sec, sec, last_update=sec)
        # the seconds already closed in the incident's window: up to 9 before this call's, and this call's
        window = slice(max(i + BUCKET - 1 - (sec - start), 0), i + BUCKET)  # all_req[i + 9] is second sec
        inc.requests = float(all_req[window].sum())
        inc.errors = float(all_err[window].sum())
        inc.expected = self.level * (sec - start + 1) / BUCKET
        inc.peak_rps = float(all_req[window].max()) if len(all_req[window]) else 0.0
        # buckets closed since the window started belong to the incident: neither baseline nor audience
        for bucket, stats, parts, regs in self.recent_buckets:
            if bucket + BUCKET > start:
                _fold(inc.stats, stats)
                _, heavy, _, _, new_regs, _ = self._bucket_stats(parts)
                _feed(inc, heavy, 0)
                inc.clients.merge(regs)
                inc.new_clients.merge(new_regs)
        self.delayed = deque(d for d in self.delayed if d[0] + BUCKET <= start)
        self.incident = inc
        return inc

    # -- buckets ----------------------------------------------------------------------------------------

    def _close_bucket(self, bucket: int) -> list[dict[str, Any]]:
        p = self.policy
        parts = self.rows.pop(bucket, [])
        stats, heavy, dropped, regs, new_regs, hashes = self._bucket_stats(parts, heavy=self.incident is not None)
        times = self.times.pop(bucket, None)
        p95 = float(times.get_quantile(0.95)) if times is not None and not times.is_empty() else math.nan
        self.minute_clients.append(regs)
        # latency: the same check as analyze's minutes, on the bucket's 95th percentile
        if latency_anomaly(np.array([stats.requests]), np.array([p95]), np.array([self.level]), self.usual_p95,
                           p.window, seconds=BUCKET)[0] and self.warm():
            self.slow_until = bucket + 2 * BUCKET - 1
        inc = self.incident
        if inc is not None:
            _fold(inc.stats, stats)
            _feed(inc, heavy, dropped)
            inc.clients.merge(regs)
            inc.new_clients.merge(new_regs)
            attack, failure = attack_and_failure(
                np.array([stats.requests]), np.array([stats.errors]), np.array([stats.suspect]),
                np.array([stats.suspect_errors]),
                np.array([self.level]), np.array([self.err_level]), self.share, p.window, seconds=BUCKET)
            inc.attack_buckets += int(attack[0])
            inc.failure_buckets += int(failure[0])
            self.recent_buckets.clear()
            self.delayed.clear()
            return self._maybe_new_kind(inc, bucket + BUCKET)  # the bucket's last second is closed
        self.recent_buckets.append((bucket, stats, parts, regs))
        flagged = self.streak > 0 or self.slow_until >= bucket
        if not flagged:
            self._remember((stats.requests, stats.errors, p95, stats.assets, stats.referers, stats.new,
                            stats.new_network, stats.early_suspect))
            self.delayed.append((bucket, *hashes))
        self._learn(p.known_delay_buckets)
        return []

    def _history(self) -> dict[str, np.ndarray]:
        filled = self.history[:, : min(self.history_count, self.history.shape[1])]
        return dict(zip(HISTORY, filled, strict=True))

    def _remember(self, row: tuple[float, ...]) -> None:
        """Add an unflagged bucket to the baseline ring (dropping the oldest) and recompute the baseline."""
        slot = self.history_count % self.history.shape[1]
        ordered = self._sorted_history()
        if self.history_count >= self.history.shape[1]:
            for name in MEDIANS:
                old = float(self.history[HISTORY.index(name), slot])
                if not math.isnan(old):
                    values = ordered[name]
                    del values[bisect.bisect_left(values, old)]
        self.history[:, slot] = row
        for name in MEDIANS:
            new = float(self.history[HISTORY.index(name), slot])
            if not math.isnan(new):
                bisect.insort(ordered[name], new)
        self.history_count += 1
        self._rebaseline()

    def _sorted_history(self) -> dict[str, list[float]]:
        """The MEDIANS rows of the baseline ring, each sorted without NaN: kept up to date bucket by bucket,
        so a median is an index, not a sort of two hours of buckets (built from the ring after a restart)."""
        if self.sorted_history is None:
            h = self._history()
            self.sorted_history = {name: sorted(float(v) for v in h[name] if not math.isnan(v)) for name in MEDIANS}
        return self.sorted_history

    @staticmethod
    def _median(values: list[float]) -> float:
        """``np.median`` of the sorted ``values`` (NaN when empty)."""
        n = len(values)
        if not n:
            return math.nan
        mid = n // 2
        return values[mid] if n % 2 else (values[mid - 1] + values[mid]) / 2

    def _rebaseline(self) -> None:
        h = self._history()
        ordered = self._sorted_history()
        req, err = h["requests"], h["errors"]
        self.level = self._median(ordered["requests"])
        self.err_level = self._median(ordered["errors"])
        self.sus_level = self._median(ordered["suspect"])
        total = float(req.sum())
        self.share = float(err.sum() / total) if total else 0.0
        self.usual_p95 = self._median(ordered["p95"])

    def _bucket_stats(self, parts: list[dict[str, Any]], *, heavy: bool = True) -> tuple[
            BucketStats, list[tuple[str, int, bool, bool]], int, Registers, Registers, tuple[np.ndarray, np.ndarray]]:
        """A bucket's sums against the known audience, its distinct clients and distinct new clients, its
        client hashes, and (with ``heavy``) its heaviest sources: (name, requests, known, suspect)."""
        regs, new_regs = Registers(), Registers()
        if not parts:
            empty = np.zeros(0, np.uint64)
            return BucketStats(), [], 0, regs, new_regs, (empty, empty)
        col = {name: np.concatenate([p[name] for p in parts]) for name in ROW_FIELDS}
        n = col["n"].astype(float)
        known = self.known.contains(col["client_hash"])
        known_net = self.known_nets.contains(col["net_hash"])
        new = ~known
        botlike = (col["assets"] == 0) & (col["referers"] == 0)
        suspect = new & (~known_net | botlike)
        s = BucketStats(
            requests=float(n.sum()), errors=float(col["n_errors"].sum()), new=float(n[new].sum()),
            new_network=float(n[new & ~known_net].sum()), suspect=float(n[suspect].sum()),
            suspect_errors=float(col["n_errors"][suspect].sum()),
            assets=float(col["assets"].sum()), referers=float(col["referers"].sum()),
            new_assets=float(col["assets"][new].sum()), new_referers=float(col["referers"][new].sum()),
            new_queries=float(col["queries"][new].sum()),
            new_distinct_queries=float(col["distinct_queries"][new].sum()), new_clients=float(new.sum()),
            early_suspect=float(n[new & ~known_net & (col["assets"] == 0)].sum()))
        regs.add(col["client_hash"])
        new_regs.add(col["client_hash"][new])
        if not heavy:
            return s, [], 0, regs, new_regs, (col["client_hash"], col["net_hash"])
        # the bucket's heaviest sources (one client may have rows from several chunks: summed by hash)
        uniq, inverse = np.unique(col["client_hash"], return_inverse=True)
        per = np.bincount(inverse, weights=n)
        k = min(self.policy.heavy_per_bucket, len(per))
        top = np.argpartition(-per, k - 1)[:k] if k < len(per) else np.arange(len(per))
        dropped = int(per.sum() - per[top].sum())
        first_row = np.full(len(uniq), -1)
        first_row[inverse[::-1]] = np.arange(len(inverse))[::-1]
        clients = pa.concat_arrays([p["client"] for p in parts])
        names = clients.take(pa.array(first_row[top])).to_pylist()
        # a heavy source is a suspect (blockable) when new, from a new network, and it loaded no asset
        assets = np.bincount(inverse, weights=col["assets"])[top]
        rows = first_row[top]
        suspect = (new & ~known_net)[rows] & (assets == 0)
        top_sources = [(str(name), int(count), bool(k), bool(x))
                       for name, count, k, x in zip(names, per[top].tolist(), known[rows].tolist(),
                                                    suspect.tolist(), strict=True)]
        return s, top_sources, dropped, regs, new_regs, (col["client_hash"], col["net_hash"])

    # -- verdict so far ---------------------------------------------------------------------------------

    def _with_open(self, inc: Incident) -> tuple[BucketStats, Registers, Registers, list[tuple[str, int]]]:
        """The incident's sums, distinct clients and distinct new clients with the rows of its buckets not
        yet closed (an alert must not wait for them)."""
        stats = BucketStats(**asdict(inc.stats))
        regs = Registers(inc.clients.values.copy())
        new_regs = Registers(inc.new_clients.values.copy())
        extra: dict[str, int] = {}
        for bucket in sorted(self.rows):
            if bucket + BUCKET > inc.start and bucket <= self.closed:  # never rows ahead of the clock
                more, heavy, _, more_regs, more_new, _ = self._bucket_stats(self.rows[bucket])
                _fold(stats, more)
                regs.merge(more_regs)
                new_regs.merge(more_new)
                for name, count, _known, _suspect in heavy:
                    extra[name] = extra.get(name, 0) + count
        top = dict(inc.heavy.top(1000))
        for name, count in extra.items():
            top[name] = top.get(name, 0) + count
        return stats, regs, new_regs, sorted(top.items(), key=lambda kv: -kv[1])

    def composition(self, inc: Incident) -> Composition:
        """The incident's composition, as ``analyze`` defines it, from the live sums and sketches."""
        s, regs, new_regs, heavy_items = self._with_open(inc)
        h = {k: float(v.sum()) for k, v in self._history().items()}
        base_req = max(h["requests"], 1.0)
        churn = h["new"] / base_req
        net_churn = h["new_network"] / base_req
        requests = max(inc.requests, s.requests)
        excess = max(requests - inc.expected, 0.0)
        known_requests = max(s.requests - s.new, 0.0)
        heavy = np.array([c for _, c in heavy_items], dtype=float)
        top10, sources_80 = concentration(heavy, excess) if len(heavy) else (0.0, 0)
        if excess > 0 and heavy.sum() < 0.8 * excess:  # the heavy hitters alone do not reach 80%
            sources_80 = max(sources_80, int(regs.estimate()))
        new_b = Behaviour(requests=int(s.new), asset_share=s.new_assets / max(s.new, 1),
                          referer_share=s.new_referers / max(s.new, 1), query_share=s.new_queries / max(s.new, 1),
                          unique_query_share=s.new_distinct_queries / max(s.new_queries, 1),
                          error_share=0.0, top_path=None, top_path_share=0.0)
        base_b = Behaviour(requests=int(base_req), asset_share=h["assets"] / base_req,
                           referer_share=h["referers"] / base_req, query_share=0.0,
                           unique_query_share=0.0, error_share=self.share, top_path=None, top_path_share=0.0)
        when = (datetime.fromtimestamp(inc.start, UTC), datetime.fromtimestamp(inc.last_flag + 1, UTC))
        # both estimates from the same buckets; the new clients are a subset, so never counted above the rest
        # (the two estimates could cross only where HyperLogLog switches to linear counting)
        clients = int(regs.estimate())
        new_clients = min(int(new_regs.estimate()), clients)
        return Composition(
            start=when[0], end=when[1], requests=int(requests), expected=inc.expected, excess=excess,
            clients=clients, new_clients=new_clients, new_requests=int(s.new),
            new_network_requests=int(s.new_network), known_requests=int(known_requests), churn_share=churn,
            network_churn_share=net_churn,
            new_excess_share=excess_share(s.new - churn * inc.expected, excess),
            new_network_excess_share=excess_share(s.new_network - net_churn * inc.expected, excess),
            known_excess_share=excess_share(known_requests - (1 - churn) * inc.expected, excess),
            top10_excess_share=excess_share(top10, excess), sources_for_80pct=sources_80, new_behaviour=new_b,
            baseline_behaviour=base_b,
            known_clients_active=0, known_clients_with_errors=0, clients_table=pa.table({}))

    def findings(self, inc: Incident, c: Composition) -> list[Finding]:
        """The findings whose conditions hold, stated with the live numbers (no evidence queries live)."""
        fid = f"W{inc.number}"
        window = (c.start, c.end)
        out: list[Finding] = []

        def add(kind: str, name: str, claim: str, metrics: dict[str, Any]) -> None:
            out.append(Finding(f"{fid}-{name}", kind, claim, window, metrics, confidence=0.7))

        if inc.volume_seconds:
            add("traffic_surge", "surge", f"{c.requests:,} requests, {c.excess:,.0f} above the baseline",
                {"requests": c.requests, "expected": round(c.expected), "excess": round(c.excess)})
        if new_networks_hold(c):
            add("new_networks", "newnets", f"{c.new_network_excess_share:.0%} of the excess from networks the "
                "audience never used", {"new_network_excess_share": round(c.new_network_excess_share, 3)})
        if bot_behaviour_holds(c):
            add("bot_behaviour", "bots", f"new clients requested {c.new_behaviour.asset_share:.0%} assets "
                f"(baseline {c.baseline_behaviour.asset_share:.0%})",
                {"asset_share": round(c.new_behaviour.asset_share, 3)})
            if cache_busting_holds(c):
                add("cache_busting", "cachebust", f"{c.new_behaviour.query_share:.0%} of the new clients' "
                    "requests carried a query string, nearly all unique", {})
        if concentrated_sources_hold(c):
            add("concentrated_sources", "few", f"{c.sources_for_80pct} source(s) made 80% of the excess",
                {"sources_for_80pct": c.sources_for_80pct, "top10_excess_share": round(c.top10_excess_share, 3)})
        if familiar_crowd_holds(c):
            add("familiar_crowd", "crowd", "the new clients came from the audience's usual networks and loaded "
                "assets like people", {"asset_share": round(c.new_behaviour.asset_share, 3)})
        if known_clients_hold(c):
            add("known_clients_surge", "known", f"{c.known_excess_share:.0%} of the excess came from known clients",
                {"known_excess_share": round(c.known_excess_share, 3)})
        if inc.failure_buckets:
            minutes = math.ceil(inc.failure_buckets * BUCKET / 60)
            add("errors_without_surge", "inside", f"server errors stood out in {inc.failure_buckets * BUCKET} s "
                "without attack traffic", {"failure_minutes": minutes,
                                           "attack_minutes": math.ceil(inc.attack_buckets * BUCKET / 60)})
        return out

    def _maybe_new_kind(self, inc: Incident, now: int) -> list[dict[str, Any]]:
        before = inc.kind
        self._judge(inc)
        if before and inc.kind != before:
            return [self._event("update", inc, now)]
        return []

    def _judge(self, inc: Incident) -> tuple[Composition, list[Finding], float]:
        c = self.composition(inc)
        findings = self.findings(inc, c)
        verdict = judge_incident(findings, new_network_share=c.new_network_excess_share,
                                 known_share=c.known_excess_share)
        inc.kind = verdict.kind
        return c, findings, verdict.confidence

    def _event(self, kind: str, inc: Incident, log_time: int) -> dict[str, Any]:
        c, findings, confidence = self._judge(inc)
        inc.last_update = log_time - 1
        end = inc.last_flag + 1 if kind == "resolved" else log_time
        seconds = max(end - inc.start, 1)
        top = inc.heavy.top(self.policy.top_sources)
        known = inc.known_names
        event: dict[str, Any] = {
            "type": kind, "incident": f"W{inc.number}", "kind": inc.kind, "confidence": confidence,
            "log_time": _iso(log_time),
            "detected_at": _iso(self.now_wall) if self.now_wall is not None else _iso(log_time),
            "window": {"start": _iso(inc.start), "end": _iso(end), "seconds": seconds,
                       "requests": c.requests, "expected_requests": round(c.expected),
                       "excess_requests": round(c.excess), "errors": int(inc.errors),
                       "peak_rps": inc.peak_rps, "baseline_rps": round(self.level / BUCKET, 2),
                       "distinct_clients": c.clients, "new_clients": c.new_clients},
            "summary": summary_for(inc.kind, confidence) + f" {c.requests:,} requests in {seconds:,} s against "
                       f"{c.expected:,.0f} expected; {c.clients:,} clients.",
            "signals": [{"id": f.id, "kind": f.kind, "claim": f.claim} for f in findings],
            "top_sources": [{"client_ip": name, "requests": n, "known": name in known} for name, n in top],
        }
        blocklist = self._blocklist(inc, top, known) if inc.kind in ATTACK_KINDS else []
        event.update(self._blocklist_fields(kind, inc, blocklist))
        inc.last_event = event["log_time"]
        return event

    def _blocklist_fields(self, kind: str, inc: Incident, entries: list[dict[str, object]]) -> dict[str, Any]:
        """The blocklist as an event carries it: whole on an incident's first alert and on its resolution,
        and on an update only what changed since the incident's previous event (entries are known by their
        CIDR: an entry added carries its figures then; the resolution's whole list has the final ones)."""
        cidrs = [str(e["cidr"]) for e in entries]
        out: dict[str, Any]
        if kind == "update" and not self.policy.full_blocklists:
            before, now = set(inc.blocklist_sent), set(cidrs)
            out = {"blocklist_since": inc.last_event,
                   "blocklist_added": [e for e, cidr in zip(entries, cidrs, strict=True) if cidr not in before],
                   "blocklist_removed": [cidr for cidr in inc.blocklist_sent if cidr not in now]}
        else:
            out = {"blocklist": entries}
        out["blocklist_size"] = len(entries)
        inc.blocklist_sent = cidrs
        return out

    def _blocklist(self, inc: Incident, top: list[tuple[str, int]], known: set[str]) -> list[dict[str, object]]:
        """Single addresses only: live, the audience is a bit set, so the collateral of a wider prefix
        cannot be measured, and a blocklist must never cover what must not be blocked."""
        candidates = inc.heavy.top(1000)
        if inc.kind == "dos":
            c = self.composition(inc)
            candidates = candidates[: max(min(c.sources_for_80pct, len(candidates)), 1)]
        attackers = {name: n for name, n in candidates if name in inc.suspect_names and name not in known}
        policy = BlocklistPolicy(aggregate_v4=32, aggregate_v6=128)
        return [e.to_dict() for e in build_blocklist(attackers, {}, policy=policy).entries]

    # -- metrics and state ------------------------------------------------------------------------------

    def metrics(self) -> dict[str, float]:
        """Requests/s and error share over the last closed 10 seconds, distinct clients in the last minute."""
        regs = Registers()
        for r in self.minute_clients:
            regs.merge(r)
        req = float(self.recent_req.sum())
        return {"requests_per_second": req / (BUCKET - 1), "distinct_clients": regs.estimate(),
                "error_share": float(self.recent_err.sum()) / req if req else 0.0,
                "alert": 1.0 if self.incident is not None else 0.0, "lines": float(self.lines)}


def _fold(into: BucketStats, add: BucketStats) -> None:
    for name in BucketStats.__dataclass_fields__:
        setattr(into, name, getattr(into, name) + getattr(add, name))


def _feed(inc: Incident, heavy: list[tuple[str, int, bool, bool]], dropped: int) -> None:
    inc.heavy.add([h[0] for h in heavy], np.array([h[1] for h in heavy], dtype=np.int64), dropped)
    if len(inc.known_names) < KNOWN_NAMES_CAP:
        inc.known_names.update(h[0] for h in heavy if h[2])
    if len(inc.suspect_names) < KNOWN_NAMES_CAP:
        inc.suspect_names.update(h[0] for h in heavy if h[3])
