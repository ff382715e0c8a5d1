"""A handful of visitors browsing like people on a quiet site is not an attack, and a crowd is many people.

Real case: almhuette-2019 (a small Joomla site, 0.1 requests a second). At 2019-04-03 09:59 UTC two new visitors read
pages with their images, stylesheets and referers: 165 requests in two minutes, 27x the baseline, from networks the
site never saw. Volume, new networks and two sources had made it a 92% DoS. In honeynet-2004 a one-address burst had
been called a flash crowd because its /16 was seen before and 0% assets equalled the audience's 0%.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from rich.console import Console

from floodwitness.render.terminal import print_report
from floodwitness.verdict import ATTACK_KINDS
from tests.helpers import analyse_logs

if TYPE_CHECKING:
    from pathlib import Path

BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
START = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)
ASSETS = ("/css/site.css", "/js/menu.js", "/img/logo.png", "/img/photo1.jpg", "/img/photo2.jpg")
#: the visitors' first minute and how many minutes they browse
VISIT, VISIT_MINUTES = 150, 3


def _at(when: datetime) -> str:
    return when.strftime("%d/%b/%Y:%H:%M:%S +0000")


def _line(ip: str, when: datetime, path: str, status: int = 200, referer: str = "https://example.org/") -> str:
    return f'{ip} - - [{_at(when)}] "GET {path} HTTP/1.1" {status} 2000 "{referer}" "{BROWSER}"\n'


def _page(ip: str, when: datetime, page: str, status: int = 200) -> list[str]:
    """A page and its five assets, fetched within two seconds, as a browser does."""
    lines = [_line(ip, when, page, status, "https://www.google.com/")]
    lines += [_line(ip, when + timedelta(seconds=0.3 * (k + 1)), a, status, f"https://example.org{page}")
              for k, a in enumerate(ASSETS)]
    return lines


def _site(path: Path, *, visitors: int = 2, pages_a_minute: int = 8, broken: bool = False) -> None:
    """A quiet site: a page with its assets every two minutes from a varied audience (3 requests a minute) over
    five hours; at minute ``VISIT`` for ``VISIT_MINUTES`` minutes, ``visitors`` new addresses read
    ``pages_a_minute`` pages a minute each with their assets. ``broken``: meanwhile the site fails its regular
    visitors (503)."""
    lines: list[str] = []
    for minute in range(0, 300, 2):
        hit = VISIT <= minute < VISIT + VISIT_MINUTES + 1
        ip = f"81.2.{minute % 7}.{minute % 20 + 1}"  # twenty regular visitors, known to the baseline
        lines += _page(ip, START + timedelta(minutes=minute, seconds=5), f"/page{minute % 9}",
                       503 if broken and hit else 200)
    for v in range(visitors):
        ip = f"193.42.{104 + v}.{39 + v}"
        for minute in range(VISIT, VISIT + VISIT_MINUTES):
            for p in range(pages_a_minute):
                when = START + timedelta(minutes=minute, seconds=p * 60 / pages_a_minute + v)
                lines += _page(ip, when, f"/page{(p + v) % 9}")
    path.write_text("".join(sorted(lines, key=lambda line: line.split("[", 1)[1][:20])))


def _analyse(path: Path) -> dict[str, Any]:
    return analyse_logs(path)


def _kinds(report: dict[str, Any], incident: str) -> set[str]:
    return {f["kind"] for f in report["findings"] if f["id"].startswith(f"{incident}-")}


def test_two_visitors_browsing_on_a_quiet_site_are_no_incident(tmp_path: Path) -> None:
    _site(tmp_path / "access.log")
    report = _analyse(tmp_path / "access.log")
    assert report["incidents"], "the visit must stand out from the baseline for the test to bite"
    inc = report["incidents"][0]
    assert inc["kind"] == "no_incident" and "people_browsing" in _kinds(report, inc["id"])
    assert inc["impact"]["level"] == "none"
    v = report["verdict"]
    assert v["kind"] == "no_incident" and "browsing like people" in v["summary"]
    assert not report["mitigation"]["blocklist"]
    quiet = next(h for h in v["hypotheses"] if h["kind"] == "no_incident")
    assert any("[I1-browsing]" in text for text in quiet["for"])
    out = io.StringIO()
    print_report(Console(file=out, width=120, color_system=None), report)
    assert "I1 no_incident (ordinary traffic), impact none" in out.getvalue()


def test_the_same_visit_while_the_site_failed_others_is_not_dismissed(tmp_path: Path) -> None:
    _site(tmp_path / "access.log", broken=True)
    report = _analyse(tmp_path / "access.log")
    inc = report["incidents"][0]
    assert inc["impact"]["level"] != "none"
    assert inc["kind"] != "no_incident" and report["verdict"]["kind"] != "no_incident"


def test_a_visitor_at_a_rate_no_person_reaches_is_not_browsing(tmp_path: Path) -> None:
    # 60 pages a minute with their assets: 360 requests a minute, over the 300 no person browsing reaches
    _site(tmp_path / "access.log", visitors=1, pages_a_minute=60)
    report = _analyse(tmp_path / "access.log")
    inc = report["incidents"][0]
    assert "people_browsing" not in _kinds(report, inc["id"])
    assert inc["kind"] in ATTACK_KINDS


def test_almhuette_two_visitors_are_no_incident_and_the_brute_force_stays_main(realdata: Path) -> None:
    report = _analyse(realdata / "almhuette-2019" / "access.log")
    visit = next(i for i in report["incidents"] if i["start"].startswith("2019-04-03T09:59"))
    assert visit["kind"] == "no_incident" and "people_browsing" in _kinds(report, visit["id"])
    assert report["verdict"]["kind"] == "abuse"
    assert report["incidents"][-1]["id"] == visit["id"]  # ordinary windows come after every incident
    blocked = " ".join(str(e) for e in report["mitigation"]["blocklist"])
    assert "80.122.15.190" not in blocked and "90.152.133.36" not in blocked


def test_honeynet_one_address_is_never_a_flash_crowd(realdata: Path) -> None:
    report = analyse_logs(realdata / "honeynet-2004")
    crowds = [i for i in report["incidents"] if i["kind"] == "flash_crowd"]
    assert all(i["clients"] > 10 for i in crowds), [(i["id"], i["clients"]) for i in crowds]
    assert not any("familiar_crowd" in _kinds(report, i["id"]) and i["clients"] <= 10 for i in report["incidents"])
