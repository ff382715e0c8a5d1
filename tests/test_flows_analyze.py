"""`analyze --flows` end to end (#21): the real captures judged by their flows alone, the pcap and the nfdump file
of one real attack agreeing, a simulated SYN flood's outage explained by the flows beside its access log, a heavy
but benign day not called an attack, and `mitigate` writing the network rules from a store."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from floodwitness.cli import main
from floodwitness.simulate import simulate

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = ROOT.parent / "shared" / "realdata" / "ddos-captures"
SIZE = {"hours": 1.0, "scale": 0.15}


def capture(name: str) -> Path:
    path = CAPTURES / name
    if not path.exists():
        pytest.skip(f"real capture {path} absent (../shared/realdata is not on this machine)")
    return path


def run(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["analyze", *args, "--json", "-", "-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.output)
    return report


def vectors(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["vector"]: v for e in report["network"]["episodes"] for v in e["vectors"]}


def test_real_spoofed_syn_flood_alone_is_a_ddos_with_its_vector_and_rules() -> None:
    report = run("--flows", str(capture("stopddos_syn_flood_spoofed.pcap")))
    assert report["verdict"]["kind"] == "ddos" and report["verdict"]["confidence"] >= 0.7
    assert "The flows show" in report["verdict"]["summary"]
    syn = vectors(report)["syn_flood"]
    assert (syn["sources"], syn["source_role"], syn["port"], syn["packets"]) == (37623, "spoofed", 25565, 37841)
    [inc] = report["incidents"]
    assert inc["seen_in"] == "flows" and inc["network"]["episodes"] == ["N1"] and inc["requests"] is None
    assert report["network"]["inputs"][0]["records_read"] == report["network"]["inputs"][0]["records_parsed"]
    rules = report["mitigation"]["network"]["rules"]
    assert rules[0]["vector"] == "syn_flood" and rules[0]["match"]["destination"] == "10.10.10.10/32"
    assert rules[0]["effect"]["stopped_share"] > 0.9
    assert any(r["action"] == "blackhole" and "LAST RESORT" in r["statements"][0] for r in rules)


def test_real_reflection_names_reflectors_never_attackers() -> None:
    report = run("--flows", str(capture("stopddos_snmp_amp.pcap")))
    snmp = vectors(report)["snmp_reflection"]
    assert snmp["source_role"] == "reflectors" and snmp["port"] == 161 and snmp["port_side"] == "src"
    assert 4000 <= snmp["sources"] <= 4276
    text = json.dumps(report["network"]) + report["verdict"]["summary"]
    # the attacker is named only as the one who sent the requests in the victim's name; no reflector is one of them
    assert "misused servers" in text and "attackers" not in text and "the attacker sent" in text


def test_the_pcap_and_the_nfdump_file_of_one_real_attack_agree() -> None:
    from_pcap = vectors(run("--flows", str(capture("booter_ssdp_amp_2014.pcap"))))["ssdp_reflection"]
    from_nfdump_file = capture("booter_ssdp_amp_2014.nfdump")
    if shutil.which("nfdump") is None:
        pytest.skip("nfdump is not installed (apt-get install nfdump): the nfcapd file cannot be read")
    from_nfdump = vectors(run("--flows", str(from_nfdump_file)))["ssdp_reflection"]
    assert from_pcap["sources"] == from_nfdump["sources"] == 27
    assert abs(from_pcap["packets"] - from_nfdump["packets"]) <= 0.02 * from_pcap["packets"]
    assert from_pcap["source_role"] == from_nfdump["source_role"] == "reflectors"


def test_real_http_sessions_are_no_network_flood() -> None:
    report = run("--flows", str(capture("cicddos2019_webddos_l7_negative.pcap")))
    assert report["network"]["episodes"] == [] and report["incidents"] == []
    assert report["verdict"]["kind"] == "no_incident"
    assert report["mitigation"]["network"]["rules"] == []


@pytest.fixture(scope="module")
def syn_day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("synday")
    simulate("syn_flood", folder, seed=2, **SIZE)
    return folder


def test_a_simulated_syn_flood_explains_the_outage_of_the_access_log(syn_day: Path) -> None:
    truth = json.loads((syn_day / "truth.json").read_text())["network"]["episodes"][0]
    without = run(str(syn_day / "access.log"))
    assert without["incidents"][0]["kind"] == "outage"  # the access log alone: silence, cause unknown
    report = run(str(syn_day / "access.log"), "--flows", str(syn_day / "flows.csv"))
    inc = report["incidents"][0]
    assert report["verdict"]["kind"] == inc["kind"] == "ddos"
    assert inc["network"]["explains_outage"] and inc["network"]["vectors"] == ["syn_flood"]
    assert inc["outage"]["cause"] == "attack" and "went silent" in inc["network"]["statement"]
    [episode] = report["network"]["episodes"]
    assert episode["incident"] == inc["id"] and episode["target"] == truth["target"]
    start = episode["start"].replace("Z", "")
    assert abs((_t(start) - _t(truth["start"].replace("Z", ""))).total_seconds()) <= 10
    assert any(f["kind"] == "network_flood" for f in report["findings"])


def _t(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text)


def test_mitigate_writes_flowspec_from_a_store_and_exabgp_accepts_it(syn_day: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    result = CliRunner().invoke(main, ["ingest", str(syn_day / "access.log"), "--flows", str(syn_day / "flows.csv"),
                                       "-o", str(store), "-q"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "flowspec.conf"
    result = CliRunner().invoke(main, ["mitigate", str(store), "--to", "exabgp-flowspec", "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert ("tcp-flags [syn&!ack];" in text and "destination-port =443;" in text) or "destination-port =80;" in text
    exabgp = shutil.which("exabgp") or ("/usr/sbin/exabgp" if Path("/usr/sbin/exabgp").exists() else None)
    if exabgp is None:
        pytest.skip("exabgp is not installed: the rules were written, not checked by its parser")
    checked = subprocess.run([exabgp, "--validate", str(out)], capture_output=True, text=True, timeout=60,
                             check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_heavy_benign_day_is_not_an_attack(tmp_path: Path) -> None:
    simulate("heavy_benign", tmp_path, seed=2, **SIZE)
    report = run(str(tmp_path / "access.log"), "--flows", str(tmp_path / "flows.csv"))
    assert report["verdict"]["kind"] not in ("ddos", "dos", "mixed")
    assert not [v for e in report["network"]["episodes"] for v in e["vectors"]]


def test_bad_victim_and_no_input_are_clear_errors() -> None:
    result = CliRunner().invoke(main, ["analyze", "--flows", "x.pcap", "--victim", "not-an-ip"])
    assert result.exit_code != 0 and "--victim 'not-an-ip' is not an address or prefix" in result.output
    result = CliRunner().invoke(main, ["analyze"])
    assert result.exit_code != 0 and "no input given" in result.output


def test_a_store_of_flows_alone_is_analysed_and_flows_beside_a_store_are_refused(tmp_path: Path) -> None:
    pcap = capture("stopddos_snmp_amp.pcap")
    store = tmp_path / "store"
    result = CliRunner().invoke(main, ["ingest", "--flows", str(pcap), "-o", str(store), "-q"])
    assert result.exit_code == 0, result.output
    assert vectors(run(str(store)))["snmp_reflection"]["source_role"] == "reflectors"
    # flows given beside a store would be silently left out: refused, saying how to put them together
    result = CliRunner().invoke(main, ["analyze", str(store), "--flows", str(pcap), "-q"])
    assert result.exit_code == 1
    assert f"{store} is a store: --flows cannot be added to it" in result.output
    assert "floodwitness ingest LOGS --flows FILE_OR_DIR --out DIR" in result.output
