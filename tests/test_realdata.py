"""Real logs from outside the project (../shared/realdata): what the data really shows, line by line.

Every expectation below was checked by hand against the file it names; the reason is written next to it.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import zstandard

from floodwitness.errors import FormatError
from floodwitness.formats import FORMATS
from floodwitness.formats.template import TemplateFormat
from floodwitness.ingest import IngestOptions, ingest
from floodwitness.ingest.store import REQUESTS

from .conftest import REALDATA, parsed_rows, run_ingest

#: Formats of the NCSA family (combined, common, vhost, timing variants): the ones these logs must get.
NCSA_FORMATS = frozenset(name for name, fmt in FORMATS.items() if isinstance(fmt, TemplateFormat))


def raw_lines(path: Path) -> list[str]:
    """The file's lines as text, 1-based via index + 1, line endings removed."""
    return path.read_bytes().decode("utf-8", errors="replace").splitlines()


def assert_format_error_names(path: Path, tmp_path: Path) -> None:
    with pytest.raises(FormatError) as err:
        ingest([str(path)], tmp_path / "store")
    assert err.value.path == str(path)
    assert str(err.value).startswith(f"{path}: no known log format fits this file")
    assert not (tmp_path / "store").exists()


# -- elastic-apache: a real small site, 10,000 lines -----------------------------------------------------

ELASTIC = "elastic-apache/Common_Data_Formats_apache_logs_apache_logs"

#: An independent reference parser for this file (every line but 8899 is plain combined, no \" escapes).
_COMBINED_RE = re.compile(r'^(\S+) - (\S+) \[([^\]]+)\] "(\S+) (\S+) (HTTP/1\.[01])" (\d{3}) (\d+|-) '
                          r'"([^"]*)" "([^"]*)"$')


@pytest.fixture(scope="module")
def elastic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, list[dict[str, Any]]]:
    if not REALDATA.is_dir():
        pytest.skip(f"real data folder {REALDATA} is absent (it sits beside the repo as ../shared/realdata)")
    manifest, table = run_ingest([str(REALDATA / ELASTIC)], tmp_path_factory.mktemp("elastic") / "store")
    return manifest, table.to_pylist()


def test_elastic_accounting_and_hash(realdata: Path, elastic: tuple[Any, list[dict[str, Any]]]) -> None:
    manifest, rows = elastic
    record = manifest.inputs[0]
    assert record.format == "combined"
    assert (record.lines_read, record.lines_parsed, record.lines_rejected) == (10_000, 9_999, 1)
    assert record.rejected_by_reason == {"format_mismatch": 1}
    assert record.sha256 == hashlib.sha256((realdata / ELASTIC).read_bytes()).hexdigest()
    assert record.bytes == (realdata / ELASTIC).stat().st_size == 2_370_789
    assert record.complete and record.damage is None and record.utf8_repaired == 0
    assert [r["line"] for r in rows] == list(range(1, 10_001))


def test_elastic_only_line_8899_is_rejected(realdata: Path, elastic: tuple[Any, list[dict[str, Any]]]) -> None:
    manifest, rows = elastic
    rejected = [r for r in rows if r["reject_reason"] is not None]
    assert [(r["line"], r["reject_reason"]) for r in rejected] == [(8899, "format_mismatch")]
    # Genuinely malformed: the user agent is cut, its closing quote is missing.
    line = raw_lines(realdata / ELASTIC)[8898]
    assert line.endswith('"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html')
    assert line.count('"') % 2 == 1
    assert rejected[0]["raw"] == line
    assert [(s.line, s.reason) for s in manifest.inputs[0].reject_samples] == [(8899, "format_mismatch")]


def test_elastic_timestamps_within_the_four_days(elastic: tuple[Any, list[dict[str, Any]]]) -> None:
    manifest, rows = elastic
    stamps = [r["ts"] for r in parsed_rows_of(rows)]
    assert len(stamps) == 9_999 and all(s is not None for s in stamps)
    assert min(stamps) == datetime(2015, 5, 17, 10, 5, 0, tzinfo=UTC)
    assert max(stamps) == datetime(2015, 5, 20, 21, 5, 59, tzinfo=UTC)
    assert all(datetime(2015, 5, 17, tzinfo=UTC) <= s < datetime(2015, 5, 21, tzinfo=UTC) for s in stamps)
    record = manifest.inputs[0]
    assert (record.first_ts, record.last_ts) == ("2015-05-17T10:05:00+00:00", "2015-05-20T21:05:59+00:00")


# (line, client_ip, status, bytes, path, query), read off the raw file at the start, middle and end.
ELASTIC_SPOTS = [
    (1, "83.149.9.216", 200, 203023, "/presentations/logstash-monitorama-2013/images/kibana-search.png", None),
    (2500, "208.115.111.72", 200, 1871, "/files/rubygems615/", "C=S;O=A"),
    (5000, "95.82.59.254", 200, 3638, "/favicon.ico", None),
    (8900, "180.76.5.152", 200, 0, "/robots.txt", None),  # bytes logged as "-"
    (9999, "180.76.6.56", 200, 0, "/robots.txt", None),  # bytes logged as "-"
    (10000, "46.105.14.53", 200, 14872, "/blog/tags/puppet", "flav=rss20"),
]


@pytest.mark.parametrize(("line", "ip", "status", "size", "path", "query"), ELASTIC_SPOTS,
                         ids=[f"line{s[0]}" for s in ELASTIC_SPOTS])
def test_elastic_spot_rows(realdata: Path, elastic: tuple[Any, list[dict[str, Any]]], line: int, ip: str,
                           status: int, size: int, path: str, query: str | None) -> None:
    row = elastic[1][line - 1]
    assert row["line"] == line and row["reject_reason"] is None
    assert (row["client_ip"], row["status"], row["bytes"], row["path"], row["query"]) == (ip, status, size, path,
                                                                                          query)
    raw = raw_lines(realdata / ELASTIC)[line - 1]
    assert raw.startswith(f"{ip} - - [") and f" {status} " in raw and path in raw


def test_elastic_every_row_matches_a_reference_parse(realdata: Path,
                                                     elastic: tuple[Any, list[dict[str, Any]]]) -> None:
    rows = elastic[1]
    checked = 0
    for number, text in enumerate(raw_lines(realdata / ELASTIC), start=1):
        m = _COMBINED_RE.match(text)
        if m is None:
            assert number == 8899
            continue
        ip, user, stamp, method, target, protocol, status, size, referer, agent = m.groups()
        path, _, query = target.partition("?")
        expected = {
            "client_ip": ip, "ip_family": 4, "method": method, "path": path,
            "query": query if "?" in target else None, "protocol": protocol, "status": int(status),
            "bytes": 0 if size == "-" else int(size), "referer": None if referer in ("-", "") else referer,
            "user_agent": None if agent in ("-", "") else agent,
            "ts": datetime.strptime(stamp, "%d/%b/%Y:%H:%M:%S %z").astimezone(UTC),
        }
        row = rows[number - 1]
        assert {k: row[k] for k in expected} == expected, number
        assert user == "-"
        checked += 1
    assert checked == 9_999


def parsed_rows_of(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["reject_reason"] is None]


# -- crowdsec-hub: a peer's test suite ---------------------------------------------------------------------

CROWDSEC = "crowdsec-hub/cases"

#: Log types of the NCSA access-log family: every case with one of these types is classified below.
NCSA_LOG_TYPES = frozenset({"nginx", "apache2", "nginx-proxy-manager"})

#: NCSA access logs: they must parse with no rejected line except these (line -> (reason, why)).
NCSA_CASES: dict[str, dict[int, tuple[str, str]]] = {
    "apache-cve-2021-41773": {1: ("format_mismatch", "an Apache error-log line ([core:error] AH00126)")},
    "apache-http-probing": {},
    "apache2-http-sensitive-files": {},
    "apache2-logs": {8: ("format_mismatch", "an Apache error-log line ([auth_basic:error] AH01618)"),
                     9: ("format_mismatch", "an Apache error-log line ([ssl:info] AH02006)")},
    "apache2-malformed": {},
    "apache_log4j2_cve-2021-44228": {4: ("empty_line", "blank line at the end of the file"),
                                     5: ("empty_line", "blank line at the end of the file")},
    "http-admin-interface-probing": {},
    "http-cve-probing": {},
    "http-dos-bypass-cache": {},
    "http-dos-invalid-http-versions": {},
    "http-dos-random-uri": {},
    "http-dos-switching-ua": {},
    "http-generic-test": {},
    "http-technology-probing": {6: ("empty_line", "blank line at the end of the file")},
    "http-wordpress-scan": {},
    "http-wordpress_user-enum": {},
    "nginx-bad-user-agent": {},
    "nginx-cve-2021-41773": {},
    "nginx-http-backdoor": {},
    "nginx-http-malformed": {},
    "nginx-http-open-proxy": {},
    "nginx-http-path-traversal": {},
    "nginx-http-sensitive-files": {},
    "nginx-http-sqli-probing": {},
    "nginx-http-w00twoot": {},
    "nginx-http-xss-probing": {},
    "nginx-proxy-manager-malformed": {},
    "nginx_http-logs": {9: ("format_mismatch", "an nginx error-log line ([error] ... is not found)")},
    "sap-probing": {},
}

#: nginx/Apache cases that are not NCSA access logs at all: a later formats issue. They must fail loudly.
NOT_NCSA_CASES: dict[str, str] = {
    "http-bf-wordpress-bf": "syslog-prefixed lines (`Sep 15 16:13:46 host nginx[2869]: ...`)",
    "http-wordpress_wpconfig": "syslog-prefixed lines (`Jul  8 11:07:07 host nginx[2869]: ...`)",
    "nginx-http-generic-bf": "nginx error log (auth failures)",
    "nginx_req_limit_exceeded": "nginx error log (limiting requests)",
    "nginx_http-catch-npm": "nginx-proxy-manager's own access-log layout",
    "nginx-proxy-manager-logs": "nginx-proxy-manager layout and nginx error lines (1 NCSA line of 13)",
    "modsecurity-nginx": "ModSecurity messages in the nginx error log",
    "modsecurity-logs-nginx": "ModSecurity messages in the nginx error log",
    "pfsense-rfc5424-nginx": "RFC 5424 syslog wrapping an nginx error-log line",
    "base-upsun-httplog-logs": "Upsun JSON journal records wrapping the nginx line in `message`",
    "base-upsun-generic-test": "Upsun JSON journal records wrapping the nginx line in `message`",
}

#: Log types of other servers, read by formats not built yet: out of scope for this test.
OTHER_LOG_TYPES = frozenset({"aws-alb", "aws-cloudfront", "bunkerweb", "caddy", "containerd", "haproxy", "iis",
                             "litespeed", "magento-extension", "modsecurity", "syslog", "tcpudp-traefik",
                             "traefik", "upsun-httplog", "zoraxy"})


def case_log_type(case_dir: Path) -> str:
    m = re.search(r"^log_type:\s*(\S+)", (case_dir / "config.yaml").read_text(encoding="utf-8"), re.MULTILINE)
    assert m is not None, case_dir
    return m.group(1)


def case_log(case_dir: Path) -> Path:
    logs = sorted(case_dir.glob("*.log"))
    assert len(logs) == 1, logs
    return logs[0]


def test_every_crowdsec_case_is_classified(realdata: Path) -> None:
    """A new case of the NCSA family, or of a new log type, fails here until someone classifies it."""
    cases = {d.name: case_log_type(d) for d in (realdata / CROWDSEC).iterdir() if d.is_dir()}
    ncsa_typed = {name for name, kind in cases.items() if kind in NCSA_LOG_TYPES}
    classified = set(NCSA_CASES) | set(NOT_NCSA_CASES)
    assert ncsa_typed - classified == set()
    assert classified - set(cases) == set()
    assert {kind for name, kind in cases.items() if name not in classified} <= OTHER_LOG_TYPES
    assert all(cases[name] in NCSA_LOG_TYPES for name in NCSA_CASES)


@pytest.mark.parametrize("case", sorted(NCSA_CASES))
def test_crowdsec_ncsa_case_parses(realdata: Path, tmp_path: Path, case: str) -> None:
    log = case_log(realdata / CROWDSEC / case)
    manifest, table = run_ingest([str(log)], tmp_path / "store")
    record = manifest.inputs[0]
    rows = table.to_pylist()
    assert record.format in NCSA_FORMATS
    lines = raw_lines(log)
    assert record.lines_read == len(lines) == len(rows)
    expected = {line: reason for line, (reason, _) in NCSA_CASES[case].items()}
    assert {r["line"]: r["reject_reason"] for r in rows if r["reject_reason"]} == expected
    assert record.lines_parsed == len(lines) - len(expected)
    for row in parsed_rows(table):
        text = lines[row["line"] - 1]
        assert row["client_ip"] and row["client_ip"] in text, (row["line"], text)
        assert f'" {row["status"]} ' in text, (row["line"], text)
        assert row["ts"] is not None


@pytest.mark.parametrize("case", sorted(NOT_NCSA_CASES))
def test_crowdsec_non_ncsa_case_is_refused(realdata: Path, tmp_path: Path, case: str) -> None:
    assert_format_error_names(case_log(realdata / CROWDSEC / case), tmp_path)


def test_crowdsec_mixed_layouts_keep_the_right_client(realdata: Path, tmp_path: Path) -> None:
    """nginx_http-logs mixes vhost (with and without port), user and ident-less lines in one file."""
    _, table = run_ingest([str(realdata / CROWDSEC / "nginx_http-logs" / "nginx_http-logs.log")], tmp_path / "s")
    rows = {r["line"]: r for r in parsed_rows(table)}
    assert {line: rows[line]["client_ip"] for line in (4, 5, 6, 7, 8)} == dict.fromkeys((4, 5, 6, 7, 8),
                                                                                        "192.168.1.1")
    assert rows[5]["path"] == "/test/uppercase/extensions.JPG" and rows[6]["status"] == 301
    assert rows[3]["query"] == "wt=json"


# -- fail2ban-http: each line follows a `# failJSON:` comment naming the host ----------------------------

FAIL2BAN = "fail2ban-http/logs"

#: Files that are access logs, with the rejections each must have (reason -> count, and why).
FAIL2BAN_ACCESS_LOGS: dict[str, dict[str, int]] = {
    "haproxy-http-auth": {"comment": 4},  # syslog-prefixed HAProxy httplog lines, IPv4, IPv6 and ::ffff: clients
    "apache-badbots": {"comment": 4, "empty_line": 3},
    # The only line has no zone in its time ([27/Jun/2013:11:55:44]): not a valid CLF timestamp.
    "apache-pass": {"bad_timestamp": 1, "comment": 1},
    "nginx-bad-request": {"comment": 8, "empty_line": 7},
    # Lines 26, 29, 32, 35, 40, 43 are nginx error-log lines (the last two journal-prefixed).
    "nginx-botsearch": {"comment": 15, "empty_line": 14, "format_mismatch": 6},
    "php-url-fopen": {"comment": 1},
    "traefik-auth": {"comment": 10, "empty_line": 7},  # CRLF line endings throughout
}

#: The format each access log must be detected as (NCSA family unless named here).
FAIL2BAN_FORMATS = {"haproxy-http-auth": "haproxy", "traefik-auth": "traefik_clf"}

#: Files that are not NCSA access logs: they raise FormatError when named.
FAIL2BAN_NOT_ACCESS_LOGS: dict[str, str] = {
    "apache-auth": "Apache error log",
    "apache-botsearch": "Apache error log",
    "apache-fakegooglebot": "custom Apache 2.2 LogFormat (extra `-`, no zone, vhost after the time)",
    "apache-modsecurity": "Apache error log (ModSecurity)",
    "apache-nohome": "Apache error log",
    "apache-noscript": "Apache error log",
    "apache-overflows": "Apache error log",
    "apache-shellshock": "Apache error log",
    "lighttpd-auth": "lighttpd error log",
    "nginx-forbidden": "nginx error log",
    "nginx-http-auth": "nginx error log",
    "nginx-limit-req": "nginx error log",
}


def fail_json_hosts(path: Path) -> dict[int, str | None]:
    """line number -> the host of the `# failJSON:` comment before it (None when it names no host)."""
    hosts: dict[int, str | None] = {}
    pending: dict[str, Any] | None = None
    for number, text in enumerate(raw_lines(path), start=1):
        if text.startswith("# failJSON:"):
            pending = json.loads(text.removeprefix("# failJSON:"))
        elif text.strip() and not text.startswith("#"):
            if pending is not None:
                hosts[number] = pending.get("host")
            pending = None
    return hosts


def test_fail2ban_files_are_all_classified(realdata: Path) -> None:
    names = {p.name for p in (realdata / FAIL2BAN).iterdir()}
    assert names == set(FAIL2BAN_ACCESS_LOGS) | set(FAIL2BAN_NOT_ACCESS_LOGS)


def test_fail2ban_client_ip_is_the_expected_host(realdata: Path, tmp_path: Path) -> None:
    manifest, table = run_ingest([str(realdata / FAIL2BAN)], tmp_path / "store")
    by_id = {i.file_id: i for i in manifest.inputs}
    assert {os.path.basename(i.path) for i in manifest.inputs} == set(FAIL2BAN_ACCESS_LOGS)
    assert {os.path.basename(s["path"]) for s in manifest.skipped} == set(FAIL2BAN_NOT_ACCESS_LOGS)
    for record in manifest.inputs:
        name = os.path.basename(record.path)
        assert record.format in ({FAIL2BAN_FORMATS[name]} if name in FAIL2BAN_FORMATS else NCSA_FORMATS), name
        assert record.rejected_by_reason == FAIL2BAN_ACCESS_LOGS[name], name
    hosts = {i.file_id: fail_json_hosts(realdata / FAIL2BAN / os.path.basename(i.path)) for i in manifest.inputs}
    checked: list[str] = []
    for row in parsed_rows(table):
        host = hosts[row["file_id"]].get(row["line"])
        if host is None:
            continue
        assert row["client_ip"] == host, (by_id[row["file_id"]].path, row["line"])
        checked.append(host)
    assert len(checked) == 27
    families = {6 if ":" in h else 4 for h in checked}
    in_data = {6 if ":" in h else 4 for hs in hosts.values() for h in hs.values() if h}
    # The one IPv6 host of these access logs is an HAProxy client (2001:db8::1234:58430: address, then port);
    # a ::ffff:192.168.33.1 client reads as the IPv4 address it is.
    assert families == in_data == {4, 6}


@pytest.mark.parametrize("name", sorted(FAIL2BAN_NOT_ACCESS_LOGS))
def test_fail2ban_non_access_log_is_refused(realdata: Path, tmp_path: Path, name: str) -> None:
    assert_format_error_names(realdata / FAIL2BAN / name, tmp_path)


# -- tool-captures: real DDoS tools against a loopback nginx ------------------------------------------------

#: Every access-log capture (the nginx error log is refused); no line of them is an oddity to reject.
TOOL_CAPTURES = {"crafted_sample.log": 20, "goldeneye_sample.log": 3788, "slowloris_sample.log": 10}

MIRAI_UAS = frozenset({
    "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/51.0.2704.103 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/52.0.2743.116 Safari/537.36",
    "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/51.0.2704.103 Safari/537.36",
    "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/52.0.2743.116 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_6) AppleWebKit/601.7.7 (KHTML, like Gecko) Version/9.1.2 "
    "Safari/601.7.7",
})


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, list[dict[str, Any]]]]:
    if not REALDATA.is_dir():
        pytest.skip(f"real data folder {REALDATA} is absent (it sits beside the repo as ../shared/realdata)")
    manifest, table = run_ingest([str(REALDATA / "tool-captures" / n) for n in sorted(TOOL_CAPTURES)],
                                 tmp_path_factory.mktemp("captures") / "store")
    rows = table.to_pylist()
    return {os.path.basename(i.path): (i, [r for r in rows if r["file_id"] == i.file_id])
            for i in manifest.inputs}


def test_tool_captures_fully_parsed(realdata: Path, captures: dict[str, tuple[Any, list[dict[str, Any]]]]) -> None:
    on_disk = {p.name for p in (realdata / "tool-captures").glob("*.log")}
    assert on_disk == set(TOOL_CAPTURES) | {"slowloris_nginx_error.log"}
    for name, count in TOOL_CAPTURES.items():
        record, rows = captures[name]
        assert record.format == "combined", name
        assert (record.lines_read, record.lines_parsed, record.rejected_by_reason) == (count, count, {}), name
        assert all(r["client_ip"] == "127.0.0.1" and r["ip_family"] == 4 for r in rows)


def test_slowloris_lines_are_408_with_no_bytes(captures: dict[str, tuple[Any, list[dict[str, Any]]]]) -> None:
    _, rows = captures["slowloris_sample.log"]
    assert len(rows) == 10
    assert {(r["status"], r["bytes"], r["method"], r["path"], r["protocol"]) for r in rows} == {
        (408, 0, "GET", "/", "HTTP/1.1")}
    assert all(re.fullmatch(r"\d{1,4}", r["query"]) for r in rows)
    assert rows[0]["query"] == "58" and rows[-1]["query"] == "1576"


def test_goldeneye_lines_have_random_queries(captures: dict[str, tuple[Any, list[dict[str, Any]]]]) -> None:
    _, rows = captures["goldeneye_sample.log"]
    # 1-5 pairs of key (3-10) = value (3-20) from buildblock(): a-y, A-Y, 0-8 (z, Z and 9 never occur).
    pair = r"[a-yA-Y0-8]{3,10}=[a-yA-Y0-8]{3,20}"
    shape = re.compile(rf"{pair}(?:&{pair}){{0,4}}")
    assert all(r["method"] == "GET" and r["path"] == "/" and r["status"] == 200 for r in rows)
    assert all(r["query"] and shape.fullmatch(r["query"]) for r in rows)
    assert len({r["query"] for r in rows}) == len(rows)
    assert len({r["user_agent"] for r in rows}) == 2560


def test_mirai_replicas_show_the_five_user_agents(captures: dict[str, tuple[Any, list[dict[str, Any]]]]) -> None:
    _, rows = captures["crafted_sample.log"]
    agents = {r["user_agent"] for r in rows}
    assert agents >= MIRAI_UAS
    assert [r["line"] for r in rows if r["user_agent"] is None] == [13, 14]  # the replicas sending no UA


def test_slowloris_error_log_is_refused(realdata: Path, tmp_path: Path) -> None:
    assert_format_error_names(realdata / "tool-captures" / "slowloris_nginx_error.log", tmp_path)


# -- the accounting identity, on every file of the real data ------------------------------------------------

def _decoded(data: bytes) -> bytes:
    if data.startswith(b"\x1f\x8b"):
        return gzip.decompress(data)
    if data.startswith(b"BZh"):
        return bz2.decompress(data)
    if data.startswith(b"\x28\xb5\x2f\xfd"):
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data


def count_lines(data: bytes) -> int:
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


@pytest.mark.slow
def test_accounting_identity_on_every_real_file(realdata: Path, tmp_path: Path) -> None:
    """Every file (logs, READMEs, YAML, asserts) forced through `combined`: nothing skipped, nothing lost."""
    files = sorted(os.path.join(root, name) for root, _, names in os.walk(realdata) for name in names)
    assert len(files) > 250
    store = tmp_path / "store"
    manifest = ingest(files, store, options=IngestOptions(format="combined"))
    assert manifest.skipped == []
    assert [i.path for i in manifest.inputs] == files
    total_rows = 0
    for record in manifest.inputs:
        data = Path(record.path).read_bytes()
        assert record.sha256 == hashlib.sha256(data).hexdigest(), record.path
        expected = count_lines(_decoded(data))
        assert record.lines_read == record.lines_parsed + record.lines_rejected, record.path
        assert record.lines_read == expected, record.path
        assert sum(record.rejected_by_reason.values()) == record.lines_rejected, record.path
        stored = 0
        for part in record.parts:
            table = pq.read_table(store / REQUESTS / part, columns=["file_id", "line"])
            assert set(table.column("file_id").to_pylist()) <= {record.file_id}
            stored += table.num_rows
        assert stored == record.lines_read, record.path
        total_rows += stored
    on_disk = sum(pq.ParquetFile(p).metadata.num_rows for p in (store / REQUESTS).glob("*.parquet"))
    assert on_disk == total_rows == manifest.totals["lines_read"]
