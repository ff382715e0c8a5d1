"""Flow inputs into the store: each input's reader (chosen by content), its tables written as
``flows/part-<file_id:05d>-<n:05d>.parquet``, and its accounting read back from what was written and checked
(``records_read == records_parsed + records_rejected``; for captures the packets too)."""

from __future__ import annotations

import glob
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from floodwitness.errors import FloodwitnessError, InputError
from floodwitness.ingest.common import SAMPLES_PER_REASON, InternalError
from floodwitness.ingest.flows.base import FlowAccount, FlowOptions
from floodwitness.ingest.flows.registry import sniff
from floodwitness.ingest.store import FLOWS, FlowInputRecord, RejectSample
from floodwitness.safe import terminal_safe

if TYPE_CHECKING:
    from collections.abc import Iterator

    from floodwitness.ingest.store import Manifest

#: Rows per Parquet row group of a flow part (time-range queries prune row groups by their statistics).
ROW_GROUP = 256 * 1024
#: Rows per flow part (bounded memory: a part is held as Arrow before it is written).
PART_ROWS = 2 * 1024 * 1024


def discover_flows(specs: list[str]) -> list[tuple[Path, bool]]:
    """Files named by ``specs`` (files, globs, folders: a folder's files in name order, e.g. nfcapd.2024...),
    each with whether it was named directly (an unreadable one is then an error, else skipped)."""
    out: list[tuple[Path, bool]] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            out += [(p, False) for p in sorted(path.iterdir()) if p.is_file() and not p.name.startswith(".")]
        elif path.is_file():
            out.append((path, True))
        else:
            found = sorted(glob.glob(spec))
            if not found:
                raise InputError("no such flow file or folder", path=spec,
                                 hint="Check the path given to --flows (a file, a folder, or a quoted glob).")
            out += [(Path(p), False) for p in found if Path(p).is_file()]
    return out


def ingest_flows(specs: list[str], work_root: Path, manifest: Manifest, options: FlowOptions | None = None) -> None:
    """Read every flow input of ``specs`` into ``work_root/flows/`` and add its accounting to
    ``manifest.flow_inputs`` (files found in a folder or glob that are no flow input go to ``manifest.skipped``)."""
    options = options or FlowOptions()
    (work_root / FLOWS).mkdir(parents=True, exist_ok=True)
    for path, explicit in discover_flows(specs):
        try:
            kind = sniff(path)
        except FloodwitnessError as exc:
            if explicit:
                raise
            manifest.skipped.append({"path": str(path), "sha256": None, "bytes": path.stat().st_size,
                                     "reason": exc.message})
            continue
        file_id = len(manifest.flow_inputs)
        account, tables = kind.read(path, file_id, options)
        parts = _write_parts(iter(tables), work_root, file_id)
        manifest.flow_inputs.append(_record(account, file_id, work_root, parts))


def _write_parts(tables: Iterator[pa.Table], root: Path, file_id: int) -> list[str]:
    """One Parquet part per ~:data:`PART_ROWS` rows (a reader's small tables are gathered first)."""
    parts: list[str] = []
    pending: list[pa.Table] = []

    def flush() -> None:
        name = f"part-{file_id:05d}-{len(parts):05d}.parquet"
        pq.write_table(pa.concat_tables(pending), root / FLOWS / name, compression="zstd", row_group_size=ROW_GROUP,
                       use_dictionary=["exporter", "reject_reason", "proto", "ip_family", "sampling"])
        parts.append(name)
        pending.clear()

    for table in tables:
        if table.num_rows:
            pending.append(table)
        if sum(t.num_rows for t in pending) >= PART_ROWS:
            flush()
    if pending:
        flush()
    return parts


def _record(account: FlowAccount, file_id: int, root: Path, parts: list[str]) -> FlowInputRecord:
    parsed, by_reason, samples, first, last, rates, packets = 0, {}, [], None, None, {}, 0
    if parts:
        files = [str(root / FLOWS / p) for p in parts]
        con = duckdb.connect()
        try:
            rows = con.execute("""SELECT reject_reason, count(*), min(start), max("end"), sum(packets)
                                  FROM read_parquet(?) GROUP BY ALL""", [files]).fetchall()
            for reason, n, lo, hi, pk in rows:
                if reason is None:
                    parsed, first, last, packets = n, lo, hi, int(pk or 0)
                else:
                    by_reason[reason] = n
            rates = {str(r): n for r, n in con.execute(
                "SELECT sampling, count(*) FROM read_parquet(?) WHERE reject_reason IS NULL GROUP BY ALL ORDER BY 1",
                [files]).fetchall()}
            samples = [RejectSample(line, reason, raw or "") for line, reason, raw in con.execute(
                f"""SELECT record, reject_reason, raw FROM read_parquet(?) WHERE reject_reason IS NOT NULL
                    QUALIFY row_number() OVER (PARTITION BY reject_reason ORDER BY record) <= {SAMPLES_PER_REASON}
                    ORDER BY record""", [files]).fetchall()]
        finally:
            con.close()
    rejected = sum(by_reason.values())
    if parsed + rejected != account.records_read:
        raise InternalError(f"flow accounting mismatch: read {account.records_read} records but stored {parsed} "
                            f"parsed + {rejected} rejected", path=account.path,
                            hint="This is a bug in floodwitness; please report it with the file.")
    _check_packets(account, packets)
    return FlowInputRecord(
        file_id=file_id, path=account.path, sha256=account.sha256, bytes=account.bytes, kind=account.kind,
        reader=account.reader, records_read=account.records_read, records_parsed=parsed, records_rejected=rejected,
        rejected_by_reason=dict(sorted(by_reason.items())), reject_samples=samples,
        packets_read=account.packets_read, packets_in_flows=account.packets_in_flows,
        packets_outside_flows=dict(account.packets_outside_flows), sampling=rates or dict(account.sampling),
        first_ts=_iso(first), last_ts=_iso(last), parts=parts,
        notes=list(account.notes))


def _check_packets(account: FlowAccount, stored: int) -> None:
    """A capture's packets: read == in flows + outside flows, and the flows stored hold the packets in flows."""
    if account.packets_in_flows is None or account.packets_read is None:
        return
    outside = sum(account.packets_outside_flows.values())
    if account.packets_in_flows + outside != account.packets_read or stored != account.packets_in_flows:
        raise InternalError(f"packet accounting mismatch: read {account.packets_read} packets, "
                            f"{account.packets_in_flows} in flows (stored {stored}) + {outside} outside",
                            path=account.path,
                            hint="This is a bug in floodwitness; please report it with the file.")


def flow_summary(manifest: Manifest) -> list[str]:
    """The flow inputs' accounting as lines of plain text (attacker-controlled names made safe to print)."""
    lines: list[str] = []
    for item in manifest.flow_inputs:
        name = terminal_safe(Path(item.path).name or item.path, 60)
        line = (f"flows {name} ({item.kind}, {item.reader}): {item.records_read:,} records read = "
                f"{item.records_parsed:,} parsed + {item.records_rejected:,} rejected; sha256 {item.sha256[:12]}")
        if item.packets_read is not None and item.kind == "pcap":
            outside = ", ".join(f"{k} {v:,}" for k, v in item.packets_outside_flows.items() if v)
            line += (f"; {item.packets_read:,} packets = {item.packets_in_flows:,} in flows"
                     + (f" + {outside}" if outside else ""))
        rates = sorted(int(r) for r in item.sampling)
        if rates and rates != [1]:
            line += "; sampling " + ", ".join(f"1:{r}" for r in rates) + " (counts scaled up)"
        lines.append(line)
        lines += [f"  rejected {n:,}: {terminal_safe(reason, 40)}" for reason, n in item.rejected_by_reason.items()]
        lines += [f"  note: {terminal_safe(note, 200)}" for note in item.notes]
    return lines


def _iso(value: object) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, datetime) else str(value)
