"""#21 flow ingest: every real capture read with full accounting, the pcap and the nfdump file of one attack
agreeing, nfdump's own CSV/JSON exports and softflowd's NetFlow v9/IPFIX exports reading back to the same totals,
sampling scaled, and bad input counted or refused clearly."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from floodwitness.cli import main
from floodwitness.errors import FormatError, InputError
from floodwitness.ingest import IngestOptions, ingest, open_store
from floodwitness.ingest.checks import require_parsed
from floodwitness.ingest.store import Manifest, flow_paths
from floodwitness.schema import FLOW_ARROW_SCHEMA
from tests.flows_helpers import CAPTURES, PACKETS, need, nfcapd_of, query, softflowd_exports

VICTIM = "172.31.28.132"
SSDP = f"dst_ip = '{VICTIM}' AND src_port = 1900 AND proto = 17"


def flows(paths: list[str | Path], out: Path, **options: object) -> Manifest:
    return ingest([], out, options=IngestOptions(flows=tuple(str(p) for p in paths), **options))  # type: ignore[arg-type]


@pytest.fixture
def captures(realdata: Path) -> Path:
    folder = realdata / CAPTURES
    if not folder.is_dir():
        pytest.skip(f"real data folder {folder} is absent")
    return folder


@pytest.mark.parametrize("name", sorted(PACKETS))
def test_every_real_capture_reads_with_full_accounting(captures: Path, tmp_path: Path, name: str) -> None:
    need("tcpdump")
    manifest = flows([captures / name], tmp_path / "s")
    item = manifest.flow_inputs[0]
    assert item.kind == "pcap"
    assert item.records_read == item.records_parsed + item.records_rejected > 0
    assert item.packets_read == PACKETS[name]
    assert item.packets_read == item.packets_in_flows + sum(item.packets_outside_flows.values())
    table = pq.read_table(flow_paths(tmp_path / "s")[0])
    assert table.schema.equals(FLOW_ARROW_SCHEMA)
    assert len(item.sha256) == 64 and item.bytes == (captures / name).stat().st_size
    (total,) = query(tmp_path / "s", "SELECT sum(packets) FROM f WHERE reject_reason IS NULL")[0]
    assert total == item.packets_in_flows


def test_syn_flood_every_packet_in_a_flow_to_the_victim(captures: Path, tmp_path: Path) -> None:
    need("tcpdump")
    manifest = flows([captures / "stopddos_syn_flood_spoofed.pcap"], tmp_path / "s")
    assert manifest.flow_inputs[0].packets_in_flows == 37841
    rows = query(tmp_path / "s", """SELECT sum(packets), count(DISTINCT src_ip), bool_and(tcp_flags & 2 = 2),
                                     bool_or(tcp_flags & 16 = 16) FROM f
                                     WHERE dst_ip = '10.10.10.10' AND dst_port = 25565 AND proto = 6""")
    assert rows == [(37841, 37623, True, False)]  # all bare SYN, 37,623 spoofed sources (SOURCE.txt)


def test_dns_fragments_are_rows_of_their_own(captures: Path, tmp_path: Path) -> None:
    need("tcpdump")
    manifest = flows([captures / "stopddos_dns_rrsig_amp_fragmented.pcap"], tmp_path / "s")
    item = manifest.flow_inputs[0]
    fragments = int(subprocess.run(["tcpdump", "-r", str(captures / "stopddos_dns_rrsig_amp_fragmented.pcap"),
                                    "--count", "ip[6:2] & 0x1fff != 0"], capture_output=True, check=False)
                    .stdout.split()[0])
    rows = query(tmp_path / "s", """SELECT count(*), sum(packets), sum(fragments), count(src_port), min(bytes)
                                    FROM f WHERE fragments = 1""")
    assert rows == [(fragments, fragments, fragments, 0, rows[0][4])] and fragments > 500
    assert item.packets_read == 4412 == item.packets_in_flows  # nfstream's packets + the fragments
    (to_victim,) = query(tmp_path / "s", "SELECT count(*) FROM f WHERE fragments = 1 AND dst_ip = '10.10.10.10'")[0]
    assert to_victim == fragments  # the fragment flood reaches the victim


def test_ssdp_pcap_and_nfdump_agree(captures: Path, tmp_path: Path) -> None:
    need("nfdump")
    need("tcpdump")
    sql = f"SELECT sum(packets), min(start), max(\"end\") FROM f WHERE {SSDP}"
    flows([captures / "booter_ssdp_amp_2014.pcap"], tmp_path / "p")
    flows([captures / "booter_ssdp_amp_2014.nfdump"], tmp_path / "n")
    (pp, p0, p1), (nn, n0, n1) = query(tmp_path / "p", sql)[0], query(tmp_path / "n", sql)[0]
    assert pp > 300 and abs(pp - nn) <= 0.02 * pp
    assert abs((p0 - n0).total_seconds()) < 1 and abs((p1 - n1).total_seconds()) < 1


def test_nfdump_csv_and_json_exports_read_back_to_the_binary_totals(captures: Path, tmp_path: Path) -> None:
    nfdump = need("nfdump")
    binary = captures / "booter_ssdp_amp_2014.nfdump"
    env = {"TZ": "UTC", "PATH": "/usr/bin:/bin"}
    for kind in ("csv", "json"):
        data = subprocess.run([nfdump, "-r", str(binary), "-o", kind], capture_output=True, check=True, env=env).stdout
        (tmp_path / f"export.{kind}").write_bytes(data)
    sql = "SELECT count(*), sum(packets), sum(bytes), min(start), count(DISTINCT src_ip) FROM f " \
          "WHERE reject_reason IS NULL"
    made = {}
    for name in ("export.csv", "export.json", str(binary)):
        manifest = flows([tmp_path / name], tmp_path / f"s-{Path(name).suffix}")
        item = manifest.flow_inputs[0]
        assert item.records_read == item.records_parsed + item.records_rejected
        made[name] = (item, query(tmp_path / f"s-{Path(name).suffix}", sql)[0])
    assert [made[n][0].kind for n in made] == ["nfdump_csv", "nfdump_json", "nfcapd"]
    assert made["export.csv"][0].rejected_by_reason == {"csv_header": 1, "nfdump_summary": 3}
    flows_n, packets, octets = made[str(binary)][1][:3]
    assert (flows_n, packets, octets) == (2834, 4182, 841913)  # nfdump -I of the file
    for name in ("export.csv", "export.json"):
        assert made[name][1][:3] == (flows_n, packets, octets)
        assert made[name][1][4] == made[str(binary)][1][4]
        assert abs((made[name][1][3] - made[str(binary)][1][3]).total_seconds()) < 1  # CSV: whole seconds


@pytest.mark.parametrize(("version", "kind"), [("9", "netflow"), ("10", "ipfix")])
def test_softflowd_exports_decode_to_the_capture_totals(captures: Path, tmp_path: Path, version: str,
                                                        kind: str) -> None:
    need("tcpdump")
    exports = tmp_path / "exports.pcap"
    count = softflowd_exports(captures / "booter_ssdp_amp_2014.pcap", exports, version)
    assert count > 10
    item = flows([exports], tmp_path / "s").flow_inputs[0]
    assert item.kind == kind and item.records_rejected == 0
    (packets, ssdp, first) = query(tmp_path / "s", f"""SELECT sum(packets), sum(packets) FILTER (WHERE {SSDP}),
                                                        min(start) FROM f""")[0]
    # every IP packet of the capture (4,200 read - 18 ARP frames), as nfdump's file of the same event counts
    assert packets == 4182
    flows([captures / "booter_ssdp_amp_2014.pcap"], tmp_path / "p")
    (metered, metered_first) = query(tmp_path / "p", f"SELECT sum(packets) FILTER (WHERE {SSDP}), min(start) FROM f")[0]
    assert ssdp == metered > 300  # the same SSDP packets to the victim as nfstream meters from the capture
    assert abs((first - metered_first).total_seconds()) < 1


def test_netflow_decoder_and_nfcapd_agree_on_the_same_exports(captures: Path, tmp_path: Path) -> None:
    need("nfdump")
    capture = captures / "booter_ssdp_amp_2014.pcap"
    nfcapd_file = nfcapd_of(capture, tmp_path / "nfcapd", "9")
    (tmp_path / "own").mkdir()
    softflowd_exports(capture, tmp_path / "own" / "exports.pcap", "9")
    flows([nfcapd_file], tmp_path / "n")
    flows([tmp_path / "own" / "exports.pcap"], tmp_path / "d")
    sql = f"SELECT count(*), sum(packets), sum(bytes), sum(packets) FILTER (WHERE {SSDP}) FROM f"
    assert query(tmp_path / "n", sql) == query(tmp_path / "d", sql)
    assert query(tmp_path / "d", sql)[0][1] == 4182


def test_sampling_announced_or_declared_is_scaled(captures: Path, tmp_path: Path) -> None:
    need("tcpdump")
    v9 = tmp_path / "v9.pcap"
    softflowd_exports(captures / "booter_ssdp_amp_2014.pcap", v9, "9", "-s", "10")
    (tmp_path / "b").mkdir()
    ipfix = tmp_path / "b" / "ipfix.pcap"
    softflowd_exports(captures / "booter_ssdp_amp_2014.pcap", ipfix, "10", "-s", "10")
    item = flows([v9], tmp_path / "s9").flow_inputs[0]
    assert item.sampling == {"10": item.records_parsed}  # announced in the v9 options
    (scaled, rows) = query(tmp_path / "s9", "SELECT sum(packets), count(*) FROM f")[0]
    assert abs(scaled - 4182) <= 0.2 * 4182 and scaled % 10 == 0  # 1 in 10 packets, scaled back up
    plain = flows([ipfix], tmp_path / "s10").flow_inputs[0]  # softflowd's IPFIX does not announce the rate
    declared = flows([ipfix], tmp_path / "s10d", flow_sampling=10).flow_inputs[0]
    (raw_total,) = query(tmp_path / "s10", "SELECT sum(packets) FROM f")[0]
    (declared_total,) = query(tmp_path / "s10d", "SELECT sum(packets) FROM f")[0]
    assert plain.sampling == {"1": plain.records_parsed} and declared.sampling == {"10": declared.records_parsed}
    assert declared_total == 10 * raw_total and rows > 0


def test_truncated_and_broken_captures(captures: Path, tmp_path: Path) -> None:
    need("tcpdump")
    data = (captures / "stopddos_syn_flood_spoofed.pcap").read_bytes()
    (tmp_path / "cut.pcap").write_bytes(data[:1_000_000])
    item = flows([tmp_path / "cut.pcap"], tmp_path / "s").flow_inputs[0]
    assert 0 < item.packets_read < 37841 and item.packets_read == item.packets_in_flows
    assert any("truncated" in note for note in item.notes)
    (tmp_path / "head.pcap").write_bytes(data[:10])
    with pytest.raises(FormatError, match="not a readable packet capture"):
        flows([tmp_path / "head.pcap"], tmp_path / "t")
    result = CliRunner().invoke(main, ["ingest", "--flows", str(tmp_path / "head.pcap"), "-o", str(tmp_path / "u")])
    assert result.exit_code == 1 and "Error:" in result.output and "Traceback" not in result.output


def test_nfdump_csv_rejects_are_counted_with_their_line(tmp_path: Path) -> None:
    header = "ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt,opkt,obyt"
    good = "2024-05-01 10:00:00,2024-05-01 10:00:02,2.000,198.51.100.7,203.0.113.10,123,443,UDP,........,0,0,10,4680,0,0"
    lines = [header, good, good.replace("198.51.100.7", "not-an-ip"), good.replace("UDP", "BOGUS"),
             good.replace("2024-05-01 10:00:00", "yesterday"), "1,2,3", "", good.replace(",10,4680", ",-1,4680"),
             good.replace("443", "99999"), good.replace("UDP,........", "TCP,.A..S..."), "Summary", "flows,bytes", "1,2"]
    path = tmp_path / "x.csv"
    path.write_text("\n".join(lines) + "\n")
    item = flows([path], tmp_path / "s").flow_inputs[0]
    assert item.records_read == len(lines)
    assert item.rejected_by_reason == {"bad_address": 1, "bad_columns": 1, "bad_counter": 1, "bad_port": 1,
                                       "bad_protocol": 1, "bad_time": 1, "csv_header": 1, "empty_line": 1,
                                       "nfdump_summary": 3}
    assert {s.reason: s.line for s in item.reject_samples}["bad_address"] == 3
    rows = query(tmp_path / "s", "SELECT record, proto, tcp_flags, packets, src_port FROM f "
                                 "WHERE reject_reason IS NULL ORDER BY record")
    assert rows == [(2, 17, None, 10, 123), (10, 6, 18, 10, 123)]  # ACK|SYN


def test_inputs_chosen_by_content_not_name(captures: Path, tmp_path: Path) -> None:
    need("nfdump")
    odd = tmp_path / "flows.txt"
    odd.write_bytes((captures / "booter_ssdp_amp_2014.nfdump").read_bytes())
    assert flows([odd], tmp_path / "s").flow_inputs[0].kind == "nfcapd"
    junk = tmp_path / "junk.pcap"
    junk.write_text("hello\n")
    with pytest.raises(FormatError, match="not a flow input"):
        flows([junk], tmp_path / "t")
    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / "nfcapd.202405011000").write_bytes(odd.read_bytes())
    (folder / "README").write_text("not flows\n")
    manifest = flows([folder], tmp_path / "u")
    assert [i.kind for i in manifest.flow_inputs] == ["nfcapd"] and manifest.skipped[0]["path"].endswith("README")


def test_missing_nfdump_is_a_clear_error(captures: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("floodwitness.ingest.flows.base.shutil.which", lambda _name: None)
    with pytest.raises(InputError, match="needs the `nfdump` program") as caught:
        flows([captures / "booter_ssdp_amp_2014.nfdump"], tmp_path / "s")
    assert "apt-get install nfdump" in (caught.value.hint or "")


def test_flows_only_store_and_old_manifests(captures: Path, tmp_path: Path) -> None:
    need("tcpdump")
    manifest = flows([captures / "stopddos_snmp_amp.pcap"], tmp_path / "s")
    require_parsed(manifest)  # a store of flows only is valid
    store = open_store(tmp_path / "s")
    assert store.parts == [] and store.flow_parts == flow_paths(tmp_path / "s") != []
    data = json.loads((tmp_path / "s" / "manifest.json").read_text())
    data.pop("flow_inputs")
    assert Manifest.from_dict(data).flow_inputs == []


def test_cli_ingest_flows_summary(captures: Path, tmp_path: Path) -> None:
    need("tcpdump")
    helptext = CliRunner().invoke(main, ["ingest", "--help"]).output
    assert "--flows" in helptext and "--flow-sampling" in helptext
    out = tmp_path / "s"
    result = CliRunner().invoke(main, ["ingest", "--flows", str(captures / "booter_ssdp_amp_2014.pcap"), "-o", str(out),
                                       "--json", str(tmp_path / "i.json")])
    assert result.exit_code == 0, result.output
    assert "4,200 packets = 4,182 in flows + non_ip 18" in " ".join(result.output.split())
    summary = json.loads((tmp_path / "i.json").read_text())
    assert summary["flow_inputs"][0]["packets_outside_flows"]["non_ip"] == 18
    none = CliRunner().invoke(main, ["ingest", "-o", str(tmp_path / "t")])
    assert none.exit_code == 1 and "no input given" in none.output


def test_csv_fast_path_and_line_path_store_the_same_rows(tmp_path: Path) -> None:
    """A plain CSV goes through DuckDB's own reader, a gzipped one line by line: the same rows either way."""
    header = "ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt,opkt,obyt"
    good = "2024-05-01 10:00:00,2024-05-01 10:00:02,2.000,198.51.100.7,203.0.113.10,123,443,UDP,........,0,0,10,4680,0,0"
    lines = [header, *[good.replace("10:00:00", f"10:00:{i:02d}") for i in range(30)], "1,2,3",
             good.replace("UDP", "BOGUS"), good.replace("198.51.100.7", "2001:db8::1"), "Summary", "flows,bytes", "1,2"]
    plain = tmp_path / "p.csv"
    plain.write_text("\n".join(lines) + "\n")
    (tmp_path / "z").mkdir()
    zipped = tmp_path / "z" / "p.csv.gz"
    zipped.write_bytes(gzip.compress(plain.read_bytes()))
    fast = flows([plain], tmp_path / "a").flow_inputs[0]
    slow = flows([zipped], tmp_path / "b").flow_inputs[0]
    assert "read_csv" in fast.reader and "lines" in slow.reader
    assert fast.rejected_by_reason == slow.rejected_by_reason == {"bad_address": 1, "bad_columns": 1,
                                                                  "bad_protocol": 1, "csv_header": 1,
                                                                  "nfdump_summary": 3}
    sql = "SELECT * EXCLUDE (file_id) FROM f ORDER BY record"
    assert query(tmp_path / "a", sql) == query(tmp_path / "b", sql)
