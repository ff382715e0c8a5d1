"""Evidence helpers: sample lines for a filter, and the SQL that reproduces a number over the store."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from floodwitness.analysis.composition import ASSET_PATTERN, in_ranges
from floodwitness.detectors.abuse_scan import AbuseScan, classify_sources
from floodwitness.detectors.base import Context, Evidence
from floodwitness.schema import RAW_SAMPLE_CHARS

if TYPE_CHECKING:
    from datetime import datetime


def _ts(value: datetime) -> str:
    return f"TIMESTAMPTZ '{value.strftime('%Y-%m-%d %H:%M:%S')}+00'"


def window_sql(ctx: Context, *, select: str, where: str = "", group: str = "", order: str = "",
               window: tuple[datetime, datetime] | None = None) -> str:
    """A DuckDB query over the store that reproduces a number of the report."""
    start, end = window or ctx.window
    clauses = [f"reject_reason IS NULL AND ts >= {_ts(start)} AND ts < {_ts(end)}"]
    if where:
        clauses.append(where)
    sql = f"SELECT {select} FROM read_parquet('{ctx.data.parquet_glob}') WHERE " + " AND ".join(clauses)
    if group:
        sql += f" GROUP BY {group}"
    if order:
        sql += f" ORDER BY {order}"
    return sql


def baseline_sql(ctx: Context) -> str:
    """The baseline's time ranges as a SQL condition: all of them, so the query counts what the analysis did."""
    ranges = ctx.baseline_ranges
    parts = [f"(ts >= {_ts(a)} AND ts < {_ts(b)})" for a, b in ranges]
    return " OR ".join(parts) if parts else "FALSE"


def render_line(row: dict[str, Any]) -> str:
    """A parsed row shown like a combined log line (what the evidence points at, field by field), cut to
    RAW_SAMPLE_CHARS: a sample is there to be read; file and line point at the whole request. A field the log
    does not have is "-", as in a combined log (never "None")."""
    url = (row.get("path") or "") + (f"?{row['query']}" if row.get("query") is not None else "")
    request = " ".join(x for x in (row.get("method"), url, row.get("protocol")) if x)
    ts = row["ts"].strftime("%d/%b/%Y:%H:%M:%S +0000") if row.get("ts") else "-"
    status, size = (_dash(row.get(k)) for k in ("status", "bytes"))
    line = (f'{row.get("client_ip")} - - [{ts}] "{request}" {status} {size} '
            f'"{row.get("referer") or "-"}" "{row.get("user_agent") or "-"}"')
    return line if len(line) <= RAW_SAMPLE_CHARS else line[:RAW_SAMPLE_CHARS - 1] + "\u2026"


def sql_text(value: str) -> str:
    """``value`` as a SQL string literal (a log's client field may hold any text)."""
    return "'" + value.replace("'", "''") + "'"


def _dash(value: Any) -> str:
    return "-" if value is None else str(value)


def samples(ctx: Context, predicate: Any, query: str, n: int = 3,
            window: tuple[datetime, datetime] | None = None) -> tuple[Evidence, ...]:
    """Up to ``n`` sample lines of the window matching ``predicate(table)``, each citing file and line: the
    first matching lines of the window's first minutes (the whole window only when those have none), so a
    sample costs a look at a few minutes of requests, not a sort of the incident."""
    start, end = window or ctx.window
    rows: list[dict[str, Any]] = []
    for span in ((start, min(end, start + _FIRST_LOOK)), (start, end)):
        t = in_ranges(ctx.data.requests, [span])
        if predicate is not None:
            t = t.filter(predicate(t))
        rows = ctx.data.engine.ibis.to_pyarrow(
            t.select("file_id", "line", "ts", "client_ip", "method", "path", "query", "protocol", "status",
                     "bytes", "referer", "user_agent").order_by(["file_id", "line"]).limit(n)).to_pylist()
        if rows or span[1] == end:
            break
    if not rows:
        return (Evidence(query=query),)
    return tuple(Evidence(query=query, file=ctx.data.path_of(r["file_id"]), line=r["line"], sample=render_line(r))
                 for r in rows)


_FIRST_LOOK = timedelta(minutes=2)
ASSET_SQL = f"regexp_matches(lower(path), '{ASSET_PATTERN}')"


def abuse_scan(ctx: Context) -> AbuseScan:
    """The window's sources by behaviour: the analysis's (``ctx.abuse``), else classified here once."""
    if ctx.abuse is None:
        ctx.abuse = classify_sources(ctx.data, ctx.window)
    return ctx.abuse
