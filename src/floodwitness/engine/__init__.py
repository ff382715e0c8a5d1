"""The engine behind the portable expressions: DuckDB in-process by default.

Everything heavy is an ibis expression; this module only opens a backend configured for log work
(UTC session time zone, spill-to-disk directory, memory limit) and exposes the few engine-level
operations ibis does not cover (streaming an Arrow reader in, COPY to Parquet).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ibis

from floodwitness.errors import UsageError

if TYPE_CHECKING:
    import pyarrow as pa

ENGINES = ("duckdb",)


@dataclass(frozen=True)
class EngineConfig:
    name: str = "duckdb"
    memory_limit: str | None = None  # e.g. "4GB"; DuckDB's default is 80% of RAM
    threads: int | None = None
    temp_directory: str | None = None


class Engine:
    """An ibis backend plus the engine-level operations floodwitness needs."""

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        if self.config.name not in ENGINES:
            raise UsageError(f"unknown engine {self.config.name!r}", hint="Use --engine duckdb.")
        self.ibis = ibis.duckdb.connect()
        self.raw: Any = self.ibis.con  # the duckdb connection
        self.raw.execute("SET TimeZone = 'UTC'")
        spill = self.config.temp_directory or os.path.join(tempfile.gettempdir(), "floodwitness-spill")
        self.raw.execute(f"SET temp_directory = '{_sql_str(spill)}'")
        self.raw.execute("SET preserve_insertion_order = false")
        self.raw.execute("SET enable_progress_bar = false")
        if self.config.memory_limit:
            self.raw.execute(f"SET memory_limit = '{_sql_str(self.config.memory_limit)}'")
        if self.config.threads:
            self.raw.execute(f"SET threads = {int(self.config.threads)}")

    def unregister(self, name: str) -> None:
        self.raw.unregister(name)

    def register_table(self, name: str, table: pa.Table) -> None:
        """Expose an in-memory Arrow table (scanned on every thread, unlike a stream)."""
        self.raw.register(name, table)

    def copy_sql_to_parquet(self, sql: str, path: str, *, row_group_size: int = 1_000_000) -> None:
        self.raw.execute(
            f"COPY ({sql}) TO '{_sql_str(path)}' "
            f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {int(row_group_size)})")

    def scalar(self, expr: Any) -> Any:
        """Value of a scalar ibis expression (through Arrow: no pandas on the way)."""
        return self.ibis.to_pyarrow(expr).as_py()

    def parquet(self, paths: list[str]) -> Any:
        """An ibis table over Parquet files."""
        return self.ibis.read_parquet(paths)

    def sql(self, query: str, params: list[Any] | None = None) -> pa.Table:
        """Run engine SQL (small accounting queries over the store) and return Arrow."""
        return self.raw.sql(query, params=params or None).to_arrow_table()

    def close(self) -> None:
        self.ibis.disconnect()


def _sql_str(value: str) -> str:
    return value.replace("'", "''")
