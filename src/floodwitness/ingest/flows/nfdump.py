"""nfdump's flow files (``nfcapd.*``, read by the ``nfdump`` program) and its CSV and JSON exports.

The binary files go through ``nfdump -q -N -o fmt:...`` (millisecond times, plain numbers, UTC), the CSV text is cut
into numbered lines by :mod:`floodwitness.inputs` (gzip/zstd/bz2 too), and DuckDB parses the lines of a group at
once: no Python loop per record. nfcapd already multiplied a sampled exporter's counts by its rate when it wrote
the file, so those counts are kept as they are and the rate nfdump reports goes to the ``sampling`` column.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from floodwitness.errors import FormatError
from floodwitness.ingest.common import prefetched
from floodwitness.ingest.flows.base import (
    FlowAccount,
    FlowOptions,
    fail,
    file_sha256,
    normalize_sql,
    require_tool,
    to_flow_table,
    tool_version,
)
from floodwitness.ingest.flows.csvfast import fast_tables
from floodwitness.inputs import InputFile
from floodwitness.inputs.lines import FileAccount, LineBatcher, iter_line_batches

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

#: nfdump's fields for the binary files, in this order, '|'-separated (``%pr`` prints the protocol as a number
#: with -N, ``%flg`` the flags as letters, ``%ra`` the exporter's address)
NFDUMP_FORMAT = "fmt:%ts|%te|%sa|%da|%sp|%dp|%pr|%flg|%ipkt|%ibyt|%ra"
_FIELDS = ("ts", "te", "sa", "da", "sp", "dp", "pr", "flg", "pk", "bt", "ra")
#: the CSV header's names for the fields (nfdump -o csv)
_CSV_NAMES = {"ts": "ts", "te": "te", "sa": "sa", "da": "da", "sp": "sp", "dp": "dp", "pr": "pr", "flg": "flg",
              "pk": "ipkt", "bt": "ibyt", "ra": "ra"}
_REQUIRED = ("ts", "te", "sa", "da", "pr", "pk", "bt")
LINES = "fw_flow_lines"
GROUP_BYTES = 64 << 20
CHUNK_ROWS = 256 * 1024


def _fields_sql(delim: str, positions: dict[str, int], ncols: int, extra_reject: str) -> str:
    cols = ", ".join(f"trim(f[{positions[k] + 1}])" + f" AS {k}" if k in positions else f"NULL::VARCHAR AS {k}"
                     for k in _FIELDS)
    return f"""(SELECT file_id, line AS record, text,
        coalesce(pre_reject, {extra_reject}) AS pre_reject, len(f) = {ncols} AS ok, {cols}
      FROM (SELECT *, string_split(rtrim(text, chr(10) || chr(13)), '{delim}') AS f FROM {LINES}))"""


def _groups(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.Table]:
    pending: list[pa.RecordBatch] = []
    size = 0
    for batch in batches:
        pending.append(batch)
        size += batch.nbytes
        if size >= GROUP_BYTES:
            yield pa.Table.from_batches(pending)
            pending, size = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


def _parse_lines(groups: Iterator[pa.Table], make_sql: Callable[[pa.Table], str],
                 account: FlowAccount) -> Iterator[pa.Table]:
    """Each group of numbered lines parsed by DuckDB into flow rows (the scan keeps the lines' order)."""
    con = duckdb.connect()
    try:
        for group in prefetched(groups):
            account.records_read += group.num_rows
            con.register(LINES, group)
            try:
                yield to_flow_table(con, make_sql(group))
            finally:
                con.unregister(LINES)
    finally:
        con.close()


# -- nfcapd binary files -----------------------------------------------------------------------------------------

def read_nfcapd(path: Path, file_id: int, options: FlowOptions) -> tuple[FlowAccount, Iterator[pa.Table]]:
    """An nfcapd file through ``nfdump -r``; a clear error when nfdump is not installed or cannot read it."""
    nfdump = require_tool("nfdump", path, "reading an nfcapd flow file")
    found = re.search(r"Version:\s*(\S+)", tool_version([nfdump, "-V"]))
    version = found.group(1) if found else ""
    account = FlowAccount(path=str(path), kind="nfcapd", reader=f"nfdump {version}".strip())
    account.sha256, account.bytes = file_sha256(path)
    info = _nfdump_info(nfdump, path)
    rates = _sampling_rates(nfdump, path)
    rate = max(rates) if rates else 1
    if len(rates) > 1:
        account.notes.append(f"several sampling rates announced ({sorted(rates)}): the sampling column holds the "
                             f"largest, 1:{rate}; the counts are as nfcapd scaled them, per exporter")
    if options.sampling is None and "Packets" in info:  # checked against the flows stored
        account.packets_read = account.packets_in_flows = info["Packets"]
    return account, _nfcapd_tables(nfdump, path, file_id, account, rate, options, info)


def _nfdump_env() -> dict[str, str]:
    return {**os.environ, "TZ": "UTC", "LC_ALL": "C"}


def _nfdump_info(nfdump: str, path: Path) -> dict[str, int]:
    """``nfdump -I``: the file's own totals (Flows, Packets, Bytes, ...), to check the reading against."""
    done = subprocess.run([nfdump, "-I", "-r", str(path)], capture_output=True, env=_nfdump_env(),  # noqa: S603
                          check=False, timeout=600)
    if done.returncode != 0:
        raise fail(path, "nfdump cannot read this file", done.stderr or done.stdout)
    out: dict[str, int] = {}
    for match in re.finditer(r"^(\w+): (\d+)$", done.stdout.decode("utf-8", "replace"), re.MULTILINE):
        out[match.group(1)] = int(match.group(2))
    return out


def _sampling_rates(nfdump: str, path: Path) -> set[int]:
    """The packet-sampling rates of the file's samplers (``nfdump -E``), when it holds any."""
    done = subprocess.run([nfdump, "-E", str(path)], capture_output=True, env=_nfdump_env(),  # noqa: S603
                          check=False, timeout=600)
    text = done.stdout.decode("utf-8", "replace")
    return {int(m.group(1)) for m in re.finditer(r"(?:[Ss]ampl\w*|interval)[^\n]*?[:=]\s*(\d+)", text)
            if int(m.group(1)) > 1}


def _nfcapd_tables(nfdump: str, path: Path, file_id: int, account: FlowAccount, rate: int, options: FlowOptions,
                   info: dict[str, int]) -> Iterator[pa.Table]:
    positions = {k: i for i, k in enumerate(_FIELDS)}
    sql = normalize_sql(_fields_sql("|", positions, len(_FIELDS), "NULL"), exporter="nfdump",
                        sampling=options.sampling or rate, scale=options.sampling or 1)
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen([nfdump, "-r", str(path), "-q", "-N", "-o", NFDUMP_FORMAT],  # noqa: S603
                                stdout=subprocess.PIPE, stderr=errors, env=_nfdump_env())
        assert proc.stdout is not None
        lines = FileAccount(file_id=file_id, path=str(path))
        blocks = iter(lambda: proc.stdout.read(1 << 20), b"")  # type: ignore[union-attr]
        batches = LineBatcher(lines, batch_bytes=options.batch_bytes).batches(blocks)
        try:
            yield from _parse_lines(_groups(batches), lambda _g: sql, account)
        finally:
            proc.stdout.close()
            code = proc.wait()
        if code != 0:
            errors.seek(0)
            raise fail(path, "nfdump failed reading this file", errors.read())
    flows = info.get("Flows")
    if flows is not None and flows != account.records_read:
        account.notes.append(f"nfdump -I counts {flows:,} flows, its listing gave {account.records_read:,} records")


# -- CSV exports ---------------------------------------------------------------------------------------------------

def read_nfdump_csv(path: Path, file_id: int, options: FlowOptions) -> tuple[FlowAccount, Iterator[pa.Table]]:
    """``nfdump -o csv`` output (second-precision times, protocol names, a Summary block at the end): every line
    is a record or a counted non-record (the header, the Summary block, blank lines)."""
    lines, batches = iter_line_batches(InputFile(str(path)), file_id, batch_bytes=options.batch_bytes)
    account = FlowAccount(path=str(path), kind="nfdump_csv", reader=f"duckdb {duckdb.__version__} (lines)")
    first = next(batches, None)
    header = "" if first is None or first.num_rows == 0 else str(first.column("text")[0].as_py()).strip()
    names = header.split(",")
    positions = {k: names.index(v) for k, v in _CSV_NAMES.items() if v in names}
    missing = [_CSV_NAMES[k] for k in _REQUIRED if k not in positions]
    if missing and first is not None:
        raise FormatError(f"not an nfdump CSV export: the header has no {', '.join(missing)} column(s)",
                          path=str(path), hint="Export with `nfdump -r FILE -o csv`, or give the nfcapd file itself.")
    scale = options.sampling or 1
    state = {"summary": 1 << 62}

    def make_sql(group: pa.Table) -> str:
        text = pc.utf8_trim_whitespace(group.column("text"))
        hit = pc.index(text, "Summary").as_py()
        if hit >= 0:
            state["summary"] = min(state["summary"], int(group.column("line")[hit].as_py()))
        extra = (f"CASE WHEN line = 1 THEN 'csv_header' WHEN line >= {state['summary']} THEN 'nfdump_summary' "
                 "WHEN trim(text, chr(10) || chr(13) || ' ') = '' THEN 'empty_line' END")
        return normalize_sql(_fields_sql(",", positions, len(names), extra), exporter="nfdump CSV",
                             sampling=scale, scale=scale)

    def tables() -> Iterator[pa.Table]:
        if first is None:
            return
        fast = fast_tables(path, file_id, names, positions, scale, account)
        if fast is not None:
            account.reader = f"duckdb {duckdb.__version__} read_csv"
            yield from fast
            return
        all_batches = _chain(first, batches)
        yield from _parse_lines(_groups(all_batches), make_sql, account)
        account.sha256, account.bytes = lines.raw.sha256, lines.raw.bytes_read
        if lines.raw.damage:
            account.notes.append(f"incomplete input: {lines.raw.damage}")

    account.sha256, account.bytes = file_sha256(path)
    return account, tables()


def _chain(first: pa.RecordBatch, rest: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    yield first
    yield from rest


# -- JSON exports --------------------------------------------------------------------------------------------------

_JSON_FIELDS = ("type", "first", "last", "in_packets", "in_bytes", "proto", "tcp_flags", "src_port", "dst_port",
                "src4_addr", "dst4_addr", "src6_addr", "dst6_addr", "ip4_router", "ip6_router")


def read_nfdump_json(path: Path, file_id: int, options: FlowOptions) -> tuple[FlowAccount, Iterator[pa.Table]]:
    """``nfdump -o json`` output (an array of objects); a record whose ``type`` is not FLOW is counted apart."""
    account = FlowAccount(path=str(path), kind="nfdump_json", reader=f"duckdb {duckdb.__version__} read_json")
    account.sha256, account.bytes = file_sha256(path)
    return account, _json_tables(path, file_id, account, options)


def _json_tables(path: Path, file_id: int, account: FlowAccount, options: FlowOptions) -> Iterator[pa.Table]:
    columns = "{" + ", ".join(f"'{k}': 'VARCHAR'" for k in _JSON_FIELDS) + "}"
    scale = options.sampling or 1
    source = f"""(SELECT {file_id} AS file_id, record, raw AS text,
        CASE WHEN type IS DISTINCT FROM 'FLOW' THEN 'not_a_flow' END AS pre_reject, true AS ok,
        "first" AS ts, "last" AS te, coalesce(src4_addr, src6_addr) AS sa, coalesce(dst4_addr, dst6_addr) AS da,
        src_port AS sp, dst_port AS dp, proto AS pr, tcp_flags AS flg, in_packets AS pk, in_bytes AS bt,
        coalesce(ip4_router, ip6_router) AS ra FROM fw_json)"""
    sql = normalize_sql(source, exporter="nfdump JSON", sampling=scale, scale=scale)
    con = duckdb.connect()
    try:
        try:
            reader = con.sql(
                f"SELECT *, to_json(j)::VARCHAR AS raw FROM read_json(?, format='array', columns={columns}) j",
                params=[str(path)]).to_arrow_reader(CHUNK_ROWS)
        except duckdb.Error as exc:
            raise FormatError(f"not an nfdump JSON export ({str(exc).splitlines()[0][:200]})", path=str(path),
                              hint="Export with `nfdump -r FILE -o json` (an array of flow objects).") from None
        batches = iter(reader)
        inner = duckdb.connect()
        try:
            for batch in _numbered(batches, account):
                inner.register("fw_json", batch)
                try:
                    yield to_flow_table(inner, sql)
                finally:
                    inner.unregister("fw_json")
        finally:
            inner.close()
    except duckdb.Error as exc:
        raise FormatError(f"not an nfdump JSON export ({str(exc).splitlines()[0][:200]})", path=str(path),
                          hint="Export with `nfdump -r FILE -o json` (an array of flow objects).") from None
    finally:
        con.close()


def _numbered(batches: Iterator[pa.RecordBatch], account: FlowAccount) -> Iterator[pa.Table]:
    """Each batch with its 1-based record numbers (the scan keeps the file's order)."""
    for batch in batches:
        n = batch.num_rows
        if not n:
            continue
        numbers = pa.array(np.arange(account.records_read + 1, account.records_read + n + 1, dtype=np.int64))
        account.records_read += n
        yield pa.Table.from_batches([batch]).append_column("record", numbers)
