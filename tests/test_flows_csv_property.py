"""The nfdump CSV reader never crashes and never loses a record, whatever the lines (hypothesis)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from floodwitness.ingest.flows.run import ingest_flows
from floodwitness.ingest.store import FLOWS, new_manifest

HEADER = "ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt,opkt,obyt"

good = st.builds(
    lambda s, d, a, b, sp, dp, pr, pk, by: (f"2024-05-01 10:00:{s:02d},2024-05-01 10:00:{s + d:02d},{d}.000,"
                                           f"198.51.100.{a},203.0.113.{b % 256},{sp},{dp},{pr},.A..S...,0,0,{pk},{by},0,0"),
    st.integers(0, 40), st.integers(0, 19), st.integers(0, 255), st.integers(0, 65535), st.integers(0, 65535),
    st.integers(0, 65535), st.sampled_from(["TCP", "UDP", "ICMP", "GRE", "6", "17"]), st.integers(0, 10**12),
    st.integers(0, 10**15))
# anything on one line: commas, quotes, control characters, NUL, invalid-looking numbers, other scripts
junk = st.text(st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)), max_size=300)
mutated = st.tuples(good, st.integers(0, 200), junk).map(lambda t: t[0][: t[1]] + t[2] + t[0][t[1]:])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(good.map(lambda x: (True, x)), st.one_of(junk, mutated, st.just(""), st.just("Summary"))
                          .map(lambda x: (False, x))), max_size=40))
def test_csv_reader_never_crashes_nor_loses_a_record(tagged: list[tuple[bool, str]]) -> None:
    lines = [line for _, line in tagged]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        path = root / "flows.csv"
        path.write_bytes(("\n".join([HEADER, *lines]) + "\n").encode("utf-8"))
        manifest = new_manifest({}, "now")
        ingest_flows([str(path)], root / "store", manifest)
        item = manifest.flow_inputs[0]
        assert item.records_read == len(lines) + 1  # every line is one record (the header a counted non-record)
        assert item.records_read == item.records_parsed + item.records_rejected
        summary = next((i for i, line in enumerate(lines) if line.strip() == "Summary"), len(lines))
        expected_good = [line for i, (ok, line) in enumerate(tagged) if ok and i < summary]
        parts = [str(root / "store" / FLOWS / p) for p in item.parts]
        sql = f"SELECT count(*) FILTER (WHERE reject_reason IS NULL), count(*) FROM read_parquet({parts})"
        stored = duckdb.sql(sql).fetchall()[0] if parts else (0, 0)
        assert stored == (item.records_parsed, item.records_read)
        assert item.records_parsed >= len(expected_good)  # every well-formed flow line parses

