"""Outages: a site that stops answering goes quiet in its access log. The collapse is found to the second, its cause
named by what came before it (an attack, a failure of its own, or nothing the logs record), and told apart from a
quiet night, a gap between log files and a quiet site's ordinary lulls."""

from __future__ import annotations

import io
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from rich.console import Console

from floodwitness.analysis.collapse import Collapse, poisson_log10_lower_tail
from floodwitness.analysis.outage import Networks, Outage, cause_note
from floodwitness.render.html import render_html
from floodwitness.render.markdown import render_markdown
from floodwitness.render.terminal import print_report
from floodwitness.report.contract import OUTAGE_FIELDS
from floodwitness.simulate import simulate
from floodwitness.verdict import KINDS
from tests.conftest import REALDATA
from tests.helpers import analyse_logs

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from floodwitness.report import AnalyzeOptions

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
START = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)


def _analyze(paths: list[Path], options: AnalyzeOptions | None = None) -> dict[str, Any]:
    return analyse_logs(*paths, options=options)


def _t(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _site(path: Path, minutes: range, rate: Callable[[int], float], seed: int = 0) -> None:
    """A small site's log: in minute ``m`` (from START), Poisson(``rate(m)``) page views of two requests each (the
    page and its stylesheet) from people in 40 /16 networks."""
    rng = np.random.default_rng(seed)
    lines = []
    for m in minutes:
        for _ in range(int(rng.poisson(rate(m) / 2))):
            at = START + timedelta(minutes=m, seconds=float(rng.uniform(0, 59)))
            stamp = at.strftime("%d/%b/%Y:%H:%M:%S +0000")
            ip = f"{60 + int(rng.integers(40))}.{int(rng.integers(4))}.{int(rng.integers(8))}.{int(rng.integers(250))}"
            for page in ("/news", "/static/site.css"):
                lines.append((at, f'{ip} - - [{stamp}] "GET {page} HTTP/1.1" 200 900 "https://example.org/" '
                                  f'"{BROWSER}"\n'))
    lines.sort(key=lambda x: x[0])
    path.write_text("".join(text for _, text in lines))


def _outage_of(report: dict[str, Any]) -> dict[str, Any]:
    found = [i["outage"] for i in report["incidents"] if i.get("outage")]
    assert len(found) == 1, [i["kind"] for i in report["incidents"]]
    return found[0]


def test_the_tail_bound_is_a_poisson_lower_tail() -> None:
    # P(X = 0 | mu) = exp(-mu): the bound is exact there; above the mean there is no tail to speak of
    assert poisson_log10_lower_tail(0, 30) == pytest.approx(-30 / math.log(10))
    assert poisson_log10_lower_tail(40, 30) == 0.0
    # an upper bound on the exact tail (P(X <= 2 | 10) = 0.00277)
    assert -2.6 < poisson_log10_lower_tail(2, 10) < math.log10(0.00277) + 1.0


def test_the_cause_note_says_what_the_logs_tell() -> None:
    c = Collapse(10, 30, 0.0, 1000.0, -50.0, 2.0, daily=False)
    alone = Outage(c, datetime(2026, 1, 1, 12), datetime(2026, 1, 1, 12, 20), None, Networks(10, 10),
                   {"what": "nothing"}, None)
    assert "A network-level (L3/L4) flood, an upstream or power failure and a deliberate shutdown" in cause_note(alone)
    assert "Only some" not in cause_note(alone) and "log ends" not in cause_note(alone)
    attack = cause_note(replace(alone, cause="attack", cause_kind="ddos"))
    assert attack.startswith("The collapse followed the attack (verdict ddos)") and "L3/L4" not in attack
    assert "failed from the inside" in cause_note(replace(alone, cause="internal", cause_kind="internal_failure"))
    assert "crowd's load took the site down" in cause_note(replace(alone, cause="crowd", cause_kind="flash_crowd"))
    some = replace(alone, networks=Networks(10, 3))  # 3 of 10 networks dropped: routing, a region, a CDN edge
    assert some.networks.all_at_once is False and "Only some of the audience's networks dropped" in cause_note(some)
    assert Networks(1, 1).all_at_once is None  # one network: nothing to compare
    assert "The log ends during the collapse" in cause_note(replace(alone, ended=None))


@pytest.mark.parametrize(("kind", "verdict", "cause", "before"), [
    ("outage", "outage", "outside", "nothing"),
    ("outage_flood", "ddos", "attack", "surge"),
    ("outage_failure", "internal_failure", "internal", "server_errors"),
])
def test_simulated_outages(tmp_path: Path, kind: str, verdict: str, cause: str, before: str) -> None:
    truth = simulate(kind, tmp_path, seed=3, hours=1.5)
    report = _analyze([tmp_path / "access.log"])
    assert report["verdict"]["kind"] == verdict
    main = report["incidents"][0]
    outage = main["outage"]
    assert tuple(outage) == OUTAGE_FIELDS and "outage" in KINDS
    down = next(p for p in truth.incidents[0].phases if p[0] == "outage")
    assert abs((_t(outage["began"]) - down[1]).total_seconds()) <= 60
    assert abs((_t(outage["ended"]) - down[2]).total_seconds()) <= 120
    assert outage["cause"] == cause and outage["before"]["what"] == before
    assert outage["served"] < 0.05 * outage["expected"] and outage["depth"] > 0.95
    assert outage["networks"]["all_at_once"] is True and outage["networks"]["dropped"] == outage["networks"]["total"]
    assert outage["log_ends"] is False and outage["file_boundaries"] == [] and outage["clock_jump"] is None
    assert "read_parquet" in outage["query"]
    if kind == "outage":  # the only incident: the cause lies outside what the access log records
        assert main["kind"] == "outage" and len(report["incidents"]) == 1
        assert "network-level (L3/L4) flood" in outage["cause_note"]
        assert "Flow records" in render_markdown(report)
        out = io.StringIO()
        print_report(Console(file=out, width=100, color_system=None), report)
        terminal = " ".join(out.getvalue().split())
        assert "Verdict: OUTAGE" in terminal and "network-level (L3/L4) flood" in terminal
        assert f"traffic collapsed from {outage['began']}" in terminal
        page = render_html(report)
        assert "Outage (I1, outage)" in page and "tell them apart" in page
        finding = report["findings"][0]
        assert finding["kind"] == "traffic_collapse" and finding["evidence"][0]["query"] == outage["query"]
        if float(truth.params["retry_share"]) >= 0.1:  # clients coming back at once: the retry surge, no incident
            assert outage["recovery"]["retry_surge"]["peak_share"] > 1.5
    else:  # the attack or the failure is the incident; it ends where the site stopped
        assert _t(main["end"]) <= _t(outage["began"])
        assert abs((_t(main["start"]) - truth.incidents[0].start).total_seconds()) <= 60


def test_a_quiet_night_is_no_outage(tmp_path: Path) -> None:
    """Three days of a site whose traffic falls from 60 requests a minute to 1 every night, gradually: the daily
    shape, not an outage (the first night has no earlier day to compare with: the slope tells)."""
    def rate(m: int) -> float:
        hour = (m / 60) % 24
        return 1.0 + 59.0 * max(0.0, math.sin(math.pi * (hour - 6) / 18))

    log = tmp_path / "access.log"
    _site(log, range(3 * 1440), rate)
    report = _analyze([log])
    assert report["verdict"]["kind"] == "no_incident"
    assert not any(i.get("outage") for i in report["incidents"])


def test_a_nightly_step_is_the_daily_shape_once_earlier_days_show_it(tmp_path: Path) -> None:
    """A site that falls from 40 requests a minute to 2 at 23:00 every night, at once (an office's intranet). The
    first night has no earlier day to compare with and is a step like an outage (said plainly: a limit of one day
    of logs); every later night is held against the same time on the nights before, and is no outage."""
    def rate(m: int) -> float:
        hour = (m / 60) % 24
        return 2.0 if hour >= 23 or hour < 7 else 40.0

    log = tmp_path / "access.log"
    _site(log, range(4 * 1440), rate, seed=7)
    report = _analyze([log])
    began = [_t(i["outage"]["began"]) for i in report["incidents"] if i.get("outage")]
    assert all(b < START + timedelta(days=1) for b in began), began


def test_a_gap_between_two_files_is_named_not_an_outage(tmp_path: Path) -> None:
    first, second = tmp_path / "access.log.1", tmp_path / "access.log"
    _site(first, range(180), lambda _m: 60.0, seed=1)
    _site(second, range(210, 400), lambda _m: 60.0, seed=2)
    report = _analyze([first, second])
    assert report["verdict"]["kind"] == "no_incident"
    gaps = report["log_gaps"]
    assert len(gaps) == 1 and tuple(gaps[0]) == OUTAGE_FIELDS and gaps[0]["cause"] == "log_gap" and gaps[0]["served"] == 0
    edges = {(b["file"].rsplit("/", 1)[-1], b["edge"]) for b in gaps[0]["file_boundaries"]}
    assert edges == {("access.log.1", "ends"), ("access.log", "begins")}
    assert "between two log files" in gaps[0]["cause_note"]
    assert abs((_t(gaps[0]["began"]) - (START + timedelta(minutes=180))).total_seconds()) <= 60


def test_the_same_gap_inside_one_file_is_an_outage_or_a_clock_jump(tmp_path: Path) -> None:
    """Half an hour with no line, in one file, with the usual traffic up to it and from it: an outage, or a clock
    that jumped forward; the report says both, citing the two consecutive lines."""
    log = tmp_path / "access.log"
    _site(log, range(400), lambda m: 0.0 if 180 <= m < 210 else 60.0, seed=3)
    report = _analyze([log])
    assert report["verdict"]["kind"] == "outage"
    outage = _outage_of(report)
    assert abs((_t(outage["began"]) - (START + timedelta(minutes=180))).total_seconds()) <= 60
    assert abs((_t(outage["ended"]) - (START + timedelta(minutes=210))).total_seconds()) <= 60
    assert outage["served"] == 0 and outage["file_boundaries"] == [] and "log_gaps" not in report
    clock = outage["clock_jump"]
    lines = log.read_text().splitlines()
    assert clock["line_after"] == clock["line_before"] + 1 and clock["file"].endswith("access.log")
    assert "[02/Nov/2026:02:59:" in lines[clock["line_before"] - 1] and "[02/Nov/2026:03:30:" in lines[
        clock["line_after"] - 1]
    assert "A clock that jumped forward would look the same" in outage["cause_note"]


def test_a_log_that_ends_as_traffic_collapses(tmp_path: Path) -> None:
    """50 requests a minute for three hours, then 2 a minute for four minutes, then nothing: the site went down as
    the log ended. The same log cut at its usual level is no incident (nothing in it says what came next)."""
    fell = tmp_path / "fell.log"
    _site(fell, range(184), lambda m: 2.0 if m >= 180 else 50.0, seed=4)
    report = _analyze([fell])
    assert report["verdict"]["kind"] == "outage"
    outage = _outage_of(report)
    assert outage["log_ends"] is True and outage["ended"] is None
    assert abs((_t(outage["began"]) - (START + timedelta(minutes=180))).total_seconds()) <= 60
    assert report["verdict"]["confidence"] <= 0.7
    assert "The log ends during the collapse" in outage["cause_note"]
    cut = tmp_path / "cut.log"
    _site(cut, range(180), lambda _m: 50.0, seed=4)
    assert _analyze([cut])["verdict"]["kind"] == "no_incident"


def test_a_quiet_site_cannot_show_a_collapse(tmp_path: Path) -> None:
    """A site at 6 requests a minute (0.1 a second, in page views of two) with a 5-minute lull: 15 page views
    expected, so few that a lull of that length is chance, not a collapse (a 50-a-minute site's would not be)."""
    log = tmp_path / "access.log"
    _site(log, range(600), lambda m: 0.0 if 300 <= m < 305 else 6.0, seed=5)
    report = _analyze([log])
    assert not any(i.get("outage") for i in report["incidents"])


ELASTIC = REALDATA / "elastic-apache" / "Common_Data_Formats_apache_logs_apache_logs"
ALMHUETTE = REALDATA / "almhuette-2019" / "access.log"
HONEYNET = REALDATA / "honeynet-2004"


def _real(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data {path} is absent (it sits beside the repo as ../shared/realdata)")
    return path


def test_real_small_site_has_no_outage() -> None:
    report = _analyze([_real(ELASTIC)])
    assert report["verdict"]["kind"] == "no_incident" and report["incidents"] == []


def test_real_quiet_sites_grow_no_false_outage() -> None:
    """almhuette (a few requests a minute, in bursts) and the honeypot's six months: their lulls, and the weekly
    files' boundaries, are no outage."""
    report = _analyze([_real(ALMHUETTE)])
    assert report["incidents"] and not any(i.get("outage") for i in report["incidents"])
    report = _analyze(sorted(_real(HONEYNET).glob("access_log*")))  # six months in 23 weekly files
    assert report["incidents"] and not any(i.get("outage") for i in report["incidents"])
    assert "log_gaps" not in report
