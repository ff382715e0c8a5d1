"""Accuracy of `analyze` on the simulator's labelled scenarios (and the real no-incident log).

Run: python benchmarks/accuracy.py [--seeds 5] [--hours 2] [--scale 1]  (writes benchmarks/out/accuracy.json
and prints the README's accuracy table). For each scenario and seed it checks: the verdict; the incident
window's start, end and peak within 60 s of the truth; blocklist recall of attacking IPs and collateral
among known clients; and that no legitimate client is blocked when there is no attack.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from netaddr import IPAddress, IPNetwork, IPSet

from floodwitness.analysis.dataset import open_dataset
from floodwitness.report import analyze
from floodwitness.simulate import SCENARIOS, Incident, simulate

OUT = Path(__file__).parent / "out"


def _t(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _covered(ips: list[str], cidrs: IPSet) -> int:
    count = 0
    for ip in ips:
        try:
            count += IPAddress(ip) in cidrs
        except (ValueError, TypeError):
            continue
    return count


def run_one(kind: str, seed: int, hours: float, scale: float, tmp: Path) -> dict[str, object]:
    folder = tmp / f"{kind}-{seed}"
    truth = simulate(kind, folder, seed=seed, hours=hours, scale=scale)
    started = time.perf_counter()
    data = open_dataset([str(folder / "access.log")])
    try:
        report = analyze(data)
    finally:
        data.close()
    seconds = time.perf_counter() - started
    blocked = IPSet(IPNetwork(e["cidr"]) for e in report["mitigation"].get("blocklist", []))
    attackers = list(truth.attackers)
    known = list(truth.known_clients)
    result: dict[str, object] = {
        "kind": kind, "seed": seed, "lines": truth.lines, "expected": truth.expected_verdict,
        "verdict": report["verdict"]["kind"], "confidence": report["verdict"]["confidence"], "seconds": seconds,
        "recall": _covered(attackers, blocked) / len(attackers) if attackers else None,
        "collateral": _covered(known, blocked) / len(known) if known else 0.0,
        "blocked_known": _covered(known, blocked),
    }
    if truth.incidents and report["incidents"]:
        inc, main = truth.incidents[0], report["incidents"][0]
        for key in ("start", "end"):
            result[f"{key}_offset_s"] = (_t(main[key]) - _t(getattr(inc, key))).total_seconds()
            result[f"{key}_error_s"] = abs(float(result[f"{key}_offset_s"]))
        # the truth's peak is its busiest minute; ours is the busiest second: distance to that minute
        offset = (_t(main["peak"]) - _t(inc.peak)).total_seconds()
        result["peak_error_s"] = 0.0 if 0 <= offset < 60 else min(abs(offset), abs(offset - 60))
        result |= _outage_scores(inc, main)
    return result


#: the cause family of an outage (``incidents[].outage.cause``) by the simulated incident's cause
CAUSES = {"outage": "outside", "attack": "attack", "failure": "internal"}


def _outage_scores(inc: Incident, main: dict[str, object]) -> dict[str, object]:
    """For a simulated outage (a phase named ``outage``): how far the reported collapse began from the stop, and
    whether its cause family is the truth's."""
    down = next((p for p in inc.phases if p[0] == "outage"), None)
    if down is None:
        return {}
    outage = main.get("outage")
    if not isinstance(outage, dict):
        return {"outage_error_s": None, "cause_right": False}
    return {"outage_error_s": abs((_t(outage["began"]) - _t(down[1])).total_seconds()),
            "cause_right": outage["cause"] == CAUSES[inc.cause]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--kinds", nargs="*", default=sorted(SCENARIOS))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.kinds:
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                row = run_one(kind, seed, args.hours, args.scale, Path(tmp))
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
    OUT.mkdir(exist_ok=True)
    (OUT / "accuracy.json").write_text(json.dumps(rows, indent=1))
    print("| scenario | expected | verdict right | start within 60 s | end within 60 s | peak minute within 60 s "
          "| blocklist recall (min) | collateral, known clients (max) | s/run |")
    print("|---|---|---|---|---|---|---|---|---|")
    for kind in args.kinds:
        rs = [r for r in rows if r["kind"] == kind]
        right = sum(r["verdict"] == r["expected"] for r in rs)
        timed = [r for r in rs if "start_error_s" in r]
        cells = []
        for key in ("start", "end", "peak"):
            ok = sum(float(r[f"{key}_error_s"]) <= 60 for r in timed)
            cells.append(f"{ok}/{len(timed)}" if timed else "n/a")
        recalls = [float(r["recall"]) for r in rs if r["recall"] is not None]
        recall = f"{min(recalls):.1%}" if recalls else "n/a"
        collateral = max(float(r["collateral"]) for r in rs)
        print(f"| {kind} | {rs[0]['expected']} | {right}/{len(rs)} | {' | '.join(cells)} | {recall} | "
              f"{collateral:.2%} | {statistics.mean(float(r['seconds']) for r in rs):.1f} |")
    _outage_table(rows, args.kinds)
    return 0


def _outage_table(rows: list[dict[str, object]], kinds: list[str]) -> None:
    """The outage kinds: the collapse found and begun within 60 s of the stop, and its cause family right."""
    kinds = [k for k in kinds if any("cause_right" in r for r in rows if r["kind"] == k)]
    if not kinds:
        return
    print("\n| scenario | outage found, began within 60 s | cause family right |\n|---|---|---|")
    for kind in kinds:
        rs = [r for r in rows if r["kind"] == kind]
        began = sum(r.get("outage_error_s") is not None and float(str(r["outage_error_s"])) <= 60 for r in rs)
        print(f"| {kind} | {began}/{len(rs)} | {sum(bool(r.get('cause_right')) for r in rs)}/{len(rs)} |")


if __name__ == "__main__":
    raise SystemExit(main())
