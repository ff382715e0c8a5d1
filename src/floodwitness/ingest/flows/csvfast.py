"""The fast path for a plain (uncompressed) nfdump CSV export: DuckDB's own parallel CSV reader, with the same
accounting as the line path.

DuckDB's reader skips blank lines and numbers nothing, so the path is taken only when it is provably exact: the
file is not compressed, DuckDB reads it strictly (a line with too many columns, a NUL byte or bad UTF-8 is an
error, and the line path takes over), and the rows it returns are as many as the file's lines after the header.
Rows keep the file's order (DuckDB preserves insertion order), so a row's index is its line number (+2: the header,
and 1-based), set on each Arrow batch; nfdump's Summary block at the end is read apart, from a copy of the file's
tail, so the big scan needs no window function (``row_number() OVER ()`` gathered every column in one thread).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pyarrow as pa

from floodwitness.ingest.flows.base import normalize_sql, to_flow_table, trimmed
from floodwitness.schema import FLOW_ARROW_SCHEMA

if TYPE_CHECKING:
    from collections.abc import Iterator

    from floodwitness.ingest.flows.base import FlowAccount

ROWS_PER_TABLE = 1 << 20
FIELDS = ("ts", "te", "sa", "da", "sp", "dp", "pr", "flg", "pk", "bt", "ra")
#: read_csv's null string: one no CSV field holds, so an empty field is '' and only a missing one is NULL
NEVER = "<floodwitness: no such field>"
COMPRESSED_MAGICS = (b"\x1f\x8b", b"\x28\xb5\x2f\xfd", b"BZh")


def count_lines(path: Path) -> int:
    """Lines in ``path`` (a last line without its newline counts), counted in C over 16 MB blocks."""
    lines, last = 0, b"\n"
    with path.open("rb") as stream:
        while block := stream.read(16 << 20):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")


def summary_line(path: Path, lines: int) -> int:
    """The line number of nfdump's ``Summary`` trailer (read from the file's last 64 kB), else past the end."""
    size = path.stat().st_size
    with path.open("rb") as stream:
        stream.seek(max(0, size - (64 << 10)))
        tail = stream.read()
    found = max(tail.rfind(b"\nSummary\n"), tail.rfind(b"\nSummary\r\n"))
    if found < 0:
        return 1 << 62
    after = tail[found + 1:].count(b"\n")  # newlines from the Summary line on
    return lines - after + 1 if tail.endswith(b"\n") else lines - after


def _source(path: Path, names: list[str]) -> str:
    columns = "{" + ", ".join(f"'c_{n}': 'VARCHAR'" for n in names) + "}"
    quoted = str(path).replace("'", "''")
    return (f"read_csv('{quoted}', delim=',', quote='', escape='', header=false, skip=1, columns={columns}, "
            f"null_padding=true, auto_detect=false, new_line='\\n', strict_mode=true, nullstr='{NEVER}')")


def fast_tables(path: Path, file_id: int, names: list[str], positions: dict[str, int], scale: int,
                account: FlowAccount) -> Iterator[pa.Table] | None:
    """The flow tables of ``path`` by DuckDB's CSV reader, or None when that would not be exact."""
    with path.open("rb") as stream:
        if stream.read(4).startswith(COMPRESSED_MAGICS) or len(set(names)) != len(names):
            return None
    if any(not n.replace("_", "").isalnum() for n in names):
        return None
    lines = count_lines(path)
    con = duckdb.connect()
    try:
        rows = con.sql(f"SELECT count(*) FROM {_source(path, names)}").fetchall()[0][0]
    except duckdb.Error:
        con.close()
        return None
    summary = min(summary_line(path, lines), lines + 1)  # the first line that is no flow (past the end: none)
    try:
        tail = _summary_rows(con, path, (file_id, scale), names, positions, summary) if summary <= lines else None
    except duckdb.Error:
        tail = None
    if rows != lines - 1 or (summary <= lines and (tail is None or tail.num_rows != lines - summary + 1)):
        con.close()
        return None
    return _tables(con, path, (file_id, scale), names, positions, account, (summary, tail))


def _tables(con: duckdb.DuckDBPyConnection, path: Path, ids: tuple[int, int], names: list[str],
            positions: dict[str, int], account: FlowAccount, end: tuple[int, pa.Table | None]) -> Iterator[pa.Table]:
    """The header row, the flow lines before nfdump's Summary (numbered by their order, which the scan keeps), then
    the Summary block's rows (``end``: its first line and rows, read beforehand from a copy of the file's tail)."""
    file_id, scale = ids
    summary, tail = end
    keep = summary - 2  # the data lines before it
    try:
        account.records_read += 1
        yield _header_row(con, file_id, names)
        done = 0
        for batch in con.sql(_flow_sql(_source(path, names), file_id, scale, names, positions, "NULL")
                             ).to_arrow_reader(ROWS_PER_TABLE):
            take = min(batch.num_rows, keep - done)
            if take <= 0:
                break
            table = pa.Table.from_batches([batch.slice(0, take)]).cast(FLOW_ARROW_SCHEMA)
            numbers = pa.array(np.arange(done + 2, done + 2 + take, dtype=np.int64))
            done += take
            account.records_read += take
            column = FLOW_ARROW_SCHEMA.get_field_index("record")
            yield table.set_column(column, FLOW_ARROW_SCHEMA.field(column), numbers)
        if tail is not None:
            account.records_read += tail.num_rows
            yield tail
    finally:
        con.close()


def _flow_sql(source: str, file_id: int, scale: int, names: list[str], positions: dict[str, int],
              pre_reject: str, record: str = "0") -> str:
    columns = {k: f'"c_{names[i]}"' for k, i in positions.items()}
    fields = ", ".join(f"{trimmed(columns[k])} AS {k}" if k in columns else f"NULL::VARCHAR AS {k}" for k in FIELDS)
    text = "concat_ws(',', " + ", ".join(f'"c_{n}"' for n in names) + ")"  # the line, for rejected ones only
    rows = f"""(SELECT {file_id} AS file_id, {record} AS record, NULL AS text, {pre_reject} AS pre_reject,
                 "c_{names[-1]}" IS NOT NULL AS ok, {fields}, * FROM {source})"""
    return normalize_sql(rows, exporter="nfdump CSV", sampling=scale, scale=scale, raw=text)


def _summary_rows(con: duckdb.DuckDBPyConnection, path: Path, ids: tuple[int, int], names: list[str],
                  positions: dict[str, int], summary: int) -> pa.Table:
    """The lines from ``summary`` on, rejected as ``nfdump_summary``: the header line and the tail after it, copied
    to a file of their own and read the same way (the reader is line-local: no quotes)."""
    with path.open("rb") as stream:
        header = stream.readline()
        stream.seek(max(0, path.stat().st_size - (64 << 10)))
        tail = stream.read()
    start = max(tail.rfind(b"\nSummary\n"), tail.rfind(b"\nSummary\r\n")) + 1
    with tempfile.TemporaryDirectory(prefix="floodwitness-") as folder:
        copy = Path(folder) / "summary.csv"
        copy.write_bytes(header + tail[start:])
        sql = _flow_sql(_source(copy, names), ids[0], ids[1], names, positions, "'nfdump_summary'",
                        f"row_number() OVER () + {summary - 1}")
        return to_flow_table(con, f"SELECT * FROM ({sql}) ORDER BY record")


def _header_row(con: duckdb.DuckDBPyConnection, file_id: int, names: list[str]) -> pa.Table:
    header = ",".join(names).replace("'", "''")
    empty = ", ".join(f"NULL::VARCHAR AS {k}" for k in FIELDS)
    source = f"""(SELECT {file_id} AS file_id, 1 AS record, '{header}' AS text, 'csv_header' AS pre_reject,
                   true AS ok, {empty})"""
    return to_flow_table(con, normalize_sql(source, exporter="nfdump CSV", sampling=1, scale=1))
