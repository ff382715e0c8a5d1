"""Load balancer, CDN, proxy and W3C formats: real logs, golden lines, and where a failure happened."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from floodwitness.formats import FORMATS
from floodwitness.formats.detect import detect
from floodwitness.formats.spec import SpecFormat
from floodwitness.schema import EDGE_RESULTS, REJECT_REASONS

from .conftest import REALDATA, run_ingest

if TYPE_CHECKING:
    from pathlib import Path

CASES = "crowdsec-hub/cases"

#: Every log of a supported non-NCSA format in the real data: the format auto-detection must choose, and
#: every rejected line (line -> reason) with why it is rejected. Nothing else may be rejected.
SUPPORTED: dict[str, tuple[str, dict[int, str]]] = {
    f"{CASES}/aws-alb-http-bad-user-agent/aws-alb-http-bad-user-agent.log": ("aws_alb", {}),
    f"{CASES}/aws-alb-logs/aws-alb-logs.log": ("aws_alb", {}),
    f"{CASES}/aws-cloudfront-logs/aws-cloudfront-logs.log": ("cloudfront", {}),  # no #Fields header: default
    f"{CASES}/caddy-basic-auth-bf/caddy-logs.log": ("caddy", {}),
    f"{CASES}/caddy-logs/caddy-logs.log": ("caddy", {
        11: "not_a_request",  # a reverse_proxy debug message ("selected upstream"), not an access-log entry
        12: "empty_line"}),  # the file ends with a blank line
    f"{CASES}/envoy-http-bad-user-agent/envoy-http-bad-user-agent.log": ("envoy", {}),
    f"{CASES}/envoy-http-crawl-non_statics/envoy-http-crawl-non_statics.log": ("envoy", {}),
    # Container-runtime-prefixed JSON and default-text lines mixed in one file, IPv4 and IPv6.
    f"{CASES}/envoy-logs/envoy.log": ("envoy", {}),
    f"{CASES}/haproxy-logs/haproxy-logs.log": ("haproxy", {
        3: "not_a_request", 4: "not_a_request", 5: "not_a_request"}),  # SSL handshake failures / heartbeat attack
    f"{CASES}/traefik_base-http-scenario/traefik_base-http-scenario.log": ("traefik_json", {}),
    f"{CASES}/traefik_clf/traefik_clf.log": ("traefik_clf", {8: "empty_line", 9: "empty_line"}),
    f"{CASES}/traefik_json/traefik_json.log": ("traefik_json", {
        6: "format_mismatch"}),  # "DEBUG: CrowdsecBouncerTraefikPlugin: ..." a plugin's message
    "iis-w3c/test_data_ex960101.log": ("iis_w3c", {1: "comment"}),
    # IIS: every # line (a header block per restart) is a comment; nothing else is rejected.
    "iis-w3c/test_data_u_ex100815.log": ("iis_w3c", {}),
    "iis-w3c/test_data_u_ex160110.log": ("iis_w3c", {}),
}

#: Logs of these types that are not access logs of a supported format, and why they are refused.
REFUSED: dict[str, str] = {
    f"{CASES}/caddy-coraza/coraza.log": "Caddy WAF (Coraza) messages, no access-log entry",
    f"{CASES}/caddy-crs-anomaly-score/coraza.log": "Caddy WAF (Coraza) messages, no access-log entry",
    f"{CASES}/tcpudp-flood-traefik/tcpudp-flood-traefik.log": "Traefik TCP/UDP debug messages, no HTTP request",
    "iis-w3c/test_data_ex031118.log": "IISW3C with only date c-ip cs-uri-stem cs-bytes: no time of day, no status",
    "iis-w3c/test_data_pf040903.log": "a Windows firewall log in W3C form (no c-ip, not HTTP)",
    "iis-w3c/test_data_ex010320.log": "the old comma-separated IIS format, not W3C (not supported)",
}

#: crowdsec log types these tests cover (iis: the XML event form, refused as no format fits).
EDGE_LOG_TYPES = frozenset({"aws-alb", "aws-cloudfront", "caddy", "containerd", "haproxy", "traefik",
                            "tcpudp-traefik", "iis"})


@pytest.fixture(scope="module")
def supported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, list[dict[str, Any]]]]:
    if not REALDATA.is_dir():
        pytest.skip(f"real data folder {REALDATA} is absent (it sits beside the repo as ../shared/realdata)")
    paths = [str(REALDATA / name) for name in SUPPORTED]
    manifest, table = run_ingest(paths, tmp_path_factory.mktemp("edge") / "store")
    rows = table.to_pylist()
    return {os.path.relpath(i.path, REALDATA): (i, [r for r in rows if r["file_id"] == i.file_id])
            for i in manifest.inputs}


def test_every_case_of_these_types_is_classified(realdata: Path) -> None:
    for case in (realdata / CASES).iterdir():
        kind = re.search(r"^log_type:\s*(\S+)", (case / "config.yaml").read_text("utf-8"), re.MULTILINE)
        assert kind is not None
        if kind.group(1) in EDGE_LOG_TYPES:
            logs = {os.path.relpath(p, realdata) for p in case.glob("*.log")}
            assert logs <= set(SUPPORTED) | set(REFUSED) | {f"{CASES}/iis-xml-logs/iis-logs.log"}, logs


@pytest.mark.parametrize("name", sorted(SUPPORTED))
def test_supported_log_parses_with_auto(realdata: Path, supported: dict[str, Any], name: str) -> None:
    record, rows = supported[name]
    fmt, rejects = SUPPORTED[name]
    assert record.format == fmt and record.format_confidence is not None and record.format_confidence >= 0.8
    lines = (realdata / name).read_bytes().decode("utf-8", "replace").splitlines()
    assert record.lines_read == len(lines) == len(rows)
    got = {r["line"]: r["reject_reason"] for r in rows if r["reject_reason"]}
    if fmt == "iis_w3c":
        rejects = {n: "comment" for n, text in enumerate(lines, start=1) if text.startswith("#")}
    assert got == rejects
    for row in rows:
        if row["reject_reason"] is None:
            text = lines[row["line"] - 1]
            assert row["ts"] is not None and row["status"] is not None and row["path"], (name, row["line"])
            assert row["client_ip"] and (row["client_ip"] in text or row["client_ip"].strip("[]") in text)


def test_refused_logs_name_the_candidates(realdata: Path, tmp_path: Path) -> None:
    from floodwitness.errors import FormatError
    from floodwitness.ingest import ingest

    for index, name in enumerate(REFUSED):
        with pytest.raises(FormatError, match="no known log format fits this file"):
            ingest([str(realdata / name)], tmp_path / f"s{index}")


def test_iis_fields_and_nmap_line(supported: dict[str, Any]) -> None:
    _, rows = supported["iis-w3c/test_data_u_ex160110.log"]
    nmap = [r for r in rows if r["user_agent"] and "Nmap" in r["user_agent"]]
    assert nmap and all(" " in r["user_agent"] and "+" not in r["user_agent"] for r in nmap)
    first = rows[4]
    assert (first["ts"], first["client_ip"], first["method"], first["path"], first["status"], first["request_time"]) \
        == (datetime(2016, 1, 10, 0, 7, 26, tzinfo=UTC), "188.68.224.62", "GET", "/httptest.php", 404, 0.591)


def test_envoy_mixed_file_reads_both_layouts(supported: dict[str, Any]) -> None:
    _, rows = supported[f"{CASES}/envoy-logs/envoy.log"]
    by_line = {r["line"]: r for r in rows}
    assert (by_line[1]["client_ip"], by_line[1]["upstream_addr"], by_line[1]["edge_result"]) == (
        "10.0.0.12", "10.42.0.82:8080", "backend")
    assert by_line[2]["edge_result"] == "edge"  # direct_response: a redirect Envoy made itself
    assert (by_line[4]["client_ip"], by_line[4]["status"], by_line[4]["request_time"]) == ("10.0.35.28", 204, 0.226)
    assert by_line[5]["client_ip"] == "fd00:1234:5678::5a24" and by_line[5]["ip_family"] == 6
    assert by_line[9]["client_ip"] == "10.42.0.1"  # text line: the right-most X-Forwarded-For hop


def test_haproxy_timers_and_termination(supported: dict[str, Any]) -> None:
    _, rows = supported[f"{CASES}/haproxy-logs/haproxy-logs.log"]
    first = rows[0]
    assert (first["client_ip"], first["ts"], first["request_time"], first["upstream_time"], first["edge_detail"],
            first["edge_result"]) == ("117.136.40.129", datetime(2015, 1, 14, 12, 48, 57, 127000, tzinfo=UTC),
                                      pytest.approx(0.173), pytest.approx(0.003), "--NN", "backend")


# -- golden lines: formats with no file in the real data, and the failure cases of the others -------------

ALB_502 = ('https 2024-03-01T10:00:00.000000Z app/my-lb/50dc6c495c0c9188 203.0.113.7:5000 - -1 -1 -1 502 - 120 277 '
           '"GET https://shop.example.com:443/cart?id=3 HTTP/1.1" "Mozilla/5.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 '
           'arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 '
           '"Root=1-58337262-36d228ad5d99923122bbe354" "shop.example.com" "-" 0 2024-03-01T09:59:59.900000Z '
           '"forward" "-" "TargetConnectionErrorCode" "10.0.0.1:80" "-" "-" "-"')
ALB_460 = ALB_502.replace(" 502 - ", " 460 - ").replace('"TargetConnectionErrorCode"', '"-"')
ALB_WAF = ALB_502.replace(" 502 - ", " 403 - ").replace('"forward"', '"waf"').replace('"TargetConnectionErrorCode"',
                                                                                    '"-"')

GOLDEN: list[tuple[str, str, dict[str, Any]]] = [
    ("aws_alb", ALB_502, {"status": 502, "upstream_status": None, "upstream_time": None, "request_time": None,
                          "edge_result": "backend_unreachable", "edge_detail": "TargetConnectionErrorCode",
                          "host": "shop.example.com", "path": "/cart", "query": "id=3", "client_ip": "203.0.113.7"}),
    ("aws_alb", ALB_460, {"status": 460, "edge_result": "client_abort"}),
    ("aws_alb", ALB_WAF, {"status": 403, "edge_result": "edge", "edge_detail": "waf"}),
    ("aws_elb", '2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 - -1 -1 -1 504 0 0 0 '
                '"GET http://www.example.com:80/ HTTP/1.1" "curl/7.38.0" - -',
     {"ts": datetime(2015, 5, 13, 23, 39, 43, 945958, tzinfo=UTC), "status": 504, "upstream_status": None,
      "edge_result": "backend_unreachable", "upstream_addr": None}),
    ("aws_s3", FORMATS["aws_s3"].example.replace(" 200 - 113 ", " 503 SlowDown 113 "),
     {"status": 503, "edge_detail": "SlowDown", "edge_result": "edge_overload", "request_time": 0.007}),
    ("haproxy", 'Feb  6 12:14:14 localhost haproxy[14389]: 10.0.1.2:33317 [06/Feb/2009:12:14:14.655] http-in '
                'static/<NOSRV> -1/-1/-1/-1/8001 503 212 - - SC-- 1/1/1/0/0 0/0 "GET /index.html HTTP/1.1"',
     {"status": 503, "edge_result": "backend_unreachable", "edge_detail": "SC--", "upstream_time": None}),
    ("haproxy", '10.0.1.2:33318 [06/Feb/2009:12:14:15.000] http-in static/srv1 10/5000/-1/-1/5010 503 212 - - sQ-- '
                '9/9/9/9/0 0/12 "GET / HTTP/1.1"', {"edge_result": "edge_overload"}),
    ("haproxy", '10.0.1.2:33319 [06/Feb/2009:12:14:16.000] http-in static/srv1 5/0/0/-1/20 -1 0 - - CD-- '
                '1/1/1/1/0 0/0 "GET / HTTP/1.1"', {"status": 0, "edge_result": "client_abort"}),
    ("squid", '1286536309.585    921 192.168.0.68 TCP_MEM_HIT/200 507 GET http://example.com/a.png - HIER_NONE/- '
              'image/png', {"edge_result": "cache", "upstream_addr": None, "host": "example.com", "path": "/a.png"}),
    ("squid", '1286536310.001      0 192.168.0.69 TCP_DENIED/403 3986 CONNECT example.com:25 - HIER_NONE/- text/html',
     {"edge_result": "edge", "status": 403, "method": "CONNECT", "path": "example.com:25"}),
    ("cloudflare", '{"ClientIP":"2001:db8::7","ClientRequestHost":"x.test","ClientRequestMethod":"GET",'
                   '"ClientRequestURI":"/?a=1","EdgeResponseStatus":522,"EdgeResponseBytes":0,"OriginResponseStatus":0,'
                   '"EdgeStartTimestamp":1700000000123456789,"RayID":"8","CacheCacheStatus":"miss"}',
     {"ts": datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=UTC), "client_ip": "2001:db8::7", "ip_family": 6,
      "status": 522, "upstream_status": None, "edge_result": "backend_unreachable", "query": "a=1"}),
    ("gcp_lb", FORMATS["gcp_lb"].example.replace("response_sent_by_backend", "failed_to_connect_to_backend"),
     {"edge_result": "backend_unreachable", "path": "/console/", "host": "34.1.0.35", "request_time": 0.058927}),
    ("envoy", '[2024-01-01T00:00:00.000Z] "GET /x HTTP/1.1" 503 UH 0 19 0 - "198.51.100.9" "curl/8" "id" "a.test" "-"',
     {"status": 503, "edge_result": "backend_unreachable", "edge_detail": "UH", "upstream_addr": None,
      "client_ip": "198.51.100.9"}),
    ("envoy", '[2024-01-01T00:00:00.000Z] "GET /x HTTP/1.1" 0 DC 0 0 3 - "198.51.100.9" "curl/8" "id" "a.test" "-"',
     {"status": 0, "edge_result": "client_abort"}),
    ("traefik_clf", FORMATS["traefik_clf"].example, {"edge_result": "backend", "upstream_addr": "http://172.17.0.3:80"}),
    ("cloudfront", FORMATS["cloudfront"].example.replace("\tError\t", "\tLimitExceeded\t", 1),
     {"edge_result": "edge_overload", "bytes": 703, "request_time": 0.113, "host": "hub-cdn.crowdsec.net"}),
]


def parse_one(tmp_path: Path, line: str, fmt: str) -> dict[str, Any]:
    (tmp_path / "in.log").write_text(line + "\n", encoding="utf-8")
    manifest, table = run_ingest([str(tmp_path / "in.log")], tmp_path / "store")
    assert manifest.inputs[0].format == fmt
    row: dict[str, Any] = table.to_pylist()[0]
    assert row["reject_reason"] is None, row
    return row


@pytest.mark.parametrize(("fmt", "line", "expected"), GOLDEN, ids=[f"{g[0]}-{i}" for i, g in enumerate(GOLDEN)])
def test_golden_edge_lines(tmp_path: Path, fmt: str, line: str, expected: dict[str, Any]) -> None:
    row = parse_one(tmp_path, line, fmt)
    assert {k: row[k] for k in expected} == expected


def test_edge_vocabulary_and_reasons_are_documented() -> None:
    values = {g[2]["edge_result"] for g in GOLDEN if "edge_result" in g[2]}
    assert values == set(EDGE_RESULTS)
    assert "not_a_request" in REJECT_REASONS


def test_spec_layouts_name_every_group() -> None:
    for fmt in FORMATS.values():
        if isinstance(fmt, SpecFormat):
            for layout in fmt.layouts:
                if layout.compiled is not None:
                    assert layout.compiled.groups == len(layout.compiled.groupindex), fmt.name


# -- W3C: a header that changes mid-file, also across the engine's groups of lines ------------------------

FIRST = "#Fields: date time c-ip cs-method cs-uri-stem sc-status"
SECOND = "#Fields: date time cs-method cs-uri-stem c-ip sc-status sc-bytes time-taken"


def test_w3c_header_change_mid_file(tmp_path: Path) -> None:
    n = 40
    lines = ["#Software: Microsoft Internet Information Services 10.0", FIRST]
    lines += [f"2024-05-01 10:00:{i:02d} 192.0.2.{i} GET /a{i} 200" for i in range(n)]
    lines += [SECOND]
    lines += [f"2024-05-01 11:00:{i:02d} GET /b{i} 198.51.100.{i} 503 10 {i}" for i in range(n)]
    path = tmp_path / "u_ex240501.log"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    manifest, table = run_ingest([str(path)], tmp_path / "store")
    record = manifest.inputs[0]
    rows = table.to_pylist()
    assert record.format == "iis_w3c" and record.rejected_by_reason == {"comment": 3}
    a = [r for r in rows if r["path"] and r["path"].startswith("/a")]
    b = [r for r in rows if r["path"] and r["path"].startswith("/b")]
    assert [r["client_ip"] for r in a] == [f"192.0.2.{i}" for i in range(n)]
    assert [r["client_ip"] for r in b] == [f"198.51.100.{i}" for i in range(n)]
    assert {r["status"] for r in b} == {503} and {r["bytes"] for r in b} == {10} and {r["bytes"] for r in a} == {None}
    assert b[7]["request_time"] == pytest.approx(0.007)


def test_w3c_header_carries_into_the_next_group() -> None:
    """The engine parses a big file in groups of lines: the header in force at the end of one group is the
    one the next group's first lines are read with."""
    import pyarrow as pa

    from floodwitness.engine import Engine
    from floodwitness.formats.w3c import IIS
    from floodwitness.ingest.pipeline import LINES_TABLE, parse_sql
    from floodwitness.inputs.lines import LINE_SCHEMA

    def group(start: int, texts: list[str]) -> pa.Table:
        return pa.table({"file_id": [0] * len(texts), "line": list(range(start, start + len(texts))),
                         "text": [t + "\n" for t in texts], "pre_reject": [None] * len(texts)}, schema=LINE_SCHEMA)

    first = group(1, [FIRST, "2024-05-01 10:00:00 192.0.2.1 GET /a 200", SECOND])
    second = group(4, ["2024-05-01 11:00:00 GET /b 198.51.100.1 503 10 7"])
    fmt = IIS.bind([FIRST]).after(first)
    assert fmt.fields == tuple(SECOND.split()[1:])
    assert IIS.after(second) == IIS  # no header in a group: the one in force stays
    engine = Engine()
    try:
        engine.register_table(LINES_TABLE, second)
        row = engine.sql(parse_sql(fmt)).to_pylist()[0]
    finally:
        engine.close()
    assert (row["client_ip"], row["status"], row["bytes"], row["reject_reason"]) == ("198.51.100.1", 503, 10, None)


def test_detection_prefers_the_specific_json_format() -> None:
    caddy = FORMATS["caddy"].example
    assert detect([caddy] * 10).format.name == "caddy"
    nginx_json = FORMATS["nginx_json"].example
    assert detect([nginx_json] * 10).format.name == "nginx_json"
