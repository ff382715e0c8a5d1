"""Open an input and yield its decompressed bytes in blocks, hashing what is read.

Compression is detected from the first bytes (magic numbers), never from the name alone. A damaged or
truncated compressed stream yields everything before the damage and records where it happened, so
that no line already decompressed is lost and the report can mark the input incomplete.
"""

from __future__ import annotations

import bz2
import hashlib
import sys
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

import zstandard

from floodwitness.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from floodwitness.inputs.discover import InputFile

READ_BLOCK = 16 << 20

_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"BZh", "bzip2"),
)


@dataclass
class RawStats:
    """What was read from the input as stored on disk (compressed bytes)."""

    compression: str = "none"
    bytes_read: int = 0
    damage: str | None = None  # e.g. "truncated gzip stream: the file ends at byte 5678 inside a member"
    _hash: Any = field(default_factory=hashlib.sha256, repr=False)

    @property
    def sha256(self) -> str:
        return str(self._hash.hexdigest())


def detect_compression(head: bytes) -> str:
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return "none"


def _blocks(stream: BinaryIO, stats: RawStats, first: bytes) -> Iterator[bytes]:
    # SHA-256 runs on a worker thread (hashlib releases the GIL on large buffers), overlapping the
    # parsing of the block before; one block in flight keeps memory bounded and the hash in order.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fw-sha256") as pool:
        hashing: Future[None] | None = None
        block = first
        while block:
            if hashing is not None:
                hashing.result()
            hashing = pool.submit(stats._hash.update, block)
            stats.bytes_read += len(block)
            yield block
            block = stream.read(READ_BLOCK)
        if hashing is not None:
            hashing.result()


def _multi_member(blocks: Iterator[bytes], stats: RawStats, name: str,
                  make: Any, error: type[Exception] | tuple[type[Exception], ...]) -> Iterator[bytes]:
    """Decompress concatenated members (gzip, bzip2, zstd frames) with a decompressor factory.

    Stops at the first damage, recording the byte offset, after yielding everything decoded before it.
    """
    decomp = make()
    fed = 0  # compressed bytes fed to the current member
    offset = 0  # compressed bytes consumed by finished members
    for block in blocks:
        data = block
        while data:
            try:
                out = decomp.decompress(data)
            except error as exc:
                stats.damage = f"corrupt {name} data at or after byte {offset + fed} ({exc})"
                return
            if out:
                yield out
            if decomp.eof:
                rest = decomp.unused_data
                offset += fed + len(data) - len(rest)
                fed = 0
                decomp = make()
                # Zero padding after the last member is common (tape, preallocation): not a new member.
                data = rest if rest.strip(b"\x00") else b""
            else:
                fed += len(data)
                data = b""
    if fed and not decomp.eof:
        stats.damage = (f"truncated {name} stream: the file ends at byte {stats.bytes_read} "
                        f"inside a compressed member that began at byte {offset}")


class _ZstdMember:
    """Adapter giving zstandard's decompressobj the `eof`/`unused_data` interface of zlib and bz2."""

    def __init__(self) -> None:
        self._obj = zstandard.ZstdDecompressor(max_window_size=1 << 31).decompressobj()

    @property
    def eof(self) -> bool:
        return bool(self._obj.eof)

    @property
    def unused_data(self) -> bytes:
        return bytes(self._obj.unused_data)

    def decompress(self, data: bytes) -> bytes:
        return bytes(self._obj.decompress(data))


def open_blocks(source: InputFile, stats: RawStats) -> Iterator[bytes]:
    """Yield decompressed blocks of ``source``; fill ``stats`` (hash, size, compression, damage) as it goes.

    Raises InputError when the file cannot be opened; damage inside a compressed stream is recorded in
    ``stats.damage`` instead, after the readable part has been yielded.
    """
    if source.is_stdin:
        yield from _decoded(sys.stdin.buffer, stats)
        return
    try:
        stream = open(source.path, "rb")  # noqa: SIM115 - closed in the finally below, generator-safe
    except OSError as exc:
        raise InputError(f"cannot open: {exc.strerror}", path=source.path,
                         hint="Check that the file exists and is readable.") from None
    try:
        yield from _decoded(stream, stats)
    except OSError as exc:
        raise InputError(f"read failed after {stats.bytes_read} bytes: {exc.strerror}", path=source.path,
                         hint="The disk or file system returned an error; copy the file and retry.") from None
    finally:
        stream.close()


def _decoded(stream: BinaryIO, stats: RawStats) -> Iterator[bytes]:
    first = stream.read(READ_BLOCK)
    stats.compression = detect_compression(first)
    blocks = _blocks(stream, stats, first)
    if stats.compression == "none":
        yield from blocks
    elif stats.compression == "gzip":
        yield from _multi_member(blocks, stats, "gzip", lambda: zlib.decompressobj(wbits=31), zlib.error)
    elif stats.compression == "bzip2":
        yield from _multi_member(blocks, stats, "bzip2", bz2.BZ2Decompressor, (OSError, ValueError))
    else:
        yield from _multi_member(blocks, stats, "zstd", _ZstdMember, zstandard.ZstdError)
