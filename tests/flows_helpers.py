"""Shared by the flow-ingest tests: the real captures, running the real tools, and exports made by softflowd."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import threading
import time
from typing import TYPE_CHECKING, Any

import dpkt
import duckdb
import pytest

from floodwitness.ingest.store import flow_paths

if TYPE_CHECKING:
    from pathlib import Path

CAPTURES = "ddos-captures"
#: per capture: packets tcpdump counts in it (SOURCE.txt beside the captures says the same)
PACKETS = {"stopddos_syn_flood_spoofed.pcap": 37841, "stopddos_dns_rrsig_amp_fragmented.pcap": 4412,
           "stopddos_snmp_amp.pcap": 4373, "cicddos2019_webddos_l7_negative.pcap": 3104,
           "booter_ssdp_amp_2014.pcap": 4200}


def need(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        pytest.skip(f"`{tool}` is not installed (apt-get install {tool})")
    return found


def query(store: Path, sql: str) -> list[tuple[Any, ...]]:
    """``sql`` over the store's flow table (named ``f``)."""
    con = duckdb.connect()
    try:
        con.register("f", con.read_parquet(flow_paths(store)))
        return con.execute(sql).fetchall()
    finally:
        con.close()


def nfcapd_of(capture: Path, folder: Path, version: str, *extra: str) -> Path:
    """The nfcapd file the real nfcapd writes from softflowd's export of ``capture`` (both on 127.0.0.1 only)."""
    nfcapd = need("nfcapd")
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    folder.mkdir()
    proc = subprocess.Popen([nfcapd, "-w", str(folder), "-p", str(port), "-b", "127.0.0.1", "-t", "3600"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        softflowd_exports(capture, folder.parent / "sent.pcap", version, *extra, to_port=port)
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)  # nfcapd writes its file out when asked to stop
        proc.wait(timeout=20)
    files = sorted(folder.glob("nfcapd.*"))
    assert files, "nfcapd wrote no file"
    return files[0]


def softflowd_exports(capture: Path, out: Path, version: str, *extra: str, budget_s: float = 30.0,
                      to_port: int | None = None) -> int:
    """Replay ``capture`` through the real softflowd, exporting NetFlow ``version`` to a UDP socket of ours on
    127.0.0.1 (loopback only), and write the datagrams received as a pcap at ``out``; the datagrams' count.

    softflowd 1.1.0 reading a file waits for its control socket between reads, so it is prodded with
    `softflowctl statistics` (bounded: at most 200 times) until it exits at the end of the file."""
    softflowd, softflowctl = need("softflowd"), need("softflowctl")
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)  # softflowd sends in bursts
    receiver.settimeout(0.2)
    port = to_port or receiver.getsockname()[1]
    control = out.with_suffix(".ctl")
    short = out.parent / "c.pcap"  # softflowd keeps 16 characters of the capture's name for its messages
    short.symlink_to(capture)
    proc = subprocess.Popen([softflowd, "-r", str(short), "-n", f"127.0.0.1:{port}", "-v", version, "-d", "-a",
                             "-c", str(control), "-p", str(out.with_suffix(".pid")), *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    datagrams: list[bytes] = []
    listening = threading.Thread(target=lambda: datagrams.extend(_drain(receiver, proc)), daemon=True)
    listening.start()  # received while softflowd runs, so no burst overflows the socket's buffer
    deadline = time.monotonic() + budget_s
    try:
        for _ in range(200):
            if proc.poll() is not None or time.monotonic() > deadline:
                break
            if control.exists():
                subprocess.run([softflowctl, "-c", str(control), "statistics"], capture_output=True,
                               timeout=5, check=False)
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        listening.join(timeout=budget_s)
        receiver.close()
    with out.open("wb") as stream:
        writer = dpkt.pcap.Writer(stream, linktype=dpkt.pcap.DLT_EN10MB)
        for i, payload in enumerate(datagrams):
            udp = dpkt.udp.UDP(sport=40000, dport=2055, data=payload)
            udp.ulen = len(udp)
            ip = dpkt.ip.IP(src=socket.inet_aton("192.0.2.1"), dst=socket.inet_aton("127.0.0.1"), p=17, data=udp)
            ip.len = len(ip)
            writer.writepkt(bytes(dpkt.ethernet.Ethernet(type=dpkt.ethernet.ETH_TYPE_IP, data=ip)), ts=1.0 + i)
    return len(datagrams)


def _drain(receiver: socket.socket, proc: subprocess.Popen[bytes]) -> list[bytes]:
    """Datagrams until the sender has exited and 0.2 s passed without one."""
    out: list[bytes] = []
    while True:
        try:
            out.append(receiver.recv(65535))
        except TimeoutError:
            if proc.poll() is not None:
                return out
