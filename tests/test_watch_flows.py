"""`floodwitness watch --flows`: live network detection from flows. Replayed and live nfdump CSV (a SYN flood over
ordinary background, built vectorised in tests/flow_csv.py), an nfcapd directory written by the real nfdump (the
booter SSDP reflection capture), bounded memory over a long input, hostile records, the CLI and its errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from click.testing import CliRunner

from floodwitness.cli import main
from floodwitness.simulate import simulate
from floodwitness.watch.flowwatch import FlowWatcher, FlowWatchOptions
from tests.flow_csv import HEADER, VICTIM, Flood, csv_bytes, flows

T0 = 1_780_000_000  # 2026-05-28T20:26:40Z
SSDP = Path(__file__).resolve().parents[1] / ".." / "shared" / "realdata" / "ddos-captures" / \
    "booter_ssdp_amp_2014.nfdump"


class Collect:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def send(self, event: dict[str, Any]) -> None:
        self.events.append(event)


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _replay(path: Path | str, **options: Any) -> tuple[list[dict[str, Any]], Any]:
    sink = Collect()
    summary = FlowWatcher([str(path)], FlowWatchOptions(replay=True, **options), [sink]).run()
    return sink.events, summary


@pytest.fixture(scope="module")
def syn_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 minutes of background (40 flows/s), a 60 s SYN flood at 1000 pps from spoofed sources from minute 5."""
    path = tmp_path_factory.mktemp("flows") / "flows.csv"
    path.write_bytes(csv_bytes(flows(T0, 1200, per_second=20, flood=Flood(300, 60, 1000))))
    return path


def test_replayed_syn_flood_opens_once_and_closes_once(syn_csv: Path) -> None:
    began = time.monotonic()
    events, summary = _replay(syn_csv)
    seconds = time.monotonic() - began
    assert [(e["event"], e["episode"]) for e in events] == [("open", "F1"), ("close", "F1")]
    opened, closed = events
    assert [v["vector"] for v in opened["vectors"]] == ["syn_flood"]
    assert abs(_epoch(opened["start"]) - (T0 + 300)) <= 2
    assert opened["target"] == VICTIM and opened["source_role"] == "spoofed"
    assert opened["sources"] >= 4000 and opened["vectors"][0]["peak_pps"] == pytest.approx(1000, rel=0.05)
    assert opened["peak_pps"] >= 1000  # the target's whole traffic in its busiest second
    # replay: detected at most one detection step (10 s of flow time) after the flood began
    assert opened["delay_s"] <= 10 and opened["detected_at"] == opened["log_time"]
    assert closed["reason"].startswith("no traffic of its vectors for 300 s")
    assert abs(_epoch(closed["end"]) - (T0 + 359)) <= 2
    assert summary.flows == 1200 * 40 + 60 * 1000 and summary.rejected == {"csv_header": 1}
    assert summary.flows / seconds > 2000  # flows/s in replay (measured ~10k on the 2-core machine)
    assert "SELECT" in opened["vectors"][0]["evidence"]["query"]


def test_a_growing_flood_is_updated_under_the_same_episode(tmp_path: Path) -> None:
    """200 pps for 60 s, then 2000 pps: one episode, an update with the higher peak, one close."""
    base = flows(T0, 900, per_second=10)
    low = flows(T0, 900, per_second=0, flood=Flood(120, 60, 200), seed=1)
    high = flows(T0, 900, per_second=0, flood=Flood(180, 60, 2000), seed=2)
    rows = pa.concat_tables([base, low, high])
    path = tmp_path / "grow.csv"
    path.write_bytes(csv_bytes(rows.take(pc.sort_indices(rows, [("ts", "ascending")]))))
    events, _ = _replay(path, replay_step=20)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "open" and kinds[-1] == "close" and "update" in kinds
    assert {e["episode"] for e in events} == {"F1"}
    update = events[kinds.index("update")]
    assert update["peak_pps"] >= 1.5 * events[0]["peak_pps"]
    assert abs(_epoch(events[-1]["start"]) - (T0 + 120)) <= 2


def test_live_appended_csv_opens_within_latency(tmp_path: Path) -> None:
    """A thread appends flows stamped with the wall clock, a few times a second: background, then a SYN flood of
    400 pps. The open alert must come within LATENCY seconds of the flood's first second (wall clock)."""
    latency = 4.0
    path = tmp_path / "live.csv"
    path.write_text(HEADER + "\n")
    sink = Collect()
    seen: list[dict[str, float]] = []
    watcher = FlowWatcher([str(path)], FlowWatchOptions(poll_interval=0.25, idle_exit=2.0), [sink], seen.append)
    start = int(time.time()) + 1
    flood_at = start + 3

    def writer() -> None:
        for second in range(start, start + 7):  # bounded: 7 seconds of flows
            while time.time() < second:
                time.sleep(0.01)
            flood = Flood(0, 1, 400) if second >= flood_at else None
            rows = flows(second, 1, per_second=20, flood=flood, seed=second)
            for part in np.array_split(np.arange(rows.num_rows), 4):  # four appends within the second
                with path.open("ab") as fh:
                    fh.write(csv_bytes(rows.take(part), header=False))
                time.sleep(0.2)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    summary = watcher.run()  # ends 2 s after the writer's last line
    thread.join(5)
    assert summary.seconds < 15
    opens = [e for e in sink.events if e["event"] == "open"]
    assert len(opens) == 1 and [v["vector"] for v in opens[0]["vectors"]] == ["syn_flood"]
    assert abs(_epoch(opens[0]["start"]) - flood_at) <= 1
    assert opens[0]["latency_s"] <= latency
    assert _epoch(opens[0]["detected_at"]) - flood_at <= latency
    assert max(m["network_episodes_open"] for m in seen) == 1
    assert max(m["network_packets_per_second"] for m in seen) >= 200


def _nfcapd_dir(tmp_path: Path) -> Path:
    if not SSDP.exists():
        pytest.skip(f"the real captures are absent ({SSDP.parent}): ../shared/realdata is not mounted")
    if shutil.which("nfdump") is None:
        pytest.skip("nfdump is not installed (apt-get install nfdump)")
    folder = tmp_path / "nfcapd"
    folder.mkdir()
    subprocess.run(["nfdump", "-r", str(SSDP), "-w", str(folder / "nfcapd.201412291436")], check=True,
                   capture_output=True, timeout=60)
    return folder


def test_nfcapd_directory_replay_finds_the_ssdp_reflection(tmp_path: Path) -> None:
    folder = _nfcapd_dir(tmp_path)
    shutil.copy(folder / "nfcapd.201412291436", folder / "nfcapd.current.4242")  # being written: never read
    events, summary = _replay(folder, victims=("172.31.28.132/32",))
    opened = [e for e in events if e["event"] == "open"]
    assert len(opened) == 1
    vectors = {v["vector"]: v for v in opened[0]["vectors"]}
    assert "ssdp_reflection" in vectors
    assert vectors["ssdp_reflection"]["source_role"] == "reflectors" and opened[0]["target"] == "172.31.28.132"
    assert "not the attacker" in opened[0]["note"]
    assert summary.flows == 2834 and summary.sources[0].files == 1  # the .current file was not read


def test_nfcapd_directory_live_reads_each_completed_file_once(tmp_path: Path) -> None:
    folder = _nfcapd_dir(tmp_path)
    done = folder / "nfcapd.201412291436"
    current = folder / "nfcapd.current.4242"
    done.rename(current)
    watcher = FlowWatcher([str(folder)], FlowWatchOptions(victims=("172.31.28.132/32",), poll_interval=0), [])
    try:
        assert watcher.step() == 0  # only nfcapd.current.*: nothing complete yet
        current.rename(done)  # nfcapd rotates: the completed file appears under its time's name
        assert watcher.step() == 2834
        assert watcher.step() == 0  # read once
        assert watcher.sources[0].account.files == 1
    finally:
        watcher.close()


def _rss_kib() -> int:
    with open(f"/proc/{os.getpid()}/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def long_input_measures(folder: str) -> dict[str, list[int]]:
    """Three hours of flows appended in six parts to a CSV in ``folder``, read live part by part: after each part,
    Arrow's and DuckDB's allocations and the process's RSS (run in a process of its own by the test below)."""
    path = Path(folder) / "long.csv"
    path.write_text(HEADER + "\n")
    watcher = FlowWatcher([str(path)], FlowWatchOptions(poll_interval=0), [])
    per_second, part_s = 80, 1800
    arrow, duck, rss = [], [], []
    try:
        for part in range(6):
            rows = flows(T0 + part * part_s, part_s, per_second=per_second // 2, seed=part)
            with path.open("ab") as fh:
                fh.write(csv_bytes(rows, header=False))
            del rows
            assert watcher.step() == per_second * part_s
            assert watcher.rows <= per_second * part_s  # the part just read: the one before has left the window
            watcher._detect()
            assert watcher.last is not None
            assert watcher.last.flows <= per_second * 601  # detected over the window
            arrow.append(pa.total_allocated_bytes())
            duck.append(watcher.con.sql("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchall()[0][0])
            rss.append(_rss_kib())
    finally:
        watcher.close()
    return {"arrow": arrow, "duck": duck, "rss": rss}


def test_memory_stays_flat_over_a_long_input(tmp_path: Path) -> None:
    """The window holds at most its ten minutes of flows (and the part just read), Arrow and DuckDB hold no more
    after the last part than after the second, and the process does not grow with the input (RSS moves by the
    allocator's tens of MiB either way). Measured in a fresh process: the suite's own heap (a gigabyte after the
    tests before) must not move this one's RSS."""
    code = ("import json, sys; from tests.test_watch_flows import long_input_measures; "
            "print(json.dumps(long_input_measures(sys.argv[1])))")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[1], check=False)
    assert done.returncode == 0, done.stderr
    measures = json.loads(done.stdout.strip().splitlines()[-1])
    arrow, duck, rss = measures["arrow"], measures["duck"], measures["rss"]
    # a leak of the flows read would add one part (~144k flows, tens of MiB of Arrow) per step
    assert max(arrow[2:]) <= 1.2 * max(arrow[:2]), arrow
    assert max(duck[2:]) <= 1.2 * max(duck[:2]) + (16 << 20), duck
    assert max(rss[3:]) - max(rss[:3]) < 96 * 1024, rss  # KiB


def test_the_window_cap_drops_the_oldest_flows_and_says_so(syn_csv: Path) -> None:
    events, summary = _replay(syn_csv, max_window_flows=5000, replay_step=30)
    assert summary.dropped_flows > 0 and summary.max_window_flows <= 5000 + 30 * 1040
    assert [e["event"] for e in events][:1] == ["open"]


HOSTILE = [
    "2026-05-28 20:31:00,2026-05-28 20:31:00,0.000,<script>alert(1)</script>,203.0.113.10,1,80,TCP,......S.",
    "2026-05-28 20:31:00,2026-05-28 20:31:00,0.000,\x1b[31m10.0.0.1,203.0.113.10,1,80,TCP,......S.",
    "2026-05-28 20:31:00,2026-05-28 20:31:00,0.000,10.0.0.1,203.0.113.10,99999,80,TCP,......S.",
    "2026-05-28 20:31:00,2026-05-28 20:31:00,0.000,10.0.0.1,203.0.113.10,1,80,TCP,......S.,0,0,-5",
    "2099-01-01 00:00:00,2099-01-01 00:00:00,0.000,10.0.0.9,203.0.113.10,1,80,TCP,......S.",
    "$(rm -rf /),'; DROP TABLE flows; --,\"quoted\"",
]


def _hostile_line(prefix: str) -> str:
    fields = prefix.split(",")
    fields += ["0"] * (len(HEADER.split(",")) - len(fields))
    if len(fields) > 12 and fields[11] == "0":
        fields[11], fields[12] = "1", "40"
    fields[44] = "<img src=x onerror=alert(1)>"  # ra, the exporter: attacker-reachable text kept as data
    return ",".join(fields)


def test_hostile_records_stay_data(syn_csv: Path, tmp_path: Path) -> None:
    lines = syn_csv.read_bytes().splitlines(keepends=True)
    hostile = "".join(_hostile_line(h) + "\n" for h in HOSTILE).encode()
    path = tmp_path / "hostile.csv"
    path.write_bytes(b"".join(lines[:20000]) + hostile + b"".join(lines[20000:]))
    events, summary = _replay(path, replay_step=30)
    assert [e["event"] for e in events] == ["open", "close"]
    text = json.dumps(events)
    for bad in ("<script>", "\x1b", "\\u001b", "DROP TABLE", "onerror", "2099"):
        assert bad not in text
    assert summary.rejected["bad_address"] >= 2 and summary.rejected["bad_port"] == 1
    assert summary.future_flows == 1


def test_cli_watches_logs_and_flows_in_one_process(syn_csv: Path, tmp_path: Path) -> None:
    simulate("dos", tmp_path / "sim", seed=3, scale=0.3, hours=1.0)
    out = tmp_path / "alerts.ndjson"
    result = CliRunner().invoke(main, ["watch", str(tmp_path / "sim" / "access.log"), "--flows", str(syn_csv),
                                       "--victim", "203.0.113.0/24", "--replay", "--alerts", str(out)])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in out.read_text().splitlines()]
    types = {e["type"] for e in events}
    assert "network_alert" in types and "alert" in types
    assert "watched 108,000 flows" in result.output and "1 network episode(s) opened" in result.output


def test_cli_flows_alone_and_its_errors(syn_csv: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["watch", "--flows", str(syn_csv), "--replay", "-q", "--alerts", "-"])
    assert result.exit_code == 0
    assert [json.loads(x)["event"] for x in result.output.splitlines()] == ["open", "close"]
    for args, message in (
            (["--flows", str(tmp_path / "nope.csv")], "no such file or directory"),
            (["--flows", str(syn_csv), "--victim", "not-a-prefix"], "--victim 'not-a-prefix' is not an address"),
            ([], "nothing to watch"),
            (["x.log", "--victim", "10.0.0.0/8"], "--victim needs --flows")):
        result = runner.invoke(main, ["watch", *args, "--replay"])
        assert result.exit_code == 1 and message in result.output, result.output
        assert "Traceback" not in result.output
    unreadable = tmp_path / "locked.csv"
    unreadable.write_text(HEADER + "\n")
    unreadable.chmod(0)
    if not os.access(unreadable, os.R_OK):  # root reads anything
        result = runner.invoke(main, ["watch", "--flows", str(unreadable), "--replay"])
        assert result.exit_code == 1 and "cannot read this file" in result.output
    (tmp_path / "dir").mkdir()
    result = runner.invoke(main, ["watch", "--flows", str(tmp_path / "dir"), "--replay"], env={"PATH": "/nonexistent"})
    assert result.exit_code == 1 and "needs the `nfdump` program" in result.output


def test_live_from_the_end_numbers_records_as_in_the_file(syn_csv: Path, tmp_path: Path) -> None:
    """Started on a file that already holds flows, live reads only what is appended, numbered by its line."""
    lines = syn_csv.read_bytes().splitlines(keepends=True)
    path = tmp_path / "grow.csv"
    path.write_bytes(b"".join(lines[:1001]))  # the header and 1000 flows, there before the watch
    watcher = FlowWatcher([str(path)], FlowWatchOptions(poll_interval=0), [])
    try:
        with path.open("ab") as fh:
            fh.write(b"".join(lines[1001:1011]))
        got: list[int] = []
        for table in watcher.sources[0].poll(False):
            got += table.column("record").to_pylist()
        assert got == list(range(1002, 1012))
    finally:
        watcher.close()


def test_a_truncated_csv_is_read_again_from_its_header(syn_csv: Path, tmp_path: Path) -> None:
    """copytruncate: the file shrinks and starts again with its header; its new flows are numbered from line 2."""
    lines = syn_csv.read_bytes().splitlines(keepends=True)
    path = tmp_path / "rotated.csv"
    path.write_bytes(b"".join(lines[:1]))
    watcher = FlowWatcher([str(path)], FlowWatchOptions(poll_interval=0), [])
    try:
        with path.open("ab") as fh:
            fh.write(b"".join(lines[1:101]))
        assert sum(t.num_rows for t in watcher.sources[0].poll(False)) == 100
        path.write_bytes(b"".join(lines[:1]) + b"".join(lines[200:205]))  # truncated and rewritten
        got = [r for t in watcher.sources[0].poll(False) for r in t.column("record").to_pylist()]
        assert got == [2, 3, 4, 5, 6]
        assert watcher.sources[0].account.rejected == {"csv_header": 1}  # the new header, counted once
    finally:
        watcher.close()


def test_network_gauges_are_served_beside_the_logs_ones() -> None:
    pytest.importorskip("prometheus_client")
    import urllib.request

    from floodwitness.watch.alerts import Metrics

    metrics = Metrics(0)
    try:
        metrics.update({"network_packets_per_second": 1234.0, "network_episodes_open": 1.0})
        metrics.update({"requests_per_second": 5.0})  # the log watcher's update leaves the network gauges alone
        port = metrics.server.server_port
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert "floodwitness_network_packets_per_second 1234.0" in text
        assert "floodwitness_network_episodes_open 1.0" in text
        assert "floodwitness_requests_per_second 5.0" in text
    finally:
        metrics.close()
        metrics.server.server_close()
