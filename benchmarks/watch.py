"""Benchmarks of `floodwitness watch --replay`: detection delay over seeds, kinds on legitimate incidents,
replay throughput and peak memory on large combined logs.

    python benchmarks/watch.py --seeds 5                    # delays and kinds (simulated, 3 h each)
    python benchmarks/watch.py --throughput LOG [LOG ...]   # lines/s and peak RSS per log (own process each)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from floodwitness.simulate import simulate
from floodwitness.simulate.truth import first_request_of
from floodwitness.watch import Watcher, WatchOptions

OUT = Path(__file__).resolve().parent / "out"
FLOODS = ("mirai", "cachebust", "pulse", "dos")
LEGIT = ("flash_crowd", "internal_failure", "quiet")
ATTACKS = ("ddos", "dos", "mixed")


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Collect:
    def __init__(self) -> None:
        self.events: list[dict[str, object]] = []

    def send(self, event: dict[str, object]) -> None:
        self.events.append(event)


def accuracy(seeds: int, scale: float) -> dict[str, object]:
    results: dict[str, list[dict[str, object]]] = {}
    for kind in FLOODS + LEGIT:
        for seed in range(1, seeds + 1):
            folder = OUT / "watch-sims" / f"{kind}-{seed}-{scale}"
            if not (folder / "truth.json").exists():
                simulate(kind, folder, seed=seed, scale=scale)
            truth = json.loads((folder / "truth.json").read_text())
            sink = Collect()
            began = time.perf_counter()
            summary = Watcher([str(folder / "access.log")], WatchOptions(replay=True), [sink]).run()
            row: dict[str, object] = {"seed": seed, "lines": summary.lines,
                                      "lines_per_s": round(summary.lines / (time.perf_counter() - began))}
            alerts = [e for e in sink.events if e["type"] == "alert"]
            row["alerts"] = len(alerts)
            row["kinds"] = sorted({str(e["kind"]) for e in sink.events})
            if kind in FLOODS:
                first = first_request_of(folder / "access.log", set(truth["attackers"]))
                start = _t(truth["incidents"][0]["start"])
                if alerts:
                    at = _t(str(alerts[0]["log_time"]))
                    row["delay_s"] = (at - first).total_seconds()
                    row["delay_from_truth_start_s"] = (at - start).total_seconds()
                    row["first_kind"] = alerts[0]["kind"]
                    row["final_kind"] = [e for e in sink.events if e["incident"] == alerts[0]["incident"]][-1]["kind"]
            else:
                row["attack_events"] = sum(1 for e in sink.events if e["kind"] in ATTACKS)
            results.setdefault(kind, []).append(row)
            print(kind, row, flush=True)
    summary_rows: dict[str, object] = {}
    for kind, rows in results.items():
        if kind in FLOODS:
            delays = [float(r["delay_s"]) for r in rows if "delay_s" in r]  # type: ignore[arg-type]
            summary_rows[kind] = {"detected": f"{len(delays)}/{len(rows)}", "delay_min": min(delays, default=None),
                                  "delay_median": statistics.median(delays) if delays else None,
                                  "delay_max": max(delays, default=None),
                                  "within_10s": sum(d <= 10 for d in delays),
                                  "final_kind_right": sum(r.get("final_kind") == ("ddos" if kind != "dos" else "dos")
                                                          for r in rows)}
        else:
            summary_rows[kind] = {"runs": len(rows), "runs_with_attack_events": sum(
                int(r["attack_events"]) > 0 for r in rows), "kinds": sorted({k for r in rows for k in r["kinds"]})}  # type: ignore[attr-defined]
    return {"per_run": results, "summary": summary_rows}


def throughput(logs: list[str]) -> list[dict[str, object]]:
    out = []
    for log in logs:
        lines = sum(1 for _ in open(log, "rb"))  # noqa: SIM115
        began = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "floodwitness.cli", "watch", log, "--replay", "-q",
                                 "--alerts", os.devnull])
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - began
        row = {"log": log, "lines": lines, "seconds": round(seconds, 2), "lines_per_s": round(lines / seconds),
               "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
               "lines_per_cpu_s": round(lines / max(usage.ru_utime + usage.ru_stime, 1e-9)),
               "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "exit": os.waitstatus_to_exitcode(status)}
        print(row, flush=True)
        out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=0)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--throughput", nargs="*", default=[])
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    report: dict[str, object] = {"cpus": os.cpu_count(), "load_before": os.getloadavg()[0]}
    if args.seeds:
        report["accuracy"] = accuracy(args.seeds, args.scale)
        print(json.dumps(report["accuracy"]["summary"], indent=1))  # type: ignore[index]
    if args.throughput:
        report["throughput"] = throughput(args.throughput)
    (OUT / "watch.json").write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
