"""Flow ingest speed (#21), each step its own process so its peak RSS is its own (``wait4``), beside a peer run on the
same file in the same run:

* nfdump CSV: a generated ``nfdump -o csv`` file (all 48 of nfdump 1.7's columns, numpy-generated, default 5M
  records) through ``floodwitness ingest --flows``, beside DuckDB's bare ``read_csv`` of the same file;
* nfcapd binary: copies of the real booter nfdump file merged by ``nfdump -w`` into one big file, through
  floodwitness, beside ``nfdump -r FILE -q -o fmt:...`` writing to /dev/null (nfdump's own reading);
* pcap: the real SYN-flood capture repeated (timestamps shifted) into a larger capture, through floodwitness,
  beside ``tcpdump -r FILE -w /dev/null``.

    python benchmarks/flows_ingest.py [--records 5000000] [--pcap-copies 20] [--nfcapd-copies 400]

Files are cached in benchmarks/out/ (git-ignored). The real captures are read in place from ../shared/realdata.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
CAPTURES = ROOT.parent / "shared" / "realdata" / "ddos-captures"
HEADER = ("ts,te,td,sa,da,sp,dp,pr,flg,fwd,stos,ipkt,ibyt,opkt,obyt,in,out,sas,das,smk,dmk,dtos,dir,nh,nhb,svln,dvln,"
          "ismc,odmc,idmc,osmc,mpls1,mpls2,mpls3,mpls4,mpls5,mpls6,mpls7,mpls8,mpls9,mpls10,cl,sl,al,ra,eng,exid,tr")


def run(args: list[str], **kw: object) -> tuple[float, int]:
    """Wall seconds and peak RSS (MB) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, **kw)  # type: ignore[call-overload]
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"failed ({status}): {' '.join(args)}")
    return time.perf_counter() - start, usage.ru_maxrss // 1024


def make_csv(path: Path, records: int) -> None:
    if path.exists():
        return
    rng = np.random.default_rng(21)
    chunk = 1_000_000
    names = HEADER.split(",")
    partial = path.with_suffix(".partial")  # renamed when complete: an interrupted run leaves no short file
    with partial.open("wb") as out:
        out.write((HEADER + "\n").encode())
        for lo in range(0, records, chunk):
            n = min(chunk, records - lo)
            start = 1714557600 + np.sort(rng.integers(0, 86400, n))
            dur = rng.integers(0, 30, n)
            cols = {
                "ts": pa.array(start.astype("datetime64[s]")).cast(pa.string()),
                "te": pa.array((start + dur).astype("datetime64[s]")).cast(pa.string()),
                "td": pa.array(dur.astype(np.float64)).cast(pa.string()),
                "sa": pa.array(np.char.add(np.char.add("198.51.", rng.integers(0, 256, n).astype(str)),
                                           np.char.add(".", rng.integers(0, 256, n).astype(str)))),
                "da": pa.array(np.char.add("203.0.113.", rng.integers(0, 256, n).astype(str))),
                "sp": pa.array(rng.integers(0, 65536, n)), "dp": pa.array(rng.integers(0, 65536, n)),
                "pr": pa.array(rng.choice(np.array(["UDP", "TCP", "ICMP"]), n)),
                "flg": pa.array(rng.choice(np.array(["........", ".A..S...", "...P.S.."]), n)),
                "ipkt": pa.array(rng.integers(1, 1000, n)), "ibyt": pa.array(rng.integers(40, 1_500_000, n)),
            }
            table = pa.table({name: cols.get(name, pa.array(np.zeros(n, dtype=np.int8))) for name in names})
            table = table.set_column(names.index("ra"), "ra", pa.array(np.full(n, "192.0.2.1")))
            body = pa.BufferOutputStream()
            pacsv.write_csv(table, body, pacsv.WriteOptions(include_header=False, quoting_style="none"))
            out.write(body.getvalue().to_pybytes())
        out.write(b"Summary\nflows,bytes,packets,avg_bps,avg_pps,avg_bpp\n0,0,0,0,0,0\n")
    partial.replace(path)


def make_nfcapd(path: Path, copies: int) -> None:
    if path.exists() or shutil.which("nfdump") is None:
        return
    folder = OUT / "nfcapd-copies"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(copies):
        link = folder / f"nfcapd.{202405010000 + i}"
        if not link.exists():
            link.symlink_to(CAPTURES / "booter_ssdp_amp_2014.nfdump")
    subprocess.run(["nfdump", "-R", str(folder), "-w", str(path)], check=True, stdout=subprocess.DEVNULL)


def make_pcap(path: Path, copies: int) -> None:
    if path.exists():
        return
    import dpkt  # noqa: PLC0415

    source = CAPTURES / "stopddos_syn_flood_spoofed.pcap"
    with source.open("rb") as f:
        reader = dpkt.pcap.Reader(f)
        packets = list(reader)
        link = reader.datalink()
    span = packets[-1][0] - packets[0][0] + 1
    with path.open("wb") as out:
        writer = dpkt.pcap.Writer(out, linktype=link, snaplen=65535)
        for i in range(copies):
            for ts, buf in packets:
                writer.writepkt(buf, ts=ts + i * span)


def floodwitness(flow: Path, store: Path) -> tuple[float, int]:
    shutil.rmtree(store, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return run([sys.executable, "-m", "floodwitness.cli", "ingest", "--flows", str(flow), "-o", str(store), "-q"],
               env=env)


def report(name: str, records: int, mine: tuple[float, int], peer_name: str, peer: tuple[float, int]) -> None:
    print(f"{name}: {records:,} records")
    print(f"  floodwitness ingest --flows: {mine[0]:.2f} s, {records / mine[0]:,.0f} records/s, peak RSS {mine[1]} MB")
    print(f"  {peer_name}: {peer[0]:.2f} s, {records / peer[0]:,.0f} records/s, peak RSS {peer[1]} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=5_000_000)
    parser.add_argument("--pcap-copies", type=int, default=20)
    parser.add_argument("--nfcapd-copies", type=int, default=400)
    parser.add_argument("--make-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    csv = OUT / f"flows-{args.records}.csv"
    big = OUT / f"nfcapd-{args.nfcapd_copies}"
    pcap = OUT / f"syn-x{args.pcap_copies}.pcap"
    if args.make_only:
        make_csv(csv, args.records)
        if CAPTURES.is_dir():
            make_nfcapd(big, args.nfcapd_copies)
            make_pcap(pcap, args.pcap_copies)
        return
    # the inputs are made by a child, so this process stays small (a child's peak RSS counts its fork's pages)
    subprocess.run([sys.executable, __file__, "--make-only", *sys.argv[1:]], check=True)
    mine = floodwitness(csv, OUT / "store-csv")
    peer = run([sys.executable, "-c", "import duckdb,sys; print(duckdb.sql(\"SELECT count(*), sum(ipkt) FROM "
                "read_csv(?, header=true, ignore_errors=true)\", params=[sys.argv[1]]).fetchall())", str(csv)])
    report(f"nfdump CSV {csv.stat().st_size / 1e6:.0f} MB", args.records, mine, "duckdb read_csv (count, sum)", peer)
    if not CAPTURES.is_dir():
        print(f"(no real captures at {CAPTURES}: nfcapd and pcap steps skipped)")
        return
    if big.exists():
        flows_n = 2834 * args.nfcapd_copies
        mine = floodwitness(big, OUT / "store-nfcapd")
        peer = run(["nfdump", "-r", str(big), "-q", "-N", "-o", "fmt:%ts|%te|%sa|%da|%sp|%dp|%pr|%flg|%ipkt|%ibyt|%ra"])
        report(f"nfcapd {big.stat().st_size / 1e6:.0f} MB", flows_n, mine, "nfdump -r -o fmt (to /dev/null)", peer)
    packets = 37841 * args.pcap_copies
    mine = floodwitness(pcap, OUT / "store-pcap")
    peer = run(["tcpdump", "-r", str(pcap), "-w", "/dev/null"], stderr=subprocess.DEVNULL)
    report(f"pcap {pcap.stat().st_size / 1e6:.0f} MB (packets)", packets, mine, "tcpdump -r -w /dev/null", peer)


if __name__ == "__main__":
    main()
