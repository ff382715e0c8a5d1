"""Honest under thin evidence: a baseline that holds nothing is refused, logs of the attack alone are judged on
what their traffic shows (with lower confidence and the report saying there was no history), and a slice cut
from longer logs is held against the hours before it."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner
from netaddr import IPAddress, IPNetwork, IPSet
from rich.console import Console

from floodwitness.analysis.dataset import open_dataset
from floodwitness.cli import main
from floodwitness.errors import UsageError
from floodwitness.render.html import render_html
from floodwitness.render.markdown import render_markdown
from floodwitness.render.terminal import print_report
from floodwitness.report import AnalyzeOptions
from floodwitness.simulate import Truth, simulate
from tests.helpers import analyse_logs

if TYPE_CHECKING:
    from pathlib import Path


def _t(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _iso(value: datetime) -> str:
    return _t(value).strftime("%Y-%m-%dT%H:%MZ")


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Truth, Path]]:
    """A Mirai flood and the mixed case, simulated small, each kept as a store."""
    out = {}
    for kind, seed in (("mirai", 3), ("mixed", 7)):
        folder = tmp_path_factory.mktemp(kind)
        truth = simulate(kind, folder, seed=seed, hours=1.5, scale=0.5)
        open_dataset([str(folder / "access.log")], keep_store=str(folder / "store")).close()
        out[kind] = (truth, folder)
    return out


def _analyze(store: Path, **options: Any) -> dict[str, Any]:
    return analyse_logs(store, options=AnalyzeOptions(**options))


def _attack_only(truth: Truth, folder: Path, out: Path) -> Path:
    """A log of the attack's minutes alone (what a server that logs only during an incident hands over)."""
    start = _t(truth.incidents[0].start) + timedelta(minutes=1)
    end = _t(truth.incidents[0].end) - timedelta(minutes=1)
    fmt = "%d/%b/%Y:%H:%M:%S %z"
    kept = []
    for line in (folder / "access.log").read_text().splitlines(keepends=True):
        stamp = re.search(r"\[([^\]]+)\]", line)
        assert stamp is not None
        if start <= datetime.strptime(stamp.group(1), fmt) < end:
            kept.append(line)
    out.write_text("".join(kept))
    return out


MIRAI_AGENT = "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/51.0.2704.103 Safari/537.36"


def test_a_long_attack_alone_is_no_baseline(tmp_path: Path) -> None:
    """Logs of a steady attack alone, long enough to make a "baseline" of their own (40 minutes of 400 bots with
    Mirai's user agent, a few people among them, nothing flagged against a level that is the flood itself): that
    traffic is mostly an attack tool's, so it cannot stand for the site's usual one; the verdict rests on what it
    shows, and the people are not blocked."""
    start = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    lines = []
    for second in range(0, 40 * 60, 3):
        when = (start + timedelta(seconds=second)).strftime("%d/%b/%Y:%H:%M:%S +0000")
        for bot in range(second % 400, second % 400 + 20):
            lines.append(f'45.{bot // 200}.{bot % 200}.7 - - [{when}] "GET / HTTP/1.1" 503 0 "-" "{MIRAI_AGENT}"\n')
        person = f"81.2.69.{second % 50}"
        lines.append(f'{person} - - [{when}] "GET /news HTTP/1.1" 200 5120 "https://example.org/" "Mozilla/5.0 '
                     '(X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"\n')
    log = tmp_path / "flood.log"
    log.write_text("".join(lines))
    report = _analyze(log)
    baseline = report["baseline"]
    assert baseline["minutes"] >= 15 and baseline["sufficient"] is False
    assert "match mirai" in baseline["note"]
    assert report["verdict"]["kind"] == "ddos" and report["verdict"]["confidence"] <= 0.75
    cidrs = IPSet(IPNetwork(e["cidr"]) for e in report["mitigation"]["blocklist"])
    assert all(IPAddress(f"45.{bot // 200}.{bot % 200}.7") in cidrs for bot in range(419))
    assert not any(IPAddress(f"81.2.69.{i}") in cidrs for i in range(50))


def test_a_baseline_without_traffic_is_refused(cases: dict[str, tuple[Truth, Path]]) -> None:
    truth, folder = cases["mixed"]
    result = CliRunner().invoke(main, ["analyze", str(folder / "store"), "--baseline",
                                       "2020-01-01T00:00Z..2020-01-02T00:00Z"])
    assert result.exit_code != 0
    first, last = _iso(truth.log_start), _iso(truth.log_end - timedelta(seconds=1))
    assert result.output.startswith(
        "Error: the baseline 2020-01-01T00:00Z..2020-01-02T00:00Z does not hold enough traffic: its minutes hold no "
        f"requests; the logs run from {first} to {last}\n"), result.output
    assert "Traceback" not in result.output


def test_a_baseline_of_a_few_minutes_is_refused(cases: dict[str, tuple[Truth, Path]]) -> None:
    truth, folder = cases["mixed"]
    start = _t(truth.log_start) + timedelta(minutes=5)
    with pytest.raises(UsageError, match=r"its minutes hold requests in only 10 minute\(s\) .* at least 15"):
        _analyze(folder / "store", baseline=(start, start + timedelta(minutes=10)))


def test_logs_of_the_attack_alone_are_judged_on_what_they_show(cases: dict[str, tuple[Truth, Path]],
                                                                 tmp_path: Path) -> None:
    truth, folder = cases["mirai"]
    log = _attack_only(truth, folder, tmp_path / "attack.log")
    report = _analyze(log)
    v = report["verdict"]
    # Mirai's user agents and pages without assets say "attack" by themselves; nothing can be compared
    assert v["kind"] == "ddos", v
    assert v["confidence"] <= 0.75
    assert "no history to compare with" in v["summary"]
    assert "within the baseline" not in v["summary"]
    baseline = report["baseline"]
    assert baseline["source"] == "auto" and baseline["sufficient"] is False
    assert "no usable history" in baseline["note"]
    kinds = {f["kind"] for f in report["findings"]}
    assert "tool_fingerprint" in kinds
    assert not kinds & {"traffic_surge", "new_networks", "known_clients_surge", "familiar_crowd", "audience_shift"}
    incident = report["incidents"][0]
    assert incident["expected_requests"] is None and incident["excess_requests"] is None
    assert report["sources"]["new_vs_known"]["new_clients"] is None
    # the blocklist holds the sources the traffic condemns, not every client of the window
    blocklist = report["mitigation"]["blocklist"]
    assert blocklist and "no history" in report["mitigation"]["note"]
    cidrs = IPSet(IPNetwork(e["cidr"]) for e in blocklist)
    attackers = set(truth.attackers)
    legitimate = {ip for ip in truth.known_clients if ip not in attackers}
    assert sum(IPAddress(ip) in cidrs for ip in attackers) >= 0.9 * len(attackers)
    assert sum(IPAddress(ip) in cidrs for ip in legitimate) <= 0.005 * len(legitimate)


def test_a_report_without_history_renders_without_gaps(cases: dict[str, tuple[Truth, Path]], tmp_path: Path) -> None:
    """The nulls of a report without history read as "no baseline", never as None, nan or 0 known clients."""
    truth, folder = cases["mirai"]
    report = _analyze(_attack_only(truth, folder, tmp_path / "attack.log"))
    buffer = io.StringIO()
    print_report(Console(file=buffer, width=80, color_system=None), report)
    terminal = buffer.getvalue()
    assert "no baseline to compare with" in terminal and "warning: no usable history" in terminal
    assert "no baseline to tell new clients from known ones" in terminal
    assert "known clients got" not in terminal
    markdown = render_markdown(report)
    assert "**Warning:** no usable history" in markdown
    html = render_html(report)
    assert "no baseline to compare with" in html
    for text in (terminal, markdown):
        assert not re.search(r"\b(None|nan|NaN)\b", text)


def test_a_quiet_slice_without_history_is_no_incident_at_low_confidence(cases: dict[str, tuple[Truth, Path]]) -> None:
    truth, folder = cases["mirai"]
    start = _t(truth.log_start) + timedelta(minutes=5)
    report = _analyze(folder / "store", since=start, until=start + timedelta(minutes=10))
    v = report["verdict"]
    assert v["kind"] == "no_incident"
    assert v["confidence"] <= 0.5
    assert "within the baseline" not in v["summary"] and "no history" in v["summary"]
    assert report["baseline"]["sufficient"] is False


@pytest.mark.parametrize("kind", ["mirai", "mixed"])
def test_a_slice_of_longer_logs_is_held_against_the_hours_before(cases: dict[str, tuple[Truth, Path]],
                                                                 kind: str) -> None:
    truth, folder = cases[kind]
    incident = truth.incidents[0]
    since = _t(incident.start) + timedelta(minutes=2)
    report = _analyze(folder / "store", since=since, until=since + timedelta(minutes=12))
    assert report["verdict"]["kind"] == truth.expected_verdict, report["verdict"]
    baseline = report["baseline"]
    assert baseline["source"] == "preceding" and baseline["sufficient"] is True
    assert baseline["minutes"] >= 30
    assert report["incidents"][0]["excess_requests"] > 0


def test_a_given_baseline_outside_the_period_sets_its_level(cases: dict[str, tuple[Truth, Path]]) -> None:
    """`--since/--until` on the attack and `--baseline` on quiet hours before it: the period is held against the
    baseline's typical minute, not against its own median (which is the attack)."""
    truth, folder = cases["mirai"]
    incident = truth.incidents[0]
    since = _t(incident.start) + timedelta(minutes=2)
    report = _analyze(folder / "store", since=since, until=since + timedelta(minutes=8),
                      baseline=(_t(truth.log_start), _t(incident.start) - timedelta(minutes=5)))
    assert report["verdict"]["kind"] == "ddos", report["verdict"]
    assert report["baseline"]["source"] == "given" and report["baseline"]["clients"] > 0
    assert "traffic_surge" in {f["kind"] for f in report["findings"]}


def test_goldeneye_capture_alone_is_a_dos(realdata: Path) -> None:
    """The real GoldenEye capture: 3,788 requests from one address in one minute, nothing before it."""
    report = _analyze(realdata / "tool-captures" / "goldeneye_sample.log")
    v = report["verdict"]
    assert v["kind"] == "dos", v
    assert v["confidence"] <= 0.75
    assert report["baseline"]["sufficient"] is False
    rate = next(f for f in report["findings"] if f["kind"] == "inhuman_rate")
    assert rate["metrics"]["clients"] == 1 and rate["metrics"]["top_peaks"][0] >= 3000


def test_twenty_lines_are_an_anecdote(realdata: Path) -> None:
    """The crafted capture: 20 requests from one address switching user agents. An attack's signature, but
    twenty lines carry no confident verdict."""
    report = _analyze(realdata / "tool-captures" / "crafted_sample.log")
    assert report["verdict"]["kind"] in ("dos", "ddos")
    assert report["verdict"]["confidence"] <= 0.6


def test_a_sampled_real_log_keeps_its_history(realdata: Path) -> None:
    """The real elastic log holds one minute an hour (its xx:05): those minutes, busy against the empty ones
    around them, form no incident and are the history; no incident, at the usual confidence."""
    report = _analyze(realdata / "elastic-apache" / "Common_Data_Formats_apache_logs_apache_logs")
    assert report["baseline"]["sufficient"] is True and report["baseline"]["minutes"] == 84
    assert report["verdict"]["kind"] == "no_incident" and report["verdict"]["confidence"] >= 0.9
