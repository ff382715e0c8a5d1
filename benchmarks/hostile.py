"""Reliability under hostile input: the figures of the README's "Reliability" section, rerunnable by anyone.

1. The hostile corpus of tests/hostile_corpus.py (a simulated Mirai flood carrying escape sequences, markup,
   formulas and forged headers, plus binary junk, NUL bytes, invalid UTF-8, 5 MB lines, 10,000 nonsense
   shapes and truncated .gz/.zst/.bz2 rotations), one corpus per seed, through the real CLI in child processes:
   `ingest`, `analyze` (terminal, JSON, HTML, Markdown, blocklist, rate limits), `mitigate` to every target,
   and the junk files named on their own. Counts inputs tried, crashes (a traceback or an exit without a clean
   `Error:`), lines lost (read != the lines written, or read != parsed + rejected) and unsafe outputs.
2. Format detection on 1,000 lines crafted against backtracking regexes, per shape, at 1 kB and 64 kB.
3. Memory on a 200 MB single line (peak RSS of `floodwitness ingest`, and the line reader under tracemalloc).
4. The engine under a memory limit: a sort bigger than the limit spills to disk and completes.

Run: python benchmarks/hostile.py [--seeds 3]      (writes benchmarks/out/hostile.json)
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # tests.hostile_corpus (the corpus the test suite uses); not benchmarks/html.py as `html`

from tests.hostile_corpus import (  # noqa: E402
    FORMULA,
    MARKERS,
    TERMINAL_UNSAFE,
    HtmlPage,
    build,
    export_structure,
)

from floodwitness.errors import FormatError  # noqa: E402
from floodwitness.formats.detect import detect  # noqa: E402
from floodwitness.inputs.lines import FileAccount, LineBatcher  # noqa: E402
from floodwitness.mitigation.exports import EXPORTERS  # noqa: E402

OUT = Path(__file__).parent / "out"
CLI = [sys.executable, "-m", "floodwitness.cli"]


class Tally:
    def __init__(self) -> None:
        self.commands = self.inputs = self.lines = self.crashes = self.lost = self.unsafe = 0
        self.problems: list[str] = []

    def run(self, *args: str, inputs: int = 0) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*CLI, *args], capture_output=True, text=True, encoding="utf-8", errors="replace",
                              check=False)
        self.commands += 1
        self.inputs += inputs
        clean_error = proc.returncode == 1 and proc.stderr.startswith("Error: ")
        if "Traceback" in proc.stderr or not (proc.returncode == 0 or clean_error):
            self.crashes += 1
            self.problems.append(f"crash: {' '.join(args)}: exit {proc.returncode}: {proc.stderr[-500:]}")
        return proc

    def unsafe_if(self, condition: bool, what: str) -> None:
        if condition:
            self.unsafe += 1
            self.problems.append(f"unsafe output: {what}")


def _accounting(tally: Tally, summary: dict[str, Any], expected: dict[str, int]) -> None:
    for item in summary["inputs"]:
        want = expected[item["path"]]
        tally.lines += item["lines_read"]
        lost = abs(want - item["lines_read"]) + abs(item["lines_read"] - item["lines_parsed"] - item["lines_rejected"])
        if lost:
            tally.lost += lost
            tally.problems.append(f"lines lost: {item['path']}: wrote {want}, {item}")


def reliability(seed: int, tally: Tally) -> None:
    with tempfile.TemporaryDirectory(prefix="fw-hostile-") as tmp:
        folder = Path(tmp)
        corpus = build(folder, seed=seed)
        logs = [str(p) for p in corpus.logs]
        ingest = tally.run("ingest", *logs, "--out", str(folder / "store"), "--json", str(folder / "i.json"),
                           inputs=len(logs))
        analyze = tally.run("analyze", *logs, "--store", str(folder / "s2"), "--json", str(folder / "r.json"), "--html",
                            str(folder / "r.html"), "--markdown", str(folder / "r.md"), "--blocklist",
                            str(folder / "b.txt"), "--rate-limits", inputs=len(logs))
        for proc, name in ((ingest, "ingest"), (analyze, "analyze")):
            tally.unsafe_if(bool(TERMINAL_UNSAFE.search(proc.stdout + proc.stderr)), f"{name} terminal output")
        for name in ("i.json", "r.json"):
            text = (folder / name).read_bytes().decode("utf-8")
            tally.unsafe_if(bool(TERMINAL_UNSAFE.search(text)), f"{name} holds a raw control character")
            _accounting(tally, json.loads(text), corpus.lines)
        page = HtmlPage((folder / "r.html").read_text(encoding="utf-8"))
        tally.unsafe_if(bool(page.problems()), f"HTML: {page.problems()}")
        markdown = (folder / "r.md").read_text(encoding="utf-8")
        outside = re.sub(r"(`+).*?\1", "", re.sub(r"(?ms)^(`{3,}).*?^\1$", "", markdown))
        tally.unsafe_if(bool(re.search(r"(?<!\\)\]\(|(?<!\\)<(?!-)|(?<!\\)://", outside)), "Markdown live link or HTML")
        for target in sorted(EXPORTERS):
            out = folder / f"rules-{target}"
            tally.run("mitigate", str(folder / "r.json"), "--to", target, "--out", str(out), "-q", inputs=1)
            text = out.read_text(encoding="utf-8")
            structure = export_structure(target, text)
            tally.unsafe_if(bool(TERMINAL_UNSAFE.search(text)) or any(m in structure for m in (*MARKERS, "\x1b")),
                            f"{target} export")
            if target == "csv":
                cells = [c for row in csv.reader(io.StringIO(text)) for c in row]
                tally.unsafe_if(any(c.startswith(FORMULA) for c in cells), "CSV formula")
        for path in (corpus.junk, corpus.nonsense):
            assert path is not None
            tally.run("ingest", str(path), "--out", str(folder / f"x-{path.name}"), inputs=1)
        nonsense = tally.run("ingest", str(corpus.nonsense), "--format", "combined", "--out", str(folder / "n"),
                             "--json", "-", "-q", inputs=1)
        item = json.loads(nonsense.stdout)["inputs"][0]
        _accounting(tally, {"inputs": [item]}, {item["path"]: 10_000})


SHAPES = {
    "unbalanced quoted fields": lambda n, i: f'1.2.3.{i % 256} - - [x] "GET / HTTP/1.1" 200 1 ' + '"a" ' * (n // 4)
                                             + '"',
    "escaped quotes": lambda n, i: f'1.2.3.{i % 256} - - [21/Aug/2026:13:45:02 +0200] "' + '\\"' * (n // 2) + str(i),
    "quotes": lambda n, i: '"' * n + str(i),
    "spaces": lambda n, i: " " * n + str(i),
    "backslashes": lambda n, i: "\\" * n + str(i),
    "upstream lists": lambda n, i: f'1.2.3.{i % 256} - - [17/May/2024:10:05:03 +0200] "GET / HTTP/1.1" 200 612 "-" "c" '
                                   "0.004 " + "1, " * (n // 3) + "x",
    "unterminated JSON": lambda n, i: f'{{"n":{i},"remote_addr":"' + "\\\\" * (n // 2),
}


def detection_times() -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name, make in SHAPES.items():
        out[name] = {}
        for size in (1024, 65536):
            lines = [make(size, i) for i in range(1000)]
            start = time.perf_counter()
            with contextlib.suppress(FormatError):
                detect(lines)
            out[name][f"{size // 1024}k"] = round(time.perf_counter() - start, 3)
    return out


def _peak_rss_mb(args: list[str]) -> tuple[float, int]:
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    assert proc.stderr is not None
    proc.stderr.read()
    return usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def memory() -> dict[str, Any]:
    size = 200 << 20
    with tempfile.TemporaryDirectory(prefix="fw-bigline-") as tmp:
        small, big = Path(tmp) / "small.log", Path(tmp) / "big.log"
        line = b'203.0.113.9 - - [17/May/2015:10:05:03 +0000] "GET / HTTP/1.1" 200 5 "-" "curl/8"\n'
        small.write_bytes(line * 3)
        with big.open("wb") as f:
            f.write(line)
            for _ in range(size >> 20):
                f.write(b"A" * (1 << 20))
            f.write(b"\n" + line)
        base, _ = _peak_rss_mb([*CLI, "ingest", str(small), "--out", str(Path(tmp) / "s1"), "-q"])
        peak, code = _peak_rss_mb([*CLI, "ingest", str(big), "--out", str(Path(tmp) / "s2"), "-q"])
    tracemalloc.start()
    account = FileAccount(file_id=0, path="<200 MB line>")
    rows = sum(b.num_rows for b in LineBatcher(account).batches(b"A" * (16 << 20) for _ in range(size // (16 << 20))))
    traced = tracemalloc.get_traced_memory()[1] / (1 << 20)
    tracemalloc.stop()
    return {"line_mb": size >> 20, "ingest_peak_rss_mb": round(peak, 1), "baseline_rss_mb": round(base, 1),
            "exit": code, "reader_traced_peak_mb": round(traced, 1), "reader_rows": rows,
            "long_lines": account.long_lines}


def spill() -> dict[str, Any]:
    code = ("from floodwitness.engine import Engine, EngineConfig;"
            "e = Engine(EngineConfig(memory_limit='150MB', threads=2));"
            "print(e.raw.execute(\"SELECT count(*), min(s) FROM (SELECT md5(i::VARCHAR) || md5((i+1)::VARCHAR) AS s "
            "FROM range(6000000) t(i) ORDER BY s)\").fetchone())")
    start = time.perf_counter()
    peak, status = _peak_rss_mb([sys.executable, "-c", code])
    return {"rows_sorted": 6_000_000, "data_mb": 6_000_000 * 64 >> 20, "memory_limit": "150MB", "exit": status,
            "peak_rss_mb": round(peak, 1), "seconds": round(time.perf_counter() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    tally = Tally()
    start = time.perf_counter()
    for seed in range(1, args.seeds + 1):
        print(f"corpus seed {seed} ...", file=sys.stderr)
        reliability(seed, tally)
    result: dict[str, Any] = {
        "seeds": args.seeds, "commands": tally.commands, "inputs_tried": tally.inputs, "lines_read": tally.lines,
        "crashes": tally.crashes, "lines_lost": tally.lost, "unsafe_outputs": tally.unsafe,
        "problems": tally.problems, "seconds": round(time.perf_counter() - start, 1)}
    print(f"{args.seeds} corpora, {tally.commands} commands, {tally.inputs} inputs tried, {tally.lines:,} lines read: "
          f"{tally.crashes} crashes, {tally.lost} lines lost, {tally.unsafe} unsafe outputs")
    for problem in tally.problems:
        print("  " + problem)
    result["detection_seconds_per_1000_lines"] = detection_times()
    for name, times in result["detection_seconds_per_1000_lines"].items():
        print(f"detection, 1,000 crafted lines, {name:26}: " + ", ".join(f"{k}: {v:.3f} s" for k, v in times.items()))
    if not args.skip_memory:
        result["memory"] = memory()
        print(f"200 MB single line: ingest peak RSS {result['memory']['ingest_peak_rss_mb']} MB (3-line log: "
              f"{result['memory']['baseline_rss_mb']} MB); line reader traced peak "
              f"{result['memory']['reader_traced_peak_mb']} MB; {result['memory']['long_lines']}")
        result["spill"] = spill()
        spilled = result["spill"]
        print(f"engine sort of ~{spilled['data_mb']} MB under memory_limit=150MB: exit {spilled['exit']}, "
              f"peak RSS {result['spill']['peak_rss_mb']} MB, {result['spill']['seconds']} s")
    OUT.mkdir(exist_ok=True)
    (OUT / "hostile.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    sys.exit(1 if tally.crashes or tally.lost or tally.unsafe else 0)


if __name__ == "__main__":
    main()
