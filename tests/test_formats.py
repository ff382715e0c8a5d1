"""Stage 2: formats. Golden lines from real logs, detection, and properties of the parsers."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from floodwitness.errors import FormatError
from floodwitness.formats import FORMATS, get_format
from floodwitness.formats.detect import detect
from floodwitness.formats.template import LENIENT_CLF, TemplateFormat, only_group
from floodwitness.ingest.pipeline import parse_sql

from .conftest import parsed_rows, run_ingest

if TYPE_CHECKING:
    from pathlib import Path


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def parse_lines(tmp_path: Path, lines: list[str], fmt: str = "auto") -> tuple[Any, list[dict[str, Any]]]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "in.log"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    manifest, table = run_ingest([str(path)], tmp_path / "store", format=fmt)
    return manifest, table.to_pylist()


# Real lines (see ../shared/realdata/formats.md for their provenance) and what they must parse to.
GOLDEN: list[tuple[str, str, dict[str, Any]]] = [
    ("combined",
     '83.149.9.216 - - [17/May/2015:10:05:03 +0000] "GET /presentations/logstash-monitorama-2013/images/kibana-search.png'
     ' HTTP/1.1" 200 203023 "http://semicomplete.com/presentations/logstash-monitorama-2013/" "Mozilla/5.0 (Macintosh;'
     ' Intel Mac OS X 10_9_1) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/32.0.1700.77 Safari/537.36"',
     {"client_ip": "83.149.9.216", "ip_family": 4, "ts": utc(2015, 5, 17, 10, 5, 3), "method": "GET",
      "path": "/presentations/logstash-monitorama-2013/images/kibana-search.png", "query": None,
      "protocol": "HTTP/1.1", "status": 200, "bytes": 203023,
      "referer": "http://semicomplete.com/presentations/logstash-monitorama-2013/",
      "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1) AppleWebKit/537.36 (KHTML, like Gecko) "
                    "Chrome/32.0.1700.77 Safari/537.36"}),
    ("common",
     'in24.inetnebr.com - - [01/Aug/1995:00:00:01 -0400] "GET /shuttle/missions/sts-68/news/sts-68-mcc-05.txt'
     ' HTTP/1.0" 200 1839',
     {"client_ip": "in24.inetnebr.com", "ip_family": 0, "ts": utc(1995, 8, 1, 4, 0, 1), "status": 200,
      "bytes": 1839, "path": "/shuttle/missions/sts-68/news/sts-68-mcc-05.txt", "referer": None}),
    ("common", 'uplherc.upl.com - - [01/Aug/1995:00:00:07 -0400] "GET / HTTP/1.0" 304 0',
     {"client_ip": "uplherc.upl.com", "ip_family": 0, "status": 304, "bytes": 0, "path": "/"}),
    ("vhost_combined",
     'google.com:80 ::1 - - [01/Jul/2013:06:25:11 -0500] "OPTIONS * HTTP/1.0" 200 136 "-"'
     ' "Apache (internal dummy connection)"',
     {"host": "google.com", "client_ip": "::1", "ip_family": 6, "ts": utc(2013, 7, 1, 11, 25, 11),
      "method": "OPTIONS", "path": "*", "user_agent": "Apache (internal dummy connection)", "referer": None}),
    ("vhost_combined", 'bing.com:80 142.250.190.142 - - [01/Jul/2013:06:41:31 -0500] "-" 408 0 "-" "-"',
     {"host": "bing.com", "client_ip": "142.250.190.142", "status": 408, "bytes": 0, "method": None,
      "path": None, "protocol": None, "user_agent": None}),
    ("vhost_combined_noport",
     'www.sitename.com 192.0.2.222 - - [18/Aug/2024:21:08:39 +0100] "GET /filename.jpg HTTP/1.1" 403 332 "-"'
     ' "TrackBack/1.02"',
     {"host": "www.sitename.com", "client_ip": "192.0.2.222", "ts": utc(2024, 8, 18, 20, 8, 39),
      "status": 403, "user_agent": "TrackBack/1.02"}),
    ("combined_xff",
     '12.34.56.78 - - [20/Jan/2015:19:53:28 +0100] "\\x03\\x00\\x00/*\\xE0\\x00\\x00\\x00\\x00\\x00Cookie: '
     'mstshash=Administr" 400 47 "-" "-" "-"',
     {"client_ip": "12.34.56.78", "status": 400, "method": None, "xff": None,
      "path": "\\x03\\x00\\x00/*\\xE0\\x00\\x00\\x00\\x00\\x00Cookie: mstshash=Administr"}),
    ("combined_xff", '12.34.56.78 - - [20/Jan/2015:19:53:28 +0100] "" 400 47 "-" "-" "-"',
     {"status": 400, "method": None, "path": None}),
    ("combined_timing",
     '2a02:2f0e:ff::1 - - [17/May/2024:10:05:03 +0530] "GET /api/v1/items?id=7&x=1 HTTP/2.0" 503 162 "-"'
     ' "okhttp/4.9.3" 1.250 -',
     {"client_ip": "2a02:2f0e:ff::1", "ip_family": 6, "ts": utc(2024, 5, 17, 4, 35, 3), "path": "/api/v1/items",
      "query": "id=7&x=1", "protocol": "HTTP/2.0", "status": 503, "request_time": 1.25, "upstream_time": None}),
    ("combined_timing",
     '198.51.100.4 - - [17/May/2024:10:05:03 -0700] "POST /login HTTP/1.1" 502 0 "https://a.example/" "x"'
     ' 0.304 0.100, 0.204',
     {"ts": utc(2024, 5, 17, 17, 5, 3), "status": 502, "request_time": 0.304, "upstream_time": 0.204,
      "method": "POST", "referer": "https://a.example/"}),
    ("nginx_upstream_time",
     '198.51.100.4 - - [17/May/2024:10:05:03 +0200] "GET / HTTP/1.1" 200 612 "-" "curl/8.5.0" rt=0.004 '
     'uct="0.000" uht="0.003" urt="0.003"',
     {"request_time": 0.004, "upstream_time": 0.003, "user_agent": "curl/8.5.0"}),
]


@pytest.mark.parametrize(("fmt", "line", "expected"), GOLDEN, ids=[f"{g[0]}-{i}" for i, g in enumerate(GOLDEN)])
def test_golden_lines(tmp_path: Path, fmt: str, line: str, expected: dict[str, Any]) -> None:
    manifest, rows = parse_lines(tmp_path, [line] * 3)
    assert manifest.inputs[0].format == fmt
    assert manifest.inputs[0].lines_parsed == 3, rows[0]["reject_reason"]
    for key, value in expected.items():
        assert rows[0][key] == value, key


def test_apache_escaped_quotes_take_the_regex_path(tmp_path: Path) -> None:
    line = r'1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /a\"b HTTP/1.1" 200 5 "-" "Mozilla \"quoted\" agent"'
    _, rows = parse_lines(tmp_path, [line, line], fmt="combined")
    assert rows[0]["reject_reason"] is None
    assert rows[0]["user_agent"] == r"Mozilla \"quoted\" agent"
    assert rows[0]["path"] == r"/a\"b" and rows[0]["status"] == 200


def test_fast_path_and_regex_path_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [line for fmt, line, _ in GOLDEN if fmt in ("combined", "combined_timing")] * 2
    _, fast = parse_lines(tmp_path / "a", lines, fmt="combined_timing")
    monkeypatch.setattr(TemplateFormat, "pieces", property(lambda self: None))
    parse_sql.cache_clear()  # the compiled SQL is cached per format: without this both runs take the fast path
    try:
        assert '"_p"' not in parse_sql(get_format("combined_timing"))  # no split: every line takes the regex
        _, slow = parse_lines(tmp_path / "b", lines, fmt="combined_timing")
    finally:
        parse_sql.cache_clear()
    assert fast == slow


def test_carriage_returns_read_the_same_on_both_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path splits the line as read and strips only its last piece: CRLF endings, a CR inside a
    field and a CR-only line must come out exactly as the regex path (which reads the stripped line) has them."""
    good = '1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /x?y=1 HTTP/1.1" 200 5 "-" "Mozilla"'
    lines = [good, good + "\r", good.replace("Mozilla", "Moz\rilla"), "\r", good + " 0.1 0.2\r",
             good.replace("200 5", "200\r 5"), "\r#" + good]
    path = tmp_path / "cr.log"
    path.write_bytes("".join(line + "\n" for line in lines).encode())
    _, fast = run_ingest([str(path)], tmp_path / "a", format="combined_timing")
    monkeypatch.setattr(TemplateFormat, "pieces", property(lambda self: None))
    parse_sql.cache_clear()
    try:
        _, slow = run_ingest([str(path)], tmp_path / "b", format="combined_timing")
    finally:
        parse_sql.cache_clear()
    assert fast.to_pylist() == slow.to_pylist()
    rows = fast.to_pylist()
    assert rows[2]["user_agent"] == "Mozilla" and rows[3]["reject_reason"] == "empty_line"
    assert rows[6]["reject_reason"] == "comment"


def test_mixed_file_reads_sibling_layouts(tmp_path: Path) -> None:
    lines = [
        '164.68.112.178 - - [08/Jun/2020:07:01:28 +0000] "GET / HTTP/1.0" 500 799 "-" "masscan/1.0"',
        '164.68.112.178 - - [08/Jun/2020:07:01:29 +0000] "GET /a HTTP/1.0" 500 799 "-" "masscan/1.0"',
        '116.203.1.1 - - [05/Mar/2021:09:01:38 +0100] "GET /test/lists/sip_30d.txt HTTP/1.0" 200 1513',
        'website.com:443 1.2.3.4 - - [25/Oct/2021:11:05:52 +0200] "GET /web HTTP/1.1" 403 6963 "abc.com" "UA"',
        '192.168.1.1 - [08/Jun/2020:08:04:43 +0000] "GET /api/test HTTP/1.1" 200 100 "-" "curl/7.68.0"',
        '127.0.0.2 - - [08/Aug/2022:21:18:26 +0000] "GET http://x:80/ip4.php HTTP/1.0" 400 255 "-" "-" "-"',
        "[Thu Oct 13 12:24:49.880562 2022] [auth_basic:error] [pid 10] [client 31.33.58.75:50229] AH01618",
    ]
    manifest, rows = parse_lines(tmp_path, lines)
    assert manifest.inputs[0].format == "combined"
    assert [r["reject_reason"] for r in rows] == [None] * 6 + ["format_mismatch"]
    assert [r["client_ip"] for r in rows[1:6]] == ["164.68.112.178", "116.203.1.1", "1.2.3.4", "192.168.1.1",
                                                   "127.0.0.2"]
    assert rows[2]["user_agent"] is None and rows[3]["user_agent"] == "UA"
    assert rows[5]["path"] == "http://x:80/ip4.php"


def test_bad_fields_are_counted_rejections(tmp_path: Path) -> None:
    good = '1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 5 "-" "ua"'
    lines = [good, good.replace("10/Oct", "10/Foo"), good.replace("10/Oct", "32/Oct"),
             good.replace(" 200 ", " 2x0 "), "", "   ", good.replace('"ua"', '"ua')]
    manifest, rows = parse_lines(tmp_path, lines, fmt="combined")
    assert [r["reject_reason"] for r in rows] == [None, "bad_timestamp", "bad_timestamp", "bad_status",
                                                  "empty_line", "empty_line", "format_mismatch"]
    record = manifest.inputs[0]
    assert record.lines_read == 7 == record.lines_parsed + record.lines_rejected
    assert record.rejected_by_reason == {"bad_status": 1, "bad_timestamp": 2, "empty_line": 2,
                                         "format_mismatch": 1}
    assert rows[1]["raw"] == lines[1]


def test_nginx_json(tmp_path: Path) -> None:
    obj = {"time_iso8601": "2024-05-17T10:05:03.250+02:00", "remote_addr": "203.0.113.7",
           "request": "GET /?q=1 HTTP/1.1", "status": "200", "body_bytes_sent": 612, "request_time": "0.004",
           "http_referer": "", "http_user_agent": 'Mozilla/5.0 "x" \\ y', "upstream_response_time": "0.1, 0.003",
           "http_x_forwarded_for": "198.51.100.1"}
    line = json.dumps(obj)
    manifest, rows = parse_lines(tmp_path, [line, line, "{not json", ""])
    assert manifest.inputs[0].format == "nginx_json"
    row = rows[0]
    assert row["ts"] == datetime(2024, 5, 17, 8, 5, 3, 250000, tzinfo=UTC)
    assert (row["client_ip"], row["path"], row["query"], row["status"], row["bytes"]) == (
        "203.0.113.7", "/", "q=1", 200, 612)
    assert row["user_agent"] == 'Mozilla/5.0 "x" \\ y' and row["referer"] is None
    assert row["upstream_time"] == 0.003 and row["xff"] == "198.51.100.1"
    assert [r["reject_reason"] for r in rows[2:]] == ["format_mismatch", "empty_line"]


def test_nginx_json_split_request_fields(tmp_path: Path) -> None:
    line = json.dumps({"msec": "1715933103.123", "remote_addr": "2001:db8::5", "request_method": "POST",
                       "request_uri": "/login?next=/", "server_protocol": "HTTP/1.1", "status": 401})
    _, rows = parse_lines(tmp_path, [line] * 2)
    assert rows[0]["ts"] == datetime(2024, 5, 17, 8, 5, 3, 123000, tzinfo=UTC)
    assert (rows[0]["method"], rows[0]["path"], rows[0]["query"], rows[0]["protocol"]) == (
        "POST", "/login", "next=/", "HTTP/1.1")
    assert rows[0]["ip_family"] == 6 and rows[0]["status"] == 401


def test_detection_error_names_candidates() -> None:
    with pytest.raises(FormatError) as err:
        detect(["hello world", "this is not a log"], source="notes.txt")
    text = str(err.value)
    assert text.startswith("notes.txt: no known log format fits this file (best matches of 2 sample lines: ")
    assert text.endswith("Name the format with --format (see `floodwitness formats`), or check that this is an "
                         "access log.")


def test_unknown_format_name() -> None:
    with pytest.raises(FormatError, match="unknown format 'nope'"):
        get_format("nope")


def test_every_format_documents_itself_and_parses_its_example(tmp_path: Path) -> None:
    for name, fmt in FORMATS.items():
        assert fmt.description and fmt.example and fmt.provides, name
        manifest, rows = parse_lines(tmp_path / name, [fmt.example] * 2, fmt=name)
        assert manifest.inputs[0].lines_parsed == 2, (name, rows[0]["reject_reason"])


def test_only_group_keeps_one_capture() -> None:
    for group in range(1, 11):
        pattern = only_group(LENIENT_CLF, group)
        assert re.compile(pattern).groups == 1
    line = 'h:1 1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 5 "r" "u" "x"'
    assert [re.match(only_group(LENIENT_CLF, g), line).group(1) for g in (2, 6, 10)] == [  # type: ignore[union-attr]
        "1.2.3.4", "GET / HTTP/1.1", "u"]


_GOOD = '1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET /x?y HTTP/1.1" 200 5 "-" "Mozilla"'
_near_miss = st.builds(
    lambda i, junk: _GOOD[:i] + junk + _GOOD[i:],
    st.integers(0, len(_GOOD)), st.text(alphabet='"[] \\-0123456789:/x\t', max_size=4))
_any_line = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=120)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                  HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(_near_miss, _any_line, st.just(_GOOD)), min_size=1, max_size=60),
       fmt=st.sampled_from(["combined", "common", "vhost_combined", "combined_timing", "nginx_json"]))
def test_parsers_never_crash_or_lose_lines(tmp_path_factory: pytest.TempPathFactory, lines: list[str],
                                           fmt: str) -> None:
    tmp = tmp_path_factory.mktemp("prop")
    manifest, rows = parse_lines(tmp, lines, fmt=fmt)
    record = manifest.inputs[0]
    assert record.lines_read == len(lines) == len(rows)
    assert record.lines_parsed + record.lines_rejected == record.lines_read
    assert [r["line"] for r in rows] == list(range(1, len(lines) + 1))
    for row in parsed_rows_from(rows):
        assert row["ts"] is not None and row["client_ip"] is not None


def parsed_rows_from(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["reject_reason"] is None]


__all__ = ["parsed_rows"]
