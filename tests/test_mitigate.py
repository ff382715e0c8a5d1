"""Stage: mitigation exports and rate limits. Exports pass the real tools' syntax checks (where installed),
the allowlist wins in every export, and the rate-limit replay matches nginx's leaky bucket exactly."""

from __future__ import annotations

import csv
import io
import ipaddress
import json
import re
import shutil
import subprocess
from datetime import UTC, datetime
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from netaddr import IPNetwork, IPSet

from floodwitness.analysis.dataset import open_dataset
from floodwitness.cli import main
from floodwitness.mitigation import ratelimit
from floodwitness.mitigation.exports import EXPORTERS, ExportContext, csv_cell, render
from floodwitness.mitigation.protected import protected_ranges, read_allow_specs
from floodwitness.mitigation.ratelimit import RATES_PER_MINUTE, Limit, evaluate, limits_from_dict, replay_window
from floodwitness.mitigation.rules import parse_duration, plan_rules, safe_comment
from floodwitness.report import AnalyzeOptions, analyze
from floodwitness.simulate import simulate

if TYPE_CHECKING:
    from pathlib import Path

NOW = datetime(2026, 5, 17, 10, 0, tzinfo=UTC)
BLOCK_TARGETS = ("nginx", "nginx-geo", "iptables", "ipset", "nftables", "haproxy", "crowdsec", "csv", "json")


# --- a small simulated flood, analysed once ----------------------------------------------------------


@pytest.fixture(scope="module")
def mirai(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("mirai")
    truth = simulate("mirai", folder, seed=3, hours=1.5, scale=0.4)
    data = open_dataset([str(folder / "access.log")], keep_store=str(folder / "store"))
    try:
        report = analyze(data, AnalyzeOptions(rate_limits=True))
    finally:
        data.close()
    (folder / "report.json").write_text(json.dumps(report, default=str))
    return {"truth": truth, "report": report, "folder": folder}


def test_rate_limit_settings_trade_off_and_replay_with_the_truth(mirai: dict[str, Any]) -> None:
    rl = mirai["report"]["mitigation"]["rate_limits"]
    names = [s["name"] for s in rl["settings"]]
    assert names == ["gentle", "balanced", "firm"]
    assert rl["recommended"] in names
    gentle, balanced, firm = rl["settings"]
    assert gentle["replay"]["legit_clients_hit"] == 0 and gentle["baseline"]["clients_hit"] == 0
    assert gentle["replay"]["attack_rejected"] <= balanced["replay"]["attack_rejected"] <= firm["replay"][
        "attack_rejected"]
    for s in rl["settings"]:  # each setting respects its budget
        assert s["replay"]["legit_clients_hit"] <= s["budget_share"] * s["replay"]["legit_clients"]
        assert s["baseline"]["clients_hit"] <= s["budget_share"] * s["baseline"]["clients"]
    # the recommended limits, replayed with the simulator's labels instead of the analysis's
    chosen = next(s for s in rl["settings"] if s["recommended"])
    truth = mirai["truth"]
    data = open_dataset([str(mirai["folder"] / "store")])
    try:
        counts = evaluate(data, replay_window(*rl["replay_window"]), limits_from_dict(chosen), truth.attackers,
                          truth.known_clients, protected_ranges())
    finally:
        data.close()
    assert counts.attack_share >= 0.85, counts
    assert counts.legit_client_share <= 0.01, counts


def _nginx_exact(times: list[Any], rate: Any, burst: int) -> int:
    """Rejections of nginx's limit_req (nodelay), request by request: the reference."""
    excess, last, rejected = 0, None, 0
    for t in times:
        if last is None:
            last, excess = t, 0
            continue
        candidate = max(0, excess - rate * (t - last) + 1)
        if candidate > burst:
            rejected += 1
            continue
        excess, last = candidate, t
    return rejected


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 300), min_size=1, max_size=40), min_size=1, max_size=5),
       st.sampled_from(RATES_PER_MINUTE[:8]), st.integers(0, 6))
def test_replay_matches_nginx_request_by_request(clients: list[list[int]], rpm: int, burst: int) -> None:
    """Whole-second arrivals (what the usual log holds): the slot replay is exactly nginx's bucket."""
    rows: list[tuple[int, int, int]] = []  # group, slot, count
    for g, times in enumerate(clients):
        slots, counts = np.unique(times, return_counts=True)
        rows += [(g, int(s), int(c)) for s, c in zip(slots, counts, strict=True)]
    rows.sort(key=lambda r: r[1])
    arr = np.array(rows, dtype=np.int64)
    n = len(rows)
    data = ratelimit._Rows(arr[:, 0], arr[:, 1], arr[:, 2], np.zeros(n, np.int64), arr[:, 0],
                           np.ones(n, bool), len(clients))
    rates, bursts = np.full((5, 2), 1e12), np.full((5, 2), 1e12)
    rates[0, 1], bursts[0, 1] = rpm / 60.0, burst
    out = ratelimit.simulate(data, rates, bursts)
    expected = sum(_nginx_exact(sorted(Fraction(x) for x in times), Fraction(rpm, 60), burst) for times in clients)
    assert out.attack_rejected[0, 1] == expected
    assert out.attack_rejected[0, 0] == 0  # column 0 is "no limit"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 600_000), min_size=1, max_size=30), min_size=1, max_size=4))
def test_needed_burst_is_the_smallest_that_never_rejects(clients: list[list[int]]) -> None:
    """Millisecond times (nginx's resolution); the reference runs in exact fractions."""
    group = np.concatenate([np.full(len(t), g) for g, t in enumerate(clients)])
    t_ms = np.concatenate([np.sort(np.array(x)) for x in clients])
    needs = ratelimit._group_needs(group, t_ms)
    for g, times in enumerate(clients):
        ordered = [Fraction(x, 1000) for x in sorted(times)]
        for k, rpm in enumerate(RATES_PER_MINUTE):
            need = int(needs[g, k])
            assert _nginx_exact(ordered, Fraction(rpm, 60), need) == 0
            if need > 0:
                assert _nginx_exact(ordered, Fraction(rpm, 60), need - 1) > 0


# --- planning rules: allowlist, overlaps, caps --------------------------------------------------------


def _mitigation(cidrs: list[str], reason: str = "17 attacking IPs, no known client") -> dict[str, Any]:
    return {"blocklist": [{"cidr": c, "requests": 1000 - i, "attackers": 3, "reason": reason,
                           "collateral_clients": 0, "collateral_requests": 0} for i, c in enumerate(cidrs)],
            "attack_requests_total": 5000,
            "incident": {"id": "I1", "start": "2026-05-17T09:00:00Z", "end": "2026-05-17T09:20:00Z"}}


def test_allowlisted_range_inside_a_block_is_cut_out() -> None:
    rules = plan_rules(_mitigation(["77.1.0.0/16"]), protected_ranges(["77.1.2.3"]), now=NOW)
    assert IPSet(IPNetwork(r.cidr) for r in rules.rules) == IPSet(["77.1.0.0/16"]) - IPSet(["77.1.2.3/32"])
    assert len(rules.rules) == 16 and all(r.split_from == "77.1.0.0/16" for r in rules.rules)
    assert rules.messages == ("1 entries were split around protected ranges (the allowlist always wins)",)


def test_caps_on_breadth_and_count_say_so() -> None:
    rules = plan_rules(_mitigation(["45.0.0.0/8", "77.1.2.0/24", "77.1.3.0/24", "78.0.0.1/32"]), protected_ranges(),
                       max_rules=2, now=NOW)
    assert [r.cidr for r in rules.rules] == ["77.1.2.0/24", "77.1.3.0/24"]
    assert rules.messages == (
        "1 entries broader than /16 (IPv4) or /32 (IPv6) left out: 45.0.0.0/8; lower --min-prefix-v4/--min-prefix-v6 "
        "only if you mean to block that widely",
        "rule cap hit: kept 2 of 3 rules (busiest entries first); 1 entries left out entirely; raise --max-rules "
        "to keep more")


def test_overlapping_entries_become_disjoint_rules() -> None:
    rules = plan_rules(_mitigation(["77.1.2.0/24", "77.1.0.0/16", "77.1.2.9/32"]), protected_ranges(), now=NOW)
    nets = [IPNetwork(r.cidr) for r in rules.rules]
    assert sum(n.size for n in nets) == IPSet(nets).size == 65536


def test_report_text_cannot_break_a_comment_or_a_csv() -> None:
    evil = '=HYPERLINK("x")"; drop\n# }{ $x \\'
    rules = plan_rules(_mitigation(["77.1.2.0/24"], reason=evil), protected_ranges(), now=NOW)
    comment = rules.comment(rules.rules[0])
    assert not set(comment) & set("\"'#{}$\\\n;") - {";"}
    assert comment == safe_comment(comment)
    row = next(csv.DictReader(io.StringIO(render("csv", ExportContext(rules, protected_ranges())))))
    assert row["reason"].startswith("'=")
    assert csv_cell("-1") == "'-1" and csv_cell("203.0.113.0/24") == "203.0.113.0/24"


# --- every export: the allowlist wins (property), and the real tools accept the syntax ------------------


def _blocked(target: str, text: str) -> IPSet:
    """The addresses an export blocks, read back from its text."""
    if target == "crowdsec":
        return IPSet(d["value"] for d in json.loads(text))
    if target == "json":
        return IPSet(r["cidr"] for r in json.loads(text)["rules"])
    if target == "csv":
        return IPSet(r["cidr"] for r in csv.DictReader(io.StringIO(text)))
    patterns = {"nginx": r"^deny (\S+);", "nginx-geo": r"^    (\S+) 1;", "iptables": r"^-A FLOODWITNESS -s (\S+) ",
                "ipset": r"^add floodwitness[46] (\S+) ", "nftables": r"^ {12}(\S+) timeout", "haproxy": r"^([^#\s]\S*)$"}
    return IPSet(m.group(1) for line in text.splitlines() if (m := re.match(patterns[target], line)))


_octet = st.sampled_from((5, 31, 37, 41, 45, 46, 77, 78, 79, 80, 81, 82, 90, 91, 101, 102, 110, 177, 178, 200))


@st.composite
def _networks(draw: st.DrawFn, lo: int, hi: int) -> str:
    a, b, c, d = draw(_octet), draw(st.integers(0, 3)), draw(st.integers(0, 255)), draw(st.integers(0, 255))
    return str(ipaddress.ip_network(f"{a}.{b}.{c}.{d}/{draw(st.integers(lo, hi))}", strict=False))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_networks(16, 32), min_size=1, max_size=8), st.lists(_networks(16, 32), max_size=4))
def test_the_allowlist_wins_in_every_export(blocks: list[str], allow: list[str]) -> None:
    protected = protected_ranges(allow)
    rules = plan_rules(_mitigation(blocks), protected, now=NOW)
    allowed = IPSet(allow)
    expected = IPSet(blocks) - allowed
    for target in BLOCK_TARGETS:
        got = _blocked(target, render(target, ExportContext(rules, protected)))
        assert not got & allowed, target
        assert got == expected, target  # and nothing else is lost or added


def _run(args: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False, **kw)


def _netns() -> list[str]:
    """A fresh network namespace to load firewall rules into, or skip with the reason."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed: cannot load firewall rules in a private network namespace")
    if _run(["unshare", "-n", "true"]).returncode != 0:
        pytest.skip("creating a network namespace is not permitted here (needs CAP_SYS_ADMIN)")
    return ["unshare", "-n"]


def _need(tool: str) -> str:
    path = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")
    if path is None:
        pytest.skip(f"{tool} is not installed (apt-get install nginx-light nftables ipset haproxy iptables)")
    return path


@pytest.fixture(scope="module")
def exports(mirai: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every target written by the CLI from the simulated flood's report, with an allowlisted network."""
    out = tmp_path_factory.mktemp("exports")
    report = mirai["folder"] / "report.json"
    first = mirai["report"]["mitigation"]["blocklist"][0]["cidr"]
    allow = str(next(ipaddress.ip_network(first).hosts()))
    paths = {}
    for target in sorted(EXPORTERS):
        path = out / f"rules-{target}{EXPORTERS[target].suffix}"
        result = CliRunner().invoke(main, ["mitigate", str(report), "--to", target, "--out", str(path),
                                           "--allow", allow, "-q"])
        assert result.exit_code == 0, result.output
        paths[target] = path
    paths["allow"] = out / allow
    return paths


def test_nginx_accepts_the_deny_geo_and_rate_limit_includes(exports: dict[str, Path], tmp_path: Path) -> None:
    nginx = _need("nginx")
    text = exports["nginx"].read_text()
    assert "limit_req_zone" in text and re.search(r"^deny \S+;  # .+expires", text, re.M)
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\nhttp {{\n"
                    f"  include {exports['nginx']};\n  include {exports['nginx-geo']};\n"
                    "  server { listen 127.0.0.1:18080; if ($floodwitness_blocked) { return 403; } }\n}\n")
    result = _run([nginx, "-t", "-c", str(conf), "-p", str(tmp_path)])
    assert result.returncode == 0, result.stderr
    assert "[warn]" not in result.stderr and "[emerg]" not in result.stderr, result.stderr


def test_nftables_accepts_the_ruleset(exports: dict[str, Path]) -> None:
    nft = _need("nft")
    result = _run([*_netns(), nft, "-c", "-f", str(exports["nftables"])])
    assert result.returncode == 0, result.stderr


def test_ipset_restores_the_sets_with_every_entry(exports: dict[str, Path]) -> None:
    tool = _need("ipset")
    script = f"{tool} restore < {exports['ipset']} && {tool} list -t floodwitness4 && {tool} list -t floodwitness6"
    result = _run([*_netns(), "sh", "-c", script])
    assert result.returncode == 0, result.stderr
    entries = [int(n) for n in re.findall(r"Number of entries: (\d+)", result.stdout)]
    assert sum(entries) == sum(1 for line in exports["ipset"].read_text().splitlines() if line.startswith("add "))


def test_iptables_script_parses_and_its_rules_restore(exports: dict[str, Path], tmp_path: Path) -> None:
    text = exports["iptables"].read_text()
    assert _run(["sh", "-n", str(exports["iptables"])]).returncode == 0
    body = re.findall(r"iptables-restore --noflush <<'FLOODWITNESS_RULES'\n(.*?)\nFLOODWITNESS_RULES", text, re.S)
    assert body and all(line.startswith(("*filter", ":FLOODWITNESS", "-A FLOODWITNESS", "COMMIT"))
                        for chunk in body for line in chunk.splitlines())
    tool = _need("iptables-restore")
    rules = tmp_path / "v4.rules"
    rules.write_text(body[0] + "\n")
    result = _run([*_netns(), tool, "--test", str(rules)])
    assert result.returncode == 0, result.stderr


def test_haproxy_accepts_the_acl_file_and_the_stick_tables(exports: dict[str, Path], tmp_path: Path) -> None:
    haproxy = _need("haproxy")
    snippet = exports["haproxy-ratelimit"].read_text()
    frontend, _, backends = snippet.partition("# --- and these sections beside it ---")
    conf = tmp_path / "haproxy.cfg"
    conf.write_text("defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 5s\n"
                    f"frontend fe\n  bind 127.0.0.1:18081\n  acl fw_blocked src -f {exports['haproxy']}\n"
                    f"  http-request deny if fw_blocked\n{frontend}\n  default_backend be\n"
                    f"backend be\n  server s1 127.0.0.1:9\n{backends}\n")
    result = _run([haproxy, "-c", "-f", str(conf)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_crowdsec_decisions_have_the_import_shape(exports: dict[str, Path]) -> None:
    decisions = json.loads(exports["crowdsec"].read_text())
    assert decisions
    for d in decisions:
        assert set(d) == {"duration", "reason", "scope", "type", "value"}
        assert d["duration"] == "24h" and d["type"] == "ban"
        assert (d["scope"], "/" in d["value"]) in (("Ip", False), ("Range", True))
        ipaddress.ip_network(d["value"])


def test_allowlisted_address_is_in_no_export(exports: dict[str, Path]) -> None:
    allowed = IPSet([exports["allow"].name])
    for target in BLOCK_TARGETS:
        blocked = _blocked(target, exports[target].read_text())
        assert blocked and not blocked & allowed, target


# --- the command line --------------------------------------------------------------------------------


def test_every_target_is_a_registered_exporter_with_a_description() -> None:
    command = main.commands["mitigate"]
    option = next(p for p in command.params if p.name == "target")
    assert sorted(option.type.choices) == sorted(EXPORTERS)  # type: ignore[attr-defined]
    assert all(e.description and e.suffix.startswith(".") for e in EXPORTERS.values())


def test_dry_run_prints_the_summary_and_writes_nothing(mirai: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "rules.conf"
    result = CliRunner().invoke(main, ["mitigate", str(mirai["folder"] / "report.json"), "--to", "nginx",
                                       "--out", str(out), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert not out.exists()
    assert re.search(r"^blocklist: [\d,]+ rules from [\d,]+ entries would have stopped", result.stderr, re.M)
    assert re.search(r"^  \*\w+ +rejects [\d.]+% of", result.stderr, re.M)


@pytest.mark.parametrize(("args", "message"), [
    (["--expire", "soon"], "Error: --expire 'soon' is not a duration\nUse a number and a unit: 90m, 24h, 7d, 2w.\n"),
    (["--rate-limits", "max"], "Error: --rate-limits 'max' is not a setting of this report\n"
                               "Choose one of: recommended, none, gentle, balanced, firm.\n"),
    (["--allow", "nowhere"], "Error: --allow 'nowhere' is neither a CIDR nor a file\n"
                             "Give a network like 198.51.100.0/24, an address, or a file with one per line.\n"),
])
def test_mitigate_errors_say_how_to_fix_them(mirai: dict[str, Any], args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["mitigate", str(mirai["folder"] / "report.json"), "--to", "nginx", *args])
    assert result.exit_code == 1
    assert result.stderr == message


def test_mitigate_refuses_a_json_that_is_not_a_report_and_never_overwrites_it(tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}')
    result = CliRunner().invoke(main, ["mitigate", str(other), "--to", "json", "--out", str(other)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {other}: not a floodwitness report")
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"schema": "floodwitness.report/1", "mitigation": _mitigation(["77.1.2.0/24"])}))
    result = CliRunner().invoke(main, ["mitigate", str(report), "--to", "json", "--out", str(report), "-q"])
    assert result.exit_code == 1 and "refusing to overwrite the input file" in result.stderr


def test_allow_file_with_a_bad_line_names_it(tmp_path: Path) -> None:
    path = tmp_path / "allow.txt"
    path.write_text("# office\n198.51.100.0/24  # vpn\n\nnot-a-net\n")
    with pytest.raises(Exception, match=r"allow.txt:4: 'not-a-net' is not a CIDR or IP address"):
        read_allow_specs([str(path)])
    path.write_text("198.51.100.0/24  # vpn\n2001:db8::1\n")
    assert read_allow_specs([str(path), "10.1.2.3"]) == ("198.51.100.0/24", "2001:db8::1/128", "10.1.2.3/32")
    assert parse_duration("90m") == 5400 and parse_duration("7d") == 604800


def test_limit_renders_nginx_and_haproxy_units() -> None:
    assert Limit("page", "ip", 120, 5).nginx_rate == "2r/s"
    assert Limit("page", "ip", 2, 3).nginx_rate == "2r/m"
    assert Limit("page", "ip", 2, 3).haproxy == (120, 8)  # 2/min over 120 s, plus burst + 1
    assert Limit("page", None).to_dict() == {"class": "page", "key": None}
