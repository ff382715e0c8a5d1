"""The network view in the report (#21): episodes tied to incidents, the outage explained or not, reflectors and
spoofed addresses named for what they are, and every rendering showing it."""

from __future__ import annotations

import copy
from typing import Any

from floodwitness.render.report_view import network_lines
from floodwitness.report.network import bits_text, incident_network, link, who_text

EPISODE: dict[str, Any] = {
    "id": "N1", "target": "203.0.113.10", "target_hosts": 1, "carpet_bombing": False,
    "start": "2026-03-01T14:39:50Z", "peak": "2026-03-01T14:41:00Z", "end": "2026-03-01T14:55:10Z",
    "duration_s": 920.0, "peak_pps": 812_000.0, "peak_bps": 9.2e9, "packets": 600_000_000, "bytes": 10**12,
    "baseline_pps": 300.0, "baseline_bps": 2.0e6,
    "vectors": [{"vector": "reflection_ntp", "name": "NTP reflection", "proto": 17, "port": 123, "port_side": "src",
                 "packets": 590_000_000, "bytes": 10**12, "share": 0.98, "peak_pps": 800_000.0, "peak_bps": 9.1e9,
                 "sources": 4120, "source_role": "reflectors",
                 "amplification": {"service": "NTP", "factor": 556.9, "reference": "US-CERT TA14-017A"},
                 "evidence": {"query": "SELECT ...", "samples": []}, "claim": "NTP reflection"}],
    "spoofing": {"indicators": []}, "incident": None,
}
NETWORK: dict[str, Any] = {"inputs": [{"path": "flows.csv", "records_parsed": 1000}], "episodes": [EPISODE],
                           "span": {"start": "2026-03-01T12:00:00Z", "end": "2026-03-01T18:00:00Z"}}


def outage_incident(began: str = "2026-03-01T14:40:12Z", ended: str | None = "2026-03-01T14:58:00Z",
                    start: str = "2026-03-01T14:40:00Z", end: str = "2026-03-01T14:58:00Z") -> dict[str, Any]:
    return {"id": "I1", "kind": "outage", "start": start, "end": end, "outage": {"began": began, "ended": ended}}


def test_an_outage_during_a_flood_is_explained_with_its_rate_vector_and_reflectors() -> None:
    view = incident_network(outage_incident(), NETWORK)
    assert view is not None
    assert view["episodes"] == ["N1"] and view["vectors"] == ["reflection_ntp"] and view["explains_outage"]
    text = view["statement"]
    assert text.startswith("the access log went silent at 2026-03-01T14:40:12Z while")
    assert "9.2 Gbit/s" in text and "port 123" in text and "203.0.113.10" in text
    assert "4,120 reflectors" in text and "attacker" not in text.split("reflectors")[0]


def test_a_quiet_network_during_an_outage_points_inside_but_only_where_flows_were_read() -> None:
    quiet = copy.deepcopy(NETWORK)
    quiet["episodes"] = []
    view = incident_network(outage_incident(), quiet)
    assert view is not None and not view["explains_outage"] and view["episodes"] == []
    assert "network was quiet during the outage" in view["statement"]
    quiet["span"] = {"start": "2026-03-01T15:00:00Z", "end": "2026-03-01T18:00:00Z"}  # flows begin after it
    assert incident_network(outage_incident(), quiet) is None


def test_an_episode_far_from_the_incident_is_not_tied_to_it() -> None:
    far = outage_incident("2026-03-01T17:00:00Z", "2026-03-01T17:20:00Z", "2026-03-01T17:00:00Z",
                          "2026-03-01T17:20:00Z")
    network = copy.deepcopy(NETWORK)
    link(network, [far])
    assert network["episodes"][0]["incident"] is None
    assert far["network"]["episodes"] == []
    near = outage_incident()
    near["outage"] |= {"cause": "outside", "cause_kind": None, "cause_note": "flow records are needed"}
    near["kind"] = "ddos"
    link(network, [near])
    assert network["episodes"][0]["incident"] == "I1"
    assert near["outage"]["cause"] == "attack" and near["outage"]["cause_kind"] == "ddos"
    assert "flows show a network-level flood" in near["outage"]["cause_note"]


def test_spoofed_sources_and_reflectors_are_never_called_attackers() -> None:
    assert "spoofed" in who_text({"sources": 37623, "source_role": "spoofed"})
    assert "cannot be known" in who_text({"sources": 37623, "source_role": "spoofed"})
    assert "misused servers" in who_text({"sources": 27, "source_role": "reflectors"})
    assert who_text({"sources": 3, "source_role": "sources"}) == "3 sources"
    lines = network_lines({"network": NETWORK, "incidents": []})
    assert any("4,120 reflectors" in line for line in lines)
    assert not any("attacker" in line for line in lines)


def test_bit_rates_read_as_people_say_them() -> None:
    assert bits_text(9.2e9) == "9.2 Gbit/s"
    assert bits_text(511_360) == "511.4 kbit/s"
    assert bits_text(12) == "12 bit/s"
