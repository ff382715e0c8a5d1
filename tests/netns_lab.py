"""A private two-namespace network with real floods in it (issue #21, "Real components, real packets").

Two network namespaces made for the run (``fw-victim-<hex>``, ``fw-attacker-<hex>``) joined by one veth pair that
is created directly inside them (nothing is added to the host's namespace); addresses from the benchmarking range
198.18.0.0/15, no default route anywhere, so every packet stays on that veth. In the victim: nginx writing a
combined access log, and tcpdump capturing its veth. From the attacker: ordinary HTTP requests the whole time (from a
second address), a SYN flood with random spoofed sources and then a UDP flood to port 53 (hping3, bounded by ``-c``
and ``-i``), each a steady base with one aligned burst, so the peak second is known in advance. Then the capture is
exported as IPFIX by softflowd to nfcapd (both on the victim namespace's loopback) and dumped to CSV by nfdump.

Every process is wrapped in ``timeout``, runs in its own session and is killed by its process group; every wait is
bounded; the namespaces are deleted (and whatever still runs in them killed by pid) even on failure.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

VICTIM = "198.18.21.10"
ATTACKER = "198.18.21.20"  # hping3's source (the UDP flood keeps it; the SYN flood spoofs random ones)
CLIENT = "198.18.21.30"  # the ordinary visitor, a second address on the attacker's side
PREFIX = 24

#: The tools the lab drives, and the Debian packages that hold them (.ci/run installs them).
TOOLS = {"ip": "iproute2", "ss": "iproute2", "timeout": "coreutils", "hping3": "hping3", "tcpdump": "tcpdump",
         "softflowd": "softflowd", "nfcapd": "nfdump", "nfdump": "nfdump", "nginx": "nginx-light"}
SBIN = "/usr/sbin:/sbin:/usr/bin:/bin"

# each flood: a steady base, and a burst started on a whole second while the base runs (the known peak second)
BASE_COUNT, BASE_INTERVAL = 4000, "u1000"  # ~1,000 pps for ~4 s
BURST_INTERVAL = "u300"  # ~2,800 pps: the burst is over within its second
SYN_FLOOD = ("-S", "-p", "80", "--rand-source")
SYN_BURST = 1000  # peak second ~2,000 packets
UDP_FLOOD = ("--udp", "-p", "53", "-d", "120")
UDP_BURST = 2000  # peak second ~3,000: the higher of the two, so one episode holding both has one clear peak

CLIENT_PERIOD = 0.25  # four ordinary requests a second ...
CLIENT_LIMIT = 240  # ... at most this many ...
CLIENT_SECONDS = 50  # ... and for at most this long

#: The ordinary visitor, run with the test's Python inside the attacker namespace: bounded in count and time,
#: stops early when the stop file appears; prints "epoch status" per request.
CLIENT_CODE = r"""
import http.client, os, sys, time
victim, source, stop = sys.argv[1], sys.argv[2], sys.argv[3]
limit, period, deadline = int(sys.argv[4]), float(sys.argv[5]), time.monotonic() + float(sys.argv[6])
ua = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
paths = ["/", "/news", "/about", "/products?page=2", "/static/site.css", "/contact"]
for i in range(limit):
    if os.path.exists(stop) or time.monotonic() > deadline:
        break
    began = time.monotonic()
    conn = http.client.HTTPConnection(victim, 80, timeout=2, source_address=(source, 0))
    try:
        conn.request("GET", paths[i % len(paths)], headers={"User-Agent": ua, "Accept": "text/html"})
        response = conn.getresponse()
        response.read()
        status = str(response.status)
    except OSError as exc:
        status = type(exc).__name__
    finally:
        conn.close()
    print(f"{time.time():.6f} {status}", flush=True)
    time.sleep(max(0.0, period - (time.monotonic() - began)))
"""

NGINX_CONF = """daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log;
events {{ worker_connections 512; }}
http {{
    access_log {dir}/access.log combined;
    server {{
        listen {victim}:80 backlog=128;
        location / {{ default_type text/html; return 200 "<!doctype html><title>shop</title><p>hello</p>\\n"; }}
    }}
}}
"""


class LabUnavailableError(Exception):
    """The lab cannot be built here (the reason is the message): the tests skip with it."""


@dataclass
class Flood:
    start: float  # epoch seconds, taken just before hping3 was started
    burst_second: int  # the whole second the burst was started on: the flood's peak second
    sent: int  # packets hping3 says it transmitted (base + burst)
    planned: int  # the packets asked for with -c


@dataclass
class Lab:
    workdir: Path
    victim_ns: str
    attacker_ns: str
    pcap: Path
    access_log: Path
    nfcapd_dir: Path
    flows_csv: Path
    syn: Flood
    udp: Flood
    client_lines: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def nfcapd_files(self) -> list[Path]:
        return sorted(p for p in self.nfcapd_dir.glob("nfcapd.*") if "current" not in p.name)


def tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path=SBIN)
    if path is None:
        raise LabUnavailableError(f"{name} is not installed (Debian package {TOOLS[name]}; .ci/run installs it)")
    return path


def run(args: list[str], timeout: float = 15) -> subprocess.CompletedProcess[str]:
    # TZ=UTC: nfdump prints (and its CSV holds) local times without a zone
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False,
                          env={**os.environ, "TZ": "UTC"})


def must(args: list[str], timeout: float = 15) -> str:
    result = run(args, timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


class Processes:
    """The lab's background processes: each in ``timeout`` and its own session, stopped by its process group."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []
        self._files: list[IO[bytes]] = []

    def start(self, name: str, ns: str, args: list[str], seconds: float) -> subprocess.Popen[bytes]:
        out = (self.workdir / f"{name}.out").open("wb")
        err = (self.workdir / f"{name}.err").open("wb")
        self._files += [out, err]
        # `timeout` makes itself the group leader and signals the whole group when the time is up
        command = [tool("timeout"), "-k", "2", str(seconds), tool("ip"), "netns", "exec", ns, *args]
        proc = subprocess.Popen(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True)
        self.started.append((name, proc))
        return proc

    def stop(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, wait: float = 5) -> int:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(wait)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(wait)
        return proc.returncode

    def close(self) -> None:
        for _, proc in reversed(self.started):
            self.stop(proc)
        for handle in self._files:
            handle.close()

    def text(self, name: str, stream: str = "err") -> str:
        return (self.workdir / f"{name}.{stream}").read_text(errors="replace")


def wait_for(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll ``predicate`` every 50 ms, at most ``seconds`` (bounded in count and time)."""
    for _ in range(math.ceil(seconds / 0.05)):
        if predicate():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out after {seconds} s waiting for {what}")


def sleep_until(epoch: float, at_most: float = 10) -> None:
    time.sleep(min(at_most, max(0.0, epoch - time.time())))


def preflight() -> None:
    """Raise LabUnavailableError with the precise reason when the lab cannot be built here."""
    if not sys.platform.startswith("linux"):
        raise LabUnavailableError("network namespaces are Linux-only")
    if os.geteuid() != 0:
        raise LabUnavailableError("needs root to create network namespaces and send raw packets (it runs as root in CI)")
    for name in TOOLS:
        tool(name)


def _transmitted(text: str) -> int:
    match = re.search(r"(\d+) packets transmitted", text)
    if match is None:
        raise RuntimeError(f"hping3 did not report what it sent: {text[-500:]!r}")
    return int(match.group(1))


def _flood(procs: Processes, ns: str, name: str, kind: tuple[str, ...], burst_count: int) -> Flood:
    hping3 = tool("hping3")
    start = time.time()
    base = procs.start(f"{name}-base", ns, [hping3, "-q", "-n", *kind, "-c", str(BASE_COUNT), "-i", BASE_INTERVAL,
                                            VICTIM], seconds=20)
    burst_second = math.floor(start) + 2  # at least one second into the base, which lasts ~4 s
    sleep_until(burst_second + 0.02)
    burst = procs.start(f"{name}-burst", ns, [hping3, "-q", "-n", *kind, "-c", str(burst_count), "-i",
                                              BURST_INTERVAL, VICTIM], seconds=15)
    for proc in (base, burst):
        proc.wait(25)  # `timeout` ends them well before
    sent = sum(_transmitted(procs.text(n, "out") + procs.text(n)) for n in (f"{name}-base", f"{name}-burst"))
    return Flood(start=start, burst_second=burst_second, sent=sent, planned=BASE_COUNT + burst_count)


def _delete(ns: str) -> None:
    """Kill what still runs in our own namespace (by pid), then delete it."""
    pids = run([tool("ip"), "netns", "pids", ns]).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    run([tool("ip"), "netns", "del", ns])


@contextlib.contextmanager
def build_lab(workdir: Path) -> Iterator[Lab]:
    """Build the lab, run the traffic and the exports, yield the evidence; tear everything down afterwards."""
    preflight()
    ip = tool("ip")
    tag = secrets.token_hex(4)
    victim_ns, attacker_ns = f"fw-victim-{tag}", f"fw-attacker-{tag}"
    made: list[str] = []
    procs = Processes(workdir)
    began = time.monotonic()
    try:
        for ns in (victim_ns, attacker_ns):
            result = run([ip, "netns", "add", ns])
            if result.returncode != 0:
                raise LabUnavailableError(f"cannot create a network namespace here: {result.stderr.strip()}")
            made.append(ns)
        must([ip, "link", "add", "fwa0", "netns", attacker_ns, "type", "veth", "peer", "name", "fwv0",
              "netns", victim_ns])
        for ns, dev, addresses in ((victim_ns, "fwv0", [VICTIM]), (attacker_ns, "fwa0", [ATTACKER, CLIENT])):
            for address in addresses:
                must([ip, "-n", ns, "addr", "add", f"{address}/{PREFIX}", "dev", dev])
            must([ip, "-n", ns, "link", "set", "lo", "up"])
            must([ip, "-n", ns, "link", "set", dev, "up"])

        (workdir / "nginx.conf").write_text(NGINX_CONF.format(dir=workdir, victim=VICTIM))
        nginx = procs.start("nginx", victim_ns, [tool("nginx"), "-e", str(workdir / "nginx-error.log"), "-c",
                                                 str(workdir / "nginx.conf")], seconds=120)
        pcap = workdir / "capture.pcap"
        tcpdump = procs.start("tcpdump", victim_ns, [tool("tcpdump"), "-i", "fwv0", "-n", "-U", "-w",
                                                     str(pcap)], seconds=120)
        listening = f"{VICTIM}:80"
        wait_for(lambda: listening in run([ip, "netns", "exec", victim_ns, tool("ss"), "-Hltn"]).stdout, 10,
                 "nginx to listen")
        wait_for(lambda: "listening on" in procs.text("tcpdump"), 10, "tcpdump to start capturing")
        timings = {"setup_s": time.monotonic() - began}

        stop_file = workdir / "client.stop"
        client = procs.start("client", attacker_ns, [sys.executable, "-c", CLIENT_CODE, VICTIM, CLIENT,
                                                     str(stop_file), str(CLIENT_LIMIT), str(CLIENT_PERIOD),
                                                     str(CLIENT_SECONDS)], seconds=CLIENT_SECONDS + 10)
        time.sleep(3)  # ordinary traffic before
        syn = _flood(procs, attacker_ns, "syn", SYN_FLOOD, SYN_BURST)
        time.sleep(4)  # ordinary traffic between
        udp = _flood(procs, attacker_ns, "udp", UDP_FLOOD, UDP_BURST)
        time.sleep(3)  # and after
        stop_file.touch()
        client.wait(5)
        for proc in (tcpdump, nginx):
            procs.stop(proc)
        timings["traffic_s"] = time.monotonic() - began - timings["setup_s"]

        # NetFlow (IPFIX, absolute millisecond times) from the capture, softflowd -> nfcapd on the victim's loopback
        exported = time.monotonic()
        nfcapd_dir = workdir / "nfcapd"
        nfcapd_dir.mkdir()
        nfcapd = procs.start("nfcapd", victim_ns, [tool("nfcapd"), "-w", str(nfcapd_dir), "-b", "127.0.0.1", "-p",
                                                   "9995", "-B", "8388608"], seconds=60)
        wait_for(lambda: "Startup" in procs.text("nfcapd") + procs.text("nfcapd", "out"), 10, "nfcapd to start")
        # -c none: softflowd 1.1.0 otherwise may block in accept() on its control socket when reading a file
        softflowd = procs.start("softflowd", victim_ns, [tool("softflowd"), "-d", "-c", "none", "-p",
                                                         str(workdir / "softflowd.pid"), "-r", str(pcap), "-n",
                                                         "127.0.0.1:9995", "-v", "10", "-A", "milli"], seconds=30)
        if softflowd.wait(35) != 0:
            raise RuntimeError(f"softflowd failed: {procs.text('softflowd')}")
        time.sleep(0.5)  # let nfcapd take the last datagrams off its socket
        procs.stop(nfcapd)  # SIGTERM: nfcapd writes and closes its file
        flows_csv = workdir / "flows.csv"
        flows_csv.write_text(must([tool("nfdump"), "-R", str(nfcapd_dir), "-o", "csv"], timeout=30))
        timings["export_s"] = time.monotonic() - exported

        yield Lab(workdir=workdir, victim_ns=victim_ns, attacker_ns=attacker_ns, pcap=pcap,
                  access_log=workdir / "access.log", nfcapd_dir=nfcapd_dir, flows_csv=flows_csv, syn=syn, udp=udp,
                  client_lines=procs.text("client", "out").splitlines(), timings=timings)
    finally:
        procs.close()
        for ns in made:
            _delete(ns)


# -- reading the evidence back with the tools themselves (the harness's own checks) --------------------------------

@dataclass
class Packets:
    times: list[float]
    sources: list[str]

    def per_second(self) -> Counter[int]:
        return Counter(math.floor(t) for t in self.times)


def pcap_packets(pcap: Path, bpf: str) -> Packets:
    """Time and source address of each packet of ``pcap`` matching ``bpf``, read by tcpdump."""
    out = must([tool("tcpdump"), "-r", str(pcap), "-n", "-tt", "-q", bpf], timeout=60)
    times, sources = [], []
    for line in out.splitlines():
        fields = line.split()
        if len(fields) < 3 or fields[1] != "IP":
            continue
        times.append(float(fields[0]))
        sources.append(fields[2].rsplit(".", 1)[0])  # 198.18.21.20.2448 -> address
    return Packets(times, sources)


@dataclass
class Flow:
    start: float  # epoch seconds (nfdump: milliseconds; its CSV: whole seconds)
    src: str
    dst: str
    sport: int
    dport: int
    proto: str
    flags: str
    packets: int


def nfdump_flows(nfcapd_dir: Path) -> list[Flow]:
    """Every flow of the nfcapd files, read by nfdump (TCP flags as nfdump's letters, e.g. '......S.')."""
    out = must([tool("nfdump"), "-R", str(nfcapd_dir), "-q", "-N", "-o",
                "fmt:%tsr|%sa|%da|%sp|%dp|%pr|%flg|%ipkt"], timeout=60)
    flows = []
    for line in out.splitlines():
        start, src, dst, sport, dport, proto, flags, packets = (f.strip() for f in line.split("|"))
        flows.append(Flow(float(start), src, dst, int(float(sport)), int(float(dport)), proto, flags, int(packets)))
    return flows


def csv_flows(path: Path) -> tuple[list[Flow], list[str]]:
    """The flows of nfdump's CSV export, and the lines of its Summary trailer."""
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    col = {name: header.index(name) for name in ("ts", "sa", "da", "sp", "dp", "pr", "flg", "ipkt")}
    flows, trailer = [], []
    for i, line in enumerate(lines[1:], start=1):
        if line == "Summary":
            trailer = lines[i:]
            break
        f = line.split(",")
        start = datetime.strptime(f[col["ts"]], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC).timestamp()  # TZ=UTC
        flows.append(Flow(start, f[col["sa"]], f[col["da"]], int(f[col["sp"]]), int(f[col["dp"]]),
                          f[col["pr"]], f[col["flg"]], int(f[col["ipkt"]])))
    return flows, trailer
