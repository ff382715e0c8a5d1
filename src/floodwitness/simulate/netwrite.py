"""Writing a network scenario's files beside the access log (``flows.csv`` as nfdump's CSV, ``capture.pcap`` when
the flows are unsampled) and the ``network`` part of the truth: what each attack episode and vector was, when,
from how many sources or reflectors, as the files show them and as it really was."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from floodwitness.simulate import flowtable as ft
from floodwitness.simulate import nfcsv, pcapfile
from floodwitness.simulate.events import H2
from floodwitness.simulate.netflows import ACTIVE_TIMEOUT, NetOutput, Requests
from floodwitness.simulate.truth import rfc3339

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from floodwitness.simulate.world import World

FLOWS_FILE = "flows.csv"
CAPTURE_FILE = "capture.pcap"
#: most packets a capture holds (its window around the attack's start shrinks to fit), and its widest half-window
CAPTURE_BUDGET = 300_000
CAPTURE_HALF_WINDOW = 120


def requests(w: World, cols: dict[str, npt.NDArray[Any]], done: npt.NDArray[np.float64],
             keep: npt.NDArray[np.bool_]) -> Requests:
    """Every request the access log's simulation made, as the network part reads them."""
    v6: list[str] = []
    codes = ft.address_codes(w.tables.ips.values, v6)
    return Requests(ip=codes[cols["ip"]], t=cols["t"], done=done, size=cols["size"].astype(np.int64),
                    h2=cols["proto"] == H2, logged=keep, v6=v6)


def write_network(w: World, make: Callable[[World, Requests], NetOutput], outdir: Path, *,
                  requests: Requests) -> dict[str, Any]:
    """Build the scenario's flows, write them (and a capture when unsampled), and return the truth's network part."""
    out = make(w, requests)
    flows = out.flows
    records = nfcsv.write_csv(outdir / FLOWS_FILE, flows, t0=w.start_utc, v6=out.site.v6,
                              exporter=out.site.exporter)
    written = nfcsv.split_fragments(flows)
    truth: dict[str, Any] = {
        "flows": FLOWS_FILE, "flows_format": "nfdump 1.7.1 -o csv (times in UTC, to the second)",
        "flow_records": records, "sampling": out.sampling,
        "sampling_note": ("every packet counted" if out.sampling == 1 else
                          f"1:{out.sampling} packet sampling; packets and bytes in {FLOWS_FILE} are the sampled "
                          f"counts times {out.sampling} (as nfcapd stores them); the truth's packets and bytes "
                          "are the real ones"),
        "active_timeout_s": ACTIVE_TIMEOUT, "exporter": out.site.exporter,
        "server": ft.v4_text(out.site.server), "server_v6": out.site.v6[-out.site.server_v6 - 1],
        "site_prefix": out.site.prefix_text,
        "legit_udp_responders": sorted(ft.v4_text(x) for x in
                                       np.concatenate([out.site.resolvers, out.site.ntp]).tolist()),
        "episodes": [_episode(w, out, written, e, k) for k, e in enumerate(out.episodes)],
        "benign": out.benign,
        "capture": None,
    }
    if out.sampling == 1 and out.capture_center is not None:
        truth["capture"] = _capture(w, flows, out.capture_center, outdir / CAPTURE_FILE)
    return truth


def _at(w: World, sec: float) -> str:
    return rfc3339(w.start_utc + timedelta(seconds=int(np.floor(sec))))


def _episode(w: World, out: NetOutput, written: ft.Flows, ep: dict[str, Any], k: int) -> dict[str, Any]:
    mine = np.isin(written.vector, ep["vectors"]) & (written.kind == ft.ATTACK)
    f = written.take(mine)
    t0 = min(out.vectors[v]["t0"] for v in ep["vectors"])
    length = max(int(out.vectors[v]["t0"] - t0) + out.vectors[v]["per_second"].shape[0] for v in ep["vectors"])
    busy = np.zeros(length, dtype=np.int64)
    for v in ep["vectors"]:
        at = int(out.vectors[v]["t0"] - t0)
        busy[at:at + out.vectors[v]["per_second"].shape[0]] += out.vectors[v]["per_second"]
    vectors = []
    for v in ep["vectors"]:
        spec = out.vectors[v]
        g = written.take(mine & (written.vector == v)) if len(written) else written
        vectors.append({
            "vector": spec["vector"], "name": spec["name"], "proto": spec["proto"], "port": spec["port"],
            "port_side": spec["port_side"], "source_role": spec["source_role"],
            "sources": int(np.unique(g.src).shape[0]), "sources_real": spec["sources_real"],
            "records": len(g), "packets_reported": int(g.packets.sum()), "bytes_reported": int(g.bytes.sum()),
            "packets": spec["real_packets"], "bytes": spec["real_bytes"],
            "start": _at(w, float(g.start.min())), "end": _at(w, float(np.ceil(g.end.max()))),
        })
    hosts = np.unique(f.dst)
    return {
        "id": f"N{k + 1}", "target": ep["target"], "target_hosts": int(hosts.shape[0]),
        "carpet_bombing": ep["carpet_bombing"],
        "start": _at(w, float(f.start.min())), "peak": _at(w, t0 + int(np.argmax(busy))),
        "end": _at(w, float(np.ceil(f.end.max()))), "peak_pps_real": int(busy.max()),
        "vectors": vectors,
    }


def _capture(w: World, flows: ft.Flows, center: float, path: Path) -> dict[str, Any]:
    """A packet capture on the server's uplink around ``center``, as large as the packet budget allows."""
    load = pcapfile.per_second(flows.take(flows.src >= 0), w.n_sec)
    lo, hi = pcapfile.window(load, int(center), CAPTURE_BUDGET, CAPTURE_HALF_WINDOW)
    packets = pcapfile.expand(flows, float(lo), float(hi), w.rng("capture"))
    n = pcapfile.write_pcap(path, packets, w.start_utc.timestamp())
    frag_later = int(((packets.frag & 0x1FFF) != 0).sum())
    return {"file": path.name, "format": "libpcap, Ethernet, microseconds", "snaplen": pcapfile.SNAPLEN,
            "start": _at(w, lo), "end": _at(w, hi), "packets": n, "later_fragments": frag_later,
            "note": f"the flows' IPv4 packets between start and end (a window around the attack's start, "
                    f"cut to at most {CAPTURE_BUDGET:,} packets); IPv6 flows are not in the capture; frames are "
                    f"cut at {pcapfile.SNAPLEN} bytes (headers whole, original lengths recorded)"}
