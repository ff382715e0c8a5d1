"""Cut decompressed bytes into Arrow batches of lines, numbering and accounting for every one.

The work per line is vectorised: newline positions come from numpy, the strings are Arrow views on the
decompressed buffer (no copy), UTF-8 is validated by Arrow per batch. Python touches individual lines
only for the rare ones it must rewrite (longer than the cap), a bounded number per batch.

Every line read leaves this module as exactly one row, either clean or with a ``pre_reject`` reason:
that is what makes ``read = parsed + rejected`` provable downstream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from floodwitness.inputs.opener import RawStats, open_blocks
from floodwitness.schema import RAW_SAMPLE_CHARS

if TYPE_CHECKING:
    from collections.abc import Iterator

    from floodwitness.inputs.discover import InputFile

DEFAULT_MAX_LINE_BYTES = 64 * 1024
DEFAULT_BATCH_BYTES = 16 << 20
LONG_LINE_SAMPLES = 20

#: Columns of the batches handed to a format's parser.
LINE_SCHEMA = pa.schema([
    pa.field("file_id", pa.int32()),
    pa.field("line", pa.int64()),
    pa.field("text", pa.large_string()),  # with its trailing newline; parsers strip it
    pa.field("pre_reject", pa.string()),  # set here for line_too_long, nul_byte, truncated_input
])

_REPLACEMENT = "\ufffd"


@dataclass
class FileAccount:
    """Per-input accounting filled while reading. Rejections by format are counted later, by the engine."""

    file_id: int
    path: str
    raw: RawStats = field(default_factory=RawStats)
    bytes_decompressed: int = 0
    lines_read: int = 0
    utf8_repaired: int = 0  # lines with invalid UTF-8, kept with U+FFFD in place of the bad bytes
    long_lines: list[tuple[int, int]] = field(default_factory=list)  # (line, length) samples

    @property
    def complete(self) -> bool:
        return self.raw.damage is None


class LineBatcher:
    """Turns a stream of byte blocks into line batches for one input file."""

    def __init__(self, account: FileAccount, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
                 batch_bytes: int = DEFAULT_BATCH_BYTES) -> None:
        if max_line_bytes < 16:
            raise ValueError("max_line_bytes must be at least 16")
        self.account = account
        self.max_line_bytes = max_line_bytes
        self.batch_bytes = max(batch_bytes, 1 << 16)

    def batches(self, blocks: Iterator[bytes]) -> Iterator[pa.RecordBatch]:
        # Lines are cut where they lie in each block: a large run of whole lines becomes a batch that views
        # the block without a copy; only the line straddling two blocks, and runs from small blocks, are
        # copied (joined). Copying every block once more cost as much as finding its newlines.
        pending: list[bytes] = []  # small runs of whole lines, joined into one batch
        pending_size = 0
        carry = b""  # the start of a line that continues in the next block
        skipping = False  # inside a line longer than the cap that is not kept in memory
        skip_len = 0
        skip_head = b""
        big = max(self.batch_bytes // 2, 1)
        for block in blocks:
            self.account.bytes_decompressed += len(block)
            pos = 0
            if skipping:
                idx = block.find(b"\n")
                if idx < 0:
                    skip_len += len(block)
                    continue
                skip_len += idx
                skipping = False
                yield self._long_line(skip_head, skip_len)
                pos = idx + 1
            last = block.rfind(b"\n", pos)
            if last < 0:
                carry += block[pos:]
            else:
                if carry:
                    first = block.find(b"\n", pos)
                    line = carry + block[pos:first + 1]
                    pending.append(line)
                    pending_size += len(line)
                    carry, pos = b"", first + 1
                if last + 1 - pos >= big:
                    if pending:
                        yield self._joined(pending)
                        pending, pending_size = [], 0
                    yield self._batch(block, pos, last + 1)
                elif last + 1 > pos:
                    pending.append(block[pos:last + 1])
                    pending_size += last + 1 - pos
                carry = block[last + 1:]
            if pending_size >= self.batch_bytes:
                yield self._joined(pending)
                pending, pending_size = [], 0
            if len(carry) > self.max_line_bytes:
                if pending:
                    yield self._joined(pending)
                    pending, pending_size = [], 0
                skipping, skip_head, skip_len, carry = True, carry[:RAW_SAMPLE_CHARS], len(carry), b""
        if pending:
            yield self._joined(pending)
        if skipping:
            yield self._long_line(skip_head, skip_len)
        elif carry:
            # A last line without a newline: complete in a plain file, cut short in a damaged stream.
            reason = None if self.account.complete else "truncated_input"
            data = carry + b"\n"
            yield self._batch(data, 0, len(data), force_reason=reason)

    def _joined(self, pieces: list[bytes]) -> pa.RecordBatch:
        data = b"".join(pieces)
        return self._batch(data, 0, len(data))

    # -- batch construction -------------------------------------------------------------------------

    def _numbers(self, count: int) -> pa.Array:
        start = self.account.lines_read + 1
        self.account.lines_read += count
        return pa.array(np.arange(start, start + count, dtype=np.int64))

    def _long_line(self, head: bytes, length: int) -> pa.RecordBatch:
        numbers = self._numbers(1)
        self._note_long(int(numbers[0].as_py()), length)
        text = pa.array([_lossy(head)], type=pa.large_string())
        return self._make(numbers, text, pa.array(["line_too_long"], type=pa.string()))

    def _note_long(self, line: int, length: int) -> None:
        if len(self.account.long_lines) < LONG_LINE_SAMPLES:
            self.account.long_lines.append((line, length))

    def _batch(self, buf: bytes, start: int, end: int, force_reason: str | None = None) -> pa.RecordBatch:
        """The lines in ``buf[start:end]`` (whole lines, each ending with a newline), viewed without a copy."""
        data: bytes | memoryview = memoryview(buf)[start:end]
        view = np.frombuffer(data, dtype=np.uint8)
        ends = np.flatnonzero(view == 10)
        count = len(ends)
        offsets = np.empty(count + 1, dtype=np.int64)
        offsets[0] = 0
        offsets[1:] = ends + 1
        text = pa.LargeStringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(data))
        reasons: list[str | None] | None = None
        if force_reason is not None:
            reasons = [force_reason] * count

        if buf.find(b"\x00", start, end) >= 0:
            # NUL bytes mean a corrupt or preallocated file. Reject those lines; keep a printable copy.
            line_of = np.searchsorted(ends, np.flatnonzero(view == 0))
            reasons = reasons or [None] * count
            for index in np.unique(line_of).tolist():
                reasons[index] = reasons[index] or "nul_byte"
            cleaned = view.copy()
            cleaned[cleaned == 0] = ord("?")
            data = cleaned.tobytes()
            text = pa.LargeStringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(data))

        try:
            text.validate(full=True)
        except pa.ArrowInvalid:
            text = self._repair_utf8(bytes(data), text, count)

        lengths = np.diff(offsets) - 1
        long_index = np.flatnonzero(lengths > self.max_line_bytes)
        if len(long_index):
            reasons = reasons or [None] * count
            replacements = []
            first_line = self.account.lines_read + 1
            for index in long_index.tolist():
                reasons[index] = "line_too_long"
                self._note_long(first_line + index, int(lengths[index]))
                begin = int(offsets[index])
                replacements.append(_lossy(bytes(data[begin: begin + RAW_SAMPLE_CHARS])))
            mask = np.zeros(count, dtype=bool)
            mask[long_index] = True
            text = pc.replace_with_mask(text, pa.array(mask), pa.array(replacements, type=pa.large_string()))

        reason_array = pa.array(reasons, type=pa.string()) if reasons else pa.nulls(count, type=pa.string())
        return self._make(self._numbers(count), text, reason_array)

    def _repair_utf8(self, data: bytes, original: pa.Array, count: int) -> pa.Array:
        """Replace invalid UTF-8 with U+FFFD (lines stay, counted as repaired)."""
        fixed = data.decode("utf-8", errors="replace").encode("utf-8")
        view = np.frombuffer(fixed, dtype=np.uint8)
        offsets = np.empty(count + 1, dtype=np.int64)
        offsets[0] = 0
        offsets[1:] = np.flatnonzero(view == 10) + 1
        text = pa.LargeStringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(fixed))
        before = pc.count_substring(original.cast(pa.large_binary()), _REPLACEMENT.encode())
        after = pc.count_substring(text, _REPLACEMENT)
        self.account.utf8_repaired += int(pc.sum(pc.not_equal(before, after)).as_py() or 0)
        return text

    def _make(self, numbers: pa.Array, text: pa.Array, reasons: pa.Array) -> pa.RecordBatch:
        file_ids = pa.array(np.full(len(numbers), self.account.file_id, dtype=np.int32))
        return pa.RecordBatch.from_arrays([file_ids, numbers, text, reasons], schema=LINE_SCHEMA)


def _lossy(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").replace("\x00", "?")


def iter_line_batches(source: InputFile, file_id: int, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
                      batch_bytes: int = DEFAULT_BATCH_BYTES) -> tuple[FileAccount, Iterator[pa.RecordBatch]]:
    """The account for ``source`` and a lazy iterator of its line batches (the account fills as it runs)."""
    account = FileAccount(file_id=file_id, path=source.path)
    batcher = LineBatcher(account, max_line_bytes=max_line_bytes, batch_bytes=batch_bytes)
    return account, batcher.batches(open_blocks(source, account.raw))
