"""Follow log files like ``tail -F``: appended whole lines, across rotation by rename and by copytruncate.

Files are tracked by identity (device, inode, and a hash of their first bytes), not by name: a renamed
file is drained to its end before it is let go, a file that shrinks (copytruncate) is read again from the
start, and the lines it held beyond the offset are first recovered from the rotated copy beside it when
one has the same first bytes. Only whole lines are handed out, and the offset always sits at a line's
start, so a checkpointed offset resumes exactly after the last line counted. Globs are expanded on every
poll, so new files that match are picked up; compressed rotated files are ignored.
"""

from __future__ import annotations

import glob
import hashlib
import os
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from floodwitness.errors import InputError

if TYPE_CHECKING:
    from collections.abc import Iterator

HEAD_BYTES = 1024
COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zip", ".lz4", ".br")
#: a file no longer at any watched name is dropped once drained and idle this many polls
IDLE_POLLS = 3


@dataclass
class Tracked:
    """One followed file, as checkpointed."""

    path: str
    dev: int
    inode: int
    head_len: int
    head_sha: str
    offset: int = 0
    file_id: int = 0
    format: str | None = None
    lines: int = 0
    idle: int = field(default=0, compare=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("idle")
        return d


def _head(path: str, length: int) -> tuple[int, str]:
    with open(path, "rb") as fh:
        data = fh.read(length)
    return len(data), hashlib.sha256(data).hexdigest()


def _identity(path: str) -> os.stat_result | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st if _is_regular(st) else None


def _is_regular(st: os.stat_result) -> bool:
    return (st.st_mode & 0o170000) == 0o100000


def same_head(path: str, t: Tracked) -> bool:
    try:
        return t.head_len > 0 and _head(path, t.head_len) == (t.head_len, t.head_sha)
    except OSError:
        return False


@dataclass
class Chunk:
    file: Tracked
    data: bytes  # whole lines
    start: int   # offset of data in the file
    restarted: bool = False  # the file was truncated: line numbers start again


class Follower:
    """Expands ``specs`` (paths and globs) and hands out appended whole lines per poll."""

    def __init__(self, specs: list[str], *, from_start: bool, chunk_bytes: int = 16 << 20,
                 max_line_bytes: int = 64 * 1024) -> None:
        self.specs = specs
        self.from_start = from_start
        self.chunk_bytes = chunk_bytes
        self.max_line_bytes = max_line_bytes
        self.files: dict[tuple[int, int], Tracked] = {}
        self.next_id = 0
        self.first_poll = True

    # -- state --------------------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {"next_id": self.next_id, "files": [t.to_dict() for t in self.files.values()]}

    def restore(self, state: dict[str, Any]) -> None:
        """Resume from a checkpoint: each file is found again by identity, wherever it now is."""
        self.next_id = int(state["next_id"])
        self.first_poll = False
        for d in state["files"]:
            t = Tracked(**d)
            st = _identity(t.path)
            if st is not None and (st.st_dev, st.st_ino) == (t.dev, t.inode) and same_head(t.path, t):
                self.files[(t.dev, t.inode)] = t
                continue
            moved = self._find_moved(t)
            if moved is not None:  # rotated by rename while we were down: finish the old file first
                t.path = moved
                self.files[(t.dev, t.inode)] = t
            elif st is not None and (st.st_dev, st.st_ino) == (t.dev, t.inode):
                # same inode, other first bytes: truncated while we were down; the next read recovers the
                # rest from the rotated copy, then starts again from the top
                self.files[(t.dev, t.inode)] = t

    def _candidates(self, t: Tracked) -> list[str]:
        folder = os.path.dirname(t.path) or "."
        base = os.path.basename(t.path)
        names = set(glob.glob(os.path.join(glob.escape(folder), glob.escape(base) + "*")))
        for spec in self.specs:
            names.update(glob.glob(spec))
        return sorted(n for n in names if not n.endswith(COMPRESSED))

    def _find_moved(self, t: Tracked) -> str | None:
        for name in self._candidates(t):
            st = _identity(name)
            if st is not None and (st.st_dev, st.st_ino) == (t.dev, t.inode) and same_head(name, t):
                return name
        return None

    def _find_copy(self, t: Tracked) -> str | None:
        """The rotated copy a copytruncate left: other inode, same first bytes, at least our offset long."""
        for name in self._candidates(t):
            st = _identity(name)
            if st is None or (st.st_dev, st.st_ino) == (t.dev, t.inode) or (st.st_dev, st.st_ino) in self.files:
                continue
            if st.st_size >= t.offset and same_head(name, t):
                return name
        return None

    # -- polling ------------------------------------------------------------------------------------------

    def _expand(self) -> dict[tuple[int, int], str]:
        found: dict[tuple[int, int], str] = {}
        for spec in self.specs:
            names = glob.glob(spec) if glob.has_magic(spec) else [spec]
            for name in sorted(names):
                if name.endswith(COMPRESSED):
                    continue
                st = _identity(name)
                if st is not None:
                    found.setdefault((st.st_dev, st.st_ino), name)
        return found

    def _copied_from(self, name: str) -> Tracked | None:
        """The followed file whose first bytes ``name`` repeats (a copy made by copytruncate), if any."""
        for t in self.files.values():
            if t.head_len >= min(HEAD_BYTES, 1) and same_head(name, t):
                return t
        return None

    def _track(self, key: tuple[int, int], name: str, start_at_end: bool) -> None:
        st = os.stat(name)
        length, sha = _head(name, HEAD_BYTES)
        t = Tracked(name, key[0], key[1], length, sha, file_id=self.next_id)
        self.next_id += 1
        if start_at_end:
            t.offset = self._line_start_before(name, st.st_size)
        self.files[key] = t

    def _line_start_before(self, name: str, size: int) -> int:
        with open(name, "rb") as fh:
            fh.seek(max(size - self.max_line_bytes, 0))
            tail = fh.read()
        cut = tail.rfind(b"\n")
        return size - len(tail) + cut + 1 if cut >= 0 else 0

    def _restart(self, t: Tracked) -> None:
        t.offset = 0
        t.lines = 0
        t.head_len, t.head_sha = 0, ""

    def poll(self, *, final: bool = False) -> Iterator[Chunk]:
        """Whole lines appended since the last poll, per file (``final``: a last line without a newline too)."""
        current = self._expand()
        for key, name in current.items():
            if key not in self.files:
                original = None if self.first_poll else self._copied_from(name)
                self._track(key, name, start_at_end=self.first_poll and not self.from_start)
                if original is not None:  # a copytruncate's copy: only what we had not read yet is new
                    copy = self.files[key]
                    copy.offset, copy.lines, copy.format = original.offset, original.lines, original.format
            else:
                self.files[key].path = name
        self.first_poll = False
        for key in list(self.files):
            t = self.files[key]
            yield from self._read(t, final=final)
            if key not in current:
                t.idle += 1
                if t.idle >= IDLE_POLLS or _identity(t.path) is None:
                    yield from self._read(t, final=True)
                    del self.files[key]

    def _read(self, t: Tracked, *, final: bool) -> Iterator[Chunk]:
        try:
            fh = open(t.path, "rb")  # noqa: SIM115 - closed below; the file may be gone by then
        except OSError:
            return
        with fh:
            st = os.fstat(fh.fileno())
            if (st.st_dev, st.st_ino) != (t.dev, t.inode):
                return  # the name now holds another file; ours is found again by the next expansion
            if st.st_size < t.offset or (t.head_len and t.offset >= t.head_len and not same_head(t.path, t)):
                yield from self._recover_copy(t)
                self._restart(t)
                yield Chunk(t, b"", 0, restarted=True)
            if t.head_len < HEAD_BYTES and st.st_size > t.head_len:
                t.head_len, t.head_sha = _head(t.path, HEAD_BYTES)
            while True:
                fh.seek(t.offset)
                data = fh.read(self.chunk_bytes)
                if not data:
                    return
                cut = data.rfind(b"\n")
                if cut >= 0:
                    whole, consumed = data[:cut + 1], cut + 1
                elif final or len(data) > self.max_line_bytes:  # a last line without newline, or an endless one
                    whole, consumed = data + b"\n", len(data)
                else:
                    return
                start = t.offset
                t.offset += consumed
                t.idle = 0
                yield Chunk(t, whole, start)

    def _recover_copy(self, t: Tracked) -> Iterator[Chunk]:
        """Before reading a truncated file again, read what its rotated copy holds beyond our offset."""
        copy = self._find_copy(t)
        if copy is None:
            return
        with open(copy, "rb") as fh:
            fh.seek(t.offset)
            while True:
                data = fh.read(self.chunk_bytes)
                if not data:
                    return
                cut = data.rfind(b"\n")
                whole = data[:cut + 1] if cut >= 0 else data + b"\n"
                fh.seek(t.offset + len(whole) if cut >= 0 else t.offset + len(data))
                start = t.offset
                t.offset += len(whole) if cut >= 0 else len(data)
                yield Chunk(t, whole, start)


def missing_specs(specs: list[str]) -> list[str]:
    """The names and globs among ``specs`` that match no file now (followed, they are waited for)."""
    return [spec for spec in specs
            if not any(_identity(name) is not None for name in (glob.glob(spec) if glob.has_magic(spec) else [spec]))]


def check_specs(specs: list[str]) -> None:
    """Refuse a named file that is a directory (a glob or a not-yet-existing name is fine: it is waited for)."""
    for spec in specs:
        if not glob.has_magic(spec) and os.path.isdir(spec):
            raise InputError("is a directory", path=spec, hint="Name the log files, or a glob like DIR/*.log.")
