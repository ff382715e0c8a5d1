"""Long spans: half a year of logs in one run, and logs of periods weeks apart, each against its own baseline.

The long log is written directly (numpy draws, one line per request): a small site's steady traffic with a daily
shape, about one request a minute, and floods of new sources of different sizes at various places in the half
year, the heaviest neither first nor last.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from rich.console import Console

from floodwitness.render.html import render_html
from floodwitness.render.markdown import render_markdown
from floodwitness.render.terminal import print_report
from floodwitness.report import AnalyzeOptions
from floodwitness.report.series import FINE_LIMIT, MARGIN, MAX_COARSE_POINTS
from tests.helpers import analyse_logs

from .test_report_html import _wait, browser  # noqa: F401 - the headless Chromium fixture (skips when absent)

if TYPE_CHECKING:
    from pathlib import Path

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
START = datetime(2025, 1, 1, tzinfo=UTC)
#: (day, minute of the day, requests per minute for five minutes, sources): the heaviest is the fourth
FLOODS = ((9, 600, 400, 40), (31, 100, 900, 60), (58, 1300, 600, 25), (83, 800, 3000, 150),
          (117, 200, 1500, 80), (140, 1000, 700, 30), (163, 500, 500, 50), (178, 900, 1200, 90))
FLOOD_MINUTES = 5


def write_long_log(path: Path, days: int, floods: tuple[tuple[int, int, int, int], ...] = FLOODS,
                   seed: int = 7, gaps: tuple[tuple[int, int], ...] = (), level: float = 1.0) -> list[datetime]:
    """``days`` of a small site's traffic (requests drawn per minute, more by day than by night, from 400 known
    addresses; ``level`` times about one a minute) and the ``floods`` (five minutes each from new addresses),
    none in the ``gaps`` (first day included, last excluded: the logs hold no request there). Returns each
    flood's first minute."""
    rng = np.random.default_rng(seed)
    minutes = np.arange(days * 1440)
    hour = (minutes % 1440) / 60
    rate = 0.35 + 0.9 * np.exp(-((hour - 14) / 4.5) ** 2)  # a daily shape: ~0.35/min at night, ~1.25 at 14:00
    counts = rng.poisson(rate * level)
    for first, last in gaps:
        counts[first * 1440:last * 1440] = 0
    at = np.repeat(minutes * 60, counts) + rng.integers(0, 60, counts.sum())
    who = [f"81.{2 + k // 200}.{k % 200}.{7 + k % 13}" for k in rng.integers(0, 400, len(at))]
    pages = np.array(["/", "/news", "/static/site.css", "/about", "/img/logo.png"])[rng.integers(0, 5, len(at))]
    lines = [(int(t), f'{ip} - - [{{}}] "GET {page} HTTP/1.1" 200 900 "https://example.org/" "{BROWSER}"')
             for t, ip, page in zip(at.tolist(), who, pages.tolist(), strict=True)]
    starts = []
    for day, minute, per_minute, sources in floods:
        first = (day * 1440 + minute) * 60
        starts.append(START + timedelta(seconds=first))
        n = per_minute * FLOOD_MINUTES
        at_flood = first + np.sort(rng.integers(0, FLOOD_MINUTES * 60, n))
        lines += [(int(t), f'{100 + day}.{k % sources}.{day % 50}.9 - - [{{}}] "GET /?q={k} HTTP/1.1" 200 512 "-" '
                           '"curl/8"') for k, t in enumerate(at_flood.tolist())]
    lines.sort(key=lambda x: x[0])
    base = START.replace(tzinfo=None)
    stamps: dict[int, str] = {}

    def stamp(seconds: int) -> str:
        minute = seconds // 60
        if minute not in stamps:
            stamps[minute] = (base + timedelta(minutes=minute)).strftime("%d/%b/%Y:%H:%M:")
        return f"{stamps[minute]}{seconds % 60:02d} +0000"
    path.write_text("".join(text.format(stamp(t)) + "\n" for t, text in lines))
    return starts


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def half_year(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], list[datetime]]:
    path = tmp_path_factory.mktemp("long") / "access.log"
    starts = write_long_log(path, 183)
    return analyse_logs(path, options=AnalyzeOptions(max_incidents=5)), starts


def _nearest(starts: list[datetime], at: datetime) -> int:
    return min(range(len(starts)), key=lambda i: abs((starts[i] - at).total_seconds()))


def test_half_a_year_the_heaviest_flood_is_the_main_incident(half_year: tuple[dict[str, Any], list[datetime]]
                                                              ) -> None:
    report, starts = half_year
    incidents, left = report["incidents"], report.get("incidents_left_out", [])
    # every flood is found, either analysed in depth or listed, and nothing else is
    found = sorted(_nearest(starts, _when(i["start"])) for i in incidents + left)
    assert found == list(range(len(FLOODS)))
    for i in incidents + left:
        assert abs((_when(i["start"]) - starts[_nearest(starts, _when(i["start"]))]).total_seconds()) <= 90
    assert len(incidents) == 5 and len(left) == 3
    # the main incident (first listed, the verdict's) is the heaviest flood, the fourth of eight
    heaviest = max(range(len(FLOODS)), key=lambda i: FLOODS[i][2])
    assert 0 < heaviest < len(FLOODS) - 1
    assert _nearest(starts, _when(incidents[0]["start"])) == heaviest
    assert report["verdict"]["kind"] == incidents[0]["kind"] == "ddos"
    assert report["mitigation"]["incident"]["id"] == incidents[0]["id"]
    # the lighter floods are the ones left out
    sizes = sorted(FLOODS[_nearest(starts, _when(w["start"]))][2] for w in left)
    assert sizes == sorted(f[2] for f in FLOODS)[:3]


def test_half_a_year_timeline_is_small_and_per_minute_around_incidents(
        half_year: tuple[dict[str, Any], list[datetime]]) -> None:
    report, _ = half_year
    tl = report["timeline"]
    points = len(tl["requests"])
    assert sum(s["points"] for s in tl["segments"]) == points
    assert all(len(tl[k]) == points for k in ("clients", "status_5xx", "baseline_requests", "new_clients"))
    assert points < MAX_COARSE_POINTS + 8 * (2 * MARGIN + 60)  # 263,520 minutes: a few thousand points
    assert tl["resolution"]["coarse_seconds"] > 60 and len(json.dumps(tl)) < 200_000
    # no request is lost by the coarsening
    assert sum(tl["requests"]) == sum(i["lines_parsed"] for i in report["inputs"])
    # around each analysed incident, from MARGIN minutes before to MARGIN after, every point is one minute
    fine: list[tuple[datetime, datetime]] = []
    for s in tl["segments"]:
        if s["step_seconds"] == 60:
            begin = _when(s["start"])
            fine.append((begin, begin + timedelta(minutes=s["points"])))
    for inc in report["incidents"]:
        lo, hi = _when(inc["start"]) - timedelta(minutes=MARGIN), _when(inc["end"]) + timedelta(minutes=MARGIN - 1)
        assert any(a <= lo and hi <= b for a, b in fine), inc["id"]
    # the segments follow each other in time without overlap
    ends = [_when(s["start"]) + timedelta(seconds=s["step_seconds"] * s["points"]) for s in tl["segments"]]
    assert all(ends[i] <= _when(tl["segments"][i + 1]["start"]) for i in range(len(ends) - 1))


@pytest.fixture(scope="module")
def two_periods(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], list[datetime]]:
    """Two periods of a site 40 days apart, the second eight times as busy, each with a flood."""
    folder = tmp_path_factory.mktemp("periods")
    quiet, busy = folder / "access.log.1", folder / "access.log"
    starts = write_long_log(quiet, 60, ((6, 700, 300, 30),), gaps=((12, 60),))
    starts += write_long_log(busy, 60, ((55, 700, 2000, 80),), seed=8, gaps=((0, 52),), level=8.0)
    return analyse_logs(quiet, busy), starts


def test_periods_weeks_apart_each_against_its_own_baseline(two_periods: tuple[dict[str, Any], list[datetime]]
                                                           ) -> None:
    """Each period is held against its own history, both floods are found, the heavier one is the main incident,
    and the 40 days between them are stored as no point at all (not as 57,600 minutes of zeros)."""
    report, starts = two_periods
    periods, histories = report["timeline"]["periods"], report["baseline"]["periods"]
    assert len(periods) == 2 and len(histories) == 2 and len(report["time_span"]["periods"]) == 2
    assert all(p["sufficient"] and p["windows"] == 1 for p in histories)
    # each period's own history: the busy one's minutes hold several times the quiet one's requests
    rates = [p["requests"] / p["minutes"] for p in histories]
    assert rates[1] > 3 * rates[0]
    assert sorted(_nearest(starts, _when(i["start"])) for i in report["incidents"]) == [0, 1]
    assert _nearest(starts, _when(report["incidents"][0]["start"])) == 1
    assert report["baseline"]["requests"] == histories[1]["requests"]  # the main incident's period's history
    gap = (_when(periods[0]["end"]), _when(periods[1]["start"]))
    assert (gap[1] - gap[0]).days >= 39
    assert not any(gap[0] <= _when(s["start"]) < gap[1] for s in report["timeline"]["segments"])
    assert len(report["timeline"]["requests"]) < 20 * 24 * 2 + 2 * (2 * MARGIN + 10)


def test_periods_weeks_apart_rendered(two_periods: tuple[dict[str, Any], list[datetime]], tmp_path: Path) -> None:
    """The terminal names the periods and the gap between them, the Markdown and HTML say each period had its own
    baseline."""
    report, _ = two_periods
    console = Console(record=True, width=80, file=io.StringIO())
    print_report(console, report)
    text = " ".join(console.export_text().split())  # the lines as wrapped at 80 columns, joined
    assert "2 periods, the gaps between them (40 days) hold no request and are not drawn" in text
    assert "2025-01-01 to 2025-01-12; 2025-02-22 to 2025-03-02" in text and " ┆" in text
    assert "The logs hold 2 periods more than a week apart, each analysed against its own baseline" in \
        render_markdown(report)
    html = tmp_path / "report.html"
    html.write_text(render_html(report), encoding="utf-8")
    assert "per minute within 60 minutes of each incident" in html.read_text(encoding="utf-8")


def test_periods_weeks_apart_charts_in_chromium(two_periods: tuple[dict[str, Any], list[datetime]], tmp_path: Path,
                                                request: pytest.FixtureRequest) -> None:
    """The HTML charts draw the coarse timeline (points placed by their segments) over both periods."""
    chromium = request.getfixturevalue("browser")  # headless Chromium (test_report_html's fixture: skips if absent)
    report, _ = two_periods
    html = tmp_path / "report.html"
    html.write_text(render_html(report), encoding="utf-8")
    chromium.get(html.as_uri())
    assert _wait(chromium, "return document.body.getAttribute('data-charts')") == "ok"
    # the first panel's x axis spans the two periods: its labels run from January into March
    labels = chromium.execute_script(
        "return Array.from(document.querySelectorAll('#chart-timeline svg text')).map(t => t.textContent).join()")
    assert "Jan" in labels and "Mar" in labels


def test_a_period_too_thin_for_a_baseline_is_judged_by_its_own_traffic(tmp_path: Path) -> None:
    """A month after 20 days of ordinary traffic, the logs hold only three minutes of one address at 2,000 requests
    a minute: that period has no history of its own (its every minute is the flood), so it is judged as a log
    without history is (an inhuman rate), and says so; the ordinary period keeps its own."""
    ordinary, flood = tmp_path / "access.log.1", tmp_path / "access.log"
    write_long_log(ordinary, 20, ())
    when = START.replace(tzinfo=None) + timedelta(days=50, hours=12)
    flood.write_text("".join(
        f'203.0.113.9 - - [{(when + timedelta(seconds=k * 180 / 6000)).strftime("%d/%b/%Y:%H:%M:%S")} +0000] '
        f'"GET /search?q={k} HTTP/1.1" 200 512 "-" "python-requests/2.31"\n' for k in range(6000)))
    report = analyse_logs(ordinary, flood)
    histories = report["baseline"]["periods"]
    assert [p["sufficient"] for p in histories] == [True, False]
    assert "no usable history" in histories[1]["note"]
    main = report["incidents"][0]
    assert main["start"].startswith("2025-02-20T12:") and main["history"] is False and main["clients"] == 1
    assert report["verdict"]["kind"] == "dos" and report["baseline"]["sufficient"] is False
    assert "no usable history of its own" in render_markdown(report)


def test_honeynet_whole_folder_in_one_run(realdata: Path) -> None:
    """Six months of a honeypot, three periods weeks apart: one run; the PROPFIND flood of 1 May 2004 (6,152
    requests from 82.82.97.119 in five minutes) is the main incident, a few-source flood from that address."""
    folder = realdata / "honeynet-2004"
    report = analyse_logs(folder)
    span = report["time_span"]
    assert len(span["periods"]) == 3 and all(p["analysed"] for p in span["periods"])
    assert span["requests_outside"] == 0 and len(report["baseline"]["periods"]) == 3
    main = report["incidents"][0]
    assert main["start"].startswith("2004-05-01T19:2") and main["kind"] == "dos"
    assert report["verdict"]["kind"] == "dos" and main["clients"] == 1
    assert [s["client_ip"] for s in report["sources"]["top_suspects"][:1]] == ["82.82.97.119"]
    assert main["requests"] >= 6000
    # incidents in the periods that have them: the Nikto scan of 22 Apr is in the first period too
    days = {i["start"][:10] for i in report["incidents"] + report.get("incidents_left_out", [])}
    assert {"2004-04-22", "2004-05-01"} <= days
    # and in every period: the third one's is the one-minute burst of 9 Oct 23:39 -0400 (546 "GET /", one address)
    for period in report["baseline"]["periods"]:
        assert period["sufficient"] and period["windows"] >= 1, period
    burst = [i for i in report["incidents"] if i["start"].startswith("2004-10-10T03:39")]
    assert len(burst) == 1 and burst[0]["clients"] == 1 and burst[0]["requests"] >= 546
    assert len(report["timeline"]["requests"]) < MAX_COARSE_POINTS + 10 * FINE_LIMIT // 10
