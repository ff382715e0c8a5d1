"""The network view of an incident (issue #21): per target, per-second packets and bits, EPISODES with start,
peak and end to the second, and the vectors named by signature with their evidence. The heavy work is SQL over
the flow table (out of core, analysis/network_sql.py); Python handles per-target series and episodes only.

``analyze_network(con, flows)`` -> :class:`NetworkAnalysis`; ``to_dict()`` is the report's ``network`` section
(design21.md) without ``inputs`` (the store's accounting, which the report adds)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from floodwitness.analysis.network_detect import detect
from floodwitness.analysis.network_model import (
    Episode,
    FlowSample,
    NetworkAnalysis,
    Series,
    Spoofing,
    VectorHit,
    Victims,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

    import pyarrow as pa

__all__ = ["Episode", "FlowSample", "NetworkAnalysis", "Series", "Spoofing", "VectorHit", "Victims",
           "analyze_network"]


def analyze_network(con: Any, flows: pa.Table | Sequence[str | Path], victims: Sequence[str] | None = None,
                    files: Mapping[int, str] | None = None) -> NetworkAnalysis:
    """Episodes and vectors of the flow table (an Arrow table of FLOW_ARROW_SCHEMA or Parquet paths) on a DuckDB
    connection (or the project's Engine); ``victims``: CIDRs to watch, else chosen from the data; ``files``:
    file_id -> path for the samples."""
    raw = getattr(con, "raw", con)
    return detect(raw, flows, tuple(victims) if victims is not None else None, dict(files or {}))
