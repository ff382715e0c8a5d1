"""IP address text to integers, vectorised (Arrow compute and numpy, no Python loop per IPv4 address).

IPv4 addresses become their 32-bit value; IPv6 addresses their upper 64 bits (the routing prefix: every
network an IP database describes for IPv6 is /64 or shorter in practice). Anything else (host names,
garbage) is family 0 and is never looked up.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

IPV4_PATTERN = r"^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$"


@dataclass(frozen=True)
class Addresses:
    """Parsed addresses, aligned with the input: ``family`` 4, 6 or 0, and the integer key of each."""

    family: npt.NDArray[np.int8]
    v4: npt.NDArray[np.uint32]   # the address (0 where family != 4)
    v6: npt.NDArray[np.uint64]   # the upper 64 bits (0 where family != 6)


def parse_addresses(ips: pa.Array | pa.ChunkedArray | list[str]) -> Addresses:
    """Parse IP strings: IPv4 vectorised, IPv6 (rarer in logs) through :mod:`ipaddress`."""
    arr = pa.array(ips, type=pa.string()) if isinstance(ips, list) else ips
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = arr.cast(pa.string())
    n = len(arr)
    family = np.zeros(n, dtype=np.int8)
    v4 = np.zeros(n, dtype=np.uint32)
    v6 = np.zeros(n, dtype=np.uint64)
    is4 = pc.fill_null(pc.match_substring_regex(arr, IPV4_PATTERN), False).to_numpy(zero_copy_only=False)
    if is4.any():
        idx = np.flatnonzero(is4)
        parts = pc.split_pattern(arr.take(pa.array(idx)), ".")
        octets = pc.cast(pc.list_flatten(parts), pa.uint32()).to_numpy().reshape(-1, 4)
        v4[idx] = (octets[:, 0] << 24) | (octets[:, 1] << 16) | (octets[:, 2] << 8) | octets[:, 3]
        family[idx] = 4
    maybe6 = pc.fill_null(pc.match_substring(arr, ":"), False).to_numpy(zero_copy_only=False) & ~is4
    for i in np.flatnonzero(maybe6).tolist():
        text = arr[i].as_py()
        try:
            addr = ipaddress.IPv6Address(text.split("%", 1)[0].strip("[]"))
        except ValueError:
            continue
        family[i] = 6
        v6[i] = int(addr) >> 64
    return Addresses(family, v4, v6)
