"""Simulated, labelled web-server access logs for tests, the demo and accuracy benchmarks.

``simulate(kind, outdir)`` writes ``outdir/access.log`` (nginx combined plus ``$request_time`` and
``$upstream_response_time``) and ``outdir/truth.json`` (what really happened), and returns the truth.

The log shows only what a real log shows. Underneath there is a site with an everyday audience
(people from a fixed set of ISP networks following a daily curve, search crawlers, API clients
polling, feed readers, uptime monitors, vulnerability scanners), a server of finite capacity (load
above it is shed with 503s, the rest is queued) and, depending on the scenario, a flood, a flash
crowd, a bad deploy with a retry storm, or both. The same seed always gives the same bytes.
"""

from __future__ import annotations

from pathlib import Path

from floodwitness.errors import UsageError
from floodwitness.simulate.plan import ScenarioInfo
from floodwitness.simulate.scenarios import SCENARIOS, run
from floodwitness.simulate.truth import Incident, Truth

__all__ = ["SCENARIOS", "Incident", "ScenarioInfo", "Truth", "simulate"]


def simulate(kind: str, outdir: Path, *, seed: int = 0, scale: float = 1.0, hours: float = 3.0) -> Truth:
    """Write a simulated log of scenario ``kind`` and its truth into ``outdir``; return the truth.

    ``scale`` multiplies every population and rate (1.0: about 5-30 requests/s of everyday traffic);
    ``hours`` is the length of the log (at least 0.5; the incident starts in its middle third).
    """
    if kind not in SCENARIOS:
        raise UsageError(f"unknown scenario {kind!r}",
                         hint="valid scenarios: " + ", ".join(sorted(SCENARIOS)))
    if not scale > 0:
        raise UsageError(f"scale must be positive, got {scale}", hint="try --scale 1")
    if not 0.5 <= hours <= 48:
        raise UsageError(f"hours must be between 0.5 and 48, got {hours}", hint="try --hours 3")
    if seed < 0:
        raise UsageError(f"seed must not be negative, got {seed}", hint="try --seed 0")
    return run(kind, Path(outdir), seed, float(scale), float(hours))
