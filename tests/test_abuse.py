"""Hostile traffic that is not a flood (#20, item 3): the behaviour rules (data/behaviours.json), the sources they
classify on CrowdSec hub's cases, the `abuse` verdict and `incidents[].behaviour` on real and generated logs, and
that a scan's own errors never make an internal failure."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from floodwitness.analysis.dataset import open_dataset
from floodwitness.detectors import FINDING_KINDS, Finding
from floodwitness.detectors.abuse_rules import BUNDLED, bundled_behaviours, parse_behaviours
from floodwitness.detectors.abuse_scan import classify_sources
from floodwitness.errors import UsageError
from floodwitness.report.contract import INCIDENT_BEHAVIOUR
from floodwitness.report.results import AnalyzeOptions
from floodwitness.simulate import simulate
from floodwitness.verdict import judge_incident
from floodwitness.verdict.behaviour import denied_service
from tests.helpers import analyse_logs

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
#: CrowdSec hub case -> the behaviour its expected sources show (the other sources of a case must show none)
CASES = {
    "nginx-bad-user-agent": "scan", "nginx-http-sensitive-files": "scan", "apache2-http-sensitive-files": "scan",
    "litespeed-http-sensitive-files": "scan", "nginx-http-path-traversal": "scan", "apache-http-probing": "scan",
    "http-admin-interface-probing": "scan", "http-wordpress-scan": "scan", "nginx-http-sqli-probing": "scan",
    "nginx-http-xss-probing": "scan", "traefik_base-http-scenario": "scan", "caddy-basic-auth-bf": "brute_force",
}
#: floods: CrowdSec's http-dos cases, whose sources are flooders, not scanners or brute-forcers
FLOODS = ("http-dos-random-uri", "http-dos-bypass-cache", "http-dos-switching-ua")


@pytest.fixture(scope="module")
def realdata_module() -> Path:
    if not REALDATA.is_dir():
        pytest.skip(f"real data folder {REALDATA} is absent (it sits beside the repo as ../shared/realdata)")
    return REALDATA


def test_the_rules_load_and_each_cites_its_public_source() -> None:
    rules = bundled_behaviours()
    assert [b.name for b in rules.behaviours] == ["scan", "brute_force", "scrape"]
    for b in rules.behaviours:
        kind = FINDING_KINDS[b.finding]
        assert kind.behaviour == b.name and kind.weights["abuse"] > 0 and kind.weights["internal_failure"] < 0
        assert any(not s.supporting for s in rules.of(b.name))
    assert FINDING_KINDS["scan_behaviour"].technique == "T1595" and FINDING_KINDS["brute_force"].technique == "T1110"
    for s in rules.signatures:
        assert re.search(r"CrowdSec hub scenario|Sigma|OWASP", s.source), s.name


def test_a_bad_rule_file_is_refused_naming_the_file_and_the_signature() -> None:
    text = (Path(__file__).resolve().parents[1] / "src" / BUNDLED).read_text(encoding="utf-8")
    data = json.loads(text)
    del data["signatures"][0]["source"]
    with pytest.raises(UsageError, match=r"^behaviour rules mine\.json: signature 'scanner_user_agent': a source "
                                         r"\(the public rule set its facts come from\) is required\n"):
        parse_behaviours(json.dumps(data), "mine.json")
    data = json.loads(text)
    data["signatures"][0]["path_regex"] = "(unclosed"
    with pytest.raises(UsageError, match=r"path_regex is not a regular expression"):
        parse_behaviours(json.dumps(data), "mine.json")


def _classified(log: Path) -> tuple[int, dict[str, str | None]]:
    data = open_dataset([str(log)])
    try:
        table = classify_sources(data, None).table
        rejected = sum(i.lines_rejected for i in data.manifest.inputs)
    finally:
        data.close()
    return rejected, dict(zip(table.column("client_ip").to_pylist(), table.column("behaviour").to_pylist(),
                              strict=True))


@pytest.mark.parametrize("case", sorted(CASES))
def test_crowdsec_case_sources_show_the_behaviour(realdata_module: Path, case: str) -> None:
    """Each case's expected sources show its behaviour; no other source of the file shows any."""
    folder = realdata_module / "crowdsec-hub" / "cases" / case
    [log] = sorted(folder.glob("*.log"))
    expected = set(re.findall(r'Sources\["([^"]+)"\]', (folder / "scenario.assert").read_text()))
    _, behaviours = _classified(log)
    assert expected and expected <= set(behaviours)
    assert {ip: b for ip, b in behaviours.items() if b} == dict.fromkeys(expected, CASES[case])


@pytest.mark.parametrize("case", FLOODS)
def test_crowdsec_flood_cases_show_no_abuse(realdata_module: Path, case: str) -> None:
    [log] = sorted((realdata_module / "crowdsec-hub" / "cases" / case).glob("*.log"))
    _, behaviours = _classified(log)
    assert behaviours and not any(behaviours.values())


def _report(paths: list[Path], **options: Any) -> dict[str, Any]:
    return analyse_logs(*paths, options=AnalyzeOptions(**options))


def test_almhuette_brute_force_bursts_are_abuse_not_a_denial_of_service(realdata_module: Path) -> None:
    report = _report([realdata_module / "almhuette-2019" / "access.log"])
    bursts = {i["start"][:16]: i for i in report["incidents"] if i["behaviour"]["kind"] == "brute_force"}
    # the four bursts SOURCE.txt counts (22:04, 23:36, 06:37 and 13:54 local time, +0200)
    assert sorted(bursts) == ["2019-04-02T20:04", "2019-04-02T21:36", "2019-04-03T04:37", "2019-04-03T11:54"]
    for inc in bursts.values():
        assert inc["kind"] == "abuse" and inc["behaviour"]["sources"] == 1
    first = bursts["2019-04-02T20:04"]["behaviour"]
    assert first["requests"] == 1186  # 178.32.224.117's requests to /administrator/index.php (SOURCE.txt)
    assert report["verdict"]["kind"] == "abuse"
    assert report["verdict"]["summary"].startswith(
        "The logs show hostile traffic that denied no service: a brute force against a login by 1 outside source")
    finding = next(f for f in report["findings"] if f["id"] == first["findings"][0])
    assert finding["metrics"]["top_sources"] == ["178.32.224.117"] and finding["metrics"]["status_5xx"] == 0
    assert finding["evidence"][0]["file"].endswith("access.log") and "/administrator/index.php" in \
        finding["evidence"][0]["sample"]
    assert [e["cidr"] for e in report["mitigation"]["blocklist"]] == ["178.32.224.117/32"]


def test_honeynet_nikto_scan_is_abuse_and_the_propfind_flood_stays_dos(realdata_module: Path) -> None:
    report = _report([realdata_module / "honeynet-2004"], since=datetime(2004, 4, 21), until=datetime(2004, 6, 2))
    by_start = {i["start"][:13]: i for i in report["incidents"]}
    nikto, propfind = by_start["2004-04-22T15"], by_start["2004-05-01T19"]
    assert nikto["kind"] == "abuse" and nikto["behaviour"]["kind"] == "scan"
    scan = next(f for f in report["findings"] if f["id"] == nikto["behaviour"]["findings"][0])
    assert scan["metrics"]["top_sources"][0] == "68.49.152.86" and scan["metrics"]["signatures"]["scanner_user_agent"]
    assert "Nikto" in scan["evidence"][0]["sample"]
    assert not [f for f in report["findings"] if f["id"].startswith(nikto["id"] + "-")
                and f["kind"] in ("errors_without_surge", "known_clients_surge", "legitimate_impact")]
    assert propfind["kind"] == "dos" and propfind["behaviour"]["kind"] == "flood"


def test_a_real_small_site_has_no_abusive_incident(realdata_module: Path) -> None:
    report = _report([realdata_module / "elastic-apache"])
    assert report["verdict"]["kind"] == "no_incident" and report["incidents"] == []


_LINE = '{ip} - - [{ts}] "{method} {path} HTTP/1.1" {status} {size} "-" "{ua}"\n'


def _scan_lines(ip: str, start: datetime, n: int, *, errors_every: int) -> str:
    """A Nikto scan: ``n`` distinct probe paths, 8 a second, mostly 404, every ``errors_every``-th answered 500."""
    out = []
    for i in range(n):
        ts = (start + timedelta(seconds=i / 8)).strftime("%d/%b/%Y:%H:%M:%S +0000")
        path = ["/cgi-bin/test{}.cgi", "/.git/config{}", "/admin{}/phpmyadmin/", "/backup{}.sql"][i % 4].format(i)
        status = 500 if i % errors_every == 0 else 404
        out.append(_LINE.format(ip=ip, ts=ts, method="GET", path=path, status=status, size=300,
                                ua="Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000123)"))
    return "".join(out)


def _first_ts(log: Path) -> datetime:
    with log.open(encoding="utf-8") as fh:
        stamp = re.search(r"\[([^\]]+)\]", fh.readline())
    assert stamp is not None
    return datetime.strptime(stamp.group(1), "%d/%b/%Y:%H:%M:%S %z").replace(tzinfo=None)


def test_a_scan_that_drew_server_errors_is_abuse_not_an_internal_failure(tmp_path: Path) -> None:
    """A scanner already seen before (as on the honeypot) whose own probes drew 5xx: the errors are its."""
    simulate("quiet", tmp_path, seed=3, hours=3, scale=0.3)
    log = tmp_path / "access.log"
    start = _first_ts(log)
    extra = tmp_path / "scan.log"
    extra.write_text(_scan_lines("203.0.113.9", start + timedelta(minutes=10), 6, errors_every=3)
                     + _scan_lines("203.0.113.9", start + timedelta(minutes=100), 2400, errors_every=10),
                     encoding="utf-8")
    report = _report([log, extra])
    main = report["incidents"][0]
    assert main["kind"] == "abuse" and main["behaviour"]["kind"] == "scan", main
    scan = next(f for f in report["findings"] if f["id"] == main["behaviour"]["findings"][0])
    # the window opens at a minute's start and the scan began mid-minute: its first probes, and errors, fall before
    assert 200 <= scan["metrics"]["status_5xx"] <= 240 and scan["metrics"]["top_sources"] == ["203.0.113.9"]
    assert "server errors, drawn by their own requests" in scan["claim"]
    assert all(i["kind"] != "internal_failure" for i in report["incidents"])
    assert not [f for f in report["findings"] if f["kind"] == "errors_without_surge"]
    # abuse names its sources for blocking (this documentation address is one the blocklist never blocks)
    assert report["mitigation"]["attackers_total"] == 1 and report["mitigation"]["skipped"][0]["ip"] == "203.0.113.9"


def test_a_brute_force_that_denied_others_service_is_a_dos(tmp_path: Path) -> None:
    """A login burst while the site answered its other clients with 503: a denial of service, not abuse."""
    simulate("quiet", tmp_path, seed=3, hours=3, scale=0.3)
    log = tmp_path / "access.log"
    start = _first_ts(log) + timedelta(minutes=100)
    lines = []
    for i in range(1500):
        ts = (start + timedelta(seconds=i / 6)).strftime("%d/%b/%Y:%H:%M:%S +0000")
        lines.append(_LINE.format(ip="198.51.100.7", ts=ts, method="POST", path="/wp-login.php", status=200,
                                  size=4000, ua="Mozilla/5.0"))
        if i % 5 == 0:  # the other visitors, turned away
            lines.append(_LINE.format(ip=f"192.0.2.{i % 200 + 1}", ts=ts, method="GET", path="/", status=503,
                                      size=0, ua="Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"))
    (tmp_path / "burst.log").write_text("".join(lines), encoding="utf-8")
    report = _report([log, tmp_path / "burst.log"])
    main = report["incidents"][0]
    assert main["kind"] == "dos", [(h["kind"], h["score"]) for h in report["verdict"]["hypotheses"]]
    # a flood that hit a login page: its sources' brute force is named beside it
    assert main["behaviour"]["kind"] == "flood" and [b["kind"] for b in main["behaviour"]["also"]] == ["brute_force"]
    abuse = next(h for h in report["verdict"]["hypotheses"] if h["kind"] == "abuse")
    assert any(text.startswith("service was denied: the other clients received") for text in abuse["against"])


def test_a_generated_flood_stays_a_flood(tmp_path: Path) -> None:
    simulate("mirai", tmp_path, seed=1, hours=0.5, scale=0.05)
    report = _report([tmp_path / "access.log"])
    main = report["incidents"][0]
    assert main["kind"] == "ddos" and main["behaviour"]["kind"] == "flood"
    assert tuple(main["behaviour"]) == INCIDENT_BEHAVIOUR
    assert main["behaviour"]["sources"] > 10 and main["behaviour"]["findings"]


def _finding(kind: str, fid: str, **metrics: Any) -> Finding:
    now = datetime(2026, 1, 1)
    return Finding(fid, kind, f"claim of {fid}", (now, now + timedelta(minutes=5)), metrics, 0.9)


def _brute(**more: Any) -> Finding:
    return _finding("brute_force", "I1-bruteforce", behaviour="brute_force", sources=1, requests=900, share=0.9,
                    names_incident=True, others_errors=0, others_error_share=0.0, baseline_error_share=0.0,
                    errors_logged=True, **more)


def test_the_verdict_weighs_each_finding_by_its_registry_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    findings = [_finding("traffic_surge", "I1-surge"), _finding("concentrated_sources", "I1-few"), _brute()]
    verdict = judge_incident(findings, new_network_share=0.0, known_share=0.0)
    scores = {h.kind: h.score for h in verdict.hypotheses}
    # attack: no new networks -1, few +1, surge +0.5; abuse: those +3 (brute_force) +1 (denied no service)
    assert verdict.kind == "abuse" and scores["abuse"] == 4.5 and scores["dos"] == -0.5
    assert "claim of I1-bruteforce [I1-bruteforce]" in next(h for h in verdict.hypotheses if h.kind == "abuse").for_
    weights = dict(FINDING_KINDS["brute_force"].weights) | {"abuse": 0.5}
    monkeypatch.setitem(FINDING_KINDS, "brute_force", replace(FINDING_KINDS["brute_force"], weights=weights))
    again = {h.kind: h.score for h in judge_incident(findings, new_network_share=0.0, known_share=0.0).hypotheses}
    assert again["abuse"] == 2.0


def test_abuse_needs_a_status_to_show_that_no_service_was_denied() -> None:
    blind = _finding("brute_force", "I1-bruteforce", behaviour="brute_force", sources=1, requests=900, share=0.9,
                     names_incident=True, others_errors=0, others_error_share=0.0, baseline_error_share=0.0,
                     errors_logged=False)
    findings = [_finding("traffic_surge", "I1-surge"), blind]
    assert denied_service(findings) == ("whether service was denied is not known: the logs have no response status, "
                                        "so errors cannot be ruled out [I1-bruteforce]")
    assert judge_incident(findings, new_network_share=1.0, known_share=0.0).kind != "abuse"
    assert denied_service([findings[0], _brute()]) is None
