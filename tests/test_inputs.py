"""Stage 1: finding, opening, decompressing and cutting inputs into numbered lines."""

from __future__ import annotations

import bz2
import gzip
import os
from typing import TYPE_CHECKING

import pyarrow as pa
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from floodwitness.errors import InputError
from floodwitness.inputs import InputFile, discover, iter_line_batches
from floodwitness.inputs.discover import rotation_key
from floodwitness.inputs.lines import FileAccount, LineBatcher

if TYPE_CHECKING:
    from pathlib import Path


def read_all(path: Path, **kwargs: int) -> tuple[FileAccount, list[dict[str, object]]]:
    account, batches = iter_line_batches(InputFile(str(path)), 0, **kwargs)
    rows: list[dict[str, object]] = []
    for batch in batches:
        rows.extend(pa.Table.from_batches([batch]).to_pylist())
    return account, rows


def test_rotated_series_read_oldest_first(tmp_path: Path) -> None:
    for name in ("access.log", "access.log.1", "access.log.2.gz", "access.log.10.gz", "error.log"):
        (tmp_path / name).write_bytes(b"x\n")
    names = [os.path.basename(f.path) for f in discover([str(tmp_path)])]
    assert names == ["access.log.10.gz", "access.log.2.gz", "access.log.1", "access.log", "error.log"]


def test_dated_rotations_sort_by_date_before_live_file() -> None:
    paths = ["/l/access.log", "/l/access.log-20240103.gz", "/l/access.log-20240101"]
    assert sorted(paths, key=rotation_key) == ["/l/access.log-20240101", "/l/access.log-20240103.gz", "/l/access.log"]


def test_discover_errors_name_the_argument(tmp_path: Path) -> None:
    with pytest.raises(InputError) as missing:
        discover([str(tmp_path / "nope.log")])
    assert str(missing.value) == f"{tmp_path / 'nope.log'}: no such file\nCheck the path and spelling."
    with pytest.raises(InputError, match="no file matches this pattern"):
        discover([str(tmp_path / "*.gz")])
    with pytest.raises(InputError, match="no input given"):
        discover([])


def test_globs_and_stdin_marker(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_bytes(b"1\n")
    (tmp_path / "b.log").write_bytes(b"2\n")
    found = discover([str(tmp_path / "*.log"), "-"])
    assert [f.path for f in found] == [str(tmp_path / "a.log"), str(tmp_path / "b.log"), "-"]
    assert not found[0].explicit and found[2].is_stdin


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, zstandard.ZstdCompressor().compress])
def test_compression_detected_by_content_not_name(tmp_path: Path, compress: object) -> None:
    data = b"".join(b"line %d\n" % i for i in range(1000))
    path = tmp_path / "access.log"  # misleading name: no suffix
    path.write_bytes(compress(data))  # type: ignore[operator]
    account, rows = read_all(path)
    assert account.lines_read == 1000 and account.complete
    assert rows[999]["text"] == "line 999\n"
    assert account.raw.bytes_read == path.stat().st_size
    import hashlib
    assert account.raw.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_concatenated_gzip_members(tmp_path: Path) -> None:
    path = tmp_path / "multi.gz"
    path.write_bytes(gzip.compress(b"a\nb\n") + gzip.compress(b"c\n"))
    account, rows = read_all(path)
    assert [r["text"] for r in rows] == ["a\n", "b\n", "c\n"] and account.complete


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, zstandard.ZstdCompressor().compress])
def test_truncated_archive_keeps_every_line_before_the_damage(tmp_path: Path, compress: object) -> None:
    # bzip2 decodes whole 900 kB blocks only: enough lines for several blocks of every codec
    data = b"".join(b"request number %07d\n" % i for i in range(300_000))
    blob = compress(data)  # type: ignore[operator]
    path = tmp_path / "cut.log"
    path.write_bytes(blob[: len(blob) * 2 // 3])
    account, rows = read_all(path)
    assert not account.complete
    assert account.raw.damage is not None and "truncated" in account.raw.damage
    assert str(path.stat().st_size) in account.raw.damage
    good = [r for r in rows if r["pre_reject"] is None]
    assert len(good) > 1000
    # every complete line before the damage is there, in order, with its number
    assert all(r["text"] == f"request number {r['line'] - 1:07d}\n" for r in good)
    assert rows[-1]["pre_reject"] in (None, "truncated_input")
    assert account.lines_read == len(rows)


def test_nul_lines_rejected_and_neighbours_kept(tmp_path: Path) -> None:
    path = tmp_path / "nul.log"
    path.write_bytes(b"good 1\n\x00\x00\x00\x00bad\ngood 3\n")
    _account, rows = read_all(path)
    assert [r["pre_reject"] for r in rows] == [None, "nul_byte", None]
    assert rows[1]["text"] == "????bad\n"
    assert rows[2]["line"] == 3


def test_invalid_utf8_is_repaired_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "bad.log"
    path.write_bytes(b"ok \xef\xbf\xbd literal\nbroken \xff\xfe here\nfine\n")
    account, rows = read_all(path)
    assert account.utf8_repaired == 1
    assert rows[1]["text"] == "broken \ufffd\ufffd here\n"
    assert rows[0]["text"] == "ok \ufffd literal\n" and rows[2]["pre_reject"] is None


@pytest.mark.parametrize("batch_bytes", [1 << 16, 16 << 20])
def test_long_line_rejected_with_length_not_swallowing_next(tmp_path: Path, batch_bytes: int) -> None:
    path = tmp_path / "long.log"
    path.write_bytes(b"first\n" + b"A" * 5_000_000 + b"\nafter\n" + b"B" * 70_000)
    account, rows = read_all(path, max_line_bytes=65536, batch_bytes=batch_bytes)
    assert [r["line"] for r in rows] == [1, 2, 3, 4]
    assert [r["pre_reject"] for r in rows] == [None, "line_too_long", None, "line_too_long"]
    assert rows[2]["text"] == "after\n"
    assert account.long_lines == [(2, 5_000_000), (4, 70_000)]
    assert len(str(rows[1]["text"])) <= 2048


def test_last_line_without_newline_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "crlf.log"
    path.write_bytes(b"one\r\ntwo\r\nthree")
    account, rows = read_all(path)
    assert account.lines_read == 3
    assert [r["text"] for r in rows] == ["one\r\n", "two\r\n", "three\n"]
    assert all(r["pre_reject"] is None for r in rows)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.log"
    path.write_bytes(b"")
    account, rows = read_all(path)
    assert account.lines_read == 0 and rows == []


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=3000), batch=st.integers(min_value=1 << 16, max_value=1 << 17),
       cap=st.integers(min_value=16, max_value=300))
def test_any_bytes_every_line_counted_once(data: bytes, batch: int, cap: int) -> None:
    """Arbitrary bytes: never a crash, one row per line, numbered 1..n, text valid UTF-8."""
    account = FileAccount(file_id=0, path="<bytes>")
    batcher = LineBatcher(account, max_line_bytes=cap, batch_bytes=batch)
    blocks = [data[i:i + 97] for i in range(0, len(data), 97)]
    rows = []
    for b in batcher.batches(iter(blocks)):
        b.validate(full=True)
        rows.extend(b.column("line").to_pylist())
    expected = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    assert rows == list(range(1, expected + 1))
    assert account.lines_read == expected
