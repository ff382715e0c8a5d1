"""Checkpoints: the followed files' offsets and the detector's whole window state, in one file written
atomically (a temporary file renamed over the old one), so a restart resumes exactly where the last
checkpoint stood: no line counted twice, none skipped.

The state is an ``.npz`` archive: numpy arrays (bit sets, registers, pending rows, sketches as bytes)
plus one JSON document describing how they fit together. No pickle: loading a state never runs code.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from collections import deque
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import datasketches
import numpy as np
import pyarrow as pa

from floodwitness.errors import StoreError
from floodwitness.watch.buckets import BucketStats
from floodwitness.watch.incident import Incident
from floodwitness.watch.sketch import HeavyHitters, Registers, SeenSet

if TYPE_CHECKING:
    from floodwitness.watch.detector import LiveDetector

STATE_FILE = "watch-state.npz"
VERSION = "floodwitness.watch-state/1"
#: detector attributes that are configuration, not state
SKIP = frozenset({"policy", "now_wall", "sorted_history"})  # sorted_history: rebuilt from history
DATACLASSES: dict[str, type] = {"Incident": Incident, "BucketStats": BucketStats}


class _Encoder:
    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def put(self, array: np.ndarray) -> str:
        key = f"a{len(self.arrays)}"
        self.arrays[key] = array
        return key

    def enc(self, v: Any) -> Any:
        if isinstance(v, np.ndarray):
            return {"__nd": self.put(v)}
        if isinstance(v, Registers):
            return {"__hll": self.put(v.values)}
        if isinstance(v, SeenSet):
            return {"__seen": self.put(v.data), "bits": v.bits}
        if isinstance(v, HeavyHitters):
            return {"__hh": self.put(np.frombuffer(v.serialize(), np.uint8)), "dropped": v.dropped}
        if isinstance(v, datasketches.kll_floats_sketch):
            return {"__kll": self.put(np.frombuffer(bytes(v.serialize()), np.uint8))}
        if isinstance(v, pa.Array):
            return {"__strs": self.put(np.array(v.to_pylist(), dtype=str))}
        if isinstance(v, deque):
            return {"__deque": [self.enc(x) for x in v], "maxlen": v.maxlen}
        if isinstance(v, tuple):
            return {"__tuple": [self.enc(x) for x in v]}
        if isinstance(v, set):
            return {"__set": sorted(v)}
        if isinstance(v, dict):
            return {"__dict": [[self.enc(k), self.enc(x)] for k, x in v.items()]}
        if isinstance(v, list):
            return [self.enc(x) for x in v]
        if is_dataclass(v) and not isinstance(v, type):
            return {"__dc": type(v).__name__, "f": {f.name: self.enc(getattr(v, f.name)) for f in fields(v)}}
        if isinstance(v, np.generic):
            return v.item()
        return v


def _dec(v: Any, arrays: Any) -> Any:
    if isinstance(v, list):
        return [_dec(x, arrays) for x in v]
    if not isinstance(v, dict):
        return v
    if "__nd" in v:
        return arrays[v["__nd"]]
    if "__hll" in v:
        return Registers(arrays[v["__hll"]].copy())
    if "__seen" in v:
        return SeenSet(v["bits"], arrays[v["__seen"]].copy())
    if "__hh" in v:
        return HeavyHitters(sketch=arrays[v["__hh"]].tobytes(), dropped=v["dropped"])
    if "__kll" in v:
        return datasketches.kll_floats_sketch.deserialize(arrays[v["__kll"]].tobytes())
    if "__strs" in v:
        return pa.array(arrays[v["__strs"]].tolist(), type=pa.string())
    if "__deque" in v:
        return deque((_dec(x, arrays) for x in v["__deque"]), maxlen=v["maxlen"])
    if "__tuple" in v:
        return tuple(_dec(x, arrays) for x in v["__tuple"])
    if "__set" in v:
        return set(v["__set"])
    if "__dict" in v:
        return {_dec(k, arrays): _dec(x, arrays) for k, x in v["__dict"]}
    if "__dc" in v:
        return DATACLASSES[v["__dc"]](**{k: _dec(x, arrays) for k, x in v["f"].items()})
    return v


def save(folder: str | Path, detector: LiveDetector, follower: dict[str, Any], extra: dict[str, Any]) -> None:
    """Write the checkpoint atomically into ``folder``."""
    root = Path(folder)
    enc = _Encoder()
    doc = {"version": VERSION, "follower": follower, "extra": extra,
           "detector": {k: enc.enc(v) for k, v in vars(detector).items() if k not in SKIP}}
    buffer = io.BytesIO()
    members: dict[str, Any] = {"__doc__": np.frombuffer(json.dumps(doc).encode("utf-8"), np.uint8), **enc.arrays}
    np.savez(buffer, **members)
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".state-", dir=root)
        with os.fdopen(fd, "wb") as fh:
            fh.write(buffer.getvalue())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, root / STATE_FILE)
    except OSError as exc:
        raise StoreError(f"cannot write the watch state: {exc}", path=str(root),
                         hint="Give --state a writable folder.") from exc


def load(folder: str | Path, detector: LiveDetector) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Restore ``detector`` from the checkpoint in ``folder``; returns (follower state, extra), or None
    when there is no checkpoint yet."""
    path = Path(folder) / STATE_FILE
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
        doc = json.loads(arrays.pop("__doc__").tobytes().decode("utf-8"))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise StoreError(f"the watch state is unreadable: {exc}", path=str(path),
                         hint="Move it away to start afresh (lines will be read again from the files' ends).") from exc
    if doc.get("version") != VERSION:
        raise StoreError(f"the watch state is of another version ({doc.get('version')})", path=str(path),
                         hint="Move it away to start afresh.")
    for key, value in doc["detector"].items():
        setattr(detector, key, _dec(value, arrays))
    return doc["follower"], doc["extra"]
