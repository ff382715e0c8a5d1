"""Where live flows come from (``watch --flows SOURCE``): an nfcapd DIRECTORY, whose completed files
(``nfcapd.YYYYMMDDhhmm``, renamed from ``nfcapd.current.*`` when nfcapd rotates them) are each read once, in order;
or an nfdump CSV FILE that grows, tailed like a log (only whole lines appended since the last poll, across
truncation and rotation: watch/follow.py). Both hand out tables of FLOW_ARROW_SCHEMA (parsed flows only; rejected
records are counted) read by the ingest's own flow readers: no second parser.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from floodwitness.errors import FloodwitnessError, InputError
from floodwitness.ingest.flows.base import FlowOptions, require_tool
from floodwitness.ingest.flows.nfdump import read_nfcapd, read_nfdump_csv
from floodwitness.watch.follow import Chunk, Follower

if TYPE_CHECKING:
    from collections.abc import Iterator

#: a completed nfcapd file (nfcapd.YYYYMMDDhhmm, with seconds when it rotates faster than each minute)
COMPLETED = re.compile(r"^nfcapd\.\d{12}(\d{2})?$")
CSV_HEADER = b"ts,te,"
#: most characters of a reader's error kept per source (the last one)
ERROR_CHARS = 300


@dataclass
class SourceAccount:
    """What one source handed out: records read = parsed + rejected (by reason); files read (directories)."""

    path: str
    kind: str
    records_read: int = 0
    parsed: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    files: int = 0
    failed_files: int = 0
    last_error: str | None = None

    def count(self, table: pa.Table) -> pa.Table:
        """Count ``table``'s records and give its parsed rows."""
        self.records_read += table.num_rows
        reasons = table.column("reject_reason")
        if reasons.null_count < table.num_rows:
            for row in pc.value_counts(reasons.drop_null()).to_pylist():
                self.rejected[row["values"]] = self.rejected.get(row["values"], 0) + row["counts"]
        parsed = table.filter(pc.is_null(reasons))
        self.parsed += parsed.num_rows
        return parsed


class FlowSource(Protocol):
    account: SourceAccount
    #: file_id -> path, for the evidence samples
    files: dict[int, str]

    def poll(self, final: bool) -> Iterator[pa.Table]: ...

    def close(self) -> None: ...


def open_source(spec: str, *, replay: bool, from_start: bool, first_id: int) -> FlowSource:
    """The source ``spec`` names: a directory of nfcapd files, or an nfdump CSV file; a clear error otherwise."""
    path = Path(spec)
    if path.is_dir():
        require_tool("nfdump", path, "watching a directory of nfcapd files")
        if not os.access(path, os.R_OK | os.X_OK):
            raise InputError("cannot read this directory: permission denied", path=spec,
                             hint="Give the user running floodwitness read access to nfcapd's directory.")
        return NfcapdDir(path, replay=replay, from_start=from_start, first_id=first_id)
    if not path.exists():
        raise InputError("no such file or directory", path=spec,
                         hint="--flows takes nfcapd's output directory or an nfdump CSV file (nfdump -o csv).")
    try:
        with path.open("rb") as fh:
            head = fh.read(len(CSV_HEADER))
    except OSError as exc:
        raise InputError(f"cannot read this file: {exc.strerror}", path=spec,
                         hint="Check its permissions.") from None
    if head and head != CSV_HEADER:
        raise InputError("not an nfdump CSV export (its first line does not start with ts,te,)", path=spec,
                         hint="Tail the output of `nfdump -o csv`, or give nfcapd's directory for its binary files.")
    return CsvTail(path, replay=replay, from_start=from_start, first_id=first_id)


class NfcapdDir:
    """The completed files of an nfcapd directory, each read once, in the order of their names (their time).
    Only the newest name read is kept: memory does not grow with the files seen."""

    def __init__(self, path: Path, *, replay: bool, from_start: bool, first_id: int) -> None:
        self.path = path
        self.account = SourceAccount(str(path), "nfcapd")
        self.files: dict[int, str] = {}
        self.next_id = first_id
        self.last = "" if replay or from_start else (self._completed()[-1:] or [""])[0]

    def _completed(self) -> list[str]:
        try:
            names = os.listdir(self.path)
        except OSError as exc:
            raise InputError(f"cannot list the directory: {exc.strerror}", path=str(self.path),
                             hint="Check that it exists and is readable.") from None
        return sorted(n for n in names if COMPLETED.match(n))

    def poll(self, final: bool) -> Iterator[pa.Table]:
        del final
        for name in [n for n in self._completed() if n > self.last]:
            self.last = name
            file_id = self.next_id
            self.next_id += 1
            self.files[file_id] = str(self.path / name)
            self.account.files += 1
            try:
                _account, tables = read_nfcapd(self.path / name, file_id, FlowOptions())
                for table in tables:
                    yield self.account.count(table)
            except FloodwitnessError as exc:  # one damaged file must not end a watch of weeks: counted, said
                self.account.failed_files += 1
                self.account.last_error = str(exc)[:ERROR_CHARS]

    def close(self) -> None:
        return None


class CsvTail:
    """A growing nfdump CSV export: the appended whole lines of each poll, parsed by the CSV reader (the header
    line, remembered, is put before them in a private scratch file), with their record numbers in the file."""

    def __init__(self, path: Path, *, replay: bool, from_start: bool, first_id: int) -> None:
        self.path = path
        self.account = SourceAccount(str(path), "nfdump_csv")
        self.files: dict[int, str] = {first_id: str(path)}
        self.file_id = first_id
        self.follower = Follower([str(path)], from_start=from_start or replay,
                                 chunk_bytes=(64 if replay else 16) << 20, max_line_bytes=64 * 1024)
        self.header: bytes | None = None
        self.lines = 0  # lines of the followed file before the next chunk
        self.scratch = tempfile.TemporaryDirectory(prefix="fw-flows-")
        if not (from_start or replay):  # live from the end: the position is taken now, the header is still
            self.header = _first_line(path)  # the file's first line
            for _skipped in self.follower.poll(final=False):
                pass
            self.lines = _count_lines(path, max((t.offset for t in self.follower.files.values()), default=0))

    def poll(self, final: bool) -> Iterator[pa.Table]:
        for chunk in self.follower.poll(final=final):
            if chunk.restarted or chunk.start == 0:
                self.header, self.lines = None, 0
                if chunk.restarted:
                    continue
            yield from self._parse(chunk)

    def _parse(self, chunk: Chunk) -> Iterator[pa.Table]:
        data = chunk.data
        if self.header is None and chunk.start == 0:
            self.header = data.split(b"\n", 1)[0] + b"\n"
            before, prefix = 0, b""
        elif self.header is None:  # started mid-file without a header (live from the end of an empty file)
            self.header = _first_line(self.path)
            before, prefix = self.lines, self.header
        else:
            before, prefix = self.lines, self.header
        self.lines += data.count(b"\n")
        if not self.header.startswith(CSV_HEADER):
            raise InputError("not an nfdump CSV export (its first line does not start with ts,te,)",
                             path=str(self.path), hint="Tail the output of `nfdump -o csv`.")
        scratch = Path(self.scratch.name) / "lines.csv"
        scratch.write_bytes(prefix + data)
        _account, tables = read_nfdump_csv(scratch, self.file_id, FlowOptions())
        shift = before - 1 if prefix else 0
        for table in tables:
            rows = table.filter(pc.not_equal(table.column("record"), 1)) if prefix else table  # not the header put back
            if shift:
                i = rows.schema.get_field_index("record")
                rows = rows.set_column(i, "record", pc.add(rows.column("record"), shift))
            yield self.account.count(rows)

    def close(self) -> None:
        self.scratch.cleanup()


def _count_lines(path: Path, end: int) -> int:
    """Lines in the first ``end`` bytes of ``path`` (live from the end: the record numbers go on from there)."""
    count = 0
    with path.open("rb") as fh:
        while end > 0:
            block = fh.read(min(end, 1 << 20))
            if not block:
                break
            count += block.count(b"\n")
            end -= len(block)
    return count


def _first_line(path: Path) -> bytes:
    try:
        with path.open("rb") as fh:
            line = fh.readline(64 * 1024)
    except OSError:
        return b""
    return line if line.endswith(b"\n") else b""
