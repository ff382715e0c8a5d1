"""What every flow reader shares: its account (read = parsed + rejected, packets, sampling), the options, running a
native tool with a clear error when it is missing or fails, and the SQL that turns text fields into flow rows.

A reader returns ``(account, tables)``: ``tables`` is a lazy iterator of :data:`FLOW_ARROW_SCHEMA` tables (every
record read is one row, parsed or rejected with its reason), and ``account`` fills while it runs.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from floodwitness.errors import FormatError, InputError
from floodwitness.schema import FLOW_ARROW_SCHEMA, RAW_SAMPLE_CHARS

if TYPE_CHECKING:
    import duckdb

#: Why a flow record was rejected (or is a non-record that was counted), as stored in ``reject_reason``.
FLOW_REJECT_REASONS: dict[str, str] = {
    "csv_header": "the CSV header line (not a flow)",
    "nfdump_summary": "nfdump's Summary block after the flows (not a flow)",
    "empty_line": "a blank line",
    "bad_columns": "not the number of columns of the header",
    "bad_time": "start or end time missing, not a time, or outside 1970-2200",
    "bad_address": "source or destination is not an IP address",
    "bad_protocol": "protocol missing or unknown",
    "bad_counter": "packets or bytes missing, negative or not a number",
    "bad_port": "a TCP/UDP/SCTP port that is not a number from 0 to 65535",
    "not_a_flow": "a JSON record whose type is not FLOW",
    "fragment_line_unparsed": "a line of tcpdump's fragment listing that could not be read",
    "undecodable_export": "an export packet the NetFlow/IPFIX decoder could not read (its flows are lost)",
    "unknown_template": "a v9/IPFIX data set whose template never arrived (its flows cannot be read)",
    "line_too_long": "longer than the line limit",
    "nul_byte": "a NUL byte in the line",
    "truncated_input": "the input ends inside this line",
}

PORTED = (6, 17, 132)  # TCP, UDP, SCTP

#: IP protocol names as nfdump prints them (and common others), to numbers (IANA).
PROTOCOLS: dict[str, int] = {
    "ICMP": 1, "IGMP": 2, "GGP": 3, "IPIP": 4, "ST": 5, "TCP": 6, "CBT": 7, "EGP": 8, "IGP": 9, "BBN": 10,
    "NVPII": 11, "PUP": 12, "ARGUS": 13, "ENCOM": 14, "XNET": 15, "CHAOS": 16, "UDP": 17, "MUX": 18, "DCN": 19,
    "IDP": 22, "RDP": 27, "IRTP": 28, "DCCP": 33, "IPV6": 41, "SDRP": 42, "RSVP": 46, "GRE": 47, "ESP": 50,
    "AH": 51, "ICMP6": 58, "ICMPV6": 58, "IPV6-ICMP": 58, "EIGRP": 88, "OSPF": 89, "ETHERIP": 97, "ENCAP": 98,
    "PIM": 103, "IPCOMP": 108, "VRRP": 112, "L2TP": 115, "ISIS": 124, "SCTP": 132, "UDPLITE": 136,
}


@dataclass(frozen=True)
class FlowOptions:
    """How to read flow inputs. ``sampling``: the inputs are 1:N packet-sampled and their counts NOT yet scaled
    (an export written without the rate in it); counts are then multiplied by N. Rates an input announces itself
    (NetFlow v5 header, v9/IPFIX options, nfdump's samplers) are always honoured."""

    sampling: int | None = None
    #: packet captures: add the non-first IPv4 fragments (which a flow meter drops) as rows of their own
    fragments: bool = True
    batch_bytes: int = 16 << 20


@dataclass
class FlowAccount:
    """Per-input accounting, filled while the reader runs."""

    path: str
    kind: str
    reader: str
    sha256: str = ""
    bytes: int = 0
    records_read: int = 0
    packets_read: int | None = None
    packets_in_flows: int | None = None
    packets_outside_flows: dict[str, int] = field(default_factory=dict)
    sampling: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


Reader = Callable[[Path, int, FlowOptions], tuple[FlowAccount, Iterator[pa.Table]]]


def file_sha256(path: Path) -> tuple[str, int]:
    """SHA-256 and size of ``path`` (for inputs a native tool reads itself)."""
    with path.open("rb") as stream:
        digest = hashlib.file_digest(stream, "sha256")
    return digest.hexdigest(), path.stat().st_size


INSTALL = {"nfdump": "apt-get install nfdump", "tcpdump": "apt-get install tcpdump",
           "softflowd": "apt-get install softflowd"}


def require_tool(name: str, path: Path, why: str) -> str:
    """The full path of the program ``name``, or an error saying how to install it."""
    found = shutil.which(name)
    if found is None:
        raise InputError(f"{why} needs the `{name}` program, which is not installed", path=str(path),
                         hint=f"Install it ({INSTALL.get(name, 'with your package manager')}) and run again.")
    return found


def tool_version(args: list[str]) -> str:
    """The first line a tool prints for its version (stdout or stderr), or "" when it prints none."""
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=10, check=False)  # noqa: S603
    except (OSError, subprocess.SubprocessError):
        return ""
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0] if text else ""


def first_error_line(stderr: bytes) -> str:
    lines = [x for x in stderr.decode("utf-8", "replace").splitlines() if x.strip()]
    return lines[-1].strip()[:300] if lines else "no message"


def fail(path: Path, what: str, stderr: bytes) -> FormatError:
    return FormatError(f"{what}: {first_error_line(stderr)}", path=str(path),
                       hint="Check that the file is complete and of the kind it looks like (see `floodwitness "
                            "ingest --help`, --flows).")


def _proto_case(expr: str) -> str:
    whens = " ".join(f"WHEN '{name}' THEN {num}" for name, num in PROTOCOLS.items())
    return f"coalesce(TRY_CAST({expr} AS INTEGER), CASE upper({expr}) {whens} END)"


def _flag_bits(expr: str) -> str:
    letters = {"F": 1, "S": 2, "R": 4, "P": 8, "A": 16, "U": 32, "E": 64, "C": 128}
    parts = " + ".join(f"(CASE WHEN contains({expr}, '{k}') THEN {v} ELSE 0 END)" for k, v in letters.items())
    # a number (decimal or 0x..), else nfdump's letters (.A..S... : ACK SYN)
    return f"coalesce(TRY_CAST({expr} AS INTEGER), TRY_CAST(('0' || {expr}) AS INTEGER), {parts})"


def trimmed(expr: str) -> str:
    """``trim(expr)`` (which strips Unicode space separators, in ASCII only ' '), skipped for the usual field: all
    ASCII (as many bytes as characters) with no space at either end, which ``trim`` would return as it is."""
    return (f"(CASE WHEN strlen({expr}) = length({expr}) AND NOT starts_with({expr}, ' ') "
            f"AND NOT ends_with({expr}, ' ') THEN {expr} ELSE trim({expr}) END)")


_IPV4 = r"^\d{1,3}(\.\d{1,3}){3}$"
_IPV6 = r"^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*$"


def normalize_sql(source: str, *, exporter: str, sampling: int, scale: int,
                  raw: str = "rtrim(text, chr(10) || chr(13))") -> str:
    """SQL from ``source`` (columns file_id, record, text, pre_reject, ok, ts, te, sa, da, sp, dp, pr, flg, pk, bt,
    ra, all text but the first two and ``ok``: the record had its fields) to the flow table's columns: one row per
    record, parsed or rejected with its reason. ``scale``: multiply the counts (1 when already scaled); ``raw``:
    the SQL of a rejected record's text (evaluated for rejected records only). ``start`` and ``end`` come out as
    plain TIMESTAMPs, read as UTC: the cast to :data:`FLOW_ARROW_SCHEMA` (as :func:`to_flow_table` does) labels
    them UTC without changing a value, which costs nothing where DuckDB's ``timezone('UTC', ...)`` went through
    ICU for every row; IPv6's pattern is tried only when a side is not IPv4."""
    ported = ", ".join(str(p) for p in PORTED)
    return f"""
WITH c AS (
  SELECT *, TRY_CAST(ts AS TIMESTAMP) AS t0, TRY_CAST(te AS TIMESTAMP) AS t1, {_proto_case('pr')} AS proto_n,
         TRY_CAST(pk AS BIGINT) AS pk_n, TRY_CAST(bt AS BIGINT) AS bt_n,
         TRY_CAST(sp AS INTEGER) AS sp_n, TRY_CAST(dp AS INTEGER) AS dp_n,
         regexp_full_match(coalesce(sa, ''), '{_IPV4}') AS sa4, regexp_full_match(coalesce(da, ''), '{_IPV4}') AS da4
  FROM {source}
), r AS (
  SELECT *, CASE
    WHEN pre_reject IS NOT NULL THEN pre_reject
    WHEN NOT ok THEN 'bad_columns'
    WHEN t0 IS NULL OR t1 IS NULL OR t0 NOT BETWEEN TIMESTAMP '1970-01-01' AND TIMESTAMP '2200-01-01'
         OR t1 NOT BETWEEN TIMESTAMP '1970-01-01' AND TIMESTAMP '2200-01-01' THEN 'bad_time'
    WHEN NOT (sa4 AND da4) AND NOT (regexp_full_match(coalesce(sa, ''), '{_IPV6}')
                                    AND regexp_full_match(coalesce(da, ''), '{_IPV6}')) THEN 'bad_address'
    WHEN proto_n IS NULL OR proto_n NOT BETWEEN 0 AND 255 THEN 'bad_protocol'
    WHEN pk_n IS NULL OR bt_n IS NULL OR pk_n < 0 OR bt_n < 0 THEN 'bad_counter'
    WHEN proto_n IN ({ported}) AND (sp_n IS NULL OR dp_n IS NULL OR sp_n NOT BETWEEN 0 AND 65535
                                    OR dp_n NOT BETWEEN 0 AND 65535) THEN 'bad_port'
  END AS reason FROM c
)
SELECT
  CASE WHEN reason IS NULL THEN t0 END AS start,
  CASE WHEN reason IS NULL THEN greatest(t0, t1) END AS "end",
  CASE WHEN reason IS NULL THEN sa END AS src_ip,
  CASE WHEN reason IS NULL THEN da END AS dst_ip,
  CASE WHEN reason IS NULL THEN (CASE WHEN sa4 THEN 4 ELSE 6 END) END::TINYINT AS ip_family,
  CASE WHEN reason IS NULL AND proto_n IN ({ported}) THEN sp_n END AS src_port,
  CASE WHEN reason IS NULL AND proto_n IN ({ported}) THEN dp_n END AS dst_port,
  CASE WHEN reason IS NULL THEN proto_n END::SMALLINT AS proto,
  CASE WHEN reason IS NULL AND proto_n = 6 THEN {_flag_bits('flg')} END::SMALLINT AS tcp_flags,
  CASE WHEN reason IS NULL THEN pk_n * {scale} END AS packets,
  CASE WHEN reason IS NULL THEN bt_n * {scale} END AS bytes,
  CASE WHEN reason IS NULL THEN {sampling} END::INTEGER AS sampling,
  NULL::BIGINT AS fragments,
  CASE WHEN reason IS NULL THEN coalesce(nullif(ra, ''), '{exporter}') END AS exporter,
  file_id::INTEGER AS file_id, record::BIGINT AS record, reason AS reject_reason,
  CASE WHEN reason IS NOT NULL THEN left({raw}, {RAW_SAMPLE_CHARS}) END AS raw
FROM r
"""


def to_flow_table(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """Run ``sql`` and give its result in exactly :data:`FLOW_ARROW_SCHEMA`."""
    return con.sql(sql).to_arrow_table().cast(FLOW_ARROW_SCHEMA)
