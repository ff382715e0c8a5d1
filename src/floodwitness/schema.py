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
    Column("status", pa.int16(),
           "Response status code sent to the client; 0 when none was sent (Caddy 0, HAProxy -1, Squid 000, "
           "Traefik '-': the client left or the connection was cut before any response)."),
    Column("bytes", pa.int64(), "Response bytes sent ('-' is 0 in CLF logs)."),
    Column("referer", pa.string(), "Referer header; null when absent ('-')."),
    Column("user_agent", pa.string(), "User-Agent header; null when absent ('-')."),
    Column("request_time", pa.float64(),
           "Total request time in seconds, when the format has it (load balancers: the sum of their request, "
           "target and response processing times; null when any of them is -1)."),
    Column("upstream_status", pa.int16(),
           "Status from the upstream/backend (the last one if retried); null when no backend answered "
           "(ALB target_status_code '-')."),
    Column("upstream_time", pa.float64(),
           "Upstream response time in seconds (summed over retries); null when the request never reached a "
           "backend (ALB/ELB target processing time -1)."),
    Column("upstream_addr", pa.string(), "Upstream address(es), as logged."),
    Column("xff", pa.string(), "X-Forwarded-For header as logged (client_ip comes from it only under --trust-proxy)."),
    Column("peer_ip", pa.string(),
           "The connecting peer as logged, kept only when client_ip was taken from X-Forwarded-For because that "
           "peer is a trusted proxy (--trust-proxy / --trust-cdn); null otherwise."),
    Column("edge_result", pa.string(),
           "Where a load balancer, CDN or proxy says the response came from or failed: one of EDGE_RESULTS; "
           "null when the format does not tell."),
    Column("edge_detail", pa.string(),
           "The edge's own code for the request, as logged (ALB error_reason or actions, CloudFront detailed "
           "result type, HAProxy termination state, Envoy response flags, GCP statusDetails, Squid result code...)."),
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

#: Values of ``edge_result``: the best evidence a log gives of whether a failure was at the edge or behind it.
EDGE_RESULTS: dict[str, str] = {
    "backend": "the backend (target, origin, upstream) answered; status is its answer, maybe rewritten",
    "cache": "served from the edge's cache; the backend was not asked",
    "edge": "answered by the edge itself by design: redirect, fixed response, auth, WAF/ACL block, rate limit, "
            "a request the edge refused as malformed",
    "backend_unreachable": "the edge could not get an answer: no healthy backend, connect failure, backend timeout "
                           "or reset (AWS ALB/ELB 502/503/504 with no target status, HAProxy sC/SC/sH, Envoy "
                           "UF/UH/UT, GCP failed_to_connect_to_backend/backend_timeout, CloudFront OriginError)",
    "edge_overload": "the edge itself refused for capacity: queue timeout, connection limit, CDN capacity or "
                     "request limit exceeded (HAProxy sQ/R*, Envoy UO, CloudFront Capacity/LimitExceeded)",
    "client_abort": "the client went away before the response (ALB 460, HAProxy C*/c*, Envoy DC, "
                    "GCP client_disconnected...)",
}

#: The reasons a line can be rejected, with what each means (documented in the CLI reference).
REJECT_REASONS: dict[str, str] = {
    "empty_line": "the line is empty or only whitespace",
    "comment": "a comment or header line (starts with #), not a request",
    "line_too_long": "longer than --max-line-bytes; counted with its length, not loaded whole",
    "nul_byte": "contains NUL bytes (a sign of a corrupt or pre-allocated file)",
    "format_mismatch": "does not have the layout of the file's format",
    "not_a_request": "a line of the file's format that records no request (an HAProxy connection error, a "
                     "proxy's debug or error message)",
    "bad_timestamp": "the timestamp field is not a valid time",
    "bad_status": "the status field is not a 3-digit HTTP status",
    "truncated_input": "the last line of a file that ended in the middle of a compressed stream",
}

#: Raw text kept per rejected line (the rest is dropped; the length is still reported in the reason).
RAW_SAMPLE_CHARS = 2048


def column_doc_table() -> list[tuple[str, str, str]]:
    """(name, arrow type, description) for each column: used by docs and `formats --json`."""
    return [(c.name, str(c.type), c.doc) for c in COLUMNS]


# --- The normalized flow table (#21): network flows from packet captures, nfdump files and exports, NetFlow/IPFIX.

#: Version of the flow table's column set; bump on any incompatible change.
FLOW_SCHEMA_VERSION = "floodwitness.flows/1"

#: One row per unidirectional flow (a bidirectional meter's flow is two rows, one per direction with packets).
FLOW_COLUMNS: tuple[Column, ...] = (
    Column("start", pa.timestamp("us", tz="UTC"), "First packet of the flow, UTC, microseconds."),
    Column("end", pa.timestamp("us", tz="UTC"), "Last packet of the flow, UTC (equal to start for one packet)."),
    Column("src_ip", pa.string(), "Source address (as sent: may be spoofed)."),
    Column("dst_ip", pa.string(), "Destination address."),
    Column("ip_family", pa.int8(), "4 or 6."),
    Column("src_port", pa.int32(), "Source port for TCP/UDP/SCTP; null for protocols without ports, and for IP "
                                   "fragments after the first (which carry no transport header)."),
    Column("dst_port", pa.int32(), "Destination port, as src_port (ICMP type*256+code is not stored here)."),
    Column("proto", pa.int16(), "IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6, 47 GRE, ...)."),
    Column("tcp_flags", pa.int16(), "TCP flags seen in the flow, OR-ed (FIN 1, SYN 2, RST 4, PSH 8, ACK 16, "
                                    "URG 32, ECE 64, CWR 128); null for non-TCP or when the source does not say."),
    Column("packets", pa.int64(), "Packets, already scaled by the sampling rate."),
    Column("bytes", pa.int64(), "IP bytes (header included), already scaled by the sampling rate."),
    Column("sampling", pa.int32(), "N of 1:N packet sampling the counts were scaled by (1: every packet)."),
    Column("fragments", pa.int64(), "Packets of the flow that were IP fragments (null when the source does not "
                                    "tell)."),
    Column("exporter", pa.string(), "Who measured the flow: the exporter's address for NetFlow/IPFIX/nfdump, the "
                                    "flow meter for a packet capture (e.g. nfstream)."),
    Column("file_id", pa.int32(), "Index of the input in the store manifest's `flow_inputs`."),
    Column("record", pa.int64(), "1-based record number in the input (a CSV line, the n-th flow of a capture)."),
    Column("reject_reason", pa.string(), "Null for parsed records; why the record was rejected otherwise."),
    Column("raw", pa.string(), "The raw record (truncated) for rejected records; null for parsed ones."),
)

FLOW_ARROW_SCHEMA = pa.schema([pa.field(c.name, c.type) for c in FLOW_COLUMNS])

#: TCP flag bits as stored in ``tcp_flags``.
TCP_FLAGS: dict[str, int] = {"FIN": 1, "SYN": 2, "RST": 4, "PSH": 8, "ACK": 16, "URG": 32, "ECE": 64, "CWR": 128}
