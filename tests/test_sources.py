"""Sources: offline enrichment (bundled database and users' .mmdb files), the audience model's measures,
the leaky bucket behind per-source flags, and the fingerprint rule file format."""

from __future__ import annotations

import ipaddress
import json
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import example, given, settings
from hypothesis import strategies as st
from mmdb_writer import MMDBWriter
from netaddr import IPSet

from floodwitness.analysis.audience import _concentration
from floodwitness.analysis.dataset import open_dataset
from floodwitness.cli import main
from floodwitness.detectors.behaviour import flag_sources
from floodwitness.detectors.fingerprints import load_rules, parse_rules
from floodwitness.enrich import Enricher, parse_addresses
from floodwitness.enrich.ranges import UNKNOWN, RangeTable
from floodwitness.errors import UsageError

if TYPE_CHECKING:
    from pathlib import Path


# --- addresses and range tables ------------------------------------------------------------------------

@settings(deadline=None)
@given(st.lists(st.integers(0, 2**32 - 1), max_size=50))
def test_ipv4_text_parses_to_its_value(values: list[int]) -> None:
    addr = parse_addresses([str(ipaddress.IPv4Address(v)) for v in values])
    assert addr.family.tolist() == [4] * len(values)
    assert addr.v4.tolist() == values


def test_addresses_of_every_kind() -> None:
    addr = parse_addresses(["2001:db8:1:2::5", "[2001:db8::1]", "fe80::1%eth0", "crawler.example.com",
                            "1.2.3", "256.1.1.1", "01.2.3.4x", ""])
    assert addr.family.tolist() == [6, 6, 6, 0, 0, 0, 0, 0]
    assert addr.v6[0] == int(ipaddress.IPv6Address("2001:db8:1:2::")) >> 64


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 20)), max_size=30),
       st.lists(st.integers(0, 1100), max_size=40))
def test_range_lookup_agrees_with_a_scan(spans: list[tuple[int, int]], keys: list[int]) -> None:
    ranges, end = [], -1
    for gap, size in spans:  # disjoint ranges in order
        start = end + 1 + gap
        end = start + size
        ranges.append((start, end))
    table = RangeTable.build([a for a, _ in ranges], [b for _, b in ranges], list(range(len(ranges))))
    got = table.lookup(np.asarray(keys, dtype=np.uint64)).tolist()
    want = [next((i for i, (a, b) in enumerate(ranges) if a <= k <= b), UNKNOWN) for k in keys]
    assert got == want


# --- the bundled database ------------------------------------------------------------------------------

def test_bundled_database_names_its_source_and_date() -> None:
    enricher = Enricher()
    rows = {r["ip"]: r for r in enricher.enrich(["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "192.168.1.1",
                                                 "host.example", "::1"]).to_pylist()}
    assert (rows["8.8.8.8"]["as_name"], rows["8.8.8.8"]["country"]) == ("GOOGLE", "US")
    assert rows["1.1.1.1"]["as_name"] == "CLOUDFLARENET"
    assert rows["2001:4860:4860::8888"]["as_name"] == "GOOGLE"
    assert rows["192.168.1.1"]["country"] is None  # private ranges have no country
    assert rows["host.example"] == {"ip": "host.example", "asn": None, "as_name": None, "country": None}
    assert rows["::1"]["as_name"] is None
    [db] = enricher.databases()
    assert db["date"] == "2024-06-18"
    assert "GeoLite2" in db["name"] and db["source"].startswith("geoip2fast 1.2.2")
    assert db["fields"] == ["country", "as_name"]


# --- users' .mmdb files --------------------------------------------------------------------------------

def _mmdb(path: Path, database_type: str, networks: dict[str, dict[str, object]]) -> str:
    writer = MMDBWriter(ip_version=6, ipv4_compatible=True, database_type=database_type)
    for cidr, record in networks.items():
        writer.insert_network(IPSet([cidr]), record)
    writer.to_db_file(str(path))
    return str(path)


def test_user_mmdb_files_override_the_bundled_fields(tmp_path: Path) -> None:
    asn = _mmdb(tmp_path / "asn.mmdb", "GeoLite2-ASN", {
        "8.8.8.0/24": {"autonomous_system_number": 15169, "autonomous_system_organization": "GOOGLE"},
        "2001:db8::/32": {"autonomous_system_number": 64500, "autonomous_system_organization": "DOC-NET"}})
    geo = _mmdb(tmp_path / "country.mmdb", "GeoLite2-Country", {"8.8.8.0/24": {"country": {"iso_code": "ZZ"}},
                                                                "9.9.9.0/24": {"country_code": "CH"}})
    enricher = Enricher(geoip=geo, asn=asn)
    rows = enricher.enrich(["8.8.8.8", "8.8.8.9", "2001:db8::7", "9.9.9.9", "10.0.0.1", "bad"]).to_pylist()
    assert [(r["asn"], r["as_name"], r["country"]) for r in rows] == [
        (15169, "GOOGLE", "ZZ"), (15169, "GOOGLE", "ZZ"), (64500, "DOC-NET", None), (None, None, "CH"),
        (None, None, None), (None, None, None)]
    names = [(d["name"], d["fields"]) for d in enricher.databases()]
    assert names == [("GeoLite2-Country", ["country"]), ("GeoLite2-ASN", ["asn", "as_name"])]
    enricher.close()


def test_a_bad_mmdb_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "asn.mmdb"
    bad.write_bytes(b"not a database")
    with pytest.raises(UsageError, match=r"^--asn: cannot read .*asn\.mmdb as a MaxMind database"):
        Enricher(asn=str(bad))
    log = tmp_path / "a.log"
    log.write_text('1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 5 "-" "x"\n')
    result = CliRunner().invoke(main, ["analyze", str(log), "--asn", str(bad)])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: --asn: cannot read {bad} as a MaxMind database")
    assert result.output.endswith("Give a .mmdb file (GeoLite2/GeoIP2 Country, City or ASN, DB-IP lite, "
                                  "IPinfo lite).\n")


# --- audience measures ---------------------------------------------------------------------------------

def test_concentration_measures() -> None:
    top10, gini, entropy = _concentration(np.full(100, 5.0))
    assert (round(top10, 3), round(gini, 3), round(entropy, 3)) == (0.1, 0.0, 1.0)
    skewed = np.asarray([1000.0] + [1.0] * 99)
    top10, gini, entropy = _concentration(skewed)
    mean_difference = np.abs(skewed[:, None] - skewed[None, :]).sum() / (2 * len(skewed) ** 2 * skewed.mean())
    assert top10 == pytest.approx(1009 / 1099) and gini == pytest.approx(mean_difference)
    p = skewed / skewed.sum()
    assert entropy == pytest.approx(-(p * np.log(p)).sum() / np.log(100)) and entropy < 0.2
    assert _concentration(np.zeros(3)) == (0.0, 0.0, 0.0)


# --- the leaky bucket ----------------------------------------------------------------------------------

def _crowdsec_bucket(times: list[float], capacity: int, leak: float) -> tuple[bool, float]:
    """CrowdSec's leaky bucket, event by event: level drains by elapsed/leak (not below 0), +1 per event.

    In exact arithmetic: with floats, 30, 30, 31, 33 s at leak 3 s reach 3.0000000000000004 and would
    "overflow" a bucket of capacity 3 that the exact level, 3, only fills."""
    level, last, peak = Fraction(0), None, Fraction(0)
    rate = Fraction(leak)
    for t in (Fraction(x) for x in times):
        if last is not None:
            level = max(level - (t - last) / rate, Fraction(0))
        level += 1
        last = t
        peak = max(peak, level)
    return peak > capacity, float(peak)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.lists(st.integers(0, 40), min_size=1, max_size=25), min_size=1, max_size=4),
       st.integers(0, 8), st.sampled_from([0.5, 1.0, 3.0]))
@example(per_source=[[30, 30, 31, 33]], capacity=3, leak=3.0)  # a level of exactly the capacity: no overflow
def test_bucket_flags_what_crowdsec_would(tmp_path_factory: pytest.TempPathFactory, per_source: list[list[int]],
                                          capacity: int, leak: float) -> None:
    start = datetime(2024, 5, 17, 10, 0, tzinfo=UTC)
    lines = []
    for s, seconds in enumerate(per_source):
        for sec in sorted(seconds):
            ts = (start + timedelta(seconds=sec)).strftime("%d/%b/%Y:%H:%M:%S +0000")
            lines.append(f'10.0.0.{s + 1} - - [{ts}] "GET /?{sec} HTTP/1.1" 200 5 "-" "ua"')
    log = tmp_path_factory.mktemp("bucket") / "b.log"
    log.write_text("\n".join(lines) + "\n")
    rule_text = json.dumps({"rules": [{"name": "any", "description": "every request", "path_regex": "^/",
                                       "per_source": {"capacity": capacity, "leak_seconds": leak}}]})
    rules = parse_rules(rule_text, "test")
    data = open_dataset([str(log)])
    try:
        flags = flag_sources(data, rules)
    finally:
        data.close()
    got = {s.client_ip: s.peak for f in flags for s in f.sources}
    for s, seconds in enumerate(per_source):
        flagged, peak = _crowdsec_bucket([float(x) for x in sorted(seconds)], capacity, leak)
        ip = f"10.0.0.{s + 1}"
        assert (ip in got) == flagged
        if flagged:  # a rule of capacity 0 needs no bucket: any match flags, no level is measured
            assert got[ip] == (pytest.approx(peak) if capacity else None)


# --- the rule file format ------------------------------------------------------------------------------

@pytest.mark.parametrize(("rules", "message"), [
    ("[]", 'fingerprint rules r.json: expected an object with a "rules" list'),
    ('{"rules": [{"name": "X", "description": "d", "status": 1}]}',
     "fingerprint rules r.json: rule #1: name must be lower case letters, digits and _ ('X')"),
    ('{"rules": [{"name": "x", "description": "d", "status": "408"}]}',
     "fingerprint rules r.json: rule 'x': status must be a int"),
    ('{"rules": [{"name": "x", "description": "d", "path_regex": "("}]}',
     "fingerprint rules r.json: rule 'x': path_regex is not a regular expression (missing ), unterminated "
     "subpattern at position 0)"),
    ('{"rules": [{"name": "x", "description": "d", "user_agent": "a"}]}',
     "fingerprint rules r.json: rule 'x': unknown key(s) user_agent"),
    ('{"rules": [{"name": "x", "description": "d"}]}',
     "fingerprint rules r.json: rule 'x': give at least one condition or a per_source bucket"),
    ('{"rules": [{"name": "x", "description": "d", "per_source": {"capacity": 3, "distinct": "ip"}}]}',
     "fingerprint rules r.json: rule 'x': per_source.distinct must be one of user_agent, path, query, referer, "
     "method, protocol"),
])
def test_rule_file_errors_name_the_file_and_rule(rules: str, message: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_rules(rules, "r.json")
    assert err.value.message == message
    assert err.value.hint == "See the rule format in docs/fingerprints.md (or `floodwitness.detectors.fingerprints`)."


def test_user_rules_extend_and_replace_the_bundled_ones(tmp_path: Path) -> None:
    extra = tmp_path / "mine.json"
    extra.write_text(json.dumps({"rules": [
        {"name": "wp_login_flood", "description": "POSTs to wp-login.php", "methods": ["POST"],
         "path_regex": "^/wp-login\\.php$", "per_source": {"capacity": 3, "leak_seconds": 10}},
        {"name": "mirai", "description": "replaced", "user_agents": ["nothing"]}]}))
    rules = {r.name: r for r in load_rules([str(extra)])}
    assert rules["mirai"].description == "replaced" and rules["mirai"].origin == str(extra)
    assert "wp_login_flood" in rules and "hulk" in rules
    lines = [f'203.0.113.9 - - [17/May/2024:10:00:0{i} +0000] "POST /wp-login.php HTTP/1.1" 200 5 "-" "x"'
             for i in range(5)]
    lines += ['203.0.113.10 - - [17/May/2024:10:00:01 +0000] "POST /wp-login.php HTTP/1.1" 200 5 "-" "x"']
    log = tmp_path / "wp.log"
    log.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(main, ["analyze", str(log), "--fingerprints", str(extra), "--json", "-", "-q"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    [flag] = [f for f in report["sources"]["flagged"] if f["rule"] == "wp_login_flood"]
    assert flag["sources"] == 1 and flag["top"][0]["client_ip"] == "203.0.113.9" and flag["requests"] == 5
    assert report["parameters"]["fingerprints"] == [str(extra)]
    missing = CliRunner().invoke(main, ["analyze", str(log), "--fingerprints", str(tmp_path / "none.json")])
    assert missing.exit_code == 1
    assert missing.output == (f"Error: --fingerprints: cannot read {tmp_path / 'none.json'}: No such file or "
                              "directory\nGive a JSON rule file (see docs/fingerprints.md).\n")
