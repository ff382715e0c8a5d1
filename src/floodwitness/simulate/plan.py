"""What a scenario adds to the everyday traffic (a :class:`Plan`), and how it is listed (a :class:`ScenarioInfo`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from floodwitness.simulate import incidents as inc
    from floodwitness.simulate import outage
    from floodwitness.simulate.events import Events
    from floodwitness.simulate.netflows import NetOutput, Requests
    from floodwitness.simulate.server import Failure
    from floodwitness.simulate.world import World


@dataclass(frozen=True)
class ScenarioInfo:
    """A scenario's name, the verdict a correct detector reaches on it, and what it models."""

    name: str
    expected_verdict: str
    description: str


@dataclass(frozen=True)
class Loss:
    """The site's uplink saturated from ``start`` to ``end`` (seconds): a ``share`` of the requests never arrive."""

    start: float
    end: float
    share: float


@dataclass
class Plan:
    """What a scenario adds to the everyday traffic."""

    rows: list[Events] = field(default_factory=list)
    failure: Failure | None = None
    # (cause, window, sub-phases (what, window), how the peak is measured: "lines" or "errors")
    incidents: list[tuple[str, inc.Window, list[tuple[str, inc.Window]], str]] = field(default_factory=list)
    params: dict[str, float | str] = field(default_factory=dict)
    down: outage.Down | None = None  # the site stops answering
    loss: Loss | None = None  # requests lost on a saturated link
    #: the network part: given the world and the requests of the access log (logged or not), the flows to write
    network: Callable[[World, Requests], NetOutput] | None = None
