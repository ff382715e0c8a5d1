"""Does the analysis keep up with ingest? Times, on the same ~5M-line simulated flood, in one run:
`floodwitness ingest` alone, `floodwitness analyze` on the log (ingest + analysis), and `analyze` on the
store (analysis alone), with lines/s and peak RSS of each child process.

Run: python benchmarks/analyze.py [--scale 20 --hours 1.5 --rounds 3]   (the log is cached in benchmarks/out/)
Target (analyze issue): analyze on the log keeps at least 70% of ingest's throughput.

The three steps run in turn, ``--rounds`` times; each step's fastest round is its figure (a shared machine's
slow moments only ever add time), and the medians are printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).parent / "out"
CLI = [sys.executable, "-m", "floodwitness.cli"]


def timed(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process (its own rusage, via wait4)."""
    started = time.perf_counter()
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"{' '.join(args)} failed with exit code {child.returncode}")
    return seconds, usage.ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=20.0)
    parser.add_argument("--hours", type=float, default=1.5)
    parser.add_argument("--kind", default="mirai")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    folder = OUT / f"analyze-{args.kind}-{args.scale:g}-{args.hours:g}"
    log = folder / "access.log"
    if not log.exists():
        print(f"simulating {args.kind} at scale {args.scale} for {args.hours} h ...", file=sys.stderr)
        subprocess.run([*CLI, "simulate", args.kind, str(folder), "--scale", str(args.scale),
                        "--hours", str(args.hours)], check=True)
    lines = int(json.loads((folder / "truth.json").read_text())["lines"])
    size_mb = log.stat().st_size / 1e6
    store = folder / "store"
    runs: dict[str, list[tuple[float, float]]] = {"ingest": [], "analyze_store": [], "analyze_log": []}
    for _ in range(args.rounds):
        shutil.rmtree(store, ignore_errors=True)
        runs["ingest"].append(timed([*CLI, "ingest", str(log), "--out", str(store), "-q"]))
        runs["analyze_store"].append(timed([*CLI, "analyze", str(store), "-q", "--json",
                                            str(folder / "report.json")]))
        runs["analyze_log"].append(timed([*CLI, "analyze", str(log), "-q", "--json", str(folder / "report2.json")]))
    results = {name: min(times) for name, times in runs.items()}
    medians = {name: statistics.median(t for t, _ in times) for name, times in runs.items()}
    verdict = json.loads((folder / "report2.json").read_text())["verdict"]["kind"]
    print(f"{lines:,} lines, {size_mb:,.0f} MB, {os.cpu_count()} cores; verdict {verdict}; "
          f"best of {args.rounds} rounds")
    print("| step | seconds | lines/s | MB/s | peak RSS MB | median seconds |")
    print("|---|---|---|---|---|---|")
    for name, (seconds, rss) in results.items():
        print(f"| {name} | {seconds:.1f} | {lines / seconds:,.0f} | {size_mb / seconds:,.0f} | {rss:,.0f} "
              f"| {medians[name]:.1f} |")
    ratio = results["ingest"][0] / results["analyze_log"][0]
    median_ratio = medians["ingest"] / medians["analyze_log"]
    print(f"analyze-from-log throughput = {ratio:.0%} of ingest throughput (medians: {median_ratio:.0%}; "
          "target >= 70%)")
    (OUT / "analyze.json").write_text(json.dumps({"lines": lines, "mb": size_mb, "results": results, "runs": runs,
                                                  "ratio": ratio, "median_ratio": median_ratio,
                                                  "verdict": verdict}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
