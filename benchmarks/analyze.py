"""Does the analysis keep up with ingest? Times, on the same ~5M-line simulated flood, in one run:
`floodwitness ingest` alone, `floodwitness analyze` on the log (ingest + analysis), and `analyze` on the
store (analysis alone), with lines/s and peak RSS of each child process.

Run: python benchmarks/analyze.py [--scale 20 --hours 1.5]   (the log is cached in benchmarks/out/)
Target (analyze issue): analyze on the log keeps at least 70% of ingest's throughput.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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
    shutil.rmtree(store, ignore_errors=True)
    results = {}
    results["ingest"] = timed([*CLI, "ingest", str(log), "--out", str(store), "-q"])
    results["analyze_store"] = timed([*CLI, "analyze", str(store), "-q", "--json", str(folder / "report.json")])
    results["analyze_log"] = timed([*CLI, "analyze", str(log), "-q", "--json", str(folder / "report2.json")])
    verdict = json.loads((folder / "report2.json").read_text())["verdict"]["kind"]
    print(f"{lines:,} lines, {size_mb:,.0f} MB, {os.cpu_count()} cores; verdict {verdict}")
    print("| step | seconds | lines/s | MB/s | peak RSS MB |")
    print("|---|---|---|---|---|")
    for name, (seconds, rss) in results.items():
        print(f"| {name} | {seconds:.1f} | {lines / seconds:,.0f} | {size_mb / seconds:,.0f} | {rss:,.0f} |")
    ratio = results["ingest"][0] / results["analyze_log"][0]
    print(f"analyze-from-log throughput = {ratio:.0%} of ingest throughput (target >= 70%)")
    (OUT / "analyze.json").write_text(json.dumps({"lines": lines, "mb": size_mb, "results": results,
                                                  "ratio": ratio, "verdict": verdict}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
