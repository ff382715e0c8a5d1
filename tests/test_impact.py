"""Impact (#20, item 2): what each incident did to the people the site normally serves, ``none``, ``degraded`` or
``outage``, with the numbers behind it; an attack with no service impact measured is reported as an attempt."""

from __future__ import annotations

import io
import math
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from rich.console import Console

from floodwitness.analysis.audience import baseline_clients
from floodwitness.analysis.composition import compose
from floodwitness.analysis.dataset import open_dataset
from floodwitness.analysis.impact import measure_impact, usual_service
from floodwitness.analysis.tails import (
    binomial_upper_bound,
    binomial_upper_tail,
    poisson_lower_bound,
    poisson_lower_tail,
    shortfall_measurable,
)
from floodwitness.render.markdown import render_markdown
from floodwitness.render.terminal import print_report
from floodwitness.simulate import simulate
from floodwitness.verdict import ATTACK_KINDS
from tests.helpers import analyse_logs

if TYPE_CHECKING:
    from pathlib import Path

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
START = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
#: the burst's first minute, its length, and its rate (requests a minute from one new address)
BURST, BURST_MINUTES, BURST_RATE = 70, 3, 600


def _at(when: datetime) -> str:
    return when.strftime("%d/%b/%Y:%H:%M:%S +0000")


def _site(path: Path, *, overloaded: bool, minutes: int = 120, burst: bool = True, regulars: bool = True) -> None:
    """A small site with request times (combined + request and upstream time): 40 requests a minute from 50
    regular visitors (pages with their assets, 20-80 ms), and a one-source burst of ``BURST_RATE`` a minute for
    ``BURST_MINUTES`` minutes. ``overloaded``: during the burst the server fails most of the regulars' requests
    (503) and answers the rest slowly; else it absorbs the burst (no error, no latency change)."""
    lines = []
    for minute in range(minutes):
        hit = BURST <= minute < BURST + BURST_MINUTES and burst
        for k in range(40 if regulars else 2):
            when = START + timedelta(minutes=minute, seconds=k * 1.5)
            ip = f"81.2.0.{(minute * 7 + k) % 50 + 1}"
            page = "/news" if k % 2 else "/static/site.css"
            status, rt = 200, 0.02 + 0.06 * ((minute * 13 + k * 7) % 10) / 10
            if hit and overloaded:
                status, rt = (503, 3.0) if k % 10 < 8 else (200, 2.5)
            lines.append(f'{ip} - - [{_at(when)}] "GET {page} HTTP/1.1" {status} 900 "https://example.org/" '
                         f'"{BROWSER}" {rt:.3f} {rt - 0.001:.3f}\n')
        if hit:
            for k in range(BURST_RATE):
                when = START + timedelta(minutes=minute, seconds=k * 60 / BURST_RATE)
                status = 503 if overloaded and k % 2 else 200
                lines.append(f'203.0.113.9 - - [{_at(when)}] "POST /search HTTP/1.1" {status} 512 '
                             f'"-" "curl/8.4.0" 0.030 0.029\n')
    path.write_text("".join(sorted(lines, key=lambda line: line.split("[", 1)[1][:20])))


def _analyse(path: Path) -> dict[str, Any]:
    return analyse_logs(path)


def _terminal(report: dict[str, Any]) -> str:
    out = io.StringIO()
    print_report(Console(file=out, width=200, color_system=None), report)
    return out.getvalue()


# -- the tests' statistics


def test_the_poisson_guard_claims_no_shortfall_when_too_few_requests_were_expected() -> None:
    # a 3-minute window of a site at 0.1 req/s expects ~18 requests, its known clients a few: even none served is
    # likely by chance (P = exp(-expected)), so no shortfall can be claimed
    assert not shortfall_measurable(1.0, 0.001)
    assert not shortfall_measurable(6.0, 0.001)   # exp(-6) = 0.0025
    assert shortfall_measurable(7.0, 0.001)       # exp(-7) = 0.0009
    assert poisson_lower_tail(0, 6.0) == pytest.approx(math.exp(-6.0))
    assert poisson_lower_tail(2, 10.0) == pytest.approx(61 * math.exp(-10.0))
    assert poisson_lower_tail(100, 100.0) > 0.5
    assert binomial_upper_tail(3, 3, 0.5) == pytest.approx(0.125)
    assert binomial_upper_tail(0, 10, 0.2) == 1.0
    assert binomial_upper_tail(2, 4, 0.5) == pytest.approx(11 / 16)
    # the minute-by-minute Chernoff bounds never claim more than the exact tails
    k, lam = np.array([0.0, 3.0, 40.0, 90.0]), np.array([6.0, 20.0, 100.0, 100.0])
    exact = [poisson_lower_tail(int(a), float(b)) for a, b in zip(k, lam, strict=True)]
    assert np.all(poisson_lower_bound(k, lam) >= np.array(exact) - 1e-12)
    assert poisson_lower_bound(np.array([0.0]), np.array([6.0]))[0] == pytest.approx(math.exp(-6.0))
    ks, ns = np.array([5.0, 30.0, 80.0]), np.array([10.0, 100.0, 100.0])
    exact_b = [binomial_upper_tail(int(a), int(b), 0.1) for a, b in zip(ks, ns, strict=True)]
    assert np.all(binomial_upper_bound(ks, ns, 0.1) >= np.array(exact_b) - 1e-12)


def test_a_tiny_baseline_measures_no_shortfall(tmp_path: Path) -> None:
    """Two requests a minute from regulars; during the burst they are not served at all: a shortfall of ~6 expected
    requests is not claimed (the impact says why), and nothing else was measured against them."""
    log = tmp_path / "access.log"
    _site(log, overloaded=False, regulars=False)
    text = log.read_text().splitlines(keepends=True)
    burst = (START + timedelta(minutes=BURST), START + timedelta(minutes=BURST + BURST_MINUTES))
    kept = [line for line in text if line.startswith("203.") or not (
        burst[0] <= datetime.strptime(line.split("[", 1)[1][:26], "%d/%b/%Y:%H:%M:%S %z") < burst[1])]
    log.write_text("".join(kept))
    report = _analyse(log)
    impact = report["incidents"][0]["impact"]
    assert impact["known_clients"]["served"] == 0
    assert 0 < impact["known_clients"]["expected"] < 7
    assert impact["known_clients"]["shortfall_p"] is None
    assert impact["level"] == "none"
    assert any(n.startswith("a shortfall: too few requests expected") for n in impact["not_measured"])
    assert "shortfall" not in impact["measured"]


# -- impact on whole analyses


def test_a_burst_the_server_absorbs_is_an_attempt(tmp_path: Path) -> None:
    _site(tmp_path / "access.log", overloaded=False)
    report = _analyse(tmp_path / "access.log")
    v, inc = report["verdict"], report["incidents"][0]
    assert v["kind"] in ATTACK_KINDS
    impact = inc["impact"]
    assert impact["level"] == "none" and v["impact"] == "none" and v["attempt"] is True
    assert set(impact["measured"]) == {"shortfall", "errors", "latency"}
    known = impact["known_clients"]
    assert known["group"] == "known_clients" and known["clients"] >= 40
    assert known["served"] == known["requests"] == 40 * BURST_MINUTES
    assert abs(known["served"] - known["expected"]) < 0.2 * known["expected"]
    assert known["error_share"] == 0.0 and impact["minutes_affected"] == 0
    assert impact["latency"]["p90"] <= 1.5 * impact["latency"]["usual_p90"]
    assert "attempt" in v["summary"] and "no service impact was measured" in v["summary"]
    head = _terminal(report).splitlines()[0]
    assert head.startswith(f"Verdict: {v['kind'].upper()} attempt")
    assert "no service impact measured" in head
    assert f"{inc['id']} {inc['kind']} attempt, impact none" in _terminal(report)
    assert "attempt" in render_markdown(report).split("\n## ", 1)[0]


def test_a_burst_that_overloads_the_server_degrades_it(tmp_path: Path) -> None:
    _site(tmp_path / "access.log", overloaded=True)
    report = _analyse(tmp_path / "access.log")
    v, impact = report["verdict"], report["incidents"][0]["impact"]
    assert v["kind"] in ATTACK_KINDS and v["attempt"] is False
    assert impact["level"] in ("degraded", "outage") and v["impact"] == impact["level"]
    assert impact["known_clients"]["error_share"] == pytest.approx(0.8, abs=0.05)
    assert impact["latency"]["p90"] > 10 * impact["latency"]["usual_p90"]
    assert impact["minutes_affected"] >= BURST_MINUTES - 1
    assert impact["reasons"] and "attempt" not in v["summary"]
    head = _terminal(report).splitlines()[0]
    assert "attempt" not in head and f"service {impact['level']}" in head


@pytest.mark.parametrize("kind", ["mirai", "dos"])
def test_a_simulated_flood_that_overloads_the_server_has_impact(tmp_path: Path, kind: str) -> None:
    truth = simulate(kind, tmp_path, seed=1, hours=1.0, scale=0.1)
    assert truth.incidents
    report = _analyse(tmp_path / "access.log")
    v, impact = report["verdict"], report["incidents"][0]["impact"]
    assert v["kind"] in ATTACK_KINDS
    assert impact["level"] in ("degraded", "outage") and v["attempt"] is False
    assert impact["known_clients"]["error_share"] > 10 * impact["known_clients"]["usual_error_share"]
    assert impact["error_share"] > 0.5 and impact["minutes_affected"] >= 5


def test_without_history_served_against_expected_is_not_measured(tmp_path: Path) -> None:
    """Six minutes of a log, most of it a flood: no history, so nobody is known and nothing expected."""
    log = tmp_path / "access.log"
    _site(log, overloaded=False, minutes=6)
    lines = log.read_text()
    flood = "".join(f'198.51.100.7 - - [{_at(START + timedelta(minutes=1, seconds=k * 0.1))}] "GET / HTTP/1.1" 200 '
                    f'512 "-" "curl/8.4.0" 0.010 0.009\n' for k in range(3000))
    log.write_text(lines + flood)
    report = _analyse(log)
    assert report["baseline"]["sufficient"] is False
    impact = report["incidents"][0]["impact"]
    known = impact["known_clients"]
    assert known["group"] == "clients_not_suspected"
    assert known["expected"] is None and known["shortfall_p"] is None and known["usual_error_share"] is None
    assert known["requests"] >= 200 and known["error_share"] == 0.0
    assert impact["usual_error_share"] is None
    assert impact["latency"]["usual_p90"] is None and impact["latency"]["p90"] is not None
    assert any(n.startswith("requests served against expected: no history") for n in impact["not_measured"])
    assert impact["level"] == "none"


def test_almhuette_brute_force_bursts_denied_no_service(realdata: Path) -> None:
    log = realdata / "almhuette-2019" / "access.log"
    if not log.is_file():
        pytest.skip(f"real data folder {log} is absent")
    report = _analyse(log)
    assert len(report["incidents"]) >= 4
    for inc in report["incidents"]:
        assert inc["impact"]["level"] == "none", inc["impact"]
        assert inc["impact"]["known_clients"]["error_share"] == 0.0
        assert inc["impact"]["latency"] == "not_logged"
    v = report["verdict"]
    assert v["impact"] == "none"
    if v["kind"] in ATTACK_KINDS:  # never an unqualified denial of service
        assert v["attempt"] is True and "attempt" in v["summary"]
    head = _terminal(report).splitlines()[0]
    assert "no service impact measured" in head
    assert "denial-of-service attack" not in v["summary"]


def test_a_window_where_the_known_clients_vanished_is_an_outage(tmp_path: Path) -> None:
    """:func:`measure_impact` on any window (an outage incident's, a scan's): here ten minutes in which the
    regulars' requests stopped (the site unreachable), with only a new client's two requests logged."""
    log = tmp_path / "access.log"
    _site(log, overloaded=False, burst=False)
    gone = (START + timedelta(minutes=70), START + timedelta(minutes=80))
    kept = [line for line in log.read_text().splitlines(keepends=True)
            if not gone[0] <= datetime.strptime(line.split("[", 1)[1][:26], "%d/%b/%Y:%H:%M:%S %z") < gone[1]]
    kept += [f'198.51.100.20 - - [{_at(gone[0] + timedelta(minutes=k))}] "GET / HTTP/1.1" 200 512 "-" "{BROWSER}" '
             "0.030 0.029\n" for k in (2, 6)]
    log.write_text("".join(sorted(kept, key=lambda line: line.split("[", 1)[1][:20])))
    data = open_dataset([str(log)])
    try:
        times = (gone[0].replace(tzinfo=None), gone[1].replace(tzinfo=None))
        baseline = [(START.replace(tzinfo=None), times[0] - timedelta(minutes=5)),
                    (times[1] + timedelta(minutes=5), (START + timedelta(minutes=120)).replace(tzinfo=None))]
        comp = compose(data, times, baseline, 400.0, baseline_clients(data, baseline))
        impact = measure_impact(data, times, comp, expected_per_minute=np.full(10, 40.0),
                                usual=usual_service(data, baseline), baseline=baseline)
    finally:
        data.close()
    assert impact.level == "outage"
    assert impact.people.requests == 0 and impact.people.expected is not None and impact.people.expected > 300
    assert impact.people.shortfall_p is not None and impact.people.shortfall_p < 1e-100
    assert impact.minutes_affected == 10 and impact.to_dict()["level"] == "outage"
    assert "were served 0 requests against" in impact.summary
