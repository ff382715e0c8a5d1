"""Output files: atomic, permission-keeping, never over an input, clear errors."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from floodwitness.errors import FloodwitnessError, UsageError
from floodwitness.mitigation import build_blocklist
from floodwitness.mitigation.exports import blocklist_text
from floodwitness.render.files import write_atomic

if TYPE_CHECKING:
    from pathlib import Path


def test_blocklist_file_is_one_cidr_per_line_atomically(tmp_path: Path) -> None:
    bl = build_blocklist({"77.1.1.1": 3, **{f"77.2.2.{d}": 1 for d in range(1, 9, 2)}, "10.0.0.1": 1}, {})
    mitigation = {**bl.to_dict(), "blocklist": [e.to_dict() for e in bl.entries]}
    target = tmp_path / "block.txt"
    target.write_text("old\n", encoding="utf-8")
    target.chmod(0o640)
    write_atomic(target, blocklist_text(mitigation, now=datetime(2026, 11, 22, 1, 30, tzinfo=UTC)))
    assert target.read_text(encoding="utf-8").splitlines() == [
        "# floodwitness blocklist: 2 entries, generated 2026-11-22 01:30 UTC",
        "# covers 5 of 6 attacking sources; 0 known clients inside",
        "77.2.2.0/24", "77.1.1.1/32"]
    assert os.listdir(tmp_path) == ["block.txt"]
    assert target.stat().st_mode & 0o777 == 0o640


def test_empty_blocklist_says_why() -> None:
    text = blocklist_text({"blocklist": [], "note": "verdict flash_crowd: blocking clients would not help"},
                          now=datetime(2026, 1, 1, tzinfo=UTC))
    assert text.splitlines()[1] == "# verdict flash_crowd: blocking clients would not help"


def test_write_into_a_missing_folder_says_how_to_fix(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "block.txt"
    with pytest.raises(FloodwitnessError) as info:
        write_atomic(target, "x\n", what="the blocklist")
    assert str(info.value) == (f"{target}: cannot write the blocklist: No such file or directory\n"
                               "Check that the folder exists and is writable.")


def test_never_overwrites_an_input(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("keep\n")
    with pytest.raises(UsageError, match="refusing to overwrite the input file"):
        write_atomic(log, "x", protect=frozenset({str(log)}))
    assert log.read_text() == "keep\n"
