"""Sorted address ranges with a value each, looked up for many addresses at once (``np.searchsorted``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

UNKNOWN = -1


@dataclass(frozen=True)
class RangeTable:
    """Disjoint ranges ``[starts[i], ends[i]]`` (inclusive, sorted by start), each mapped to ``values[i]``
    (an index into the database's list of values)."""

    starts: npt.NDArray[np.uint64]
    ends: npt.NDArray[np.uint64]
    values: npt.NDArray[np.int32]

    @staticmethod
    def build(starts: npt.ArrayLike, ends: npt.ArrayLike, values: npt.ArrayLike) -> RangeTable:
        s = np.asarray(starts, dtype=np.uint64)
        order = np.argsort(s, kind="stable")
        return RangeTable(s[order], np.asarray(ends, dtype=np.uint64)[order],
                          np.asarray(values, dtype=np.int32)[order])

    def lookup(self, keys: npt.NDArray[np.uint64]) -> npt.NDArray[np.int32]:
        """The value index of the range holding each key, or ``UNKNOWN``."""
        if not len(self.starts):
            return np.full(len(keys), UNKNOWN, dtype=np.int32)
        pos = np.searchsorted(self.starts, keys, side="right").astype(np.int64) - 1
        safe = np.clip(pos, 0, None)
        hit = (pos >= 0) & (keys <= self.ends[safe])
        return np.where(hit, self.values[safe], UNKNOWN).astype(np.int32)

    def __len__(self) -> int:
        return len(self.starts)
