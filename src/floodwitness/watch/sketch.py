"""Bounded-memory summaries of the live traffic: their size never depends on how many clients there are.

* :class:`Registers`: HyperLogLog registers for distinct clients, fed with the engine's 64-bit hashes of
  the client addresses, a whole array at a time (numpy); mergeable by element-wise maximum.
* :class:`SeenSet`: a fixed-size bit set of hashed clients or networks ("seen in the baseline?"), with a
  false-positive rate but no false negative: a Bloom filter with one hash function.
* :class:`HeavyHitters`: Apache DataSketches' frequent-items sketch (Misra-Gries with error bounds).
* Latency quantiles use DataSketches' KLL sketch directly (``kll_floats_sketch``), which takes a numpy
  array per update.

DataSketches' HLL takes one item per Python call, a per-line loop we do not allow ourselves; its
frequent-items sketch does too, so it is fed only each bucket's heaviest sources (see ``HeavyHitters``).
"""

from __future__ import annotations

import math

import datasketches
import numpy as np

HLL_BITS = 12


class Registers:
    """HyperLogLog with 2**HLL_BITS registers (4 KiB; ~1.6% standard error)."""

    def __init__(self, registers: np.ndarray | None = None) -> None:
        self.values = registers if registers is not None else np.zeros(1 << HLL_BITS, dtype=np.uint8)

    def add(self, hashes: np.ndarray) -> None:
        if len(hashes) == 0:
            return
        h = hashes.astype(np.uint64, copy=False)
        index = (h >> np.uint64(64 - HLL_BITS)).astype(np.intp)
        rest = (h << np.uint64(HLL_BITS)) | np.uint64(1 << (HLL_BITS - 1))
        # rank = leading zeros + 1; float64 keeps the leading bit's position (53-bit mantissa)
        rank = (64 - np.floor(np.log2(rest.astype(np.float64)))).astype(np.uint8)
        np.maximum.at(self.values, index, rank)

    def merge(self, other: Registers) -> None:
        np.maximum(self.values, other.values, out=self.values)

    def estimate(self) -> float:
        m = float(len(self.values))
        alpha = 0.7213 / (1 + 1.079 / m)
        raw = alpha * m * m / float(np.sum(np.exp2(-self.values.astype(np.float64))))
        zeros = int(np.count_nonzero(self.values == 0))
        if raw <= 2.5 * m and zeros:
            return m * math.log(m / zeros)
        return raw


class SeenSet:
    """A bit set of ``2**bits`` bits indexed by (the low bits of) a 64-bit hash."""

    def __init__(self, bits: int, data: np.ndarray | None = None) -> None:
        self.bits = bits
        self.data = data if data is not None else np.zeros(1 << max(bits - 3, 0), dtype=np.uint8)

    def _where(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        index = hashes.astype(np.uint64, copy=False) & np.uint64((1 << self.bits) - 1)
        return (index >> np.uint64(3)).astype(np.intp), (np.uint8(1) << (index & np.uint64(7)).astype(np.uint8))

    def add(self, hashes: np.ndarray) -> None:
        if len(hashes):
            byte, bit = self._where(hashes)
            np.bitwise_or.at(self.data, byte, bit)

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        if len(hashes) == 0:
            return np.zeros(0, dtype=bool)
        byte, bit = self._where(hashes)
        return np.asarray((self.data[byte] & bit) != 0)


class HeavyHitters:
    """The heaviest sources of an incident, with their request counts (lower-bound estimates).

    Fed, per bucket, with that bucket's ``per_bucket`` heaviest sources: a source that is never among
    them in any bucket is not a heavy hitter of the incident either; the requests left out are counted
    in :attr:`dropped` so the shares computed from the list stay honest.
    """

    def __init__(self, lg_max_map_size: int = 10, sketch: bytes | None = None, dropped: int = 0) -> None:
        self.sketch = (datasketches.frequent_strings_sketch.deserialize(sketch) if sketch
                       else datasketches.frequent_strings_sketch(lg_max_map_size))
        self.dropped = dropped

    def add(self, names: list[str], counts: np.ndarray, dropped: int) -> None:
        for name, count in zip(names, counts.tolist(), strict=True):
            self.sketch.update(name, int(count))
        self.dropped += dropped

    def top(self, n: int) -> list[tuple[str, int]]:
        items = self.sketch.get_frequent_items(datasketches.frequent_items_error_type.NO_FALSE_NEGATIVES)
        return [(str(item[0]), int(item[2])) for item in items[:n]]  # (item, estimate, lower bound, upper)

    def serialize(self) -> bytes:
        return bytes(self.sketch.serialize())


def kll() -> datasketches.kll_floats_sketch:
    return datasketches.kll_floats_sketch(200)
