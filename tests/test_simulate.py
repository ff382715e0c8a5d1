"""The simulator writes well-formed, deterministic nginx logs whose truth matches what the log shows."""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import TYPE_CHECKING

import pytest

from floodwitness.errors import UsageError
from floodwitness.simulate import SCENARIOS, Truth, simulate
from floodwitness.simulate._catalog import MIRAI_UAS, PROBE_PATHS

if TYPE_CHECKING:
    from pathlib import Path

# Another seed can be tried with FLOODWITNESS_SIM_SEED=N (the assertions must hold for every seed).
SEED = int(os.environ.get("FLOODWITNESS_SIM_SEED", "11"))
SMALL = {"hours": 1.5, "scale": 0.15}
TINY = {"hours": 0.5, "scale": 0.05}

# Characters nginx writes as they are (others become \xHH): in the request target, in a header field.
_CH = r'[^"\\\s\x00-\x1f\x7f-\uffff]'
_FCH = r'[^"\\\x00-\x1f\x7f-\uffff]'
_FIELD = rf"{_FCH}*+(?:\\x[0-9A-F]{{2}}{_FCH}*+)*+"
_TARGET = rf"/{_CH}*+(?:\\x[0-9A-F]{{2}}{_CH}*+)*+"
LINE = re.compile(
    r"^(?P<ip>\d{1,3}(?:\.\d{1,3}){3}|[0-9a-f]{1,4}(?::[0-9a-f]{1,4}){7}) - - "
    r"\[(?P<time>\d{2}/(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)/\d{4}:\d{2}:\d{2}:\d{2} "
    r"(?P<tz>[+-]\d{4}))\] "
    rf'"(?P<method>GET|POST|HEAD) (?P<target>{_TARGET}) (?P<proto>HTTP/1\.0|HTTP/1\.1|HTTP/2\.0)" '
    r"(?P<status>[1-5]\d\d) (?P<bytes>0|[1-9]\d*) "
    rf'"(?P<ref>{_FIELD})" "(?P<ua>(?!"){_FIELD})" '
    r"(?P<rt>\d+\.\d{3}) (?P<ut>-|\d+\.\d{3})\n$"
)


@dataclass(slots=True)
class Req:
    ip: str
    t: datetime
    method: str
    target: str
    status: int
    size: int
    ref: str
    ua: str
    rt: float
    ut: float | None


@dataclass
class Run:
    truth: Truth
    raw: bytes
    reqs: list[Req]
    tz: set[str]

    def window(self, i: int = 0) -> tuple[datetime, datetime]:
        inc = self.truth.incidents[i]
        return inc.start, inc.end


def parse(path: Path) -> tuple[list[Req], set[str], list[str]]:
    reqs: list[Req] = []
    tzs: set[str] = set()
    bad: list[str] = []
    stamps: dict[str, datetime] = {}
    with path.open(encoding="ascii", newline="") as fh:
        for line in fh:
            m = LINE.match(line)
            if m is None:
                bad.append(line)
                continue
            ip, stamp, tz, method, target, _proto, status, size, ref, ua, rt, ut = m.groups()
            tzs.add(tz)
            t = stamps.get(stamp)
            if t is None:
                t = stamps[stamp] = datetime.strptime(stamp, "%d/%b/%Y:%H:%M:%S %z")
            reqs.append(Req(ip, t, method, target, int(status), int(size), ref, ua, float(rt),
                            None if ut == "-" else float(ut)))
    return reqs, tzs, bad


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    base = tmp_path_factory.mktemp("sim")
    out: dict[str, Run] = {}
    for kind in SCENARIOS:
        truth = simulate(kind, base / kind, seed=SEED, **SMALL)
        reqs, tzs, bad = parse(base / kind / "access.log")
        assert bad == [], f"{kind}: {len(bad)} malformed lines, first: {bad[:1]}"
        out[kind] = Run(truth, (base / kind / "access.log").read_bytes(), reqs, tzs)
    return out


def slash16(ip: str) -> str | None:
    return ".".join(ip.split(".")[:2]) if "." in ip else None


def first_seen(run: Run) -> dict[str, datetime]:
    seen: dict[str, datetime] = {}
    for r in run.reqs:
        seen.setdefault(r.ip, r.t)
    return seen


def per_minute(reqs: list[Req], start: datetime, minutes: int) -> list[int]:
    counts = [0] * minutes
    for r in reqs:
        k = int((r.t - start).total_seconds() // 60)
        if 0 <= k < minutes:
            counts[k] += 1
    return counts


# --- format, order, determinism ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(SCENARIOS))
def test_log_is_well_formed_and_in_time_order(runs: dict[str, Run], kind: str) -> None:
    run = runs[kind]
    assert len(run.reqs) == run.truth.lines > 1000
    assert run.tz == {run.truth.tz}
    assert run.truth.tz != "+0000"
    times = [r.t for r in run.reqs]
    assert all(a <= b for a, b in pairwise(times))
    assert run.truth.log_start is not None
    assert run.truth.log_end is not None
    assert run.truth.log_start <= times[0]
    assert times[-1] <= run.truth.log_end
    for ip in {r.ip for r in run.reqs}:
        assert ipaddress.ip_address(ip).is_global, ip
    # nginx answers shed requests itself (no upstream time); static files never reach the upstream.
    for r in run.reqs:
        if r.status == 503 and r.size == 197:
            assert r.ut is None
        if r.target.startswith("/static/"):
            assert r.ut is None
        if r.ut is not None:
            assert r.rt >= r.ut - 0.0015
    statuses = Counter(r.status for r in run.reqs)
    assert statuses[200] > 1000
    assert set(statuses) <= {200, 304, 403, 404, 499, 500, 502, 503, 504}


@pytest.mark.parametrize("kind", sorted(SCENARIOS))
def test_same_seed_same_bytes(runs: dict[str, Run], kind: str, tmp_path: Path) -> None:
    again = simulate(kind, tmp_path, seed=SEED, **SMALL)
    assert (tmp_path / "access.log").read_bytes() == runs[kind].raw
    assert again == runs[kind].truth


@pytest.mark.parametrize("kind", sorted(SCENARIOS))
def test_other_seed_other_bytes(kind: str, tmp_path: Path) -> None:
    logs = []
    for seed in (SEED, SEED + 1, SEED):
        simulate(kind, tmp_path / str(seed), seed=seed, **TINY)
        logs.append((tmp_path / str(seed) / "access.log").read_bytes())
    assert logs[0] == logs[2]
    assert logs[0] != logs[1]


def test_truth_json_is_the_returned_truth(runs: dict[str, Run], tmp_path: Path) -> None:
    truth = simulate("mixed", tmp_path, seed=SEED, **SMALL)
    on_disk = json.loads((tmp_path / "truth.json").read_text(encoding="utf-8"))
    assert on_disk == json.loads(truth.to_json())
    assert on_disk["schema"] == "floodwitness.truth/1"
    assert on_disk["kind"] == "mixed"
    assert on_disk["expected_verdict"] == "mixed"
    assert on_disk["seed"] == SEED
    assert on_disk["log"] == "access.log"
    assert on_disk["lines"] == runs["mixed"].truth.lines
    for key in ("incidents", "attackers", "known_clients", "crawlers", "retry_clients"):
        assert isinstance(on_disk[key], list)
    inc = on_disk["incidents"][0]
    for key in ("start", "end", "peak"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", inc[key])


# --- truth against the log --------------------------------------------------------------------------


def test_scenario_table() -> None:
    assert {k: v.expected_verdict for k, v in SCENARIOS.items()} == {
        "mirai": "ddos", "cachebust": "ddos", "pulse": "ddos", "dos": "dos", "flash_crowd": "flash_crowd",
        "internal_failure": "internal_failure", "mixed": "mixed", "quiet": "no_incident", "outage": "outage",
        "outage_flood": "ddos", "outage_failure": "internal_failure",
        # the network-level kinds (#21; their flows are tested in test_simulate_network.py)
        "syn_flood": "ddos", "ntp_reflection": "ddos", "dns_reflection": "ddos", "carpet_bombing": "ddos",
        "mixed_l3l7": "ddos", "heavy_benign": "no_incident"}
    assert all(k == v.name and v.description for k, v in SCENARIOS.items())


@pytest.mark.parametrize("kind", sorted(SCENARIOS))
def test_attackers_only_inside_incidents_and_known_clients_before(runs: dict[str, Run], kind: str) -> None:
    run = runs[kind]
    truth = run.truth
    attackers = set(truth.attackers)
    in_log = {r.ip for r in run.reqs}
    assert attackers <= in_log
    assert set(truth.known_clients) <= in_log
    assert set(truth.crawlers) <= in_log
    for r in run.reqs:
        if r.ip in attackers:
            assert any(i.start <= r.t <= i.end for i in truth.incidents), (r.ip, r.t)
    seen = first_seen(run)
    assert truth.log_start is not None
    first = min((i.start for i in truth.incidents),
                default=truth.log_start + timedelta(hours=truth.hours / 3))
    assert all(seen[ip] < first for ip in truth.known_clients)
    assert len(truth.known_clients) > 50
    assert not attackers & set(truth.known_clients)
    for inc in truth.incidents:  # a quiet baseline before, in the middle third
        assert inc.start >= truth.log_start + timedelta(hours=truth.hours / 3) - timedelta(seconds=1)
        assert inc.start < inc.end
        assert inc.start <= inc.peak <= inc.end


@pytest.mark.parametrize("kind", ["quiet", "flash_crowd", "internal_failure"])
def test_no_attackers_without_an_attack(runs: dict[str, Run], kind: str) -> None:
    assert runs[kind].truth.attackers == ()
    assert (runs[kind].truth.incidents == ()) == (kind == "quiet")


@pytest.mark.parametrize("kind", ["mirai", "cachebust", "pulse", "dos", "mixed"])
def test_attacks_have_attackers_and_an_incident(runs: dict[str, Run], kind: str) -> None:
    truth = runs[kind].truth
    assert len(truth.incidents) == 1
    assert len(truth.attackers) >= (2 if kind == "dos" else 20)
    attackers = set(truth.attackers)
    phases = {what: (s, e) for what, s, e in truth.incidents[0].phases}
    start, end = phases.get("attack", runs[kind].window())
    inside = [r for r in runs[kind].reqs if start <= r.t <= end]
    share = sum(r.ip in attackers for r in inside) / len(inside)
    assert share > 0.35


def test_crawlers_are_real_crawlers(runs: dict[str, Run]) -> None:
    run = runs["quiet"]
    crawlers = set(run.truth.crawlers)
    assert len(crawlers) >= 10
    google = ipaddress.ip_network("66.249.64.0/19")
    bing = ipaddress.ip_network("157.55.39.0/24")
    for r in run.reqs:
        if r.ip in crawlers:
            assert re.search(r"bot|Googlebot|bingbot", r.ua, re.IGNORECASE), r.ua
            if "Googlebot" in r.ua:
                assert ipaddress.ip_address(r.ip) in google
            if "bingbot" in r.ua:
                assert ipaddress.ip_address(r.ip) in bing
    assert any(r.target == "/robots.txt" for r in run.reqs if r.ip in crawlers)


def test_quiet_baseline_looks_like_a_site(runs: dict[str, Run]) -> None:
    reqs = runs["quiet"].reqs
    targets = Counter(r.target.split("?")[0] for r in reqs)
    assert any(t.startswith("/static/") for t in targets)
    assert any(t.startswith("/img/") for t in targets)
    assert any(t.startswith("/api/v1/") for t in targets)
    assert targets["/feed.xml"] > 0
    probes = {p.split("?")[0] for p, _status in PROBE_PATHS}
    assert sum(n for t, n in targets.items() if t in probes) > 0
    assert any(":" in r.ip for r in reqs)  # some IPv6 visitors
    # Assets follow their page with the page as referer.
    assets = [r for r in reqs if r.target.startswith("/static/js/")]
    assert sum(r.ref.startswith("https://") for r in assets) > 0.9 * len(assets)
    statuses = Counter(r.status for r in reqs)
    assert sum(n for s, n in statuses.items() if s >= 500) < 0.005 * len(reqs)
    # A day, not a flat line: Poisson arrivals vary minute to minute.
    counts = per_minute(reqs, reqs[0].t, 80)
    assert min(counts) > 0
    assert max(counts) > min(counts)


def test_internal_failure_errors_rise_before_volume(runs: dict[str, Run]) -> None:
    run = runs["internal_failure"]
    start, end = run.window()
    before = [r for r in run.reqs if start - timedelta(minutes=20) <= r.t < start]
    inside = [r for r in run.reqs if start <= r.t <= end]
    err_before = sum(r.status >= 500 for r in before) / len(before)
    err_inside = sum(r.status >= 500 for r in inside) / len(inside)
    assert err_before < 0.01
    assert err_inside > 0.25
    assert err_inside > 20 * err_before
    baseline_per_min = len(before) / 20
    early = [r for r in run.reqs if start <= r.t < start + timedelta(minutes=2)]
    assert len(early) / 2 < 1.3 * baseline_per_min
    # The errors come from the application (upstream answered), not from nginx shedding load.
    app_errors = [r for r in inside if r.status in (500, 502, 504)]
    assert app_errors
    assert all(r.ut is not None for r in app_errors)
    # Then the known API clients retry: more requests from known clients than before.
    retry = set(run.truth.retry_clients)
    assert retry
    assert retry <= set(run.truth.known_clients)
    later = [r for r in inside if r.t >= start + timedelta(minutes=8) and r.t < end - timedelta(minutes=5)]
    minutes = (min(end - timedelta(minutes=5), max(r.t for r in later)) - (start + timedelta(minutes=8)))
    assert len(later) / (minutes.total_seconds() / 60) > 1.25 * baseline_per_min
    known = set(run.truth.known_clients)
    assert sum(r.ip in known for r in later) > 0.8 * len(later)


def test_flash_crowd_comes_from_the_audience_networks(runs: dict[str, Run]) -> None:
    run = runs["flash_crowd"]
    truth = run.truth
    start, end = run.window()
    audience = {slash16(ip) for ip in truth.known_clients} - {None}
    seen = first_seen(run)
    newcomers = {r.ip for r in run.reqs if start <= r.t <= end and seen[r.ip] >= start and "." in r.ip}
    assert len(newcomers) > 200
    share = sum(slash16(ip) in audience for ip in newcomers) / len(newcomers)
    assert share > 0.5
    inside = [r for r in run.reqs if start <= r.t <= end]
    before = [r for r in run.reqs if start - timedelta(minutes=20) <= r.t < start]
    assert len(inside) / ((end - start).total_seconds() / 60) > 3 * len(before) / 20
    pages = [r for r in inside
             if r.ip in newcomers and not r.target.startswith(("/static/", "/img/", "/favicon"))]
    landing = [r for r in pages if ".example." not in r.ref]  # not from another page of the site
    news = Counter(r.ref for r in landing).most_common(1)[0]
    assert news[0].startswith("https://")
    assert news[1] > 0.4 * len(landing)
    assets = [r for r in inside if r.ip in newcomers and r.target.startswith("/static/")]
    assert len(assets) > len(pages)  # real browsers load the page's assets
    assert 0 < sum(r.status == 503 for r in inside) < 0.3 * len(inside)
    assert len(newcomers & set(truth.surge_clients)) > 0.7 * len(newcomers)


def test_mirai_bots_come_from_unknown_networks_with_mirai_fingerprints(runs: dict[str, Run]) -> None:
    run = runs["mirai"]
    audience = {slash16(ip) for ip in run.truth.known_clients} - {None}
    attackers = set(run.truth.attackers)
    assert sum(slash16(ip) in audience for ip in attackers) < 0.1 * len(attackers)
    assert len({slash16(ip) for ip in attackers}) > 20
    flood = [r for r in run.reqs if r.ip in attackers]
    assert {r.ua for r in flood} <= set(MIRAI_UAS)
    assert {r.ref for r in flood} == {"-"}
    assert len({(r.method, r.target) for r in flood}) == 1
    per_ip = Counter(r.ip for r in flood)
    assert max(per_ip.values()) < 20 * (sum(per_ip.values()) / len(per_ip))


def test_cachebust_busts_the_cache(runs: dict[str, Run]) -> None:
    run = runs["cachebust"]
    attackers = set(run.truth.attackers)
    flood = [r for r in run.reqs if r.ip in attackers]
    assert len({r.target for r in flood}) > 0.95 * len(flood)
    assert all("?" in r.target for r in flood)
    assert not any(r.target.startswith(("/static/", "/img/")) for r in flood)
    assert len({r.ua for r in flood}) >= 10


def test_pulse_comes_in_bursts(runs: dict[str, Run]) -> None:
    run = runs["pulse"]
    inc = run.truth.incidents[0]
    bursts = [p for p in inc.phases if p[0] == "burst"]
    assert len(bursts) >= 2
    attackers = set(run.truth.attackers)
    for (_w1, _s1, e1), (_w2, s2, _e2) in pairwise(bursts):
        assert (s2 - e1) >= timedelta(minutes=4)
        assert not any(e1 + timedelta(seconds=5) < r.t < s2 for r in run.reqs if r.ip in attackers)


def test_dos_is_a_few_fast_sources(runs: dict[str, Run]) -> None:
    run = runs["dos"]
    start, end = run.window()
    attackers = set(run.truth.attackers)
    assert 2 <= len(attackers) <= 10
    per_ip = Counter(r.ip for r in run.reqs if start <= r.t <= end)
    seconds = (end - start).total_seconds()
    assert all(per_ip[ip] / seconds > 3 for ip in attackers)
    slowest = min(per_ip[ip] for ip in attackers)
    assert all(n * 5 < slowest for ip, n in per_ip.items() if ip not in attackers)


def test_mixed_errors_outlast_the_attack(runs: dict[str, Run]) -> None:
    run = runs["mixed"]
    inc = run.truth.incidents[0]
    phases = {what: (s, e) for what, s, e in inc.phases}
    a_start, a_end = phases["attack"]
    f_start, f_end = phases["failure"]
    assert f_end > a_end or f_start < a_start
    calm = [r for r in run.reqs if f_start <= r.t <= f_end and not a_start <= r.t <= a_end]
    assert calm
    app_errors = [r for r in calm if r.status in (500, 502, 504) and r.ut is not None]
    assert len(app_errors) > 0.2 * len(calm)


def test_unknown_kind_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="slowloris") as err:
        simulate("slowloris", tmp_path)
    assert err.value.hint is not None
    assert all(k in err.value.hint for k in SCENARIOS)
    assert not (tmp_path / "access.log").exists()


@pytest.mark.parametrize(("scale", "hours"), [(0.0, 3.0), (-1.0, 3.0), (1.0, 0.1)])
def test_bad_sizes_are_usage_errors(tmp_path: Path, scale: float, hours: float) -> None:
    with pytest.raises(UsageError):
        simulate("quiet", tmp_path, scale=scale, hours=hours)


@pytest.mark.parametrize("kind", ["outage", "outage_flood", "outage_failure"])
def test_an_outage_leaves_the_log_quiet(runs: dict[str, Run], kind: str) -> None:
    """While the site is down, only the requests in flight as it stopped are logged (fading within a minute or
    two); traffic is back when it comes back."""
    run = runs[kind]
    down, up = next((s, e) for what, s, e in run.truth.incidents[0].phases if what == "outage")
    minute = timedelta(minutes=1)
    start = run.truth.incidents[0].start  # (the usual level: before the flood or the failure, if any)
    before = sum(start - 5 * minute <= r.t < start for r in run.reqs) / 5
    first = sum(down <= r.t < down + minute for r in run.reqs)
    late = sum(down + 5 * minute <= r.t < up - timedelta(seconds=1) for r in run.reqs)  # (the truth rounds up)
    after = sum(up + 10 * minute <= r.t < up + 15 * minute for r in run.reqs) / 5
    assert first < 0.2 * before
    assert late <= 2
    assert after > 0.5 * before
