"""The normalized request table: defined once, used by every stage.

Every format's parser emits exactly these columns; every analysis reads only these.
Format-specific names never leak past the parser.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

#: Version of the store layout and column set; bump on any incompatible change.
SCHEMA_VERSION = "floodwitness.requests/1"


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    doc: str


COLUMNS: tuple[Column, ...] = (
    Column("ts", pa.timestamp("us", tz="UTC"),
           "Request time in UTC, microseconds (sub-second when the format has it)."),
    Column("client_ip", pa.string(), "Client address exactly as logged (may be a host name in old logs)."),
    Column("ip_family", pa.int8(), "4 or 6 when client_ip is an IP address, 0 when it is not (a host name)."),
    Column("method", pa.string(), "HTTP method, as logged."),
    Column("host", pa.string(), "Virtual host / Host header when the format has it."),
    Column("path", pa.string(), "Request path, without the query string."),
    Column("query", pa.string(), "Query string without the leading '?', null when the URL had none."),
    Column("protocol", pa.string(), "HTTP protocol, e.g. HTTP/1.1; null for HTTP/0.9-style request lines."),
    Column("status", pa.int16(), "Response status code sent to the client."),
    Column("bytes", pa.int64(), "Response bytes sent ('-' is 0 in CLF logs)."),
    Column("referer", pa.string(), "Referer header; null when absent ('-')."),
    Column("user_agent", pa.string(), "User-Agent header; null when absent ('-')."),
    Column("request_time", pa.float64(), "Total request time in seconds, when the format has it."),
    Column("upstream_status", pa.int16(), "Status from the upstream/backend (the last one if retried)."),
    Column("upstream_time", pa.float64(), "Upstream response time in seconds (summed over retries)."),
    Column("upstream_addr", pa.string(), "Upstream address(es), as logged."),
    Column("xff", pa.string(), "X-Forwarded-For header as logged; never trusted for client_ip here."),
    Column("file_id", pa.int32(), "Index of the input file in the store manifest's `inputs`."),
    Column("line", pa.int64(), "1-based line number in the (decompressed) input file."),
    Column("reject_reason", pa.string(),
           "Null for parsed lines; why the line was rejected otherwise (then every request column is null)."),
    Column("raw", pa.string(), "The raw line (truncated) for rejected lines; null for parsed lines."),
)

#: Columns that hold request data (everything a parser fills).
REQUEST_COLUMNS: tuple[str, ...] = tuple(
    c.name for c in COLUMNS if c.name not in ("file_id", "line", "reject_reason", "raw")
)

ARROW_SCHEMA = pa.schema([pa.field(c.name, c.type) for c in COLUMNS])

#: The reasons a line can be rejected, with what each means (documented in the CLI reference).
REJECT_REASONS: dict[str, str] = {
    "empty_line": "the line is empty or only whitespace",
    "comment": "a comment or header line (starts with #), not a request",
    "line_too_long": "longer than --max-line-bytes; counted with its length, not loaded whole",
    "nul_byte": "contains NUL bytes (a sign of a corrupt or pre-allocated file)",
    "format_mismatch": "does not have the layout of the file's format",
    "bad_timestamp": "the timestamp field is not a valid time",
    "bad_status": "the status field is not a 3-digit HTTP status",
    "truncated_input": "the last line of a file that ended in the middle of a compressed stream",
}

#: Raw text kept per rejected line (the rest is dropped; the length is still reported in the reason).
RAW_SAMPLE_CHARS = 2048


def column_doc_table() -> list[tuple[str, str, str]]:
    """(name, arrow type, description) for each column: used by docs and `formats --json`."""
    return [(c.name, str(c.type), c.doc) for c in COLUMNS]
