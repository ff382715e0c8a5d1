"""How fast is the offline enrichment (country, AS) of distinct client addresses?

Run: python benchmarks/enrich.py [--ips 1000000] [--ipv6-share 0.05] [--repeat 3] [--asn FILE.mmdb]
Target (sources issue): 1M distinct addresses in at most 5 s on 2 cores. Prints the database load time (first
run in a process; the bundled tables are cached on disk after the very first run) and the lookup time.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pyarrow as pa

from floodwitness.enrich import Enricher


def addresses(n: int, ipv6_share: float, seed: int = 1) -> pa.Array:
    """``n`` distinct random addresses, ``ipv6_share`` of them IPv6 (in 2000::/3)."""
    rng = np.random.default_rng(seed)
    n6 = int(n * ipv6_share)
    v4 = np.unique(rng.integers(1 << 24, 224 << 24, size=int((n - n6) * 1.05), dtype=np.uint64))
    v4 = rng.permutation(v4)[: n - n6]
    text4 = [f"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}" for a in v4.tolist()]
    groups = rng.integers(0, 1 << 16, size=(n6, 8)).tolist()
    text6 = [f"{0x2000 | (g[0] & 0x1FFF):x}:" + ":".join(f"{x:x}" for x in g[1:]) for g in groups]
    return pa.array(text4 + text6, pa.string())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ips", type=int, default=1_000_000)
    parser.add_argument("--ipv6-share", type=float, default=0.05)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--geoip", help="a country .mmdb to use instead of the bundled database")
    parser.add_argument("--asn", help="an ASN .mmdb to use instead of the bundled database")
    args = parser.parse_args()
    ips = addresses(args.ips, args.ipv6_share)
    started = time.perf_counter()
    enricher = Enricher(geoip=args.geoip, asn=args.asn)
    enricher.enrich(ips[:10])
    print(f"database load: {time.perf_counter() - started:.2f} s  ({enricher.databases()[0]['name']})")
    times = []
    for _ in range(args.repeat):
        started = time.perf_counter()
        table = enricher.enrich(ips)
        times.append(time.perf_counter() - started)
    known_country = 1 - table.column("country").null_count / len(table)
    known_as = 1 - table.column("as_name").null_count / len(table)
    print(f"{len(ips):,} distinct addresses ({args.ipv6_share:.0%} IPv6): enriched in "
          + " / ".join(f"{t:.2f}" for t in times) + f" s (best {min(times):.2f} s, "
          f"{len(ips) / min(times) / 1e6:.2f}M addresses/s); country known for {known_country:.1%}, "
          f"AS for {known_as:.1%}")
    print(f"target: <= 5 s for 1M: {'met' if min(times) * 1_000_000 / len(ips) <= 5 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
