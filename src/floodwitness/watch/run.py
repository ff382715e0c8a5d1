"""The watch loop: follow -> parse -> detect -> alert, with checkpoints."""

from __future__ import annotations

import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from floodwitness.engine import Engine, EngineConfig
from floodwitness.errors import UsageError
from floodwitness.formats import get_format
from floodwitness.formats.detect import SAMPLE_LINES, detect
from floodwitness.formats.json_format import NginxJsonFormat
from floodwitness.inputs.discover import discover
from floodwitness.inputs.lines import DEFAULT_MAX_LINE_BYTES, FileAccount
from floodwitness.watch import state as checkpoint
from floodwitness.watch.detector import LiveDetector, LivePolicy
from floodwitness.watch.follow import Chunk, Follower, Tracked, check_specs, missing_specs
from floodwitness.watch.parse import ChunkParser, ChunkStats

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from floodwitness.formats.base import LogFormat


class Sink(Protocol):
    def send(self, event: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class WatchOptions:
    format: str = "auto"
    replay: bool = False            #: read the logs to their end as fast as possible, the logs' time as clock
    from_start: bool = False        #: live: read files that exist at start from their first line
    state: str | None = None        #: checkpoint folder
    poll_interval: float = 0.5
    checkpoint_seconds: float = 5.0
    #: most bytes read and parsed at once; None: 16 MiB live, 64 MiB in replay (each chunk costs the engine
    #: ~40 ms of planning whatever its size, which a replay of gigabytes should not pay per 16 MiB)
    chunk_bytes: int | None = None
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    idle_exit: float | None = None  #: live: stop after this many seconds without a new line (tests)
    threads: int | None = None
    memory_limit: str | None = None  #: e.g. "1GB" (DuckDB's memory_limit)
    policy: LivePolicy = field(default_factory=LivePolicy)


@dataclass
class WatchSummary:
    lines: int
    parsed: int
    rejected: dict[str, int]
    events: int
    alerts: int
    seconds: float
    #: jumps in the logs' time longer than the baseline's history: the clock and baseline restarted after each
    gaps: int = 0


class Watcher:
    """Runs one watch over ``specs`` (file names, globs, or ``-`` for stdin)."""

    def __init__(self, specs: list[str], options: WatchOptions, sinks: list[Sink],
                 on_metrics: Callable[[dict[str, float]], None] | None = None) -> None:
        if not specs:
            raise UsageError("no log to watch", hint="Name log files or globs, or - for stdin.")
        self.stdin = specs == ["-"]
        if "-" in specs and not self.stdin:
            raise UsageError("stdin (-) cannot be watched together with files", hint="Watch either - or files.")
        if self.stdin and options.state:
            raise UsageError("--state needs files: stdin has no offsets to resume from",
                             hint="Watch the log files themselves, or drop --state.")
        check_specs(specs)
        if options.replay and not self.stdin:
            discover(specs)  # a replay reads what is there: a name or glob that finds nothing fails as in analyze
        #: live, names and globs that match nothing yet: waited for, as ``tail -F`` does
        self.waiting = [] if options.replay or self.stdin else missing_specs(specs)
        self.specs = specs
        self.options = options
        self.sinks = sinks
        self.on_metrics = on_metrics
        self.engine = Engine(EngineConfig(threads=options.threads, memory_limit=options.memory_limit))
        self.chunk_bytes = options.chunk_bytes or ((64 if options.replay else 16) << 20)
        self.detector = LiveDetector(options.policy)
        self.follower = Follower(specs, from_start=options.from_start or options.replay,
                                 chunk_bytes=self.chunk_bytes, max_line_bytes=options.max_line_bytes)
        self.parsers: dict[int, ChunkParser] = {}
        self.events = self.alerts = 0
        self.stop_requested = False
        if options.state:
            restored = checkpoint.load(options.state, self.detector)
            if restored is not None:
                self.follower.restore(restored[0])

    # -- parsing ------------------------------------------------------------------------------------------

    def _format(self, data: bytes, source: str) -> LogFormat:
        sample = data[: 1 << 20].decode("utf-8", errors="replace").splitlines()[:SAMPLE_LINES]
        if self.options.format != "auto":
            fmt = get_format(self.options.format)
            return fmt.bind(sample) if isinstance(fmt, NginxJsonFormat) else fmt
        found = detect(sample, source=source).format
        return found.bind(sample) if isinstance(found, NginxJsonFormat) else found

    def _parser(self, t: Tracked, data: bytes) -> ChunkParser | None:
        parser = self.parsers.get(t.file_id)
        if parser is None:
            if t.format is None:
                if not data.strip():
                    return None
                fmt = self._format(data, t.path)
                t.format = fmt.name
            else:
                fmt = self._format(data, t.path) if t.format == "nginx_json" else get_format(t.format)
            account = FileAccount(t.file_id, t.path, lines_read=t.lines)
            parser = ChunkParser(self.engine, fmt, account, max_line_bytes=self.options.max_line_bytes)
            self.parsers[t.file_id] = parser
        return parser

    def _parse(self, chunk: Chunk) -> ChunkStats:
        t = chunk.file
        if chunk.restarted:
            self.parsers.pop(t.file_id, None)
            t.format = None
            return ChunkStats.empty()
        parser = self._parser(t, chunk.data)
        if parser is None:
            return ChunkStats.empty()
        stats = parser.parse(chunk.data)
        t.lines = parser.batcher.account.lines_read
        return stats

    # -- the loop -----------------------------------------------------------------------------------------

    def _emit(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self.events += 1
            self.alerts += event["type"] == "alert"
            for sink in self.sinks:
                sink.send(event)

    def _chunks(self, final: bool) -> Iterator[Chunk]:
        if self.stdin:
            yield from _stdin_chunks(self.follower, self.chunk_bytes)
        else:
            yield from self.follower.poll(final=final)

    def _next_parsed(self, chunks: Iterator[Chunk]) -> ChunkStats | None:
        chunk = next(chunks, None)
        return None if chunk is None else self._parse(chunk)

    def _pass(self, final: bool) -> int:
        """One poll: read and parse every chunk, in order, on a worker thread, one chunk ahead of the
        detector (the engine and numpy release the GIL, so parsing the next chunk overlaps detecting on
        this one). Only the worker touches the follower and the parsers; only this thread the detector."""
        lines = 0
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fw-parse") as pool:
            chunks = self._chunks(final)
            ahead: Future[ChunkStats | None] = pool.submit(self._next_parsed, chunks)
            while True:
                stats = ahead.result()
                if stats is None:
                    break
                ahead = pool.submit(self._next_parsed, chunks)
                if not self.options.replay:
                    self.detector.now_wall = time.time()
                self._emit(self.detector.add(stats))
                lines += stats.lines
        return lines

    def _checkpoint(self) -> None:
        if self.options.state:
            checkpoint.save(self.options.state, self.detector, self.follower.state(), {})

    def run(self) -> WatchSummary:
        began = time.monotonic()
        last_checkpoint = time.monotonic()
        idle_since = time.monotonic()
        try:
            while not self.stop_requested:
                final = self.options.replay or self.stdin
                got = self._pass(final)
                if self.options.replay or self.stdin:
                    self._emit(self.detector.advance(self.detector.max_sec))
                    break
                now = time.monotonic()
                if got:
                    idle_since = now
                else:
                    self._advance_wall_clock()
                if self.on_metrics is not None:
                    self.on_metrics(self.detector.metrics())
                if now - last_checkpoint >= self.options.checkpoint_seconds:
                    self._checkpoint()
                    last_checkpoint = now
                if self.options.idle_exit is not None and now - idle_since >= self.options.idle_exit:
                    break
                if not got:
                    time.sleep(self.options.poll_interval)
        finally:
            self._checkpoint()
            if self.on_metrics is not None:
                self.on_metrics(self.detector.metrics())
            self.engine.close()
        d = self.detector
        return WatchSummary(d.lines, d.parsed, dict(d.rejected), self.events, self.alerts, time.monotonic() - began,
                            d.gaps)

    def _advance_wall_clock(self) -> None:
        """Live, quiet: time passes even without lines (so incidents resolve), when the logs keep the
        wall clock's time (not when old logs are being read)."""
        d = self.detector
        now = int(time.time()) - d.policy.lateness
        if d.max_sec >= 0 and 0 <= now - d.max_sec <= 3600:
            d.now_wall = time.time()
            self._emit(d.advance(now))


def _stdin_chunks(follower: Follower, chunk_bytes: int) -> Iterator[Chunk]:
    stream = sys.stdin.buffer
    t = Tracked("-", 0, 0, 0, "", file_id=0)
    carry = b""
    while True:
        block = stream.read(chunk_bytes)
        if not block:
            break
        data = carry + block
        cut = data.rfind(b"\n")
        if cut < 0:
            carry = data
            continue
        carry = data[cut + 1:]
        yield Chunk(t, data[:cut + 1], t.offset)
        t.offset += cut + 1
    if carry:
        yield Chunk(t, carry + b"\n", t.offset)
    del follower
