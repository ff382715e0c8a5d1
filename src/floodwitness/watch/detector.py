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

Here: the policy, the clock and the incident's lifecycle. The parts: a bucket's statistics
(:mod:`~floodwitness.watch.buckets`), the rolling baseline (:mod:`~floodwitness.watch.baseline`), the
incident's state (:mod:`~floodwitness.watch.incident`), the live composition and findings
(:mod:`~floodwitness.watch.findings`), the alert records and their blocklists (:mod:`~floodwitness.watch.events`).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from floodwitness.analysis.phases import attack_and_failure
from floodwitness.analysis.windows import WindowPolicy, error_anomaly, latency_anomaly, volume_anomaly
from floodwitness.verdict import ATTACK_KINDS, judge_incident
from floodwitness.watch.baseline import HISTORY, MEDIANS, RollingBaseline
from floodwitness.watch.buckets import (
    ROW_FIELDS,
    BucketStats,
    BucketSummary,
    bucket_rows,
    bucket_stats,
    fold,
    suspect_seconds,
    take,
)
from floodwitness.watch.events import alert_record, blocklist_fields, live_blocklist
from floodwitness.watch.findings import live_composition, live_findings
from floodwitness.watch.incident import (
    KNOWN_NAMES_CAP,
    Incident,
    count_bucket,
    count_second,
    open_incident,
    quiet_seconds,
)
from floodwitness.watch.parse import BUCKET
from floodwitness.watch.sketch import Registers, SeenSet

if TYPE_CHECKING:
    from floodwitness.analysis.composition import Composition
    from floodwitness.detectors import Finding
    from floodwitness.watch.parse import ChunkStats

#: what importers read from here; the pieces live in the modules imported above
__all__ = ["HISTORY", "KNOWN_NAMES_CAP", "MEDIANS", "ROW_FIELDS", "BucketStats", "Incident", "LiveDetector",
           "LivePolicy"]


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


class LiveDetector(RollingBaseline):
    """Feed it parsed chunks (:meth:`add`) and the clock (:meth:`advance`); it returns alert events.

    Its attributes are its whole state (the checkpoint saves them by name); the rolling baseline's are
    kept by :class:`~floodwitness.watch.baseline.RollingBaseline`."""

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
        self._reset_baseline(self.policy.history_buckets)
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
        bucket_rows(chunk, base, self.rows, self.times)
        return self.advance(self.max_sec - self.policy.lateness)

    # -- the clock --------------------------------------------------------------------------------------

    def advance(self, until: int) -> list[dict[str, Any]]:
        """Close every second up to ``until`` (inclusive), bucket by bucket."""
        events: list[dict[str, Any]] = []
        while self.max_sec >= 0 and self.closed < until:
            start = self.closed + 1
            bucket_end = start - start % BUCKET + BUCKET - 1
            stop = min(until, bucket_end)
            n = stop - start + 1
            req = take(self.pending_req, n)
            err = take(self.pending_err, n)
            self.pending_req, self.pending_err = self.pending_req[n:], self.pending_err[n:]
            suspects = suspect_seconds(self.rows.get(start - start % BUCKET, []), start, n, self.known,
                                       self.known_nets)
            events += self._seconds(start, req, err, suspects)
            self.closed = stop
            if stop == bucket_end:
                events += self._close_bucket(bucket_end - BUCKET + 1)
        return events

    def warm(self) -> bool:
        return self.history_count * BUCKET >= self.policy.warmup_minutes * 60

    def _flags(self, req: np.ndarray, err: np.ndarray, suspects: tuple[np.ndarray, np.ndarray]) -> tuple[
            np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Flag each second by its trailing 10 seconds (the shared flag functions, at 10-second scale): its
        requests, its server errors, and the requests of new clients from new networks against their own
        usual level (an attack shows there first, while the total is still within the noise). Returns the
        requests and errors of the 9 seconds before and of these, and the volume and error flags."""
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
        return all_req, all_err, volume, errors

    def _seconds(self, start: int, req: np.ndarray, err: np.ndarray,
                 suspects: tuple[np.ndarray, np.ndarray]) -> list[dict[str, Any]]:
        """Close the seconds from ``start``: flag them (:meth:`_flags`), count them in an open incident,
        resolve it after enough quiet, or open one after ``confirm_seconds`` flagged seconds in a row."""
        all_req, all_err, volume, errors = self._flags(req, err, suspects)
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
                count_second(inc, float(req[i]), float(err[i]), self.level, volume=bool(volume[i]),
                             error=bool(errors[i]))
                events += self._after_second(inc, sec, flagged=flagged)
            elif flagged and self.streak >= self.policy.confirm_seconds:
                first = sec - self.streak + 1
                inc = self._open(first - (BUCKET - 1), sec, all_req, all_err, i)
                inc.volume_seconds = int(volume[max(i - self.streak + 1, 0): i + 1].sum())
                inc.error_seconds = int(errors[max(i - self.streak + 1, 0): i + 1].sum())
                events.append(self._event("alert", inc, sec + 1))
        return events

    def _after_second(self, inc: Incident, sec: int, *, flagged: bool) -> list[dict[str, Any]]:
        """The open incident after its second ``sec``: resolved after enough quiet, else an update when due."""
        if flagged:
            inc.last_flag = sec
        if sec - inc.last_flag >= self._quiet_seconds(inc):
            resolved = self._event("resolved", inc, sec + 1)
            self.incident = None
            return [resolved]
        if sec - inc.last_update >= self.policy.update_seconds:
            return [self._event("update", inc, sec + 1)]
        return []

    def _quiet_seconds(self, inc: Incident) -> int:
        return quiet_seconds(self.policy.window, inc)

    def _open(self, start: int, sec: int, all_req: np.ndarray, all_err: np.ndarray, i: int) -> Incident:
        self.incidents += 1
        inc = open_incident(self.incidents, start, sec, all_req, all_err, i, self.level)
        # buckets closed since the window started belong to the incident: neither baseline nor audience
        for bucket, stats, parts, regs in self.recent_buckets:
            if bucket + BUCKET > start:
                summary = self._bucket_stats(parts)
                count_bucket(inc, stats, summary.heavy, 0, regs, summary.new_regs)
        self.delayed = deque(d for d in self.delayed if d[0] + BUCKET <= start)
        self.incident = inc
        return inc

    # -- buckets ----------------------------------------------------------------------------------------

    def _bucket_stats(self, parts: list[dict[str, Any]], *, heavy: bool = True) -> BucketSummary:
        """A bucket's sums against the audience known now (see :func:`~floodwitness.watch.buckets.bucket_stats`)."""
        return bucket_stats(parts, self.known, self.known_nets, self.policy.heavy_per_bucket, heavy=heavy)

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
            count_bucket(inc, stats, heavy, dropped, regs, new_regs)
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
                more = self._bucket_stats(self.rows[bucket])
                fold(stats, more.stats)
                regs.merge(more.regs)
                new_regs.merge(more.new_regs)
                for name, count, _known, _suspect in more.heavy:
                    extra[name] = extra.get(name, 0) + count
        top = dict(inc.heavy.top(1000))
        for name, count in extra.items():
            top[name] = top.get(name, 0) + count
        return stats, regs, new_regs, sorted(top.items(), key=lambda kv: -kv[1])

    def composition(self, inc: Incident) -> Composition:
        """The incident's composition, as ``analyze`` defines it, from the live sums and sketches."""
        s, regs, new_regs, heavy_items = self._with_open(inc)
        return live_composition(inc, s, regs, new_regs, heavy_items, self._history(), self.share)

    def findings(self, inc: Incident, c: Composition) -> list[Finding]:
        """The findings whose conditions hold, stated with the live numbers (no evidence queries live)."""
        return live_findings(inc, c)

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
        event = alert_record(kind, inc, log_time, c, findings, confidence, level=self.level, now_wall=self.now_wall,
                             top_sources=self.policy.top_sources)
        blocklist = self._blocklist(inc) if inc.kind in ATTACK_KINDS else []
        event.update(blocklist_fields(kind, inc, blocklist, full=self.policy.full_blocklists))
        inc.last_event = event["log_time"]
        return event

    def _blocklist(self, inc: Incident) -> list[dict[str, object]]:
        """The incident's blocklist: of a DoS, only among the sources that made 80% of the excess."""
        sources = self.composition(inc).sources_for_80pct if inc.kind == "dos" else None
        return live_blocklist(inc, inc.known_names, sources)

    # -- metrics ----------------------------------------------------------------------------------------

    def metrics(self) -> dict[str, float]:
        """Requests/s and error share over the last closed 10 seconds, distinct clients in the last minute."""
        regs = Registers()
        for r in self.minute_clients:
            regs.merge(r)
        req = float(self.recent_req.sum())
        return {"requests_per_second": req / (BUCKET - 1), "distinct_clients": regs.estimate(),
                "error_share": float(self.recent_err.sum()) / req if req else 0.0,
                "alert": 1.0 if self.incident is not None else 0.0, "lines": float(self.lines)}
