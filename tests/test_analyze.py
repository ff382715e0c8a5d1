"""Stage 4-6 end to end: the verdict, windows, evidence and blocklist on labelled and real logs."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from netaddr import IPAddress, IPNetwork, IPSet
from rich.console import Console

from floodwitness.analysis.dataset import open_dataset
from floodwitness.cli import main
from floodwitness.cli.options import _size
from floodwitness.ingest import IngestOptions
from floodwitness.render.terminal import print_report
from floodwitness.report import analyze
from floodwitness.simulate import SCENARIOS, Truth, simulate

ATTACKS = ("ddos", "dos", "mixed")


def _t(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Truth, dict[str, Any], Path]]:
    """Every scenario simulated once (small but realistic) and analysed, keeping the store."""
    out = {}
    for kind in SCENARIOS:
        folder = tmp_path_factory.mktemp(kind)
        truth = simulate(kind, folder, seed=3, hours=1.5, scale=0.5)
        # a network-level kind is analysed as it is meant to be: its access log with the flows beside it (#21)
        flows = (str(folder / "flows.csv"),) if (folder / "flows.csv").exists() else ()
        data = open_dataset([str(folder / "access.log")], keep_store=str(folder / "store"),
                            options=IngestOptions(flows=flows))
        try:
            report = analyze(data)
        finally:
            data.close()
        out[kind] = (truth, report, folder)
    return out


def _covered(ips: tuple[str, ...], blocklist: list[dict[str, Any]]) -> int:
    cidrs = IPSet(IPNetwork(e["cidr"]) for e in blocklist)
    return sum(IPAddress(ip) in cidrs for ip in ips)


@pytest.mark.parametrize("kind", sorted(SCENARIOS))
def test_verdict_windows_and_blocklist(reports: dict[str, Any], kind: str) -> None:
    truth, report, _ = reports[kind]
    assert report["verdict"]["kind"] == truth.expected_verdict, report["verdict"]
    blocklist = report["mitigation"]["blocklist"]
    if truth.expected_verdict == "no_incident":
        assert report["incidents"] == []
        assert blocklist == []
        return
    main_incident, expected = report["incidents"][0], truth.incidents[0]
    for key in ("start", "end"):
        error = abs((_t(main_incident[key]) - _t(getattr(expected, key))).total_seconds())
        # 90 s rather than the benchmark's 60 s: these logs are small (scale 0.5), so minute counts are noisier
        assert error <= 90, (key, main_incident[key], getattr(expected, key))
    known_blocked = _covered(truth.known_clients, blocklist)
    if truth.expected_verdict in ATTACKS:
        if truth.attackers:  # a network-level flood has no HTTP attackers to block (spoofed sources, reflectors)
            recall = _covered(truth.attackers, blocklist) / len(truth.attackers)
            assert recall >= 0.9, recall
        assert known_blocked <= 0.005 * len(truth.known_clients)
    else:
        assert blocklist == []
        assert known_blocked == 0


def test_every_hypothesis_carries_evidence_for_and_against(reports: dict[str, Any]) -> None:
    _, report, _ = reports["mirai"]
    kinds = [h["kind"] for h in report["verdict"]["hypotheses"]]
    assert sorted(kinds) == sorted(["ddos", "dos", "flash_crowd", "internal_failure", "mixed", "no_incident"])
    best = report["verdict"]["hypotheses"][0]
    assert best["kind"] == "ddos" and best["for"]
    ids = {f["id"] for f in report["findings"]}
    cited = {part.split("[")[-1].rstrip("]") for part in best["for"] if "[" in part}
    assert cited <= ids and cited


def test_report_contract(reports: dict[str, Any]) -> None:
    _, report, _ = reports["cachebust"]
    assert report["schema"] == "floodwitness.report/1"
    for key in ("inputs", "verdict", "incidents", "findings", "sources", "targets", "impact", "mitigation"):
        assert key in report
    assert set(report["inputs"][0]) >= {"path", "sha256", "lines_read", "lines_parsed", "lines_rejected",
                                        "rejected_by_reason", "format"}
    assert set(report["verdict"]) >= {"kind", "confidence", "summary", "hypotheses"}
    assert set(report["verdict"]["hypotheses"][0]) >= {"kind", "score", "for", "against"}
    incident = report["incidents"][0]
    assert set(incident) >= {"start", "end", "peak", "peak_rps", "baseline_rps"}
    assert incident["start"].endswith("Z") and _t(incident["start"]) < _t(incident["peak"]) <= _t(incident["end"])
    for finding in report["findings"]:
        assert set(finding) >= {"id", "kind", "severity", "claim", "window", "metrics", "evidence"}
        for ev in finding["evidence"]:
            assert set(ev) == {"file", "line", "sample", "query"}
            assert ev["query"]
    entry = report["mitigation"]["blocklist"][0]
    assert set(entry) >= {"cidr", "requests", "reason", "collateral_clients"}
    assert "never where the attacker is" in report["sources"]["attribution_caveat"]
    json.dumps(report)  # serialisable as it is


def test_evidence_points_at_real_lines_and_queries_reproduce(reports: dict[str, Any]) -> None:
    _, report, folder = reports["mirai"]
    lines = (folder / "access.log").read_text().splitlines()
    surge = next(f for f in report["findings"] if f["kind"] == "traffic_surge")
    ev = surge["evidence"][0]
    assert ev["file"] == str(folder / "access.log")
    raw = lines[ev["line"] - 1]
    ip = ev["sample"].split(" ")[0]
    assert raw.startswith(ip + " ")
    total = duckdb.connect().execute(f"SELECT sum(requests) FROM ({ev['query']})").fetchone()
    assert total is not None
    assert total[0] == surge["metrics"]["requests"]
    tool = next(f for f in report["findings"] if f["kind"] == "tool_fingerprint")
    assert tool["metrics"]["rule"] == "mirai"
    sample_line = lines[tool["evidence"][0]["line"] - 1]
    assert "Chrome/5" in sample_line or "Version/9.1.2" in sample_line


def test_dos_blocks_only_the_heavy_sources(reports: dict[str, Any]) -> None:
    truth, report, _ = reports["dos"]
    cidrs = [e["cidr"] for e in report["mitigation"]["blocklist"]]
    assert 1 <= len(cidrs) <= 10
    assert _covered(truth.attackers, report["mitigation"]["blocklist"]) == len(truth.attackers)


def test_real_small_site_is_no_incident(realdata: Path) -> None:
    data = open_dataset([str(realdata / "elastic-apache" / "Common_Data_Formats_apache_logs_apache_logs")])
    try:
        report = analyze(data)
    finally:
        data.close()
    assert report["verdict"]["kind"] == "no_incident"
    assert report["incidents"] == []
    assert report["mitigation"]["blocklist"] == []
    assert report["inputs"][0]["lines_read"] == 10_000


def test_people_browsing_as_a_flood_began_are_not_blocked(reports: dict[str, Any], tmp_path: Path) -> None:
    """A visitor from a network the baseline never saw, who loaded a page with its images a minute before the
    flood and then reloaded failing pages during it, is not an attacker; the same reloads with no page loaded
    before are."""
    truth, _, folder = reports["mirai"]
    start = truth.incidents[0].start

    def line(ip: str, at: datetime, path: str, status: int, referer: str) -> str:
        when = at.astimezone(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
        return (f'{ip} - - [{when}] "GET {path} HTTP/1.1" {status} 5120 "{referer}" '
                f'"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0" 0.050 0.040\n')

    text = (folder / "access.log").read_text()
    seen = {".".join(row.split(".", 2)[:2]) for row in text.splitlines()}
    visitor, twin = [f"{net}.7.77" for net in (f"{a}.{b}" for a in (81, 91, 151) for b in range(40, 60))
                     if net not in seen][:2]  # public addresses, from /16s the log never saw
    page = "https://www.example.org/blog/a-year-of-remote-work"
    extra = [line(visitor, start - timedelta(seconds=70), "/blog/a-year-of-remote-work", 200, "-")]
    extra += [line(visitor, start - timedelta(seconds=69), asset, 200, page)
              for asset in ("/static/css/main.css", "/static/js/app.js", "/img/logo.png")]
    for ip in (visitor, twin):
        extra += [line(ip, start + timedelta(seconds=20 + 9 * i), "/blog/a-year-of-remote-work", 503, page)
                  for i in range(6)]
    log = tmp_path / "access.log"
    log.write_text(text + "".join(extra))
    data = open_dataset([str(log)])
    try:
        report = analyze(data)
    finally:
        data.close()
    assert report["verdict"]["kind"] == "ddos"
    blocklist = report["mitigation"]["blocklist"]
    assert _covered((twin,), blocklist) == 1
    assert _covered((visitor,), blocklist) == 0
    assert report["mitigation"]["browsing_before"]["clients"] >= 1


def test_cli_analyze_writes_json_and_blocklist(reports: dict[str, Any], tmp_path: Path) -> None:
    _, _, folder = reports["pulse"]
    runner = CliRunner()
    result = runner.invoke(main, ["analyze", str(folder / "store"), "--json", str(tmp_path / "r.json"),
                                  "--blocklist", str(tmp_path / "block.txt")])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Verdict: DDOS")
    assert result.stderr == f"wrote {tmp_path / 'r.json'} ({_size((tmp_path / 'r.json').stat().st_size)})\nwrote " \
                            f"{tmp_path / 'block.txt'} ({_size((tmp_path / 'block.txt').stat().st_size)})\n"
    report = json.loads((tmp_path / "r.json").read_text())
    lines = (tmp_path / "block.txt").read_text().splitlines()
    assert lines[0].startswith("# floodwitness blocklist: ")
    assert lines[1].startswith("# covers ")
    assert lines[2:] == [e["cidr"] for e in report["mitigation"]["blocklist"]]


def test_a_temporary_store_is_written_for_speed_and_a_kept_one_for_size(reports: dict[str, Any]) -> None:
    """``analyze`` on log files writes the store it deletes afterwards uncompressed, without statistics of the
    text columns (less CPU); a store that is kept (``--keep-store``, ``ingest``) is written with zstd and every
    statistic."""
    _, _, folder = reports["mirai"]
    def columns(part: Path) -> dict[str, tuple[str, bool]]:
        group = pq.ParquetFile(part).metadata.row_group(0)
        return {group.column(i).path_in_schema: (group.column(i).compression, group.column(i).is_stats_set)
                for i in range(group.num_columns)}

    kept = columns(sorted((folder / "store" / "requests").glob("*.parquet"))[0])
    assert set(kept.values()) == {("ZSTD", True)}
    data = open_dataset([str(folder / "access.log")])
    try:
        part = Path(data._parts[0])
        assert data.temporary
        thrown = columns(part)
        assert {c for c, _ in thrown.values()} == {"UNCOMPRESSED"}
        assert thrown["ts"][1] and thrown["request_time"][1] and not thrown["client_ip"][1]
        assert data.has_values("request_time")  # read from the statistics that are kept
    finally:
        data.close()
    assert not part.exists()


def test_cli_refuses_to_overwrite_an_input(reports: dict[str, Any]) -> None:
    _, _, folder = reports["quiet"]
    log = str(folder / "access.log")
    result = CliRunner().invoke(main, ["analyze", log, "--json", log, "-q"])
    assert result.exit_code == 1
    assert result.output == f"Error: refusing to overwrite the input file {log}\nChoose another output path.\n"


def test_cli_bad_time(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text('1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 5 "-" "x"\n')
    result = CliRunner().invoke(main, ["analyze", str(log), "--since", "yesterday"])
    assert result.exit_code == 1
    assert result.output == ("Error: --since: 'yesterday' is not a time\n"
                             "Use ISO 8601, e.g. 2024-05-17T10:05:00Z or 2024-05-17 10:05+02:00.\n")


@pytest.mark.parametrize("kind", ["mirai", "internal_failure"])
def test_terminal_report_reads_in_80_columns(reports: dict[str, Any], kind: str) -> None:
    """Verdict first, then why, timeline, sources, targets, impact, blocklist, evidence; nothing wider than 80
    columns, wrapped items indented under their text; for an attack, the suspects before the busiest sources."""
    _, report, _ = reports[kind]
    out = io.StringIO()
    print_report(Console(file=out, width=80, color_system=None), report)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("Verdict: ")
    assert max(len(line) for line in lines) <= 80
    assert all(line == line.rstrip() for line in lines)
    headings = [line.split(" ")[0] for line in lines if line and not line.startswith(" ")]
    order = ["Verdict:", "Why", "Timeline", "Sources", "Targets", "Impact", "Blocklist", "Evidence", "Inputs:"]
    assert [h for h in headings if h in order] == [h for h in order if h in headings]
    assert {"Verdict:", "Why", "Timeline", "Blocklist", "Evidence"} <= set(headings)
    start = lines.index("Why") + 1
    why = lines[start: lines.index("", start)]
    assert why and all(re.match(r"  [+-] \S|  score: |    \S", line) for line in why), why
    text = "\n".join(lines)
    if report["verdict"]["kind"] in ("ddos", "dos", "mixed"):
        assert text.index("heaviest suspected attackers") < text.index("busiest sources")
        assert all(not s["known"] for s in report["sources"]["top_suspects"])


def test_pulse_wave_sources_carry_their_rate_while_active(reports: dict[str, Any]) -> None:
    """A pulse wave's bots idle between bursts: over the whole incident their rate rounds to 0.0/s. Each listed
    source also carries the minutes it was active, its rate over them and its busiest minute, and the report
    counts every suspect (the lists show ten)."""
    _, report, folder = reports["pulse"]
    sources = report["sources"]
    incident = report["incidents"][0]
    con = duckdb.connect()
    seconds = (_t(incident["end"]) - _t(incident["start"])).total_seconds()
    for s in sources["top_suspects"][:3] + sources["top"][:3]:
        minutes, busiest = con.execute(
            "SELECT count(*), max(n) FROM (SELECT date_trunc('minute', ts) AS m, count(*) AS n FROM read_parquet(?) "
            "WHERE reject_reason IS NULL AND client_ip = ? AND ts >= ?::TIMESTAMPTZ AND ts < ?::TIMESTAMPTZ "
            "GROUP BY 1)", [str(folder / "store" / "requests" / "*.parquet"), s["client_ip"], incident["start"],
                            incident["end"]]).fetchone() or (0, 0)
        assert (s["active_minutes"], s["busiest_minute_requests"]) == (minutes, busiest), s
        assert s["active_rps"] == round(s["requests"] / min(60 * minutes, seconds), 3)
        assert s["active_rps"] >= s["rate_rps"]
    suspect = sources["top_suspects"][0]
    assert suspect["active_rps"] >= 1.5 * suspect["rate_rps"]  # idle between bursts
    total = sources["suspects"]
    assert total["clients"] >= len(sources["top_suspects"])
    assert total["requests"] >= sum(s["requests"] for s in sources["top_suspects"])


def test_hostile_fields_never_reach_the_terminal_raw(tmp_path: Path) -> None:
    """A flood whose user agent carries terminal escapes and markup: the report shows them escaped."""
    ua = "\x1b]0;pwned\x07\x1b[2J[bold red]x[/bold red]<script>alert(1)</script>"
    good = []
    for minute in range(60):
        for i in range(30):
            good.append(f'203.0.113.{i} - - [10/Oct/2000:12:{minute:02d}:{i:02d} +0000] "GET /p{i} HTTP/1.1" '
                        f'200 5 "-" "Mozilla/5.0"')
    flood = []
    for second in range(300):
        for bot in range(20):
            flood.append(f'198.{bot}.{second % 200}.7 - - [10/Oct/2000:13:{second // 60:02d}:{second % 60:02d} '
                         f'+0000] "GET / HTTP/1.1" 503 0 "-" "{ua}"')
    log = tmp_path / "hostile.log"
    log.write_text("\n".join(good + flood) + "\n")
    result = CliRunner().invoke(main, ["analyze", str(log)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output


def test_since_until_restrict_the_analysis(reports: dict[str, Any]) -> None:
    truth, report, folder = reports["dos"]
    end = _t(report["incidents"][0]["end"])
    after = (end.replace(tzinfo=None)).isoformat() + "Z"
    runner = CliRunner()
    result = runner.invoke(main, ["analyze", str(folder / "store"), "--since", after, "--json", "-", "-q"])
    assert result.exit_code == 0, result.output
    later = json.loads(result.output)
    assert later["verdict"]["kind"] == "no_incident"
    assert _t(later["timeline"]["start"]) >= end
    assert truth.expected_verdict == "dos"


def _cites(report: dict[str, Any], kind: str, finding_id: str) -> bool:
    hyp = next(h for h in report["verdict"]["hypotheses"] if h["kind"] == kind)
    return any(item.endswith(f"[{finding_id}]") for item in hyp["for"])


@pytest.mark.parametrize("kind", ["mirai", "pulse", "cachebust", "flash_crowd"])
def test_audience_model_tells_a_crowd_from_a_botnet(reports: dict[str, Any], kind: str) -> None:
    """A flash crowd comes from the site's usual networks, a flood from new ones, and the verdict cites it.
    The simulator's addresses land in arbitrary real ASes of the bundled database, so the bounds that must
    hold are on /24 and /16; the AS level is what the verdict's audience item needs on top of them."""
    _, report, _ = reports[kind]
    levels = report["sources"]["audience"]
    assert set(levels) == {"ip", "/24", "/16", "asn", "country"}
    if kind == "flash_crowd":
        assert levels["/16"]["new_excess_share"] <= 0.4 and levels["asn"]["new_excess_share"] <= 0.25
        assert levels["/16"]["new_excess_share"] < levels["/24"]["new_excess_share"]  # new visitors, usual ISPs
        assert _cites(report, "flash_crowd", "I1-audience")
    else:
        assert levels["/16"]["new_excess_share"] >= 0.7 and levels["/24"]["new_excess_share"] >= 0.7
        assert levels["/16"]["baseline_churn"] <= 0.05  # against an audience that rarely brings a new /16
        assert _cites(report, "ddos", "I1-audience")
    assert 0 <= levels["asn"]["unknown_share"] < 0.5
    audience = next(f for f in report["findings"] if f["kind"] == "audience_shift")
    assert audience["evidence"][0]["query"].startswith("SELECT split_part(client_ip")


def test_sources_name_networks_and_the_database(reports: dict[str, Any]) -> None:
    truth, report, folder = reports["mirai"]
    sources = report["sources"]
    [db] = sources["databases"]
    assert db["date"] == "2024-06-18" and "GeoLite2" in db["name"]
    asns, countries = sources["asns"], sources["countries"]
    assert asns and countries
    assert set(asns[0]) == {"asn", "as_name", "requests", "clients", "share", "baseline_share", "known"}
    assert [a["requests"] for a in asns] == sorted((a["requests"] for a in asns), reverse=True)
    assert sum(c["requests"] for c in countries) <= report["incidents"][0]["requests"]
    assert any(not a["known"] for a in asns) and any(a["known"] for a in asns)
    [flag] = [f for f in sources["flagged"] if f["rule"] == "mirai"]
    assert flag["sources"] >= 0.9 * len(truth.attackers)  # the bots, by their user agents
    assert {t["client_ip"] for t in flag["top"]} <= set(truth.attackers)
    assert "never where the attacker is" in sources["attribution_caveat"]
    result = CliRunner().invoke(main, ["analyze", str(folder / "store")])
    assert "excess from networks new to the site: /24 " in result.output
    assert "top AS: " in result.output and "(2024-06-18 db)" in result.output


def _shifted(line: bytes, days: int) -> bytes:
    """``line`` (combined) with its time moved by ``days``."""
    start, end = line.index(b"[") + 1, line.index(b"]")
    when = datetime.strptime(line[start:end].decode(), "%d/%b/%Y:%H:%M:%S %z") + timedelta(days=days)
    return line[:start] + when.strftime("%d/%b/%Y:%H:%M:%S %z").encode() + line[end:]


def test_stray_timestamps_are_left_out_and_named(reports: dict[str, Any], tmp_path: Path) -> None:
    """Two lines years off (before and after the log) do not stretch the timeline over years: the analysis
    covers the logs' main period, with the same verdict and windows, and names what it left out."""
    _, report, folder = reports["mirai"]
    lines = (folder / "access.log").read_bytes().splitlines(keepends=True)
    log = tmp_path / "access.log"
    log.write_bytes(_shifted(lines[5], -1100) + b"".join(lines) + _shifted(lines[-1], 900))
    data = open_dataset([str(log)])
    try:
        strayed = analyze(data)
    finally:
        data.close()
    assert strayed["timeline"]["requests"] == report["timeline"]["requests"]
    assert strayed["verdict"]["kind"] == report["verdict"]["kind"]
    assert [(i["start"], i["end"]) for i in strayed["incidents"]] == [(i["start"], i["end"])
                                                                     for i in report["incidents"]]
    span = strayed["time_span"]
    assert span["requests_outside"] == 2 and len(span["periods"]) == 3
    assert [(s["file"], s["line"]) for s in span["samples_outside"]] == [(str(log), 1), (str(log), len(lines) + 2)]
    assert strayed["parameters"]["since"] == span["since"] and "time_span" not in report


def test_periods_far_apart_and_near_ones_are_analysed_in_one_run(reports: dict[str, Any], tmp_path: Path) -> None:
    """Two halves of a log 10 or 200 days apart: one run either way (no refusal), each half a period of its own,
    and the timeline not stored as months of empty minutes."""
    _, _, folder = reports["quiet"]
    lines = (folder / "access.log").read_bytes().splitlines(keepends=True)
    half = len(lines) // 2
    runner = CliRunner()
    for days in (10, 200):
        log = tmp_path / f"access-{days}.log"
        log.write_bytes(b"".join(lines[:half]) + b"".join(_shifted(line, days) for line in lines[half:]))
        result = runner.invoke(main, ["analyze", str(log), "--json", "-", "-q"])
        assert result.exit_code == 0, result.output
        together = json.loads(result.output)
        assert len(together["time_span"]["periods"]) == 2 and together["time_span"]["requests_outside"] == 0
        assert len(together["timeline"]["periods"]) == 2 and len(together["baseline"]["periods"]) == 2
        assert sum(together["timeline"]["requests"]) == len(lines)
        assert len(together["timeline"]["requests"]) < 2 * 24 * 60  # the half-days, not the days between them
