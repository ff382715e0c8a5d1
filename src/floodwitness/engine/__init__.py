"""The engine behind the portable expressions: DuckDB in-process by default, or Spark.

Everything heavy is an ibis expression; :mod:`~floodwitness.engine.core` only opens a backend configured for log
work (UTC session time zone, spill-to-disk directory, memory limit) and exposes the few engine-level operations
ibis does not cover (streaming an Arrow reader in, COPY to Parquet); :mod:`~floodwitness.engine.spark` does the
same on Spark. :func:`open_engine` chooses between them (the Spark one is imported only when asked for).
"""

from __future__ import annotations

from typing import Any

from floodwitness.engine.core import (
    ENGINES,
    MIN_MEMORY_LIMIT,
    ROW_GROUP_ROWS,
    Engine,
    EngineConfig,
    ParquetSink,
    is_out_of_memory,
    memory_bytes,
    memory_guard,
    out_of_memory,
)
from floodwitness.errors import UsageError

__all__ = [
    "ENGINES",
    "MIN_MEMORY_LIMIT",
    "ROW_GROUP_ROWS",
    "Engine",
    "EngineConfig",
    "ParquetSink",
    "is_out_of_memory",
    "memory_bytes",
    "memory_guard",
    "open_engine",
    "out_of_memory",
]


def open_engine(config: EngineConfig | None = None, *, session: Any = None) -> Engine:
    """The engine ``config`` names; ``session``: run on this existing SparkSession (implies Spark)."""
    config = config or EngineConfig(name="spark" if session is not None else "duckdb")
    if config.name not in ENGINES:
        raise UsageError(f"unknown engine {config.name!r}", hint="Use --engine duckdb or --engine spark.")
    if config.name == "spark" or session is not None:
        from floodwitness.engine.spark import SparkEngine  # noqa: PLC0415 - optional dependency

        return SparkEngine(config, session=session)
    return Engine(config)
