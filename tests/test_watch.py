"""`floodwitness watch`: detection delay and kinds on replayed simulations, exactly-once across rotation and
restarts, checkpoints, sketches, webhook retries, and the CLI's errors."""

from __future__ import annotations

import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from floodwitness.cli import main
from floodwitness.simulate import simulate
from floodwitness.simulate.truth import first_request_of
from floodwitness.watch import Watcher, WatchOptions
from floodwitness.watch.alerts import WebhookSender
from floodwitness.watch.detector import HISTORY, LiveDetector, LivePolicy
from floodwitness.watch.sketch import Registers, SeenSet

SRC = str(Path(__file__).resolve().parents[1] / "src")
ATTACKS = ("ddos", "dos", "mixed")
#: every kind the simulator writes (`floodwitness simulate --help`)
SIMULATED = ("mirai", "cachebust", "pulse", "dos", "flash_crowd", "internal_failure", "mixed", "quiet")


class Collect:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def send(self, event: dict[str, Any]) -> None:
        self.events.append(event)


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _replay(log: Path, policy: LivePolicy | None = None) -> list[dict[str, Any]]:
    sink = Collect()
    summary = Watcher([str(log)], WatchOptions(replay=True, policy=policy or LivePolicy()), [sink]).run()
    assert summary.lines == summary.parsed > 0
    return sink.events


@pytest.fixture(scope="module")
def sims(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("watch-sims")
    out = {}
    for kind in SIMULATED:  # one seed each, small and short: 1 hour (10 minutes of warm-up) at 0.3 scale
        simulate(kind, root / kind, seed=3, scale=0.3, hours=1.0)
        out[kind] = root / kind
    return out


@pytest.fixture(scope="module")
def replays(sims: dict[str, Path]) -> dict[str, list[dict[str, Any]]]:
    """Every simulated kind's events, replayed once with the default policy."""
    return {kind: _replay(sims[kind] / "access.log") for kind in SIMULATED}


@pytest.mark.parametrize("kind", ["mirai", "dos"])
def test_replayed_flood_alerts_within_ten_seconds(sims: dict[str, Path], replays: dict[str, list[dict[str, Any]]],
                                                  kind: str) -> None:
    truth = json.loads((sims[kind] / "truth.json").read_text())
    log = sims[kind] / "access.log"
    events = replays[kind]
    alerts = [e for e in events if e["type"] == "alert"]
    assert alerts, "no alert on a flood"
    first = first_request_of(log, set(truth["attackers"]))
    delay = (_t(alerts[0]["log_time"]) - first).total_seconds()
    assert 0 <= delay <= 10, f"first alert {alerts[0]['log_time']}, first attack request {first}"
    # the verdict so far settles on the truth, and the live blocklist only names attackers
    final = [e for e in events if e["incident"] == alerts[0]["incident"]][-1]
    assert final["kind"] == truth["expected_verdict"]
    blocklist = _blocklists(events)[final["incident"]]
    assert len(blocklist) == final["blocklist_size"]
    blocked = {entry["cidr"].split("/")[0] for entry in blocklist}
    # sketches and a bit set stand in for the client table: a stray scraper from a new network may slip in
    assert blocked and len(blocked & set(truth["attackers"])) >= 0.95 * len(blocked)
    if kind == "dos":
        assert blocked == set(truth["attackers"])
    for entry in blocklist:
        assert entry["cidr"].endswith(("/32", "/128"))


def _year_shifted(line: bytes, years: int) -> bytes:
    def shift(m: re.Match[bytes]) -> bytes:
        return m.group(1) + str(int(m.group(2)) + years).encode() + m.group(3)
    return re.sub(rb"(\[\d\d/\w\w\w/)(\d{4})(:)", shift, line, count=1)


def test_jumps_in_the_logs_time_restart_the_clock(sims: dict[str, Path], tmp_path: Path) -> None:
    """A stray line years off (before the log, and after it) is not walked through second by second (that
    took hours and a pending array of 8 bytes per second of the gap): the clock and the baseline restart
    after each jump, every line is still counted, and the flood in between is still caught and resolved."""
    lines = (sims["mirai"] / "access.log").read_bytes().splitlines(keepends=True)
    log = tmp_path / "access.log"
    log.write_bytes(_year_shifted(lines[0], -3) + b"".join(lines) + _year_shifted(lines[-1], 3))
    sink = Collect()
    summary = Watcher([str(log)], WatchOptions(replay=True), [sink]).run()
    assert summary.lines == summary.parsed == len(lines) + 2
    assert summary.gaps == 2
    alerts = [e for e in sink.events if e["type"] == "alert"]
    truth = json.loads((sims["mirai"] / "truth.json").read_text())
    first = first_request_of(sims["mirai"] / "access.log", set(truth["attackers"]))
    assert alerts and 0 <= (_t(alerts[0]["log_time"]) - first).total_seconds() <= 10
    assert [e for e in sink.events if e["type"] == "resolved" and e["incident"] == alerts[0]["incident"]]


@pytest.mark.parametrize("kind", ["flash_crowd", "internal_failure"])
def test_no_attack_alert_on_legitimate_incidents(replays: dict[str, list[dict[str, Any]]], kind: str) -> None:
    events = replays[kind]
    assert [e["kind"] for e in events if e["kind"] in ATTACKS] == []
    assert all(e["kind"] == kind for e in events)
    for e in events:
        assert e["blocklist_size"] == 0
        assert e.get("blocklist", []) == e.get("blocklist_added", []) == e.get("blocklist_removed", []) == []


def _blocklists(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Each incident's blocklist after ``events``, as a consumer rebuilds it: a whole list replaces it, an
    update's changes are applied to it."""
    out: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        if "blocklist" in e:
            out[e["incident"]] = list(e["blocklist"])
        else:
            gone = set(e["blocklist_removed"])
            out[e["incident"]] = [x for x in out[e["incident"]] if x["cidr"] not in gone] + e["blocklist_added"]
    return out


@pytest.mark.slow
def test_new_clients_are_distinct_and_among_the_distinct_clients(sims: dict[str, Path],
                                                                  replays: dict[str, list[dict[str, Any]]]) -> None:
    """window.new_clients counts distinct clients the audience did not know, over the same buckets as
    window.distinct_clients, so never more (it used to count client-seconds: 72,544 "new" of 1,340 clients)."""
    for kind, events in replays.items():
        assert events or kind == "quiet", f"no event on {kind}"
        for e in events:
            w = e["window"]
            assert 0 <= w["new_clients"] <= w["distinct_clients"], (kind, e["type"], e["log_time"], w)
    # what each counts, against the log itself: the addresses with a request in the window, and those of
    # them with none before it (the live audience also leaves out the minute before and flagged buckets)
    for kind in ("mirai", "flash_crowd"):
        w = replays[kind][-1]["window"]
        during, new = _clients_in(sims[kind] / "access.log", _t(w["start"]), _t(w["end"]))
        assert abs(w["distinct_clients"] - during) <= 0.05 * during, (kind, w, during)
        assert abs(w["new_clients"] - new) <= 0.05 * new, (kind, w, new)


def _clients_in(log: Path, start: datetime, end: datetime) -> tuple[int, int]:
    """Distinct addresses of a simulated log with a request in [start, end), and how many of them had none
    before ``start``."""
    stamps: dict[str, datetime] = {}
    before: set[str] = set()
    during: set[str] = set()
    with log.open(encoding="utf-8") as fh:
        for line in fh:
            stamp = line.split("[", 1)[1].split("]", 1)[0]
            when = stamps.get(stamp) or stamps.setdefault(stamp, datetime.strptime(stamp, "%d/%b/%Y:%H:%M:%S %z"))
            if when < start:
                before.add(line.split(" ", 1)[0])
            elif when < end:
                during.add(line.split(" ", 1)[0])
    return len(during), len(during - before)


def _fields(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if not k.startswith("blocklist")}


@pytest.mark.slow
def test_updates_carry_the_blocklist_changes_that_rebuild_the_whole_list(
        sims: dict[str, Path], replays: dict[str, list[dict[str, Any]]]) -> None:
    """An update carries the entries added and the CIDRs removed since the incident's previous event; applied
    in order over the first alert's whole list, they give the whole list of every event (the one
    ``full_blocklists`` sends), and the lines shrink. The first alert and the resolution carry it whole."""
    changed = 0
    listed_kinds = [kind for kind, events in replays.items() if any(e["blocklist_size"] for e in events)]
    assert {"mirai", "cachebust", "dos", "mixed"} <= set(listed_kinds)
    for kind in listed_kinds:
        events = replays[kind]
        whole_events = _replay(sims[kind] / "access.log", LivePolicy(full_blocklists=True))
        assert [_fields(e) for e in events] == [_fields(e) for e in whole_events]
        listed: dict[str, list[str]] = {}  # incident -> CIDRs as rebuilt from the events
        previous: dict[str, str] = {}  # incident -> its previous event's log_time
        for e, whole in zip(events, whole_events, strict=True):
            expected = [entry["cidr"] for entry in whole["blocklist"]]
            assert e["blocklist_size"] == whole["blocklist_size"] == len(expected)
            if e["type"] == "update":
                assert "blocklist" not in e
                assert e["blocklist_since"] == previous[e["incident"]]
                before = listed[e["incident"]]
                added = [entry["cidr"] for entry in e["blocklist_added"]]
                assert set(e["blocklist_removed"]) <= set(before) and not set(added) & set(before)
                assert e["blocklist_added"] == [entry for entry in whole["blocklist"] if entry["cidr"] in added]
                now = [cidr for cidr in before if cidr not in e["blocklist_removed"]] + added
                changed += bool(added or e["blocklist_removed"])
            else:
                assert e["blocklist"] == whole["blocklist"]
                now = expected
            assert sorted(now) == sorted(expected), (kind, e["type"], e["log_time"])
            listed[e["incident"]], previous[e["incident"]] = now, e["log_time"]
        updates = [(len(json.dumps(e)), len(json.dumps(w))) for e, w in zip(events, whole_events, strict=True)
                   if e["type"] == "update" and w["blocklist"]]
        shrink = sum(u for u, _ in updates) / sum(w for _, w in updates)
        # a list of a few entries is a small part of a line; a list of hundreds is most of it
        assert shrink < (0.25 if max(e["blocklist_size"] for e in events) >= 50 else 1.0), (kind, shrink)
    assert changed, "no update changed a blocklist: the deltas were never exercised"


def _cli(*args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-m", "floodwitness.cli", "watch", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _counted(stderr: str) -> int:
    match = re.search(r"watched ([\d,]+) lines", stderr)
    assert match, stderr
    return int(match.group(1).replace(",", ""))


def test_rotation_kill_and_restart_count_every_line_once(tmp_path: Path) -> None:
    simulate("quiet", tmp_path / "sim", seed=5, scale=0.2, hours=0.5)
    lines = (tmp_path / "sim" / "access.log").read_bytes().splitlines(keepends=True)
    pieces = np.array_split(np.arange(len(lines)), 6)
    logdir = tmp_path / "logs"
    logdir.mkdir()
    log = logdir / "access.log"
    state = tmp_path / "state"
    args = [str(logdir / "access.log*"), "--state", str(state), "--from-start", "--alerts", str(tmp_path / "a.ndjson")]

    def write(i: int) -> None:
        with log.open("ab") as fh:
            for j in pieces[i]:
                fh.write(lines[j])
                if j % 500 == 0:
                    fh.flush()

    write(0)
    proc = _cli(*args)
    write(1)
    deadline = time.monotonic() + 60
    while not (state / "watch-state.npz").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)  # killed between checkpoints: what it read after the last one is lost
    proc.communicate()
    os.rename(log, logdir / "access.log.1")  # rotation by rename while the watcher is down
    write(2)
    proc = _cli(*args, "--idle-exit", "3")
    write(3)
    time.sleep(1.5)
    # copytruncate while it runs: copy, then truncate in place, then keep writing
    (logdir / "access.log.2").write_bytes(log.read_bytes())
    with log.open("r+b") as fh:
        fh.truncate(0)
    write(4)
    write(5)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    # access.log.2 holds the copy: the watcher must not count its lines a second time
    assert _counted(err) == len(lines)
    assert "0 rejected" in err


def test_checkpoint_resume_matches_one_run(tmp_path: Path, sims: dict[str, Path]) -> None:
    """Stopping and resuming from the checkpoint gives the same alerts as one uninterrupted replay."""
    source = (sims["dos"] / "access.log").read_bytes().splitlines(keepends=True)
    log = tmp_path / "access.log"
    half = len(source) // 2
    log.write_bytes(b"".join(source[:half]))
    first, second = Collect(), Collect()
    Watcher([str(log)], WatchOptions(replay=False, from_start=True, state=str(tmp_path / "st"), idle_exit=0.0),
            [first]).run()
    with log.open("ab") as fh:
        fh.write(b"".join(source[half:]))
    summary = Watcher([str(log)], WatchOptions(replay=True, state=str(tmp_path / "st")), [second]).run()
    assert summary.lines == len(source)
    resumed = [(e["type"], e["log_time"]) for e in first.events + second.events if e["type"] != "update"]
    whole = [(e["type"], e["log_time"]) for e in _replay(sims["dos"] / "access.log") if e["type"] != "update"]
    assert resumed == whole


def test_stdin_replay_via_cli(sims: dict[str, Path]) -> None:
    data = (sims["mirai"] / "access.log").read_text()
    result = CliRunner().invoke(main, ["watch", "-", "--replay"], input=data)
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert events[0]["type"] == "alert"
    assert set(events[0]) >= {"type", "kind", "log_time", "detected_at", "window", "summary", "top_sources",
                              "blocklist"}


def test_a_missing_log_fails_a_replay_as_in_analyze_and_is_waited_for_live(tmp_path: Path) -> None:
    """Replayed, a log that is not there is an error worded as analyze words it (the same code says it);
    followed, it is waited for, like `tail -F`, and read from its first line once it appears."""
    missing = tmp_path / "access.log"
    for spec, message in ((str(missing), "no such file\nCheck the path and spelling."),
                          (str(tmp_path / "*.log"), "no file matches this pattern\nCheck the pattern; quote it")):
        replayed = CliRunner().invoke(main, ["watch", spec, "--replay", "--alerts", str(tmp_path / "a.ndjson")])
        analyzed = CliRunner().invoke(main, ["analyze", spec])
        assert replayed.exit_code == analyzed.exit_code == 1
        assert f"Error: {spec}: {message}" in replayed.output
        assert f"Error: {spec}: {message}" in analyzed.output
        assert "watched" not in replayed.output
        assert not (tmp_path / "a.ndjson").exists()  # no empty alerts file left behind by a failed run
    unwritable = CliRunner().invoke(main, ["watch", spec, "--replay", "--alerts", str(tmp_path / "no" / "a.ndjson")])
    assert unwritable.exit_code == 1
    assert f"Error: cannot open --alerts {tmp_path / 'no' / 'a.ndjson'}: no such folder" in unwritable.output
    followed = CliRunner().invoke(main, ["watch", str(missing), "--idle-exit", "0.2"])
    assert followed.exit_code == 0, followed.output
    assert f"{missing}: matches no file yet; waiting for it to appear (like tail -F)" in followed.output
    watcher = Watcher([str(missing)], WatchOptions(idle_exit=1.5, poll_interval=0.05), [Collect()])
    assert watcher.waiting == [str(missing)]
    done: list[int] = []
    thread = threading.Thread(target=lambda: done.append(watcher.run().lines))
    thread.start()
    time.sleep(0.2)
    missing.write_text(_combined(3))
    thread.join(30)
    assert done == [3]


def _combined(n: int) -> str:
    return "".join(f'203.0.113.{i} - - [07/Dec/2026:20:00:0{i} +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8"\n'
                   for i in range(n))


def test_cli_errors_are_messages() -> None:
    result = CliRunner().invoke(main, ["watch", "-", "--state", "somewhere"])
    assert result.exit_code == 1
    assert "Error: --state needs files: stdin has no offsets to resume from" in result.output
    result = CliRunner().invoke(main, ["watch", "x.log", "--webhook", "ftp://host/"])
    assert result.exit_code == 1
    assert "Error: --webhook 'ftp://host/' is not an http(s) URL" in result.output


def test_alerts_never_overwrite_a_watched_log(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("")
    result = CliRunner().invoke(main, ["watch", str(log), "--alerts", str(log)])
    assert result.exit_code == 1
    assert "is one of the watched logs" in result.output


def test_webhook_retries_with_backoff_and_never_blocks() -> None:
    received: list[dict[str, Any]] = []
    calls = {"n": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            calls["n"] += 1
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if calls["n"] <= 2:  # down twice, then up
                self.send_response(503)
            else:
                received.append(json.loads(body))
                self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        hook = WebhookSender(f"http://127.0.0.1:{server.server_address[1]}/alerts", backoff=0.05)
        started = time.monotonic()
        for i in range(3):
            hook.send({"type": "alert", "n": i})
        assert time.monotonic() - started < 0.1  # queued, not sent inline
        hook.close(wait=10)
        assert [e["n"] for e in received] == [0, 1, 2]
        assert hook.delivered == 3 and hook.failed == 0 and calls["n"] == 5
    finally:
        server.shutdown()
        server.server_close()


def test_hll_registers_estimate_and_merge() -> None:
    rng = np.random.default_rng(7)
    hashes = rng.integers(0, 2**63, 100_000, dtype=np.int64).astype(np.uint64) * np.uint64(2) + np.uint64(1)
    a, b = Registers(), Registers()
    a.add(hashes[:60_000])
    b.add(hashes[40_000:])
    a.merge(b)
    assert abs(a.estimate() - 100_000) / 100_000 < 0.05
    small = Registers()
    small.add(hashes[:100])
    assert abs(small.estimate() - 100) <= 5
    assert Registers().estimate() == 0


def test_rolling_baseline_is_the_exact_median_of_the_ring() -> None:
    """The baseline medians kept incrementally equal numpy's over the ring, through wrap-around, ties,
    buckets without request times (NaN p95) and a rebuild after a restart."""
    rng = np.random.default_rng(11)
    detector = LiveDetector(LivePolicy())
    width = detector.history.shape[1]
    for step in range(width * 2 + 37):
        row = rng.integers(0, 20, len(HISTORY)).astype(float)  # small integers: many ties
        row[HISTORY.index("p95")] = np.nan if step % 3 == 0 else rng.random()
        detector._remember(tuple(row))
        if step % 97 == 1 or step > width * 2:  # (step 0: only a NaN p95 so far, whose median is NaN)
            filled = detector.history[:, : min(detector.history_count, width)]
            by = dict(zip(HISTORY, filled, strict=True))
            assert detector.level == float(np.median(by["requests"]))
            assert detector.err_level == float(np.median(by["errors"]))
            assert detector.sus_level == float(np.median(by["suspect"]))
            assert detector.usual_p95 == float(np.nanmedian(by["p95"]))
    restarted = LiveDetector(LivePolicy())
    restarted.history, restarted.history_count = detector.history.copy(), detector.history_count
    restarted._remember((5.0,) * len(HISTORY))
    detector._remember((5.0,) * len(HISTORY))
    assert (restarted.level, restarted.usual_p95) == (detector.level, detector.usual_p95)


def test_seen_set_has_no_false_negatives() -> None:
    hashes = np.random.default_rng(3).integers(0, 2**63, 50_000, dtype=np.int64).astype(np.uint64)
    seen = SeenSet(22)
    seen.add(hashes[:25_000])
    assert seen.contains(hashes[:25_000]).all()
    assert seen.contains(hashes[25_000:]).mean() < 0.02


def test_prometheus_metrics_are_served_on_loopback() -> None:
    import urllib.request

    from floodwitness.watch.alerts import Metrics

    metrics = Metrics(0)
    try:
        metrics.update({"requests_per_second": 12.5, "distinct_clients": 40.0, "error_share": 0.25, "alert": 1.0})
        port = metrics.server.server_port
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert "floodwitness_requests_per_second 12.5" in text
        assert "floodwitness_alert 1.0" in text
        assert "floodwitness_error_share 0.25" in text
    finally:
        metrics.close()
        metrics.server.server_close()
