"""Scaling benchmark (run on demand, not in CI): DuckDB and Spark local[2] on 1M, 5M and 20M lines.

    python benchmarks/scale.py                          # 1M, 5M, 20M lines, both engines
    python benchmarks/scale.py --lines 1000000 5000000  # fewer sizes
    python benchmarks/scale.py --engines spark --master 'local[2]'

For each size and engine, as its own process and timed from outside (Spark's time includes starting its JVM):

* ``floodwitness ingest LOG --out STORE -q --engine E``: read, parse, write the Parquet store;
* ``floodwitness analyze STORE --json OUT -q --engine E``: every aggregation of the analysis over the store.

It prints seconds and lines/s per step, and how time grows with the input (seconds per million lines at each
size: flat means linear), and writes ``benchmarks/out/scale.json``. The logs are the combined logs of
``benchmarks/ingest.py`` (generated once, cached in ``benchmarks/out/``). Spark needs
``pip install 'floodwitness[spark]'`` and Java 17.
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.ingest import FLOODWITNESS, OUT, log_file, measure

SIZES = (1_000_000, 5_000_000, 20_000_000)


def bench(lines: int, engine: str, master: str, work: Path) -> dict[str, object]:
    log = log_file(lines)
    mb = log.stat().st_size / 1e6
    store = work / f"store-{engine}-{lines}"
    extra = ["--engine", engine] + (["--spark-master", master] if engine == "spark" else [])
    result: dict[str, object] = {"engine": engine, "lines": lines, "mb": round(mb)}
    ingest = measure("ingest", [str(FLOODWITNESS), "ingest", str(log), "--out", str(store), "-q", *extra], lines, mb)
    report = work / f"report-{engine}-{lines}.json"
    analyze = measure("analyze", [str(FLOODWITNESS), "analyze", str(store), "--json", str(report), "-q", *extra],
                      lines, mb)
    shutil.rmtree(store, ignore_errors=True)
    for run in (ingest, analyze):
        result[run.step] = {"seconds": round(run.seconds, 2), "lines_per_s": round(run.lines_per_s),
                            "ok": run.returncode == 0}
    return result


def show(results: list[dict[str, object]]) -> None:
    print(f"{'engine':8} {'lines':>11} {'MB':>6} {'ingest s':>9} {'lines/s':>10} {'analyze s':>10} {'lines/s':>10}"
          f" {'total s/M lines':>16}")
    for r in results:
        ingest, analyze = r["ingest"], r["analyze"]
        assert isinstance(ingest, dict) and isinstance(analyze, dict)
        per_million = (ingest["seconds"] + analyze["seconds"]) / (int(str(r["lines"])) / 1e6)
        print(f"{r['engine']:8} {r['lines']:>11,} {r['mb']:>6} {ingest['seconds']:>9.1f} {ingest['lines_per_s']:>10,}"
              f" {analyze['seconds']:>10.1f} {analyze['lines_per_s']:>10,} {per_million:>16.2f}"
              + ("" if ingest["ok"] and analyze["ok"] else "  (failed)"))


def growth(results: list[dict[str, object]]) -> None:
    """How time grows with the input, per engine: the ratio of times against the ratio of lines, and the
    marginal cost (seconds per extra million lines between consecutive sizes: flat means linear)."""
    for engine in sorted({str(r["engine"]) for r in results}):
        runs = sorted((r for r in results if r["engine"] == engine), key=lambda r: int(str(r["lines"])))
        points = [(int(str(r["lines"])), _total(r)) for r in runs]
        if len(points) < 2:
            continue
        (n0, t0), (n1, t1) = points[0], points[-1]
        marginal = ", ".join(f"{(b[1] - a[1]) / ((b[0] - a[0]) / 1e6):.2f}"
                             for a, b in itertools.pairwise(points))
        print(f"{engine}: {n1 / n0:.0f}x the lines took {t1 / t0:.1f}x the time; "
              f"marginal seconds per extra million lines: {marginal}")


def _total(result: dict[str, object]) -> float:
    ingest, analyze = result["ingest"], result["analyze"]
    assert isinstance(ingest, dict) and isinstance(analyze, dict)
    return float(ingest["seconds"]) + float(analyze["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--engines", nargs="+", default=["duckdb", "spark"], choices=["duckdb", "spark"])
    parser.add_argument("--master", default="local[2]", help="Spark master (default local[2])")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="fw-scale-", dir=OUT if OUT.is_dir() else None) as tmp:
        for lines in args.lines:
            for engine in args.engines:
                results.append(bench(lines, engine, args.master, Path(tmp)))
                show(results[-1:])
    print()
    show(results)
    growth(results)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "scale.json").write_text(json.dumps({"machine": platform.platform(), "results": results}, indent=1))


if __name__ == "__main__":
    main()
