"""Live network detection from flows (``watch --flows``): sources -> a rolling window of flows (the last
``window_seconds`` of flow time, Arrow tables dropped whole as they age, capped in rows) -> the batch detection
(analysis/network.py, the same detector ``analyze --flows`` runs) over the window, at most once per poll interval
(live) or per ``replay_step`` seconds of flow time (replay) -> episodes followed across detections
(watch/flowalerts.py) -> ``network_alert`` records through the watch's sinks.

Latency: an episode can only be opened once its vector passes the detector's thresholds (data/vectors.json,
e.g. 500 SYN packets at >= 100 pps for a SYN flood) over the flows that have ARRIVED: the exporter's active
timeout (nfcapd rotates its files every -t seconds, 300 by default; a CSV is as late as whoever writes it) comes on
top of one poll interval and one detection.
"""

from __future__ import annotations

import ipaddress
import itertools
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from floodwitness.analysis.network import analyze_network
from floodwitness.analysis.network_vectors import load_vectors
from floodwitness.errors import UsageError
from floodwitness.watch.flowalerts import EpisodeTracker
from floodwitness.watch.flowsource import FlowSource, SourceAccount, open_source

if TYPE_CHECKING:
    from collections.abc import Callable

    from floodwitness.analysis.network import NetworkAnalysis
    from floodwitness.watch.run import Sink

US = 1_000_000


@dataclass(frozen=True)
class FlowWatchOptions:
    victims: tuple[str, ...] | None = None  #: CIDRs to watch; None: chosen from the data, as analyze does
    replay: bool = False            #: read the sources to their end, the flows' own time as the clock
    from_start: bool = False        #: live: read what the sources hold already
    poll_interval: float = 1.0
    window_seconds: int = 600       #: flow time kept for the detection
    max_window_flows: int = 2_000_000  #: the window's cap in flows (the oldest tables go first beyond)
    replay_step: int = 10           #: replay: detect every this many seconds of flow time
    update_seconds: int = 30
    #: live: how far behind the wall clock flows may arrive before quiet time counts (nfcapd's -t and more)
    lateness: int = 60
    #: flows starting further than this after the clock (wall time live, the batch's median in replay) are
    #: implausible (a forged or broken time) and left out, counted
    horizon: int = 300
    idle_exit: float | None = None  #: live: stop after this many seconds without a new flow (tests)
    memory_limit: str | None = None


@dataclass
class FlowSummary:
    flows: int
    rejected: dict[str, int]
    detections: int
    events: int
    alerts: int
    seconds: float
    future_flows: int = 0
    dropped_flows: int = 0
    max_window_flows: int = 0
    failed_files: int = 0
    sources: list[SourceAccount] = field(default_factory=list)


class FlowWatcher:
    def __init__(self, specs: list[str], options: FlowWatchOptions, sinks: list[Sink],
                 on_metrics: Callable[[dict[str, float]], None] | None = None) -> None:
        if not specs:
            raise UsageError("no flow source to watch", hint="Give --flows DIR (nfcapd's) or FILE (nfdump CSV).")
        for cidr in options.victims or ():
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise UsageError(f"--victim {cidr!r} is not an address or CIDR",
                                 hint="Give a prefix like 203.0.113.0/24 or an address.") from None
        self.options = options
        self.sources: list[FlowSource] = []
        for spec in specs:
            self.sources.append(open_source(spec, replay=options.replay, from_start=options.from_start,
                                            first_id=len(self.sources) << 24))
        self.sinks, self.on_metrics = sinks, on_metrics
        self.con = duckdb.connect()
        if options.memory_limit:
            self.con.execute(f"SET memory_limit = '{options.memory_limit.replace(chr(39), '')}'")
        self.tracker = EpisodeTracker(quiet_seconds=load_vectors().merge_gap_s, update_seconds=options.update_seconds,
                                      window_seconds=options.window_seconds)
        self.window: list[tuple[pa.Table, int]] = []  # (flows, their last end in epoch seconds)
        self.rows = self.max_rows = 0
        self.clock = -1  # flow time, epoch seconds
        self.last_detect_clock = -1
        self.last_detect_wall = 0.0
        self.detect_seconds = 0.0  # how long the last detection took (live: the next waits at least twice that)
        self.dirty = False
        self.arrival_lag = 0.0
        self.detections = self.events = self.alerts = self.future = self.dropped = 0
        self.last: NetworkAnalysis | None = None
        self.stop_requested = False

    # -- the window ---------------------------------------------------------------------------------------

    def _plausible(self, table: pa.Table) -> pa.Table:
        if not table.num_rows:  # a batch of only rejected records (a header, a Summary block)
            return table
        start = pc.divide(pc.cast(table.column("start"), pa.int64()), US)
        ref = time.time() if not self.options.replay else float(np.percentile(start.to_numpy(), 99))
        ok = pc.less_equal(start, int(ref) + self.options.horizon)
        kept = table.filter(ok)
        self.future += table.num_rows - kept.num_rows
        return kept

    def _add(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        last_end = int(pc.max(pc.cast(table.column("end"), pa.int64())).as_py()) // US
        self.window.append((table, last_end))
        self.rows += table.num_rows
        self.clock = max(self.clock, last_end)
        if not self.options.replay:
            self.arrival_lag = max(0.0, time.time() - last_end)
        self.dirty = True
        self._prune()

    def _prune(self) -> None:
        cutoff = self.clock - self.options.window_seconds
        while self.window and (self.window[0][1] < cutoff
                               or (len(self.window) > 1 and self.rows > self.options.max_window_flows)):
            table, last_end = self.window.pop(0)
            self.rows -= table.num_rows
            if last_end >= cutoff:
                self.dropped += table.num_rows
        self.max_rows = max(self.max_rows, self.rows)
        if any(len(s.files) > 1 for s in self.sources):  # directories: forget the files that left the window
            kept = {fid for table, _ in self.window for fid in pc.unique(table.column("file_id")).to_pylist()}
            for source in self.sources:
                for fid in [f for f in source.files if f not in kept]:
                    del source.files[fid]

    def _slices(self, table: pa.Table) -> list[pa.Table]:
        """Replay: ``table`` cut at every ``replay_step`` seconds of flow time (sorted by start), so the clock
        moves as the flows' time did."""
        table = table.take(pc.sort_indices(table, [("start", "ascending")]))
        sec = pc.divide(pc.cast(table.column("start"), pa.int64()), US).to_numpy()
        step = self.options.replay_step
        cuts = np.flatnonzero(np.diff(sec // step)) + 1
        bounds = [0, *cuts.tolist(), table.num_rows]
        return [table.slice(a, b - a) for a, b in itertools.pairwise(bounds)]

    # -- detection ----------------------------------------------------------------------------------------

    def _detect(self) -> None:
        began = time.monotonic()
        cutoff = (self.clock - self.options.window_seconds) * US
        window = pa.concat_tables([t for t, _ in self.window]) if self.window else None
        if window is None:
            return
        window = window.filter(pc.greater_equal(pc.cast(window.column("end"), pa.int64()), cutoff))
        files = {fid: path for s in self.sources for fid, path in s.files.items()}
        analysis = analyze_network(self.con, window, self.options.victims, files)
        self.con.unregister("flows")
        self.detections += 1
        self.last = analysis
        self.dirty = False
        self.last_detect_clock, self.last_detect_wall = self.clock, time.monotonic()
        self.detect_seconds = self.last_detect_wall - began
        self._emit(self.tracker.observe(analysis, self.clock, self._now()))

    def _now(self) -> float | None:
        return None if self.options.replay else time.time()

    def _emit(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self.events += 1
            self.alerts += event["event"] == "open"
            for sink in self.sinks:
                sink.send(event)

    def metrics(self) -> dict[str, float]:
        """Packets/s and bits/s to the watched targets over the last 10 s of flow time, open episodes."""
        out = {"network_episodes_open": float(len(self.tracker.open)), "flows_in_window": float(self.rows)}
        series = self.last.series if self.last is not None else None
        if series is not None and series.packets:
            n = max(1, 10 // series.step_seconds)
            out["network_packets_per_second"] = float(np.mean(series.packets[-n:]))
            out["network_bits_per_second"] = float(np.mean(series.bits[-n:]))
        else:
            out["network_packets_per_second"] = out["network_bits_per_second"] = 0.0
        return out

    # -- the loop -----------------------------------------------------------------------------------------

    def step(self, final: bool = False) -> int:
        """One poll of every source; the detection when new flows came (live: at most once per poll
        interval). The number of flows read."""
        got = 0
        for source in self.sources:
            for batch in source.poll(final):
                table = self._plausible(batch)
                got += table.num_rows
                for piece in self._slices(table) if self.options.replay else [table]:
                    self._add(piece)
                    if self.options.replay and self.clock - self.last_detect_clock >= self.options.replay_step:
                        self._detect()
        if self.options.replay:
            return got
        wait = max(self.options.poll_interval, 2 * self.detect_seconds)  # leave the reading time to keep up
        if self.dirty and time.monotonic() - self.last_detect_wall >= wait:
            self._detect()
        elif not got:
            self._advance_wall_clock()
        if self.on_metrics is not None:
            self.on_metrics(self.metrics())
        return got

    def _advance_wall_clock(self) -> None:
        """Live and quiet: time passes without flows (so episodes close) when the flows keep the wall clock's
        time, allowing for how late they arrive."""
        now = int(time.time() - max(self.options.lateness, 2 * self.arrival_lag))
        if self.clock >= 0 and 0 < now - self.clock <= 3600:
            self.clock = now
            self._prune()
            self._emit(self.tracker.close_quiet(self.clock, self._now()))

    def run(self) -> FlowSummary:
        began = idle_since = time.monotonic()
        try:
            if self.options.replay:
                self.step(final=True)
                if self.dirty:
                    self._detect()
                self._emit(self.tracker.close_all(self.clock, None, "the replayed input ended"))
            else:
                while not self.stop_requested:
                    if self.step():
                        idle_since = time.monotonic()
                    elif self.options.idle_exit is not None and time.monotonic() - idle_since >= self.options.idle_exit:
                        break
                    else:
                        time.sleep(self.options.poll_interval / 4)
        finally:
            self.close()
        return self.summary(time.monotonic() - began)

    def summary(self, seconds: float) -> FlowSummary:
        rejected: dict[str, int] = {}
        for s in self.sources:
            for reason, n in s.account.rejected.items():
                rejected[reason] = rejected.get(reason, 0) + n
        return FlowSummary(sum(s.account.parsed for s in self.sources), rejected, self.detections, self.events,
                           self.alerts, seconds, self.future, self.dropped, self.max_rows,
                           sum(s.account.failed_files for s in self.sources), [s.account for s in self.sources])

    def close(self) -> None:
        for source in self.sources:
            source.close()
        self.con.close()
