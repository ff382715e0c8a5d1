"""Fingerprint rules on real captures (each fires on its tool's capture and never on a real small site), and
CrowdSec hub's http-dos cases: the sources each case expects flagged are the ones we flag, and no other."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from floodwitness.analysis.dataset import open_dataset
from floodwitness.detectors.behaviour import flag_sources
from floodwitness.detectors.fingerprints import bundled_rules

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"

ELASTIC = "elastic-apache/Common_Data_Formats_apache_logs_apache_logs"
#: each bundled rule and the real capture of its tool (a rule added without a capture fails the test below)
CAPTURES = {
    "mirai": "tool-captures/crafted_sample.log",             # byte-exact replicas of Mirai's requests
    "hulk": "tool-captures/crafted_sample.log",
    "loic_random_uri": "tool-captures/crafted_sample.log",
    "goldeneye": "tool-captures/goldeneye_sample.log",      # the real tool, 2 s against loopback nginx
    "switching_ua": "tool-captures/goldeneye_sample.log",
    "slowloris": "tool-captures/slowloris_sample.log",      # the real tool: nginx's 408 0 lines
    "cc_attack_bypass_cache": "crowdsec-hub/cases/http-dos-bypass-cache/http_dos_bypass_cache.log",
    "invalid_http_version": "crowdsec-hub/cases/http-dos-invalid-http-versions/http-dos-invalid-http-versions.log",
}
#: where a rule's bucket is shown to flag its tool when the capture above is too short to fill it (the crafted
#: capture has 3 LOIC requests; the rule, like CrowdSec's, flags a source past 30 in a burst)
FLAG_CAPTURES = {"loic_random_uri": "crowdsec-hub/cases/http-dos-random-uri"}
#: CrowdSec case -> the bundled rule that implements its scenario
CASES = {
    "http-dos-bypass-cache": "cc_attack_bypass_cache",
    "http-dos-random-uri": "loic_random_uri",
    "http-dos-switching-ua": "switching_ua",
    "http-dos-invalid-http-versions": "invalid_http_version",
}


@dataclass(frozen=True)
class Scan:
    """What every bundled rule finds in one log: matching requests, and the sources it flags."""

    lines_rejected: int
    clients: set[str]
    matches: dict[str, int]
    flagged: dict[str, set[str]]


@pytest.fixture(scope="module")
def scans(request: pytest.FixtureRequest) -> dict[str, Scan]:
    realdata = request.getfixturevalue("realdata_module")
    out = {}
    paths = {ELASTIC, *CAPTURES.values()} | {f"crowdsec-hub/cases/{case}" for case in CASES}
    for rel in sorted(paths):
        path = realdata / rel
        if path.is_dir():
            [path] = sorted(path.glob("*.log"))
        data = open_dataset([str(path)])
        try:
            t = data.requests
            rules = bundled_rules()
            row = data.engine.ibis.to_pyarrow(t.aggregate(
                **{r.name: r.predicate(t).sum() for r in rules if r.per_request})).to_pylist()[0]
            clients = set(data.engine.ibis.to_pyarrow(t.select("client_ip").distinct()).column(0).to_pylist())
            flagged = {f.rule.name: f.ips for f in flag_sources(data, rules)}
            scan = Scan(sum(i.lines_rejected for i in data.manifest.inputs), clients,
                        {name: int(n or 0) for name, n in row.items()}, flagged)
        finally:
            data.close()
        out[rel] = scan
    return out


@pytest.fixture(scope="module")
def realdata_module() -> Path:
    if not REALDATA.is_dir():
        pytest.skip(f"real data folder {REALDATA} is absent (it sits beside the repo as ../shared/realdata)")
    return REALDATA


def test_every_bundled_rule_has_a_capture() -> None:
    assert sorted(CAPTURES) == sorted(r.name for r in bundled_rules())


@pytest.mark.parametrize("rule", sorted(CAPTURES))
def test_rule_fires_on_its_capture_and_not_on_a_real_site(scans: dict[str, Scan], rule: str) -> None:
    capture, site = scans[CAPTURES[rule]], scans[ELASTIC]
    spec = next(r for r in bundled_rules() if r.name == rule)
    if spec.per_request:
        assert capture.matches[rule] > 0
        assert site.matches[rule] == 0
    assert scans[FLAG_CAPTURES.get(rule, CAPTURES[rule])].flagged.get(rule)  # the tool's source(s) are flagged
    assert rule not in site.flagged


def test_slowloris_and_goldeneye_flag_the_tool_and_match_what_the_capture_shows(scans: dict[str, Scan]) -> None:
    slow = scans["tool-captures/slowloris_sample.log"]
    assert slow.matches["slowloris"] == 10  # every line of the capture is a 408 0 partial request
    golden = scans["tool-captures/goldeneye_sample.log"]
    # GoldenEye sends a search-engine referer only half the time (and a self referer among those)
    assert 0.3 < golden.matches["goldeneye"] / 3788 < 0.5
    assert golden.flagged["switching_ua"] == {"127.0.0.1"}


def _expected_sources(case_dir: Path) -> set[str]:
    text = (case_dir / "scenario.assert").read_text()
    return set(re.findall(r'^"([^"]+)" in results\[\d+\]\.Overflow\.GetSources\(\)', text, flags=re.M))


@pytest.mark.parametrize("case", sorted(CASES))
def test_crowdsec_http_dos_case(scans: dict[str, Scan], realdata_module: Path, case: str) -> None:
    """CrowdSec runs one scenario per case: the rule implementing it flags exactly the sources the case
    expects (others in the same file, some sending the same requests more slowly, are not flagged)."""
    scan = scans[f"crowdsec-hub/cases/{case}"]
    expected = _expected_sources(realdata_module / "crowdsec-hub" / "cases" / case)
    assert expected and scan.lines_rejected == 0
    assert scan.flagged.get(CASES[case], set()) == expected
    assert expected <= scan.clients  # (random-uri's log holds only its attacker; the others hold 2 to 14 sources)
