"""Accuracy of `analyze` on the simulator's labelled scenarios (and the real no-incident log).

Run: python benchmarks/accuracy.py [--seeds 5] [--hours 2] [--scale 1]  (writes benchmarks/out/accuracy.json
and prints the README's accuracy table). For each scenario and seed it checks: the verdict; the incident
window's start, end and peak within 60 s of the truth; blocklist recall of attacking IPs and collateral
among known clients; and that no legitimate client is blocked when there is no attack.

``--network`` runs the network-level kinds (#21) instead: each is analysed with its flows
(``floodwitness analyze access.log --flows flows.csv --json ...``) and the report's ``network`` section is compared
with the truth's (:func:`network_scores`): each attack episode's vectors named right, its start within 10 s,
its source or reflector count within 5 %, and the heavy benign day not called an attack
(writes benchmarks/out/accuracy_network.json).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from netaddr import IPAddress, IPNetwork, IPSet

from floodwitness.analysis.dataset import open_dataset
from floodwitness.report import analyze
from floodwitness.simulate import SCENARIOS, Incident, simulate
from floodwitness.simulate.netscen import SCENARIOS as NETWORK_SCENARIOS

if TYPE_CHECKING:
    from collections.abc import Mapping

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
    parser.add_argument("--kinds", nargs="*", default=None)
    parser.add_argument("--network", action="store_true",
                        help="the network-level kinds, analysed with their flows (the report's network section)")
    args = parser.parse_args()
    if args.network:
        return network_main(args.kinds or sorted(NETWORK_SCENARIOS), args.first_seed, args.seeds, args.hours,
                            args.scale)
    args.kinds = args.kinds or sorted(k for k in SCENARIOS if k not in NETWORK_SCENARIOS)
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


# --- the network-level kinds (#21) ---------------------------------------------------------------------------

#: how far the reported start may lie from the truth's, and the source/reflector count from the truth's
NET_START_S = 10.0
NET_SOURCES_SHARE = 0.05
#: verdict kinds that call a day an attack
ATTACK_VERDICTS = frozenset({"ddos", "dos", "mixed"})


def _vector_matches(truth_vector: Mapping[str, Any], reported: Mapping[str, Any]) -> bool:
    """The reported vector is the truth's: the same key of data/vectors.json, or (reflection) the same protocol and
    source port."""
    if reported.get("vector") == truth_vector["vector"]:
        return True
    return (truth_vector.get("port_side") == "src" and reported.get("port_side") == "src"
            and reported.get("port") == truth_vector.get("port") and reported.get("proto") == truth_vector["proto"])


def _target_matches(truth_episode: Mapping[str, Any], reported: Mapping[str, Any]) -> bool:
    """The same victim: the host, or for carpet bombing the prefix (a reported prefix inside or around it)."""
    target = str(reported.get("target", ""))
    if not truth_episode["carpet_bombing"]:
        return target.split("/", maxsplit=1)[0] == truth_episode["target"] and (
            "/" not in target or target.endswith(("/32", "/128")))
    try:
        want, got = IPNetwork(truth_episode["target"]), IPNetwork(target)
    except (ValueError, TypeError):
        return False
    return bool(got in want or want in got) and got.prefixlen < 32


def network_scores(truth_network: Mapping[str, Any], report_network: Mapping[str, Any] | None,
                   expected: str, verdict: str | None = None) -> dict[str, Any]:
    """Compare a report's ``network`` section (docs: design of #21) with a simulated truth's ``network``.

    For each truth episode, the report's episode on the same target (the first one overlapping it in time, else
    the first on that target): ``vector_right`` (every truth vector named), ``start_error_s``, ``sources_error``
    (worst relative error of the source/reflector counts of the matched vectors) and ``ok`` (all three within
    :data:`NET_START_S` and :data:`NET_SOURCES_SHARE`). For a day whose truth is no_incident, ``not_attack``: no
    reported episode names a vector, and the verdict (when given) is not an attack."""
    reported = list((report_network or {}).get("episodes") or [])
    out: dict[str, Any] = {"expected": expected, "episodes": []}
    if expected == "no_incident":
        flagged = [e.get("id") for e in reported if e.get("vectors")]
        out["not_attack"] = not flagged and (verdict is None or verdict not in ATTACK_VERDICTS)
        out["flagged"] = flagged
        return out
    for ep in truth_network.get("episodes", []):
        out["episodes"].append(_episode_score(ep, reported))
    scores = out["episodes"]
    out["vector_right"] = bool(scores) and all(s["vector_right"] for s in scores)
    out["start_ok"] = bool(scores) and all(s["start_ok"] for s in scores)
    out["sources_ok"] = bool(scores) and all(s["sources_ok"] for s in scores)
    out["ok"] = out["vector_right"] and out["start_ok"] and out["sources_ok"]
    return out


def _episode_score(ep: Mapping[str, Any], reported: list[Mapping[str, Any]]) -> dict[str, Any]:
    start = _t(ep["start"])
    same = [r for r in reported if _target_matches(ep, r)]
    near = [r for r in same if _t(r["start"]) <= _t(ep["end"]) and _t(r["end"]) >= start]
    got = near[0] if near else (same[0] if same else None)
    score: dict[str, Any] = {"truth": ep["id"], "target": ep["target"], "found": got is not None,
                             "vector_right": False, "start_error_s": None, "start_ok": False,
                             "sources_error": None, "sources_ok": False}
    if got is None:
        return score
    score["found_id"] = got.get("id")
    score["start_error_s"] = abs((_t(got["start"]) - start).total_seconds())
    score["start_ok"] = score["start_error_s"] <= NET_START_S
    errors: list[float] = []
    named = True
    for vec in ep["vectors"]:
        match = next((v for v in got.get("vectors") or [] if _vector_matches(vec, v)), None)
        if match is None:
            named = False
            continue
        want = max(int(vec["sources"]), 1)
        errors.append(abs(int(match.get("sources") or 0) - want) / want)
    score["vector_right"] = named
    score["sources_error"] = max(errors) if errors else None
    score["sources_ok"] = named and bool(errors) and max(errors) <= NET_SOURCES_SHARE
    return score


def _analyze_with_flows(folder: Path) -> dict[str, Any]:
    """The JSON report of ``floodwitness analyze access.log --flows flows.csv`` (the public CLI)."""
    out = folder / "report.json"
    cmd = [sys.executable, "-m", "floodwitness.cli", "analyze", str(folder / "access.log"), "--flows",
           str(folder / "flows.csv"), "--json", str(out), "--quiet"]
    done = subprocess.run(cmd, check=False, capture_output=True, text=True)
    if done.returncode != 0:  # e.g. an analyze without --flows yet: say so rather than score nothing
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr.strip()}")
    report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return report


def network_main(kinds: list[str], first_seed: int, seeds: int, hours: float, scale: float) -> int:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            for seed in range(first_seed, first_seed + seeds):
                folder = Path(tmp) / f"{kind}-{seed}"
                truth = simulate(kind, folder, seed=seed, hours=hours, scale=scale)
                started = time.perf_counter()
                report = _analyze_with_flows(folder)
                assert truth.network is not None
                row = network_scores(truth.network, report.get("network"), truth.expected_verdict,
                                     report["verdict"]["kind"])
                row |= {"kind": kind, "seed": seed, "sampling": truth.network["sampling"],
                        "flow_records": truth.network["flow_records"], "verdict": report["verdict"]["kind"],
                        "seconds": time.perf_counter() - started}
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
    OUT.mkdir(exist_ok=True)
    (OUT / "accuracy_network.json").write_text(json.dumps(rows, indent=1))
    print(network_table(rows))
    return 0


def network_table(rows: list[dict[str, Any]]) -> str:
    """The README's table of the network kinds."""
    lines = ["| scenario | expected | verdict right | vectors right | start within 10 s | sources within 5 % "
             "| not an attack | s/run |", "|---|---|---|---|---|---|---|---|"]
    for kind in sorted({str(r["kind"]) for r in rows}):
        rs = [r for r in rows if r["kind"] == kind]
        n = len(rs)
        benign = rs[0]["expected"] == "no_incident"

        counts = {key: f"{sum(bool(r.get(key)) for r in rs)}/{n}"
                  for key in ("not_attack", "vector_right", "start_ok", "sources_ok")}
        cells = ["n/a", "n/a", "n/a", counts["not_attack"]] if benign else [
            counts["vector_right"], counts["start_ok"], counts["sources_ok"], "n/a"]
        right = sum(r["verdict"] == r["expected"] for r in rs)
        lines.append(f"| {kind} | {rs[0]['expected']} | {right}/{n} | {' | '.join(cells)} | "
                     f"{statistics.mean(float(r['seconds']) for r in rs):.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
