"""The access-log watcher and the flow watcher in one ``watch`` process: the flows on a thread of their own (the
detection over the window runs in DuckDB, which releases the GIL), the logs on the caller's, one shared sink
(each event written whole under a lock). Either may run alone. When one side fails, the other is stopped and the
error is raised on the caller's thread (the library never prints)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from floodwitness.watch.flowwatch import FlowSummary, FlowWatcher
    from floodwitness.watch.run import Sink, Watcher, WatchSummary

#: how long the flow thread is given to finish its last poll once the logs' watch ended (live)
JOIN_SECONDS = 30.0


class SharedSink:
    """Forwards each event to every sink, one event at a time."""

    def __init__(self, sinks: list[Sink]) -> None:
        self.sinks = sinks
        self.lock = threading.Lock()

    def send(self, event: dict[str, Any]) -> None:
        with self.lock:
            for sink in self.sinks:
                sink.send(event)


def run_together(logs: Watcher | None, flows: FlowWatcher | None) -> tuple[WatchSummary | None, FlowSummary | None]:
    """Run both watchers until they end (replay: each to its input's end; live: --idle-exit or an interrupt)."""
    if logs is None:
        return None, flows.run() if flows is not None else None
    if flows is None:
        return logs.run(), None
    out: dict[str, Any] = {}

    def flow_side() -> None:
        try:
            out["flows"] = flows.run()
        except BaseException as exc:  # handed to the caller's thread, which raises it
            out["error"] = exc
            logs.stop_requested = True

    thread = threading.Thread(target=flow_side, name="fw-flows", daemon=True)
    thread.start()
    try:
        log_summary = logs.run()
    except BaseException:
        flows.stop_requested = True
        thread.join(JOIN_SECONDS)
        raise
    live = not flows.options.replay
    if live and flows.options.idle_exit is None:
        flows.stop_requested = True
    thread.join(JOIN_SECONDS + (flows.options.idle_exit or 0.0) if live else None)
    if "error" in out:
        raise out["error"]
    return log_summary, out.get("flows")
