"""No incident left out: in a long log with more incident windows than are analysed in depth, the heaviest are
analysed wherever they fall in time, and the report names the others."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from floodwitness.analysis.dataset import open_dataset
from floodwitness.report import AnalyzeOptions, analyze

if TYPE_CHECKING:
    from pathlib import Path

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def _log(path: Path) -> list[tuple[datetime, int]]:
    """Six hours of a small site (people loading pages with their assets) and seven floods of new clients, each
    three minutes long and 40 minutes apart, the heaviest last; returns each flood's start and its requests per
    minute."""
    start = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    lines, floods = [], []
    for minute in range(360):
        when = start + timedelta(minutes=minute)
        for k in range(40):
            at = (when + timedelta(seconds=k)).strftime("%d/%b/%Y:%H:%M:%S +0000")
            page = "/news" if k % 2 else "/static/site.css"
            lines.append(f'81.2.{k % 8}.{minute % 60} - - [{at}] "GET {page} HTTP/1.1" 200 900 '
                         f'"https://example.org/" "{BROWSER}"\n')
    for n in range(7):
        first, rate = 40 + 40 * n, 300 * (n + 1)
        floods.append((start + timedelta(minutes=first), rate))
        for minute in range(first, first + 3):
            for k in range(rate):
                at = (start + timedelta(minutes=minute, seconds=k * 60 // rate)).strftime("%d/%b/%Y:%H:%M:%S +0000")
                lines.append(f'{100 + n}.{k % 200}.{k // 200}.9 - - [{at}] "GET / HTTP/1.1" 200 512 "-" "curl/8"\n')
    path.write_text("".join(lines))
    return floods


def test_the_heaviest_incidents_are_analysed_wherever_they_fall(tmp_path: Path) -> None:
    floods = _log(tmp_path / "access.log")
    data = open_dataset([str(tmp_path / "access.log")])
    try:
        report = analyze(data, AnalyzeOptions(max_incidents=5))
    finally:
        data.close()
    analysed = [datetime.fromisoformat(i["start"].replace("Z", "+00:00")) for i in report["incidents"]]
    left = [datetime.fromisoformat(i["start"].replace("Z", "+00:00")) for i in report["incidents_left_out"]]
    assert len(analysed) == 5 and len(left) == 2
    near = [min(floods, key=lambda f, t=t: abs((f[0] - t).total_seconds())) for t in analysed + left]
    assert all(abs((f[0] - t).total_seconds()) <= 90 for f, t in zip(near, analysed + left, strict=True))
    # the main incident is the heaviest flood, the last one; the two lightest, the first two, are left out
    assert near[0] == floods[-1]
    assert sorted(near[5:]) == floods[:2]
    assert sorted(near[:5]) == floods[2:]
    assert all(w["weight"] < 300 * 3 * 3 for w in report["incidents_left_out"])
