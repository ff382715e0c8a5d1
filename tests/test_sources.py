"""Sources: offline enrichment (bundled database and users' .mmdb files), the audience model's measures,
the leaky bucket behind per-source flags, and the fingerprint rule file format."""

from __future__ import annotations

import ipaddress
import json
import re
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import TYPE_CHECKING

import ibis
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
from floodwitness.detectors import behaviour
from floodwitness.detectors.behaviour import flag_sources, scan_rules
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


def _bucket_log(tmp: Path, per_source: list[list[tuple[int, int]]]) -> Path:
    """A log of sources 10.0.0.1, 10.0.0.2, ... each sending (second, user agent number) requests."""
    start = datetime(2024, 5, 17, 10, 0, tzinfo=UTC)
    lines = []
    for s, requests in enumerate(per_source):
        for sec, ua in sorted(requests):
            ts = (start + timedelta(seconds=sec)).strftime("%d/%b/%Y:%H:%M:%S +0000")
            lines.append(f'10.0.0.{s + 1} - - [{ts}] "GET /?{sec} HTTP/1.1" 200 5 "-" "agent {ua}"')
    log = tmp / "b.log"
    log.write_text("\n".join(lines) + "\n")
    return log


@settings(max_examples=20, deadline=None)
@given(st.lists(st.lists(st.integers(0, 40), min_size=1, max_size=30), min_size=2, max_size=6),
       st.integers(1, 6), st.sampled_from([0.5, 1.0, 3.0]))
@example(per_source=[list(range(30)), list(range(29)), [5, 6]], capacity=2, leak=3.0)  # two sure, one listed
def test_bucket_skips_sources_that_overflowed_for_sure_but_lists_the_busiest_exactly(
        tmp_path_factory: pytest.TempPathFactory, per_source: list[list[int]], capacity: int, leak: float) -> None:
    """Within a window, a source whose matches minus what leaked since its first one exceed the capacity
    overflowed for sure: it is flagged without running its bucket, unless it is among the listed busiest."""
    log = _bucket_log(tmp_path_factory.mktemp("sure"), [[(sec, 0) for sec in secs] for secs in per_source])
    rule_text = json.dumps({"rules": [{"name": "any", "description": "every request", "path_regex": "^/",
                                       "per_source": {"capacity": capacity, "leak_seconds": leak}}]})
    rules = parse_rules(rule_text, "test")
    start = datetime(2024, 5, 17, 10, 0)
    data = open_dataset([str(log)])
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(behaviour, "LISTED", 1)
            flags = scan_rules(data, rules, (start, start + timedelta(seconds=60))).flags
    finally:
        data.close()
    got = {s.client_ip: s for f in flags for s in f.sources}
    truth = {f"10.0.0.{i + 1}": _crowdsec_bucket([float(x) for x in sorted(secs)], capacity, leak)
             for i, secs in enumerate(per_source)}
    assert set(got) == {ip for ip, (flagged, _) in truth.items() if flagged}
    for ip, source in got.items():
        assert source.requests == len(per_source[int(ip.rsplit(".", 1)[1]) - 1])
        if source.peak is None:  # not run: its floor alone says it overflowed
            assert source.overflow is None
            assert source.requests - (60 - min(per_source[int(ip.rsplit(".", 1)[1]) - 1])) / leak > capacity
        else:
            assert source.peak == pytest.approx(truth[ip][1]) and source.overflow is not None
    if flags:  # the busiest flagged source (the one listed) always has its bucket run
        assert flags[0].sources[0].peak is not None


@settings(max_examples=20, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 5)), min_size=1, max_size=20),
                min_size=1, max_size=5),
       st.integers(2, 4), st.sampled_from([1.0, 8.0]))
def test_distinct_bucket_counts_every_source_with_several_values(
        tmp_path_factory: pytest.TempPathFactory, per_source: list[list[tuple[int, int]]], capacity: int,
        leak: float) -> None:
    """A bucket on distinct user agents runs only over sources with two agents or more (one agent can never
    overflow a capacity of 2 or more): the flagged sources are still exactly CrowdSec's."""
    log = _bucket_log(tmp_path_factory.mktemp("distinct"), per_source)
    rule_text = json.dumps({"rules": [{"name": "agents", "description": "switching agents",
                                       "per_source": {"capacity": capacity, "leak_seconds": leak,
                                                      "distinct": "user_agent"}}]})
    data = open_dataset([str(log)])
    try:
        got = {s.client_ip: s.peak for f in flag_sources(data, parse_rules(rule_text, "test")) for s in f.sources}
    finally:
        data.close()
    for i, requests in enumerate(per_source):
        first_of_each: dict[int, int] = {}
        for sec, ua in sorted(requests):
            first_of_each.setdefault(ua, sec)
        flagged, peak = _crowdsec_bucket(sorted(float(x) for x in first_of_each.values()), capacity, leak)
        assert (f"10.0.0.{i + 1}" in got) == flagged
        if flagged:
            assert got[f"10.0.0.{i + 1}"] == pytest.approx(peak)


_ROW = st.fixed_dictionaries({
    "path": st.sampled_from(["/", "/AB", "/ABCDEF", "/x.css", "/a/b"]),
    "query": st.sampled_from([None, "", "123", "AB=CD", "x=1"]),
    "referer": st.sampled_from([None, "http://a/", "http://www.google.com/abcde"]),
    "user_agent": st.sampled_from([None, "ua1", "ua2", "Mozilla/5.0"]),
    "method": st.sampled_from([None, "GET", "POST", "HEAD"]),
    "protocol": st.sampled_from([None, "HTTP/1.1", "HTTP/9", "x"]),
    "status": st.sampled_from([None, 200, 408, 503]),
    "bytes": st.sampled_from([None, 0, 5]),
})
_SPEC = st.fixed_dictionaries({}, optional={
    "user_agents": st.sampled_from([["ua1"], ["ua1", "Mozilla/5.0"]]),
    "user_agent_regex": st.sampled_from(["^ua", "Mozilla"]),
    "referer_absent": st.just(True), "query_absent": st.just(True),
    "referer_regex": st.sampled_from(["google", "^http://a"]),
    "path_regex": st.sampled_from(["^/$", "^/[A-Z]{6}$", "\\.css$"]),
    "query_regex": st.sampled_from(["^[0-9]{1,4}$", "^[A-Z]+=[A-Z]+$"]),
    "methods": st.sampled_from([["GET"], ["POST", "HEAD"]]),
    "protocol_not_in": st.sampled_from([["HTTP/1.1"], ["HTTP/1.1", "x"]]),
    "status": st.sampled_from([408, 200]), "bytes": st.sampled_from([0, 5]),
})


def _matches(spec: dict[str, object], row: dict[str, object]) -> bool:
    """The rule format's meaning, condition by condition, in Python (a null never matches a condition)."""
    def search(column: str, pattern: object) -> bool:
        return row[column] is not None and re.search(str(pattern), str(row[column])) is not None
    checks = {
        "user_agents": lambda v: row["user_agent"] in v, "user_agent_regex": lambda v: search("user_agent", v),
        "referer_absent": lambda v: row["referer"] is None, "query_absent": lambda v: row["query"] is None,
        "referer_regex": lambda v: search("referer", v), "path_regex": lambda v: search("path", v),
        "query_regex": lambda v: search("query", v), "methods": lambda v: row["method"] in v,
        "protocol_not_in": lambda v: row["protocol"] is not None and row["protocol"] not in v,
        "status": lambda v: row["status"] == v, "bytes": lambda v: row["bytes"] == v,
    }
    return all(checks[key](value) for key, value in spec.items())


@settings(max_examples=60, deadline=None)
@given(_SPEC.filter(bool), st.lists(_ROW, min_size=1, max_size=12))
def test_rule_predicate_means_every_condition(spec: dict[str, object], rows: list[dict[str, object]]) -> None:
    """The predicate tests its conditions in a nested CASE, cheapest first: it must still mean "every condition
    holds", with nulls never matching, whatever the conditions and the rows."""
    rule = parse_rules(json.dumps({"rules": [{"name": "r", "description": "d"} | spec]}), "t")[0]
    schema = {"path": "string", "query": "string", "referer": "string", "user_agent": "string", "method": "string",
              "protocol": "string", "status": "int16", "bytes": "int64"}
    table = ibis.memtable(rows, schema=schema)
    con = ibis.duckdb.connect()
    try:
        got = con.to_pyarrow(table.select(m=rule.predicate(table))).column("m").to_pylist()
    finally:
        con.disconnect()
    assert [bool(x) for x in got] == [_matches(rule.spec, row) for row in rows]


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
