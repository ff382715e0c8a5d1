"""data/vectors.json: every entry complete, and the network findings built from an analysis."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import numpy as np
import pyarrow as pa

from floodwitness.analysis.network import analyze_network
from floodwitness.analysis.network_vectors import load_vectors
from floodwitness.detectors import FINDING_KINDS
from floodwitness.detectors.network import network_findings
from tests.test_network_detect import T0, flows, ips


def test_every_vector_is_complete() -> None:
    vectors = load_vectors()
    assert {"syn_flood", "ack_flood", "rst_flood", "udp_flood", "icmp_flood", "gre_flood",
            "fragment_flood"} == set(vectors.direct)
    ports = {spec.port for spec in vectors.reflection.values()}
    assert {53, 123, 1900, 11211, 389, 19, 161, 3702, 111, 137, 17, 27015, 520, 5353, 1434, 10001, 3283, 37810,
            30718, 3478, 5683} <= ports
    assert len(ports) == len(vectors.reflection)  # one service per port
    for key, spec in vectors.all.items():
        assert spec.name and spec.signature and spec.technique.startswith("T1498"), key
        assert spec.thresholds.min_packets > 0 and 0 <= spec.thresholds.min_share <= 1, key
        if spec.reflection:
            assert spec.technique == "T1498.002" and spec.reference and spec.service, key
            assert spec.factor is None or (spec.factor_range and spec.factor_range[1] == spec.factor), key
            assert spec.factor is not None or "not checked" in (spec.reference or ""), key
        else:
            assert spec.technique == "T1498.001", key
    assert vectors.reflection["ntp_reflection"].factor == 556.9
    assert vectors.reflection["ssdp_reflection"].factor == 30.8


def _syn_analysis() -> tuple[duckdb.DuckDBPyConnection, object]:
    rng = np.random.default_rng(7)
    n = 5000
    table = flows(n, start=T0 + 100 + rng.uniform(0, 10, n), src=ips("45.", n, rng), dst="203.0.113.60", proto=6,
                  sport=rng.integers(1024, 65535, n), dport=443, flags=2)
    quiet = flows(2, start=np.array([T0, T0 + 3600.0]), src="100.1.1.1", dst="203.0.113.60", proto=6, sport=5000,
                  dport=443, flags=27)
    con = duckdb.connect()
    return con, analyze_network(con, pa.concat_tables([table, quiet]))


def test_network_findings_in_and_outside_the_window() -> None:
    _, analysis = _syn_analysis()
    at = lambda s: datetime.fromtimestamp(T0 + s, tz=UTC)  # noqa: E731
    found = network_findings(analysis, (at(90), at(200)), 0)  # type: ignore[arg-type]
    kinds = [f.kind for f in found]
    assert kinds == ["network_flood", "spoofed_sources"]
    flood = found[0]
    assert flood.metrics["vector"] == "syn_flood" and flood.metrics["packets"] == 5000
    assert flood.evidence[0].query.startswith("WITH base AS") and flood.evidence[0].line is not None
    assert FINDING_KINDS["network_flood"].vector and FINDING_KINDS[flood.kind].technique == "T1498.001"
    quiet = network_findings(analysis, (at(1000), at(2000)), 1)  # type: ignore[arg-type]
    assert [f.kind for f in quiet] == ["network_quiet"] and quiet[0].id == "I2-net-quiet"
    assert network_findings(analysis, (at(5000), at(6000)), 0) == []  # type: ignore[arg-type]
