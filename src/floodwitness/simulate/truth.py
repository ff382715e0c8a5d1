"""The answer key written next to each simulated log."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import os
    from collections.abc import Mapping

SCHEMA = "floodwitness.truth/1"
_STAMP = re.compile(r"\[([^\]]+)\]")


def first_request_of(log: str | os.PathLike[str], addresses: set[str]) -> datetime:
    """Time of the first line of a simulated (combined-style) ``log`` sent by one of ``addresses``: the
    attack's first request, which detection delay is measured from (a scan of the file, for tests and
    benchmarks)."""
    with open(log, encoding="utf-8") as fh:
        for line in fh:
            if line.split(" ", 1)[0] in addresses:
                match = _STAMP.search(line)
                if match:
                    return datetime.strptime(match.group(1), "%d/%b/%Y:%H:%M:%S %z")
    raise ValueError(f"{log}: no request from the given addresses")


def rfc3339(d: datetime) -> str:
    """``2026-05-17T08:05:03Z`` (UTC, second resolution)."""
    return d.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Incident:
    """One incident: when it started and ended, its busiest minute and what it was.

    ``cause`` is ``attack``, ``surge`` (flash crowd), ``failure`` (bad deploy) or ``attack+failure``.
    ``phases`` names the parts (attack window, failure window, each burst of a pulse wave).
    """

    start: datetime
    end: datetime
    peak: datetime
    cause: str
    phases: tuple[tuple[str, datetime, datetime], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"start": rfc3339(self.start), "end": rfc3339(self.end),
                             "peak": rfc3339(self.peak), "cause": self.cause}
        if self.phases:
            d["phases"] = [{"what": w, "start": rfc3339(s), "end": rfc3339(e)} for w, s, e in self.phases]
        return d


@dataclass(frozen=True)
class Truth:
    """What really happened in a simulated log (``truth.json``)."""

    kind: str
    expected_verdict: str
    seed: int
    tz: str
    log: str
    lines: int
    incidents: tuple[Incident, ...]
    attackers: tuple[str, ...]
    known_clients: tuple[str, ...]
    crawlers: tuple[str, ...]
    retry_clients: tuple[str, ...]
    surge_clients: tuple[str, ...] = ()
    log_start: datetime | None = None
    log_end: datetime | None = None
    scale: float = 1.0
    hours: float = 3.0
    params: Mapping[str, float | str] = field(default_factory=dict, hash=False)
    schema: str = SCHEMA
    #: the network part of a network-level scenario (flows.csv, capture.pcap and what they hold); None otherwise
    network: Mapping[str, Any] | None = field(default=None, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "kind": self.kind,
            "expected_verdict": self.expected_verdict,
            "seed": self.seed,
            "tz": self.tz,
            "log": self.log,
            "lines": self.lines,
            "log_start": rfc3339(self.log_start) if self.log_start else None,
            "log_end": rfc3339(self.log_end) if self.log_end else None,
            "scale": self.scale,
            "hours": self.hours,
            "incidents": [i.to_dict() for i in self.incidents],
            "attackers": list(self.attackers),
            "known_clients": list(self.known_clients),
            "crawlers": list(self.crawlers),
            "retry_clients": list(self.retry_clients),
            "surge_clients": list(self.surge_clients),
            "params": dict(self.params),
        } | ({"network": dict(self.network)} if self.network is not None else {})

    def to_json(self) -> str:
        """The truth as JSON text (what ``truth.json`` holds)."""
        return json.dumps(self.to_dict(), indent=1) + "\n"
