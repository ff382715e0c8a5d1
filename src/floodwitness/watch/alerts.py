"""Where alerts go: NDJSON lines (a file, appended, or stdout) and, optionally, a webhook.

The webhook is posted from a background thread with retries and exponential backoff; the reader never
waits for it. Its queue is bounded: when a webhook is down for long, the oldest undelivered alerts are
dropped (and counted) rather than memory growing.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import IO, Any

from floodwitness.errors import UsageError

QUEUE_SIZE = 1000


class NdjsonSink:
    """Appends one JSON document per line, flushed at once (``-``: stdout). The file is opened (and created) at the
    first event: a run that fails before any (a replay of a missing log) leaves no empty alerts file behind; that
    it can be written is checked at once."""

    def __init__(self, target: str, *, protect: frozenset[str] = frozenset()) -> None:
        import os  # noqa: PLC0415

        if target != "-" and os.path.realpath(target) in {os.path.realpath(p) for p in protect}:
            raise UsageError(f"--alerts {target} is one of the watched logs",
                             hint="Write alerts to another file (or - for stdout).")
        self._target = target
        self._own = target != "-"
        self._fh: IO[str] | None = None if self._own else sys.stdout
        folder = os.path.dirname(os.path.abspath(target))
        if self._own:
            reason = ("is a folder" if os.path.isdir(target) else
                      "no such folder" if not os.path.isdir(folder) else
                      "permission denied" if not os.access(target if os.path.exists(target) else folder, os.W_OK)
                      else None)
            if reason is not None:
                raise UsageError(f"cannot open --alerts {target}: {reason}", hint="Choose a writable file.")

    def send(self, event: dict[str, Any]) -> None:
        if self._fh is None:
            try:
                self._fh = open(self._target, "a", encoding="utf-8")  # noqa: SIM115
            except OSError as exc:
                raise UsageError(f"cannot open --alerts {self._target}: {exc.strerror}",
                                 hint="Choose a writable file.") from exc
        self._fh.write(json.dumps(event, ensure_ascii=False) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._own and self._fh is not None:
            self._fh.close()


class WebhookSender:
    """POSTs each alert as JSON to ``url`` on a daemon thread, retrying with exponential backoff."""

    def __init__(self, url: str, *, attempts: int = 6, backoff: float = 0.5, max_backoff: float = 30.0,
                 timeout: float = 5.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"--webhook {url!r} is not an http(s) URL", hint="Give a URL like https://host/path.")
        self.url = url
        self.attempts, self.backoff, self.max_backoff, self.timeout = attempts, backoff, max_backoff, timeout
        self.queue: queue.Queue[dict[str, Any] | None] = queue.Queue(QUEUE_SIZE)
        self.delivered = self.failed = self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="fw-webhook", daemon=True)
        self._thread.start()

    def send(self, event: dict[str, Any]) -> None:
        """Queue ``event``; never blocks (the oldest queued alert gives way when the queue is full)."""
        while True:
            try:
                self.queue.put_nowait(event)
                return
            except queue.Full:
                try:
                    self.queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def _post(self, body: bytes) -> bool:
        request = urllib.request.Request(self.url, data=body, method="POST",  # noqa: S310 - http(s) checked
                                         headers={"Content-Type": "application/json",
                                                  "User-Agent": "floodwitness-watch"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return 200 <= int(response.status) < 300
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def _run(self) -> None:
        while True:
            event = self.queue.get()
            if event is None:
                return
            body = json.dumps(event, ensure_ascii=False).encode("utf-8")
            delay = self.backoff
            for attempt in range(self.attempts):
                if self._post(body):
                    self.delivered += 1
                    break
                if attempt + 1 < self.attempts:
                    time.sleep(delay)
                    delay = min(delay * 2, self.max_backoff)
            else:
                self.failed += 1

    def close(self, wait: float = 10.0) -> None:
        """Let queued alerts go out for up to ``wait`` seconds, then stop."""
        try:
            self.queue.put(None, timeout=wait)
        except queue.Full:
            return
        self._thread.join(wait)


class Metrics:
    """Prometheus gauges (needs the optional ``prometheus-client``: ``pip install floodwitness[watch]``)."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        try:
            import prometheus_client as prom  # noqa: PLC0415
        except ImportError as exc:
            raise UsageError("--metrics-port needs prometheus-client",
                             hint="Install it: pip install 'floodwitness[watch]'.") from exc
        self.registry = prom.CollectorRegistry()
        names = {"requests_per_second": "Requests per second over the last closed 10 seconds",
                 "distinct_clients": "Distinct clients in the last minute (HyperLogLog estimate)",
                 "error_share": "Share of 5xx responses over the last closed 10 seconds",
                 "alert": "1 while an incident is open, else 0",
                 "lines": "Lines read since the watch started (kept across restarts with --state)",
                 "network_packets_per_second": "Packets per second to the watched targets (flows, last 10 s of "
                                               "flow time)",
                 "network_bits_per_second": "Bits per second to the watched targets (flows, last 10 s of flow time)",
                 "network_episodes_open": "Network episodes (flood vectors seen in the flows) open now",
                 "flows_in_window": "Flows held in the rolling detection window"}
        self.gauges = {k: prom.Gauge(f"floodwitness_{k}", doc, registry=self.registry) for k, doc in names.items()}
        try:
            self.server, self.thread = prom.start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise UsageError(f"cannot serve metrics on {host}:{port}: {exc.strerror}",
                             hint="Choose another --metrics-port.") from exc

    def update(self, values: dict[str, float]) -> None:
        """Set the gauges ``values`` names (the log and the flow watchers each update their own)."""
        for key, value in values.items():
            if key in self.gauges:
                self.gauges[key].set(value)

    def close(self) -> None:
        self.server.shutdown()
