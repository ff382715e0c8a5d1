"""Real components, real packets (issue #21): bounded hping3 floods inside a private network namespace pair,
captured by tcpdump, exported as IPFIX by softflowd to nfcapd and dumped by nfdump; floodwitness must find the
same SYN flood and UDP flood, with the same start and peak, in the pcap, the nfcapd files and nfdump's CSV.

Root in CI (.ci/run installs hping3 tcpdump softflowd nfdump nginx-light); elsewhere every test skips with the
reason. The lab (tests/netns_lab.py) is built once per session, ~25 s.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner

from floodwitness.cli import main
from tests.netns_lab import (
    ATTACKER,
    CLIENT,
    VICTIM,
    Flood,
    Lab,
    LabUnavailableError,
    Packets,
    build_lab,
    csv_flows,
    nfdump_flows,
    pcap_packets,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.slow

#: What floodwitness is given, per kind of flow input.
KINDS = ("pcap", "nfcapd", "nfdump_csv")
COMBINED = re.compile(r'^(\S+) \S+ \S+ \[[^]]+\] "GET \S+ HTTP/1\.1" (\d{3}) \d+ "[^"]*" "[^"]*"$')


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    try:
        with build_lab(tmp_path_factory.mktemp("netns-lab")) as built:
            yield built
    except LabUnavailableError as exc:
        pytest.skip(f"the network-namespace flood lab cannot run here: {exc}")


@dataclass
class Evidence:
    """The capture read back by tcpdump: what reached the victim."""

    syn: Packets  # bare SYNs to the victim's port 80, not from the ordinary client
    udp: Packets  # UDP to the victim's port 53
    to_victim: Packets  # every IPv4 packet to the victim (the floods and the ordinary requests)


@pytest.fixture(scope="session")
def evidence(lab: Lab) -> Evidence:
    return Evidence(
        syn=pcap_packets(lab.pcap, f"dst host {VICTIM} and tcp dst port 80 and tcp[tcpflags] == tcp-syn "
                                   f"and not src host {CLIENT}"),
        udp=pcap_packets(lab.pcap, f"dst host {VICTIM} and udp dst port 53"),
        to_victim=pcap_packets(lab.pcap, f"ip and dst host {VICTIM}"))


def _peak_second(packets: Packets) -> int:
    ((second, _),) = packets.per_second().most_common(1)
    return second


# -- the harness's own checks: the packets were sent, captured and exported ---------------------------------------

@pytest.mark.parametrize("name", ["syn", "udp"])
def test_the_capture_holds_each_flood_hping3_sent(lab: Lab, evidence: Evidence, name: str) -> None:
    flood: Flood = getattr(lab, name)
    packets: Packets = getattr(evidence, name)
    assert flood.sent == flood.planned  # -c honoured by both hping3 runs
    assert 0.99 * flood.sent <= len(packets.times) <= flood.sent
    assert abs(min(packets.times) - flood.start) < 1.0  # began when we started it
    assert _peak_second(packets) == flood.burst_second  # the burst made one peak second, known in advance
    if name == "syn":  # --rand-source: (nearly) one spoofed address per packet, never the lab's own
        assert len(set(packets.sources)) >= 0.99 * len(packets.times)
        assert not {ATTACKER, CLIENT, VICTIM} & set(packets.sources)
    else:  # not spoofed: all from the attacker
        assert set(packets.sources) == {ATTACKER}


def test_the_floods_are_apart_and_in_order(lab: Lab, evidence: Evidence) -> None:
    assert lab.syn.start < max(evidence.syn.times) < lab.udp.start - 3 < min(evidence.udp.times) - 3


def test_ordinary_requests_ran_before_during_and_after_and_were_logged(lab: Lab, evidence: Evidence) -> None:
    answers = [line.split() for line in lab.client_lines]
    served = [float(t) for t, status in answers if status == "200"]
    assert len(served) >= 0.9 * len(answers) and len(answers) >= 60
    syn_end, udp_end = max(evidence.syn.times), max(evidence.udp.times)
    assert any(t < lab.syn.start for t in served)
    assert any(lab.syn.start < t < syn_end for t in served)
    assert any(lab.udp.start < t < udp_end for t in served)
    assert any(t > udp_end for t in served)
    log = [COMBINED.match(line) for line in lab.access_log.read_text().splitlines()]
    assert all(log), "every access log line is in the combined format"
    assert [m.group(1) for m in log if m] == [CLIENT] * len(served)  # one line per request answered, nothing else


def test_the_netflow_export_carries_every_captured_flood_packet(lab: Lab, evidence: Evidence) -> None:
    assert lab.nfcapd_files, f"nfcapd wrote nothing in {lab.nfcapd_dir}"
    flows = nfdump_flows(lab.nfcapd_dir)
    csv, trailer = csv_flows(lab.flows_csv)
    assert trailer and trailer[0] == "Summary"  # the CSV as users export it, trailer and all
    assert len(csv) == len(flows)
    for rows, tcp, udp in ((flows, "6", "17"), (csv, "TCP", "UDP")):
        syn = [f for f in rows if f.dst == VICTIM and f.proto == tcp and f.dport == 80 and f.src != CLIENT]
        assert {f.flags for f in syn} == {"......S."}  # bare SYNs, never completed
        assert sum(f.packets for f in syn) == len(evidence.syn.times)
        # the flows keep the packets' times (softflowd -v 10 -A milli; -v 9 would shift them by its own uptime)
        assert abs(min(f.start for f in syn) - min(evidence.syn.times)) < (0.01 if rows is flows else 1)
        assert max(f.start for f in syn) <= max(evidence.syn.times) + 0.001
        flood = [f for f in rows if f.dst == VICTIM and f.proto == udp and f.dport == 53]
        assert {f.src for f in flood} == {ATTACKER}
        assert sum(f.packets for f in flood) == len(evidence.udp.times)


# -- floodwitness, through the CLI, against the report's network contract (/work/design21.md) ---------------------

def _has_flows_option() -> bool:
    analyze = main.commands.get("analyze")
    return analyze is not None and any("--flows" in param.opts for param in analyze.params)


def _analyze(flows: list[Path], *logs: Path) -> dict[str, Any]:
    args = ["analyze", *map(str, logs)]
    for path in flows:
        args += ["--flows", str(path)]
    args += ["--victim", f"{VICTIM}/32", "--json", "-", "-q"]
    result = CliRunner().invoke(main, args, prog_name="floodwitness", catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def _inputs(lab: Lab) -> dict[str, list[Path]]:
    return {"pcap": [lab.pcap], "nfcapd": lab.nfcapd_files, "nfdump_csv": [lab.flows_csv]}


@pytest.fixture(scope="session")
def reports(lab: Lab) -> dict[str, dict[str, Any]]:
    if not _has_flows_option():
        pytest.skip("floodwitness analyze has no --flows option yet (issue #21 is being wired): the lab ran, the "
                    "floodwitness assertions wait for it")
    return {kind: _analyze(paths) for kind, paths in _inputs(lab).items()}


def _at(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _episode(report: dict[str, Any], vector: str) -> tuple[dict[str, Any], dict[str, Any]]:
    network = report["network"]
    assert network is not None
    found = [(episode, v) for episode in network["episodes"] for v in episode["vectors"] if v["vector"] == vector]
    assert len(found) == 1, f"{vector}: {[e['vectors'] for e in network['episodes']]}"
    return found[0]


def _measured_peak(episode: dict[str, Any], packets: Packets) -> int:
    """The busiest second of ``packets`` within the episode, counted by tcpdump."""
    counts = packets.per_second()
    start, end = int(_at(episode["start"])), int(_at(episode["end"]))
    return max(counts[s] for s in range(start - 1, end + 2))


def _check_times(episode: dict[str, Any], lab: Lab, evidence: Evidence) -> None:
    """Start, peak and end of an episode against the floods it holds: its own, or both floods (the merge gap of
    the detector is the lead's to choose; 5 s of ordinary traffic lie between them)."""
    names = {v["vector"] for v in episode["vectors"]}
    held = [(flood, packets) for name, flood, packets in (("syn_flood", lab.syn, evidence.syn),
                                                          ("udp_flood", lab.udp, evidence.udp)) if name in names]
    (first, _), (last, last_packets) = held[0], held[-1]
    assert abs(_at(episode["start"]) - first.start) <= 2
    assert abs(_at(episode["end"]) - max(last_packets.times)) <= 2
    # the UDP burst is the higher one: an episode holding both floods peaks there
    assert abs(_at(episode["peak"]) - last.burst_second) <= 1
    measured = _measured_peak(episode, evidence.to_victim)
    assert abs(episode["peak_pps"] - measured) <= 0.10 * measured


@pytest.mark.parametrize("kind", KINDS)
def test_floodwitness_names_the_syn_flood_spoofed(reports: dict[str, dict[str, Any]], lab: Lab,
                                                  evidence: Evidence, kind: str) -> None:
    report = reports[kind]
    assert report["network"]["victims"]["given"] == [f"{VICTIM}/32"]
    episode, syn = _episode(report, "syn_flood")
    assert episode["target"] == VICTIM and episode["target_hosts"] == 1 and episode["carpet_bombing"] is False
    assert (syn["proto"], syn["port"], syn["port_side"]) == (6, 80, "dst")
    assert syn["source_role"] == "spoofed" and syn["amplification"] is None
    assert abs(syn["packets"] - len(evidence.syn.times)) <= 0.02 * len(evidence.syn.times)
    distinct = len(set(evidence.syn.sources))
    assert abs(syn["sources"] - distinct) <= 0.05 * distinct
    measured = _measured_peak(episode, evidence.syn)
    assert abs(syn["peak_pps"] - measured) <= 0.10 * measured
    _check_times(episode, lab, evidence)


@pytest.mark.parametrize("kind", KINDS)
def test_floodwitness_names_the_udp_flood_not_reflection(reports: dict[str, dict[str, Any]], lab: Lab,
                                                         evidence: Evidence, kind: str) -> None:
    report = reports[kind]
    # hping3's UDP flood comes from one unspoofed address, its source port counting up from a random one (through
    # 1900, 3702, 5353 ... by chance): not reflection, and no reflection vector anywhere
    assert not [v for e in report["network"]["episodes"] for v in e["vectors"]
                if v["port_side"] == "src" or v["source_role"] == "reflectors" or v["amplification"]]
    episode, udp = _episode(report, "udp_flood")
    assert episode["target"] == VICTIM
    assert (udp["proto"], udp["port"], udp["port_side"]) == (17, 53, "dst")
    assert udp["source_role"] == "sources" and udp["sources"] == 1
    assert abs(udp["packets"] - len(evidence.udp.times)) <= 0.02 * len(evidence.udp.times)
    measured = _measured_peak(episode, evidence.udp)
    assert abs(udp["peak_pps"] - measured) <= 0.10 * measured
    _check_times(episode, lab, evidence)


@pytest.mark.parametrize("vector", ["syn_flood", "udp_flood"])
def test_the_three_inputs_agree_on_start_and_peak(reports: dict[str, dict[str, Any]], vector: str) -> None:
    pcap, pcap_vector = _episode(reports["pcap"], vector)
    for kind in KINDS[1:]:
        other, other_vector = _episode(reports[kind], vector)
        assert abs(other_vector["peak_pps"] - pcap_vector["peak_pps"]) <= 0.10 * pcap_vector["peak_pps"], kind
        assert abs(_at(other["start"]) - _at(pcap["start"])) <= 1, kind
        assert abs(_at(other["peak"]) - _at(pcap["peak"])) <= 1, kind
        assert abs(other["peak_pps"] - pcap["peak_pps"]) <= 0.10 * pcap["peak_pps"], kind
        assert abs(_at(other["end"]) - _at(pcap["end"])) <= 1, kind


@pytest.mark.parametrize("kind", KINDS)
def test_the_flow_inputs_are_accounted(reports: dict[str, dict[str, Any]], lab: Lab, kind: str) -> None:
    paths = _inputs(lab)[kind]
    records = report_inputs = reports[kind]["network"]["inputs"]
    assert [r["kind"] for r in report_inputs] == [kind] * len(paths)
    for record, path in zip(records, paths, strict=True):
        assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert record["records_read"] == record["records_parsed"] + record["records_rejected"]
    parsed = sum(r["records_parsed"] for r in records)
    if kind == "nfcapd":
        assert parsed == len(nfdump_flows(lab.nfcapd_dir))
    elif kind == "nfdump_csv":
        assert parsed == len(csv_flows(lab.flows_csv)[0])


def test_with_the_access_log_the_same_floods_and_every_request(reports: dict[str, dict[str, Any]],
                                                               lab: Lab) -> None:
    report = _analyze([lab.pcap], lab.access_log)
    (log,) = report["inputs"]
    lines = lab.access_log.read_text().splitlines()
    assert (log["lines_read"], log["lines_parsed"], log["lines_rejected"]) == (len(lines), len(lines), 0)
    for vector in ("syn_flood", "udp_flood"):
        together, _ = _episode(report, vector)
        alone, _ = _episode(reports["pcap"], vector)
        assert (together["start"], together["peak"], together["peak_pps"]) == \
            (alone["start"], alone["peak"], alone["peak_pps"])
    # the ordinary requests kept being answered through both floods: no outage for the floods to explain
    assert not [i for i in report["incidents"] if (i.get("network") or {}).get("explains_outage")]
