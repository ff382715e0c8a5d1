"""A packet capture read with full accounting: nfstream's flows (:mod:`~floodwitness.ingest.flows.pcap`), the
packets counted natively by tcpdump (read; non-IP frames), and the non-first IPv4 fragments as rows of their own.

``packets_read == packets_in_flows + sum(packets_outside_flows)``: in flows are nfstream's packets plus the
fragment rows; outside are the non-IP frames and any remainder the flow meter did not meter ("unmetered", e.g.
IPv6 fragments or malformed IP headers).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from floodwitness.errors import FormatError
from floodwitness.ingest.flows.base import FlowAccount, FlowOptions, fail, file_sha256, to_flow_table, tool_version
from floodwitness.ingest.flows.pcap import read_pcap
from floodwitness.inputs.lines import FileAccount, LineBatcher
from floodwitness.schema import FLOW_ARROW_SCHEMA, RAW_SAMPLE_CHARS

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

#: IPv4 packets whose fragment offset is not 0: fragments after the first (no transport header)
FRAGMENT_FILTER = "ip and ip[6:2] & 0x1fff != 0"
NON_IP_FILTER = "not ip and not ip6"
_TRUNCATED = re.compile(r"truncated|premature|short", re.IGNORECASE)

# tcpdump -tt -nn -v prints a fragment as two lines:
#   1632239124.430032 IP (tos 0x0, ttl 54, id 35969, offset 2912, flags [none], proto UDP (17), length 1038)
#       45.179.193.111 > 10.10.10.10: ip-proto-17
_FRAGMENT_SQL = f"""
WITH l AS (
  SELECT line, text, pre_reject, NOT starts_with(text, ' ') AND NOT starts_with(text, chr(9)) AS head,
         lead(text) OVER (ORDER BY line) AS nxt, lag(text) OVER (ORDER BY line) AS prv FROM fw_frag_lines
), p AS (
  SELECT line, text, pre_reject, head,
    regexp_extract(text, '^(\\d+\\.\\d+) IP ', 1) AS ts,
    regexp_extract(text, 'proto \\S+ \\((\\d+)\\)', 1) AS pr,
    regexp_extract(text, 'length (\\d+)\\)', 1) AS len,
    regexp_extract(nxt, '^\\s+(\\d+\\.\\d+\\.\\d+\\.\\d+) > (\\d+\\.\\d+\\.\\d+\\.\\d+):', ['s', 'd']) AS a,
    head OR prv IS NULL OR starts_with(prv, ' ') OR starts_with(prv, chr(9)) AS own
  FROM l
), r AS (
  SELECT *, CASE WHEN pre_reject IS NOT NULL THEN pre_reject
    WHEN ts = '' OR pr = '' OR len = '' OR a.s = '' THEN 'fragment_line_unparsed' END AS reason FROM p
  WHERE head OR own
)
SELECT
  CASE WHEN reason IS NULL THEN make_timestamptz(CAST(CAST(ts AS DECIMAL(20, 6)) * 1000000 AS BIGINT)) END AS start,
  CASE WHEN reason IS NULL THEN make_timestamptz(CAST(CAST(ts AS DECIMAL(20, 6)) * 1000000 AS BIGINT)) END AS "end",
  CASE WHEN reason IS NULL THEN a.s END AS src_ip, CASE WHEN reason IS NULL THEN a.d END AS dst_ip,
  CASE WHEN reason IS NULL THEN 4 END::TINYINT AS ip_family, NULL::INTEGER AS src_port, NULL::INTEGER AS dst_port,
  CASE WHEN reason IS NULL THEN CAST(pr AS SMALLINT) END AS proto, NULL::SMALLINT AS tcp_flags,
  CASE WHEN reason IS NULL THEN 1 END::BIGINT AS packets,
  CASE WHEN reason IS NULL THEN CAST(len AS BIGINT) END AS bytes,
  CASE WHEN reason IS NULL THEN 1 END::INTEGER AS sampling, CASE WHEN reason IS NULL THEN 1 END::BIGINT AS fragments,
  CASE WHEN reason IS NULL THEN 'tcpdump' END AS exporter, $file_id::INTEGER AS file_id,
  ($base + row_number() OVER (ORDER BY line))::BIGINT AS record, reason AS reject_reason,
  CASE WHEN reason IS NOT NULL THEN left(text, {RAW_SAMPLE_CHARS}) END AS raw
FROM r ORDER BY line
"""


def read_capture(path: Path, file_id: int, options: FlowOptions) -> tuple[FlowAccount, Iterator[pa.Table]]:
    """The capture's flows, with its packets accounted for (see the module's doc)."""
    from nfstream import __version__ as nfstream_version  # noqa: PLC0415 - heavy import, only for captures

    account = FlowAccount(path=str(path), kind="pcap", reader=f"nfstream {nfstream_version}")
    account.sha256, account.bytes = file_sha256(path)
    tcpdump = shutil.which("tcpdump")
    if tcpdump is None:
        account.notes.append("packets read: unknown (tcpdump is not installed: apt-get install tcpdump); the IP "
                             "fragments after the first are not in the flows")
    else:
        account.reader += f", {tool_version([tcpdump, '--version'])}"
        account.packets_read = _count(tcpdump, path, None, account)
        account.packets_outside_flows["non_ip"] = _count(tcpdump, path, NON_IP_FILTER, None)
    return account, _tables(path, file_id, options, account, tcpdump)


def _tables(path: Path, file_id: int, options: FlowOptions, account: FlowAccount,
            tcpdump: str | None) -> Iterator[pa.Table]:
    flows = read_pcap(path, file_id)
    account.records_read += flows.num_rows
    metered = int(pc.sum(flows["packets"]).as_py() or 0)
    yield flows
    fragments = 0
    if tcpdump is not None and options.fragments:
        base = int(pc.max(flows["record"]).as_py() or 0) if flows.num_rows else 0
        table = _fragments(tcpdump, path, file_id, base, options)
        account.records_read += table.num_rows
        fragments = int(pc.sum(table["packets"]).as_py() or 0)
        if fragments:
            account.notes.append(f"{fragments:,} IPv4 fragments after the first (no ports) added as rows of their own")
        yield table
    if account.packets_read is None:
        return
    account.packets_in_flows = metered + fragments
    rest = account.packets_read - account.packets_in_flows - account.packets_outside_flows.get("non_ip", 0)
    if rest >= 0:
        account.packets_outside_flows["unmetered"] = rest
    else:
        account.notes.append(f"the flows hold {-rest:,} packets more than tcpdump counted; packets read not checked")
        account.packets_read = None


def _count(tcpdump: str, path: Path, bpf: str | None, account: FlowAccount | None) -> int:
    """tcpdump's own count of the capture's packets (matching ``bpf``); a truncated capture is a note."""
    args = [tcpdump, "-r", str(path), "--count", *([bpf] if bpf else [])]
    done = subprocess.run(args, capture_output=True, check=False, timeout=3600)  # noqa: S603
    match = re.search(rb"^(\d+) packets?", done.stdout, re.MULTILINE)
    if match is None:
        raise fail(path, "not a readable packet capture (tcpdump)", done.stderr)
    if done.returncode != 0 and account is not None:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        damage = message[-1][:200] if message else "tcpdump stopped early"
        if _TRUNCATED.search(damage):
            account.notes.append(f"incomplete capture (truncated): {damage}; the packets before the damage are read")
        else:
            raise fail(path, "tcpdump cannot read the whole capture", done.stderr)
    return int(match.group(1))


def _fragments(tcpdump: str, path: Path, file_id: int, base: int, options: FlowOptions) -> pa.Table:
    """The non-first IPv4 fragments, one row each, listed by tcpdump and parsed by DuckDB."""
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen([tcpdump, "-r", str(path), "-tt", "-nn", "-v", FRAGMENT_FILTER],  # noqa: S603
                                stdout=subprocess.PIPE, stderr=errors)
        assert proc.stdout is not None
        stdout = proc.stdout
        lines = FileAccount(file_id=file_id, path=str(path))
        batches = list(LineBatcher(lines, batch_bytes=options.batch_bytes).batches(
            iter(lambda: stdout.read(1 << 20), b"")))
        stdout.close()
        proc.wait()
    if not batches or not sum(b.num_rows for b in batches):
        return FLOW_ARROW_SCHEMA.empty_table()
    con = duckdb.connect()
    try:
        con.register("fw_frag_lines", pa.Table.from_batches(batches))
        return to_flow_table(con, _FRAGMENT_SQL.replace("$file_id", str(file_id)).replace("$base", str(base)))
    except duckdb.Error as exc:
        raise FormatError(f"the fragment listing could not be parsed ({exc})", path=str(path)) from None
    finally:
        con.close()

