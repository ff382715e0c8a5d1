"""Address space: which networks the audience, the bots and the hosting providers use.

Addresses are drawn so that roles never share an IP, attackers never share a /16 with anyone
legitimate, and every address is public-looking (no private, loopback, CGNAT or multicast space).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from floodwitness.simulate._catalog import AUDIENCE_OCTETS, AUDIENCE_V6, CRAWLERS

if TYPE_CHECKING:
    from collections.abc import Sequence

U32 = npt.NDArray[np.uint32]
F64 = npt.NDArray[np.float64]


def ipv4_strings(ips: U32) -> list[str]:
    """Dotted-quad text of each address."""
    a = (ips >> 24).tolist()
    b = ((ips >> 16) & 255).tolist()
    c = ((ips >> 8) & 255).tolist()
    d = (ips & 255).tolist()
    return [f"{w}.{x}.{y}.{z}" for w, x, y, z in zip(a, b, c, d, strict=True)]


def slash16(ips: U32) -> npt.NDArray[np.int64]:
    """The /16 of each address as an integer key (first two octets)."""
    return (ips >> 16).astype(np.int64)


class IPSpace:
    """Hands out addresses and /16 networks without ever handing out the same one twice."""

    def __init__(self) -> None:
        self.used: set[int] = set()
        self.claimed16: set[int] = set()
        for _name, _ua, net, plen, _n, _rate in CRAWLERS:
            first = int(ipaddress.IPv4Address(net))
            for k in range(max(1, 1 << max(0, 16 - plen))):
                self.claimed16.add((first >> 16) + k)

    def claim16(self, rng: np.random.Generator, octets: Sequence[int], n: int,
                near: Sequence[int] = ()) -> npt.NDArray[np.int64]:
        """Claim ``n`` unused /16s: within the first octets given, or next to the /16s in ``near``."""
        out: list[int] = []
        tries = 0
        while len(out) < n:
            tries += 1
            if tries > 100 * n + 1000:
                raise RuntimeError("address space exhausted")
            if near:
                base = int(near[int(rng.integers(len(near)))])
                key = base + int(rng.choice([-3, -2, -1, 1, 2, 3]))
                if (key >> 8) != (base >> 8) or not 0 < (key & 255) < 255:
                    continue
            else:
                key = int(octets[int(rng.integers(len(octets)))]) * 256 + int(rng.integers(1, 255))
            if key in self.claimed16:
                continue
            self.claimed16.add(key)
            out.append(key)
        return np.asarray(out, dtype=np.int64)

    def hosts(self, rng: np.random.Generator, nets24: npt.NDArray[np.int64], weights: F64 | None,
              n: int) -> U32:
        """``n`` new addresses, each in one of the /24s ``nets24`` (keys = address >> 8)."""
        out: list[int] = []
        p = None if weights is None else weights / weights.sum()
        while len(out) < n:
            m = int((n - len(out)) * 1.3) + 8
            pick = rng.choice(nets24.shape[0], size=m, p=p)
            cand = (nets24[pick] << 8) + rng.integers(1, 255, size=m)
            for ip in cand.tolist():
                if ip not in self.used:
                    self.used.add(ip)
                    out.append(ip)
                    if len(out) == n:
                        break
        return np.asarray(out, dtype=np.uint32)

    def hosts_in_16s(self, rng: np.random.Generator, nets16: npt.NDArray[np.int64], weights: F64 | None,
                     n: int) -> U32:
        """``n`` new addresses spread over random /24s of the /16s ``nets16``."""
        p = None if weights is None else weights / weights.sum()
        m = max(1, n)
        pick = rng.choice(nets16.shape[0], size=m, p=p)
        nets24 = (nets16[pick] << 8) + rng.integers(0, 256, size=m)
        return self.hosts(rng, nets24, None, n)

    def hosts_in_prefix(self, rng: np.random.Generator, network: str, plen: int, n: int) -> U32:
        """``n`` new addresses inside ``network/plen`` (host part never 0 or 255 in the last octet)."""
        first = int(ipaddress.IPv4Address(network))
        size = 1 << (32 - plen)
        out: list[int] = []
        while len(out) < n:
            ip = first + int(rng.integers(0, size))
            if 0 < (ip & 255) < 255 and ip not in self.used:
                self.used.add(ip)
                out.append(ip)
        return np.asarray(out, dtype=np.uint32)


def ipv6_strings(rng: np.random.Generator, prefixes: Sequence[str], n: int) -> list[str]:
    """``n`` privacy-style global IPv6 addresses under the given /32-ish prefixes."""
    pre = rng.integers(0, len(prefixes), size=n).tolist()
    groups = rng.integers(1, 0x10000, size=(n, 6)).tolist()
    out = []
    for p, g in zip(pre, groups, strict=True):
        out.append(prefixes[p] + ":" + ":".join(f"{x:x}" for x in g))
    return out


@dataclass
class Audience:
    """The networks the site's visitors come from.

    ``nets16``/``w16``: the audience /16s and how much of the traffic each carries;
    ``nets24``/``w24``: the /24s inside them that visitors actually use (a few hundred);
    ``siblings16``: other /16s of the same ISPs, not used before (for new visitors in a surge).
    """

    nets16: npt.NDArray[np.int64]
    w16: F64
    nets24: npt.NDArray[np.int64]
    w24: F64
    siblings16: npt.NDArray[np.int64]

    @staticmethod
    def build(rng: np.random.Generator, space: IPSpace, scale: float, n_hosts: int) -> Audience:
        n16 = round(45 * max(scale, 1.0) ** 0.25)
        nets16 = space.claim16(rng, AUDIENCE_OCTETS, n16)
        w16: F64 = rng.pareto(1.2, size=n16) + 0.2
        n24 = max(150, int(300 * scale ** 0.5), n_hosts // 100)
        owner = rng.choice(n16, size=n24, p=w16 / w16.sum())
        keys: set[int] = set()
        nets24_list: list[int] = []
        for o in owner.tolist():
            for _ in range(20):
                key = int(nets16[o]) * 256 + int(rng.integers(0, 256))
                if key not in keys:
                    keys.add(key)
                    nets24_list.append(key)
                    break
        nets24 = np.asarray(nets24_list, dtype=np.int64)
        w24: F64 = rng.pareto(1.5, size=int(nets24.shape[0])) + 0.5
        siblings16 = space.claim16(rng, AUDIENCE_OCTETS, max(4, n16 // 3), near=nets16.tolist())
        return Audience(nets16=nets16, w16=w16, nets24=nets24, w24=w24, siblings16=siblings16)

    def new_24s(self, rng: np.random.Generator, n: int) -> npt.NDArray[np.int64]:
        """``n`` /24s inside audience /16s (weighted like the audience), mostly not used before."""
        pick = rng.choice(self.nets16.shape[0], size=n, p=self.w16 / self.w16.sum())
        return (self.nets16[pick] << 8) + rng.integers(0, 256, size=n)


AUDIENCE_V6_PREFIXES = AUDIENCE_V6
