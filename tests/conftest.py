"""Shared fixtures: the real data beside the repo, a network block, and an ingest helper."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from floodwitness.ingest import IngestOptions, Manifest, ingest

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"


#: The start of the skip reason of every test that needs the real data (counted at the end of the run).
REALDATA_ABSENT = "real data folder"


@pytest.fixture
def realdata() -> Path:
    if not REALDATA.is_dir():
        pytest.skip(f"{REALDATA_ABSENT} {REALDATA} is absent (it sits beside the repo as ../shared/realdata)")
    return REALDATA


def realdata_skips(reports: list[Any]) -> int:
    """How many of the skipped test ``reports`` were skipped for want of the real data."""
    count = 0
    for report in reports:
        longrepr = getattr(report, "longrepr", None)
        reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr or "")
        count += REALDATA_ABSENT in reason and str(REALDATA) in reason
    return count


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line at the end of a run in which tests skipped for want of the real data: in a plain clone they
    pass as skips, and nothing else would say that the real-data suite did not run."""
    skipped = realdata_skips(terminalreporter.stats.get("skipped", []))
    if skipped:
        terminalreporter.write_line(f"the real-data suite did not run: {skipped} test(s) skipped because {REALDATA} "
                                    "is absent (put the shared real data beside the repo as ../shared/realdata)",
                                    yellow=True)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never touch the network: any connection to a non-loopback address fails loudly."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and self.family in (socket.AF_INET, socket.AF_INET6) \
                and host not in ("127.0.0.1", "::1", "localhost"):
            raise RuntimeError(f"test tried to reach the network: {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


def run_ingest(paths: list[str], out: Path, **options: Any) -> tuple[Manifest, pa.Table]:
    """Ingest ``paths`` into ``out`` and return the manifest and every stored row in file/line order."""
    manifest = ingest(paths, out, options=IngestOptions(**options))
    parts = sorted((out / "requests").glob("*.parquet"))
    tables = [pq.read_table(p) for p in parts]
    if not tables:
        return manifest, pa.table({})
    table = pa.concat_tables(tables).sort_by([("file_id", "ascending"), ("line", "ascending")])
    return manifest, table


def parsed_rows(table: pa.Table) -> list[dict[str, Any]]:
    return [r for r in table.to_pylist() if r["reject_reason"] is None]
