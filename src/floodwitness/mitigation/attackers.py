"""Which sources an attack's blocklist and rate limits are aimed at."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from floodwitness.detectors.base import FINDING_KINDS

if TYPE_CHECKING:
    from collections.abc import Sequence

    from floodwitness.detectors.base import Finding


def requests_by_client(table: pa.Table) -> dict[str, int]:
    """``client_ip: requests`` of a per-client table."""
    return dict(zip(table.column("client_ip").to_pylist(), table.column("requests").to_pylist(), strict=True))


def select_attackers(kind: str, suspected: pa.Table, clients: pa.Table, findings: Sequence[Finding],
                     abusers: pa.Table | None = None) -> dict[str, int]:
    """The attacking sources and their requests: the ``suspected`` clients, or for a DoS (``kind``) the few
    heaviest sources that made 80% of the excess (``concentrated_sources``), taken from ``clients``; for abuse,
    the ``abusers`` (``client_ip``, ``requests``, ``behaviour``) that show a behaviour naming the incident."""
    if kind == "abuse":
        named = sorted({str(f.metrics["behaviour"]) for f in findings
                        if FINDING_KINDS[f.kind].behaviour is not None and f.metrics.get("names_incident")})
        if abusers is None or not named:
            return {}
        return requests_by_client(abusers.filter(pc.is_in(abusers.column("behaviour"),
                                                          value_set=pa.array(named, pa.string()))))
    if kind != "dos":
        return requests_by_client(suspected)
    few = next((f for f in findings if f.kind == "concentrated_sources"), None)
    chosen = list(few.metrics["top_sources"][: max(int(few.metrics["sources_for_80pct"]), 1)]) if few else []
    mask = pc.is_in(clients.column("client_ip"), value_set=pa.array(chosen, pa.string()))
    return requests_by_client(clients.filter(mask))
