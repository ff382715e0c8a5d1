"""Every optional field may be absent: the whole chain (analyze and its terminal, JSON, HTML and Markdown
reports, `report`, `mitigate`, `watch --replay`) on logs that do not have one field, and on the real IIS log
that has no response sizes (issue #18, item 4: both crashed with "cannot convert float NaN to integer").

A simulated incident and a quiet log are rewritten as IIS W3C logs: the ``#Fields:`` header says which
fields a line has, so one field can be left out of the log itself (every format reads it the same way), and
`watch` reads it too. A W3C log never has the upstream or edge fields, so every case also runs without them.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner

from floodwitness.cli import main
from floodwitness.simulate import simulate

from .conftest import run_ingest

if TYPE_CHECKING:
    from pathlib import Path

#: W3C field -> what it fills in the normalized table (the log rewritten from the simulation has them all).
W3C_FIELDS = {
    "cs-method": "method", "cs-uri-stem": "path", "cs-uri-query": "query", "cs-version": "protocol",
    "cs-host": "host", "sc-status": "status", "sc-bytes": "bytes", "cs(Referer)": "referer",
    "cs(User-Agent)": "user_agent", "time-taken": "request_time",
}
ALWAYS = ("date", "time", "c-ip")
#: Columns no W3C log has: absent in every case below.
NEVER_IN_W3C = {"upstream_status", "upstream_time", "upstream_addr", "xff", "peer_ip", "edge_result", "edge_detail"}

_LINE = re.compile(r'^(\S+) - \S+ \[([^\]]+)\] "(\S+) (\S+) (\S+)" (\d{3}) (\d+|-) "([^"]*)" "([^"]*)" (\S+)')
_BAD_TEXT = re.compile(r"\b(nan|NaN|None|inf|Infinity)\b")


def _w3c(value: str) -> str:
    return "-" if value in ("", "-") else value.replace(" ", "+")


def _rewrite(log: Path, out: Path, fields: tuple[str, ...]) -> Path:
    """The simulated nginx log ``log`` as an IIS W3C log with only ``fields`` (times kept, in UTC)."""
    lines = [f"#Software: floodwitness test\n#Fields: {' '.join(fields)}\n"]
    with log.open(encoding="utf-8") as fh:
        for raw in fh:
            m = _LINE.match(raw)
            assert m, raw
            ip, when, method, url, protocol, status, size, referer, agent, taken = m.groups()
            stem, _, query = url.partition("?")
            utc = datetime.strptime(when, "%d/%b/%Y:%H:%M:%S %z").astimezone(UTC)
            values = {"date": f"{utc:%Y-%m-%d}", "time": f"{utc:%H:%M:%S}", "c-ip": ip,
                      "cs-method": method, "cs-uri-stem": stem, "cs-uri-query": query or "-",
                      "cs-version": protocol, "cs-host": "shop.example", "sc-status": status,
                      "sc-bytes": "0" if size == "-" else size, "cs(Referer)": _w3c(referer),
                      "cs(User-Agent)": _w3c(agent),
                      "time-taken": "-" if taken == "-" else str(round(float(taken) * 1000))}
            lines.append(" ".join(values[f] for f in fields) + "\n")
    out.write_text("".join(lines), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sims")
    out = {}
    # the quiet log at 0.3: at 0.05 and 0.1 (1-2 requests a second) watch raises an internal_failure alert on
    # its own nginx log, with every field (a fault of its own, not of a missing field)
    for kind, scale in (("mirai", 0.05), ("quiet", 0.3)):
        simulate(kind, root / kind, seed=1, hours=0.5, scale=scale)
        out[kind] = root / kind / "access.log"
    return out


def _invoke(args: list[str]) -> str:
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _strict(text: str) -> Any:
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))


def _clean(text: str, what: str) -> None:
    bad = _BAD_TEXT.search(text)
    assert bad is None, f"{what}: {bad.group(0)!r} in {text[max(bad.start() - 200, 0):bad.end() + 100]!r}"


def _clean_html(text: str, what: str) -> None:
    """The page's text and its chart data (strict JSON); the bundled chart library is not ours to check."""
    data = re.search(r'<script type="application/json" id="fw-data">(.*?)</script>', text, re.S)
    assert data, what
    _strict(data.group(1))
    _clean(data.group(1), f"{what} chart data")
    _clean(re.sub(r"<(script|style)\b.*?</\1>", "", text, flags=re.S), what)


def _chain(log: Path, out: Path, *, rate_limits: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Every command on ``log``; returns the JSON report and the watch alerts. ``rate_limits``: also propose
    and replay them (a few seconds more)."""
    report_json, html, md = out / "report.json", out / "report.html", out / "report.md"
    terminal = _invoke(["analyze", str(log), "--json", str(report_json), "--html", str(html),
                        "--markdown", str(md), *(["--rate-limits"] if rate_limits else [])])
    _clean(terminal, "terminal")
    report = _strict(report_json.read_text(encoding="utf-8"))
    _clean_html(html.read_text(encoding="utf-8"), "analyze --html")
    _clean(md.read_text(encoding="utf-8"), "analyze --markdown")
    again_html, again_md = out / "again.html", out / "again.md"
    _invoke(["report", str(report_json), "--html", str(again_html), "--markdown", str(again_md)])
    _clean_html(again_html.read_text(encoding="utf-8"), "report --html")
    _clean(again_md.read_text(encoding="utf-8"), "report --markdown")
    for target in ("nginx", "csv", *(["nginx-ratelimit"] if rate_limits else [])):
        _clean(_invoke(["mitigate", str(report_json), "--to", target]), f"mitigate --to {target}")
    alerts_path = out / "alerts.ndjson"
    _invoke(["watch", str(log), "--replay", "--alerts", str(alerts_path), "-q"])
    alerts_text = alerts_path.read_text(encoding="utf-8") if alerts_path.exists() else ""
    _clean(alerts_text, "watch alerts")
    alerts = [_strict(line) for line in alerts_text.splitlines()]
    return report, alerts


#: Every case of the simulated flood, and the quiet log with every field and with none.
CASES = [("mirai", "none"), *(("mirai", f) for f in W3C_FIELDS), ("mirai", "all but time and client"),
         ("quiet", "none"), ("quiet", "all but time and client")]


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "missing"), CASES)
def test_report_without_a_field(simulated: dict[str, Path], tmp_path: Path, kind: str, missing: str) -> None:
    """No crash, no "nan"/"None" shown, strict JSON; null where a number needs the missing field. The flood is
    still a DDoS, still blocked and still alerts whatever field is missing, even with none but time and client:
    the verdict rests on the surge and on the new networks it came from (client and time); the status only tells
    the impact, the user agent the tool, the path and referer the bots' behaviour, and each finding that needs
    one is left out, not guessed."""
    keep = ALWAYS if missing == "all but time and client" else ALWAYS + tuple(f for f in W3C_FIELDS if f != missing)
    log = _rewrite(simulated[kind], tmp_path / "u_ex.log", keep)
    # the rate limits' replay (per client and path, retries left out by status) without paths, without statuses
    limits = kind == "mirai" and missing in ("sc-status", "cs-uri-stem")
    report, alerts = _chain(log, tmp_path, rate_limits=limits)
    absent = {W3C_FIELDS[f] for f in W3C_FIELDS if f not in keep}

    assert report["inputs"][0]["format"] == "iis_w3c"
    assert report["inputs"][0]["rejected_by_reason"] == {"comment": 2}  # every request read, whatever it lacks
    tl = report["timeline"]
    assert (set(tl["bytes"]) == {None}) == ("bytes" in absent)
    assert (set(tl["status_5xx"]) == {None} and set(tl["status_4xx"]) == {None}) == ("status" in absent)
    assert (set(tl["p95_request_time"]) == {None}) == ("request_time" in absent)
    if kind == "quiet":
        assert report["verdict"]["kind"] == "no_incident"
        assert not [a for a in alerts if a["type"] == "alert"]
        return
    assert report["verdict"]["kind"] == "ddos", report["verdict"]
    assert report["mitigation"]["blocklist"]
    assert ("rate_limits" in report["mitigation"]) == limits
    assert [a for a in alerts if a["type"] == "alert"]
    impact = report["impact"]
    reasons = [text for h in report["verdict"]["hypotheses"] for text in h["for"] + h["against"]]
    assert any("errors are not known" in text for text in reasons) == ("status" in absent)
    if "status" in absent:
        assert not [text for text in reasons if "coincides" in text or "no server errors beyond" in text]
        assert impact["error_share"] is None and impact["known_clients_with_errors"] is None
        assert impact["not_logged"] == ["status"]
        assert all(p["errors"] is None for p in report["targets"]["top_paths"])
    else:
        assert impact["error_share"] > 0 and impact["not_logged"] == []
    findings = {f["kind"]: f for f in report["findings"]}
    assert ("tool_fingerprint" in findings) == ("user_agent" not in absent)  # Mirai's agents: nothing else tells
    # the bots are told by their assets (paths); without referers the claim says so, with no share of 0%
    assert ("bot_behaviour" in findings) == ("path" not in absent)
    assert "familiar_crowd" not in findings
    if "path" in absent:
        assert all(p["path"] is None for p in report["targets"]["top_paths"])
    if "bot_behaviour" in findings and "referer" in absent:
        bots = findings["bot_behaviour"]
        assert "no referer in the logs" in bots["claim"] and bots["metrics"]["referer_share"] is None


def test_nginx_format_without_bytes(simulated: dict[str, Path], tmp_path: Path) -> None:
    """The format of the issue, a combined log cut after the status: a DDoS, with sizes null, not 0."""
    log = tmp_path / "access.log"
    with simulated["mirai"].open(encoding="utf-8") as fh:
        log.write_text("".join(m.group(0) + "\n" for m in map(_CUT_AFTER_STATUS.match, fh) if m), encoding="utf-8")
    out = tmp_path / "report.json"
    terminal = _invoke(["analyze", str(log), "--log-format",
                        'nginx:$remote_addr - $remote_user [$time_local] "$request" $status', "--json", str(out)])
    _clean(terminal, "terminal")
    report = _strict(out.read_text(encoding="utf-8"))
    assert report["inputs"][0]["lines_rejected"] == 0
    assert report["verdict"]["kind"] == "ddos"
    assert set(report["timeline"]["bytes"]) == {None}
    assert set(report["timeline"]["p95_request_time"]) == {None}
    assert report["impact"]["error_share"] > 0


_CUT_AFTER_STATUS = re.compile(r'^\S+ - \S+ \[[^\]]+\] "[^"]*" \d{3}')


def test_real_iis_log_without_sizes(realdata: Path, tmp_path: Path) -> None:
    """The real IIS 8.5 log of the issue (its 25 headers have no sc-bytes): 28 requests over 22 hours (Nmap's
    scripting engine once, a probe's ten 404s, Googlebot, a few 304s) between 100 header lines. No incident,
    nothing flagged, no alert; sizes null in every minute, the request times and statuses read."""
    log = realdata / "iis-w3c" / "test_data_u_ex160110.log"
    report, alerts = _chain(log, tmp_path)
    (inp,) = report["inputs"]
    assert (inp["format"], inp["lines_read"], inp["lines_parsed"]) == ("iis_w3c", 128, 28)
    assert inp["rejected_by_reason"] == {"comment": 100}
    assert report["verdict"]["kind"] == "no_incident"
    assert report["incidents"] == [] and report["sources"]["flagged"] == []
    tl = report["timeline"]
    assert set(tl["bytes"]) == {None}
    assert sum(tl["requests"]) == 28 and sum(tl["status_4xx"]) == 11 and sum(tl["status_5xx"]) == 0
    assert sum(x is not None for x in tl["p95_request_time"]) > 0
    assert not [a for a in alerts if a["type"] == "alert"]


def test_w3c_header_without_status(tmp_path: Path) -> None:
    """A W3C header without sc-status: its requests have an unknown status (were all rejected as bad_status);
    under a header with it, a status that is not one still rejects the line."""
    log = tmp_path / "u_ex.log"
    log.write_text("#Fields: date time c-ip cs-method cs-uri-stem\n"
                   "2016-01-10 00:07:26 188.68.224.62 GET /a\n"
                   "#Fields: date time c-ip cs-method cs-uri-stem sc-status\n"
                   "2016-01-10 00:07:27 188.68.224.62 GET /b 404\n"
                   "2016-01-10 00:07:28 188.68.224.62 GET /c x\n", encoding="utf-8")
    _, table = run_ingest([str(log)], tmp_path / "store", format="iis_w3c")
    rows = [(r["path"], r["status"], r["reject_reason"]) for r in table.to_pylist() if r["reject_reason"] != "comment"]
    assert rows == [("/a", None, None), ("/b", 404, None), (None, None, "bad_status")]
