"""The fast path for a plain (uncompressed) nfdump CSV export: DuckDB's own parallel CSV reader, with the same
accounting as the line path.

DuckDB's reader skips blank lines and numbers nothing, so the path is taken only when it is provably exact: the
file is not compressed, DuckDB reads it strictly (a line with too many columns, a NUL byte or bad UTF-8 is an
error, and the line path takes over), and the rows it returns are as many as the file's lines after the header.
Rows keep the file's order, so ``row_number() OVER ()`` is the line number (+1 for the header).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from floodwitness.ingest.flows.base import normalize_sql, to_flow_table
from floodwitness.schema import FLOW_ARROW_SCHEMA

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

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
    if rows != lines - 1:
        con.close()
        return None
    return _tables(con, path, (file_id, scale), names, positions, account, lines)


def _tables(con: duckdb.DuckDBPyConnection, path: Path, ids: tuple[int, int], names: list[str],
            positions: dict[str, int], account: FlowAccount, lines: int) -> Iterator[pa.Table]:
    file_id, scale = ids
    fields = ", ".join(f'trim("c_{names[positions[k]]}") AS {k}' if k in positions else f"NULL::VARCHAR AS {k}"
                       for k in FIELDS)
    text = "concat_ws(',', " + ", ".join(f'"c_{n}"' for n in names) + ")"  # the line, for rejected ones only
    summary = summary_line(path, lines)
    source = f"""(SELECT {file_id} AS file_id, line AS record, NULL AS text,
          CASE WHEN line >= {summary} THEN 'nfdump_summary' END AS pre_reject, "c_{names[-1]}" IS NOT NULL AS ok, *
        FROM (SELECT row_number() OVER () + 1 AS line, {fields}, * FROM {_source(path, names)}))"""
    try:
        account.records_read += 1
        yield _header_row(con, file_id, names)
        for batch in con.sql(normalize_sql(source, exporter="nfdump CSV", sampling=scale, scale=scale, raw=text)
                             ).to_arrow_reader(ROWS_PER_TABLE):
            account.records_read += batch.num_rows
            yield pa.Table.from_batches([batch]).cast(FLOW_ARROW_SCHEMA)
    finally:
        con.close()


def _header_row(con: duckdb.DuckDBPyConnection, file_id: int, names: list[str]) -> pa.Table:
    header = ",".join(names).replace("'", "''")
    empty = ", ".join(f"NULL::VARCHAR AS {k}" for k in FIELDS)
    source = f"""(SELECT {file_id} AS file_id, 1 AS record, '{header}' AS text, 'csv_header' AS pre_reject,
                   true AS ok, {empty})"""
    return to_flow_table(con, normalize_sql(source, exporter="nfdump CSV", sampling=1, scale=1))
