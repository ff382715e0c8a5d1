"""Stage 3: ingest. Hostile inputs, rotated series, stdin, and the Parquet store with its manifest."""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest

from floodwitness.analysis.dataset import open_dataset
from floodwitness.errors import FormatError, InputError, StoreError
from floodwitness.ingest import IngestOptions, ingest, open_store
from floodwitness.ingest.store import MANIFEST, REQUESTS
from floodwitness.inputs.lines import DEFAULT_MAX_LINE_BYTES
from floodwitness.schema import REQUEST_COLUMNS

from .conftest import parsed_rows, run_ingest

GOOD_COUNT = 600  # lines 14..599 are good lines after the torture section, line 600 has no newline


def good(i: int, ua: str = "Mozilla/5.0 (X11; Linux x86_64)") -> bytes:
    """Good combined line number ``i``: every field derived from ``i`` so each row can be checked."""
    return (f'198.51.100.{i % 250} - - [17/May/2024:10:{i // 60 % 60:02d}:{i % 60:02d} +0200] '
            f'"GET /item/{i}?page={i * 7} HTTP/1.1" 200 {1000 + i} "https://ref.example/{i}" "{ua}"').encode()


BINARY_REQUEST = (b'203.0.113.9 - - [17/May/2024:10:00:10 +0200] "\\x16\\x03\\x01\\x02\\x00\\x01\\x00\\x01\\xFC'
                  b'\\x03\\x03" 400 157 "-" "-"')
ESCAPE_UA = "\x1b[31mred\x1b[0m agent"
LONG_URL = 100_000


def torture_lines() -> list[bytes]:
    """Lines 1-13 are the hostile ones; every other line is ``good(number)``."""
    lines = [
        good(1),
        b"\x00" * 64,                                           # 2: a line of NULs
        good(3).replace(b"/item/3", b"/item/\xff\xfe3"),       # 3: invalid UTF-8 inside a good line
        b"A" * 5_000_000,                                       # 4: a 5 MB line
        good(5)[:-1],                                           # 5: the user agent's quote never closes
        b"",                                                    # 6: empty
        b" \t  ",                                               # 7: whitespace only
        good(8) + b"\r",                                        # 8: CRLF
        good(9) + b"\r",                                        # 9: CRLF
        BINARY_REQUEST,                                         # 10: TLS bytes sent to a plain port
        good(11, ua=ESCAPE_UA),                                 # 11: terminal escapes in the user agent
        good(12).replace(b"/item/12", b"/" + b"u" * LONG_URL),  # 12: a 100 KB URL
        b"\r",                                                  # 13: an empty CRLF line
    ]
    lines += [good(i) for i in range(14, GOOD_COUNT + 1)]
    return lines


def torture_bytes() -> bytes:
    return b"\n".join(torture_lines())  # the last line has no newline


def expected_reasons(max_line_bytes: int) -> dict[int, str]:
    reasons = {2: "nul_byte", 4: "line_too_long", 5: "format_mismatch", 6: "empty_line", 7: "empty_line",
               13: "empty_line"}
    if len(torture_lines()[11]) > max_line_bytes:
        reasons[12] = "line_too_long"
    return reasons


def check_good_rows(rows: list[dict[str, Any]], numbers: list[int]) -> None:
    by_line = {r["line"]: r for r in rows}
    for i in numbers:
        row = by_line[i]
        assert row["reject_reason"] is None, (i, row["reject_reason"])
        assert (row["client_ip"], row["status"], row["bytes"], row["query"]) == (
            f"198.51.100.{i % 250}", 200, 1000 + i, f"page={i * 7}"), i
        assert row["referer"] == f"https://ref.example/{i}", i
        assert row["ts"].minute == i // 60 % 60 and row["ts"].second == i % 60 and row["ts"].hour == 8, i


@pytest.mark.parametrize("max_line_bytes", [DEFAULT_MAX_LINE_BYTES, 200_000])
def test_torture_file_exact_accounting(tmp_path: Path, max_line_bytes: int) -> None:
    path = tmp_path / "torture.log"
    path.write_bytes(torture_bytes())
    manifest, table = run_ingest([str(path)], tmp_path / "store", max_line_bytes=max_line_bytes)
    record = manifest.inputs[0]
    rows = table.to_pylist()
    reasons = expected_reasons(max_line_bytes)
    assert record.format == "combined"
    assert record.lines_read == GOOD_COUNT == len(rows)
    assert [r["line"] for r in rows] == list(range(1, GOOD_COUNT + 1))
    assert {r["line"]: r["reject_reason"] for r in rows if r["reject_reason"]} == reasons
    counts: dict[str, int] = {}
    for reason in reasons.values():
        counts[reason] = counts.get(reason, 0) + 1
    assert record.rejected_by_reason == dict(sorted(counts.items()))
    assert record.lines_parsed == GOOD_COUNT - len(reasons) and record.lines_rejected == len(reasons)
    assert record.utf8_repaired == 1 and record.complete and record.damage is None
    long_lines = [(4, 5_000_000)] + ([(12, len(torture_lines()[11]))] if 12 in reasons else [])
    assert record.long_lines == long_lines
    assert record.sha256 == hashlib.sha256(torture_bytes()).hexdigest()

    check_good_rows(rows, [1, 3, 8, 9, 11, *range(14, GOOD_COUNT + 1)])
    assert rows[2]["path"] == "/item/\ufffd\ufffd3"
    assert rows[7]["user_agent"] == rows[8]["user_agent"] == "Mozilla/5.0 (X11; Linux x86_64)"  # no \r left
    assert rows[10]["user_agent"] == ESCAPE_UA  # kept as logged; renderers escape it
    binary = rows[9]
    assert (binary["method"], binary["protocol"], binary["status"], binary["bytes"]) == (None, None, 400, 157)
    assert binary["path"] == BINARY_REQUEST.decode().split('"')[1]
    if 12 not in reasons:
        assert rows[11]["path"] == "/" + "u" * LONG_URL and rows[11]["query"] == "page=84"
    assert rows[1]["raw"] == "?" * 64
    assert rows[3]["raw"] is not None and rows[3]["raw"].startswith("AAAA") and len(rows[3]["raw"]) <= 2048
    assert rows[4]["raw"] == good(5)[:-1].decode()
    assert rows[-1]["line"] == GOOD_COUNT and rows[-1]["path"] == f"/item/{GOOD_COUNT}"  # no final newline


def test_gzip_torture_same_as_plain(tmp_path: Path) -> None:
    path = tmp_path / "torture.log.gz"
    path.write_bytes(gzip.compress(torture_bytes()))
    manifest, table = run_ingest([str(path)], tmp_path / "store")
    record = manifest.inputs[0]
    assert record.compression == "gzip" and record.complete
    assert record.bytes_decompressed == len(torture_bytes())
    rows = table.to_pylist()
    assert {r["line"]: r["reject_reason"] for r in rows if r["reject_reason"]} == expected_reasons(
        DEFAULT_MAX_LINE_BYTES)
    check_good_rows(rows, [1, 3, 8, 9, 11, *range(14, GOOD_COUNT + 1)])


def test_truncated_gzip_keeps_every_line_before_the_damage(tmp_path: Path) -> None:
    blob = gzip.compress(torture_bytes())
    cut = blob[: len(blob) - 2_000]
    path = tmp_path / "torture.log.gz"
    path.write_bytes(cut)
    # What any gzip reader can recover from these bytes, decoded independently of floodwitness.
    prefix = zlib.decompressobj(wbits=31).decompress(cut)
    complete_lines = prefix.count(b"\n")
    partial = prefix[prefix.rfind(b"\n") + 1:]
    assert 20 < complete_lines < GOOD_COUNT - 1 and partial  # the cut falls inside the good lines, mid-line
    manifest, table = run_ingest([str(path)], tmp_path / "store")
    record = manifest.inputs[0]
    assert record.complete is False
    assert record.damage is not None and str(len(cut)) in record.damage and "truncated gzip" in record.damage
    assert record.sha256 == hashlib.sha256(cut).hexdigest() and record.bytes == len(cut)
    rows = table.to_pylist()
    assert record.lines_read == complete_lines + 1 == len(rows)
    assert [r["line"] for r in rows] == list(range(1, complete_lines + 2))
    expected = {k: v for k, v in expected_reasons(DEFAULT_MAX_LINE_BYTES).items() if k <= complete_lines}
    expected[complete_lines + 1] = "truncated_input"
    assert {r["line"]: r["reject_reason"] for r in rows if r["reject_reason"]} == expected
    check_good_rows(rows, [1, 3, 8, 9, 11, *range(14, complete_lines + 1)])
    assert rows[-1]["raw"] == partial.decode()


def test_rotated_series_from_a_folder_oldest_first(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()

    def day(d: int) -> bytes:
        return b"".join(good(i).replace(b"17/May", f"{d}/May".encode()) + b"\n" for i in range(1, 6))

    (logs / "access.log").write_bytes(day(19))
    (logs / "access.log.1").write_bytes(day(18))
    (logs / "access.log.2.gz").write_bytes(gzip.compress(day(17)))
    manifest, table = run_ingest([str(logs)], tmp_path / "store")
    assert [os.path.basename(i.path) for i in manifest.inputs] == ["access.log.2.gz", "access.log.1", "access.log"]
    assert [i.file_id for i in manifest.inputs] == [0, 1, 2]
    assert [i.compression for i in manifest.inputs] == ["gzip", "none", "none"]
    firsts = [i.first_ts for i in manifest.inputs]
    assert firsts == ["2024-05-17T08:00:01+00:00", "2024-05-18T08:00:01+00:00", "2024-05-19T08:00:01+00:00"]
    assert all(a.last_ts is not None and b.first_ts is not None and a.last_ts < b.first_ts
               for a, b in itertools.pairwise(manifest.inputs))
    days = [r["ts"].day for r in table.to_pylist()]  # rows in file_id, line order
    assert days == sorted(days) == [17] * 5 + [18] * 5 + [19] * 5


def _console_script() -> str:
    found = shutil.which("floodwitness", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail(f"the floodwitness console script is not installed next to {sys.executable}: pip install -e .")
    return found


def test_stdin_gives_the_same_accounting_as_the_file(tmp_path: Path) -> None:
    lines = torture_lines()
    data = b"\n".join(lines[:3] + lines[4:]) + b"\n"  # without the 5 MB line, to keep the pipe small
    path = tmp_path / "access.log"
    path.write_bytes(data)
    file_manifest, _ = run_ingest([str(path)], tmp_path / "from-file")
    out = tmp_path / "from-stdin"
    result = subprocess.run([_console_script(), "ingest", "-", "--out", str(out), "--quiet"], input=data,
                            capture_output=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stderr == b""
    stdin_record = open_store(out).manifest.inputs[0]
    file_record = file_manifest.inputs[0]
    assert stdin_record.path == "-"
    keys = ("sha256", "bytes", "format", "lines_read", "lines_parsed", "lines_rejected", "rejected_by_reason",
            "utf8_repaired", "first_ts", "last_ts", "complete")
    assert {k: getattr(stdin_record, k) for k in keys} == {k: getattr(file_record, k) for k in keys}
    assert stdin_record.sha256 == hashlib.sha256(data).hexdigest()
    assert stdin_record.lines_read == GOOD_COUNT - 1


# -- the store ----------------------------------------------------------------------------------------------

def test_manifest_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "torture.log"
    path.write_bytes(torture_bytes())
    out = tmp_path / "store"
    manifest = ingest([str(path)], out)
    store = open_store(out)
    assert store.manifest == manifest
    assert store.manifest.inputs[0].long_lines == [(4, 5_000_000), (12, len(torture_lines()[11]))]
    assert store.parts == [str(out / REQUESTS / p) for p in manifest.inputs[0].parts]
    on_disk = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    assert on_disk["inputs"][0]["sha256"] == hashlib.sha256(torture_bytes()).hexdigest()
    assert sorted(os.listdir(out)) == [MANIFEST, REQUESTS]  # no temporary file left beside it


def test_open_store_refuses_a_folder_without_manifest(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as err:
        open_store(tmp_path)
    assert str(err.value) == (f"{tmp_path}: not a floodwitness store (no manifest.json)\n"
                              "Create one with `floodwitness ingest LOGS --out DIR`, or pass the log files.")


def test_open_store_refuses_a_store_missing_a_part(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(good(1) + b"\n")
    manifest = ingest([str(path)], tmp_path / "store")
    (tmp_path / "store" / REQUESTS / manifest.inputs[0].parts[0]).unlink()
    with pytest.raises(StoreError, match=r"store is missing 1 part file\(s\)"):
        open_store(tmp_path / "store")


def test_non_empty_out_refused_without_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(good(1) + b"\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(StoreError) as err:
        ingest([str(path)], out)
    assert str(err.value) == (f"{out}: output folder is not empty\n"
                              "Choose a new folder, or pass --overwrite to replace an existing store.")
    with pytest.raises(StoreError) as err:  # --overwrite replaces a store, never a folder that is not one
        ingest([str(path)], out, overwrite=True)
    assert str(err.value) == (f"{out}: output folder is not a floodwitness store (it has no manifest.json): "
                              "--overwrite replaces only a store\nChoose a new folder for --out, or empty this one "
                              "yourself.")
    assert (out / "precious.txt").read_text(encoding="utf-8") == "keep me"
    assert sorted(os.listdir(out)) == ["precious.txt"]


def test_overwrite_replaces_an_existing_store(tmp_path: Path) -> None:
    first, second = tmp_path / "a.log", tmp_path / "b.log"
    first.write_bytes(good(1) + b"\n")
    second.write_bytes(good(2) + b"\n" + good(3) + b"\n")
    out = tmp_path / "store"
    ingest([str(first)], out)
    manifest = ingest([str(second)], out, overwrite=True)
    assert open_store(out).manifest == manifest
    assert open_store(out).manifest.totals["lines_read"] == 2


def test_failed_ingest_leaves_no_half_written_store(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(b"".join(good(i) + b"\n" for i in range(1, 50)))
    notes = tmp_path / "notes.txt"
    notes.write_text("hello world\nthis is not a log\n", encoding="utf-8")
    out = tmp_path / "store"
    with pytest.raises(FormatError) as err:
        ingest([str(log), str(notes)], out)  # the first input is parsed and written before the second fails
    assert err.value.path == str(notes)
    assert not out.exists()


def test_analysing_a_log_leaves_no_temporary_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A log analysed without --keep-store is ingested into a temporary folder, removed on close; also when
    nothing in it could be parsed."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(scratch))
    log = tmp_path / "access.log"
    log.write_bytes(b"".join(good(i) + b"\n" for i in range(1, 20)))
    data = open_dataset([str(log)])
    assert data.temporary and data.store.is_relative_to(scratch)
    data.close()
    assert list(scratch.iterdir()) == []
    blank = tmp_path / "blank.log"
    blank.write_bytes(b"")
    with pytest.raises(InputError, match="the file is empty"):
        open_dataset([str(blank)], options=IngestOptions(format="combined"))
    assert list(scratch.iterdir()) == []


# -- skipping what is not a log --------------------------------------------------------------------------------

def test_folder_skips_a_readme_but_naming_it_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "access.log").write_bytes(b"".join(good(i) + b"\n" for i in range(1, 11)))
    readme = folder / "README"
    readme.write_text("These are the web server logs.\nRotated daily.\n", encoding="utf-8")
    manifest, _ = run_ingest([str(folder)], tmp_path / "store")
    assert [os.path.basename(i.path) for i in manifest.inputs] == ["access.log"]
    assert manifest.inputs[0].lines_parsed == 10
    assert len(manifest.skipped) == 1
    skipped = manifest.skipped[0]
    assert skipped["path"] == str(readme)
    assert skipped["sha256"] == hashlib.sha256(readme.read_bytes()).hexdigest()
    assert skipped["bytes"] == readme.stat().st_size
    assert skipped["reason"].startswith("no known log format fits this file")
    assert open_store(tmp_path / "store").manifest.skipped == manifest.skipped

    with pytest.raises(FormatError) as err:
        ingest([str(readme)], tmp_path / "named")
    assert err.value.path == str(readme)
    assert str(err.value).startswith(f"{readme}: no known log format fits this file")
    assert not (tmp_path / "named").exists()


def test_folder_with_no_log_at_all_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    readme = folder / "README"
    readme.write_text("nothing to see\n", encoding="utf-8")
    with pytest.raises(FormatError) as err:
        ingest([str(folder)], tmp_path / "store")
    assert str(err.value).startswith(f"none of the 1 file(s) found is an access log in a known format (first: "
                                     f"{readme}: no known log format fits this file")
    assert str(err.value).endswith("\nName the log files directly, or give --format (see `floodwitness formats`).")
    assert not (tmp_path / "store").exists()


def test_rejected_rows_carry_no_client(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    path.write_bytes(good(1) + b"\n\n" + b"\x00" * 8 + b"\nnot a log line at all\n" + good(5) + b"\n")
    _, table = run_ingest([str(path)], tmp_path / "store", format="combined")
    rejected = [r for r in table.to_pylist() if r["reject_reason"] is not None]
    assert [r["reject_reason"] for r in rejected] == ["empty_line", "nul_byte", "format_mismatch"]
    assert len(parsed_rows(table)) == 2
    assert [(r["client_ip"], r["ip_family"]) for r in rejected] == [(None, None)] * 3
    assert all(r[c] is None for r in rejected for c in REQUEST_COLUMNS)


def test_half_parsed_rejects_keep_only_their_raw_line(tmp_path: Path) -> None:
    """A line with a bad status or time parses most fields; as a rejection it must carry none of them."""
    path = tmp_path / "access.log"
    line = b'1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /x HTTP/1.1" 2x0 5 "-" "ua"'
    path.write_bytes(good(1) + b"\n" + line + b"\n")
    _, table = run_ingest([str(path)], tmp_path / "store", format="combined")
    bad = table.to_pylist()[1]
    assert bad["reject_reason"] == "bad_status"
    assert all(bad[c] is None for c in REQUEST_COLUMNS)
    assert bad["raw"] == line.decode()


def test_failed_overwrite_keeps_the_previous_store(tmp_path: Path) -> None:
    """--overwrite swaps the new store in only when it is complete: a failing run leaves the old one intact."""
    log = tmp_path / "access.log"
    log.write_bytes(good(1) + b"\n")
    out = tmp_path / "store"
    before = ingest([str(log)], out)
    notes = tmp_path / "notes.txt"
    notes.write_text("this is not an access log\n")
    with pytest.raises(FormatError):
        ingest([str(notes)], out, overwrite=True)
    assert open_store(out).manifest.inputs[0].sha256 == before.inputs[0].sha256
    assert sorted(p.name for p in tmp_path.iterdir()) == ["access.log", "notes.txt", "store"]
