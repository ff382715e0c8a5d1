"""The database that installs with floodwitness: the ``geoip2fast`` package's country + ASN data file.

geoip2fast (MIT) ships MaxMind GeoLite2 Country and ASN data (CC BY-SA 4.0, see
https://www.maxmind.com) as a gzipped pickle of sorted network lists. We read those lists once into numpy
range tables (about a second) and look addresses up vectorised; geoip2fast's own per-address lookup would
take ~30 s for a million addresses. The file keeps AS names but not AS numbers: give ``--asn FILE`` (a
GeoLite2-ASN, DB-IP or IPinfo ``.mmdb``) for numbers.
"""

from __future__ import annotations

import bisect
import gzip
import os
import pickle
import tempfile
from functools import cache
from importlib import metadata, util
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from floodwitness.enrich.ranges import UNKNOWN, RangeTable
from floodwitness.errors import FloodwitnessError

if TYPE_CHECKING:
    from floodwitness.enrich.addresses import Addresses

PACKAGE = "geoip2fast"
DATA_FILE = "geoip2fast-asn-ipv6.dat.gz"
MAX_IPV4 = 2**32 - 1
PRIVATE_CODES = 16  # the first country entries are reserved / private ranges, not countries
SUPPORTED_VERSIONS = (120,)


def _flatten(chunks: list[list[Any]]) -> list[Any]:
    return [x for chunk in chunks for x in chunk]


def _tables(firsts: list[int], netlens: list[int], ids: list[int]) -> tuple[RangeTable, RangeTable]:
    """Split one sorted network list into an IPv4 table (32-bit keys) and an IPv6 one (upper 64 bits)."""
    split = bisect.bisect_right(firsts, MAX_IPV4)
    s4 = np.asarray(firsts[:split], dtype=np.uint64)
    n4 = np.asarray(netlens[:split], dtype=np.uint64)
    v4 = RangeTable.build(s4, s4 + (np.uint64(1) << (np.uint64(32) - n4)) - np.uint64(1), ids[:split])
    keep = [i for i in range(split, len(firsts)) if netlens[i] <= 64]
    s6 = np.asarray([firsts[i] >> 64 for i in keep], dtype=np.uint64)
    n6 = np.asarray([netlens[i] for i in keep], dtype=np.uint64)
    size = np.where(n6 == 0, np.uint64(0), np.uint64(1) << (np.uint64(64) - np.maximum(n6, 1)))
    v6 = RangeTable.build(s6, s6 + size - np.uint64(1), [ids[i] for i in keep])
    return v4, v6


_TABLES = ("country4", "country6", "asn4", "asn6")


def _cache_dir() -> Path:
    explicit = os.environ.get("FLOODWITNESS_CACHE_DIR")
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(explicit) if explicit else Path(base) / "floodwitness"


def _data_path() -> Path:
    spec = util.find_spec(PACKAGE)  # locates the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the {PACKAGE} package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / DATA_FILE


class BundledDatabase:
    """Country and AS name of addresses, from the data file of the installed geoip2fast package.

    The data file is turned into numpy tables once and cached (``$FLOODWITNESS_CACHE_DIR``, default
    ``~/.cache/floodwitness``): a second run loads them in a few milliseconds instead of ~3 s."""

    def __init__(self) -> None:
        try:
            path = _data_path()
            self.version = metadata.version(PACKAGE)
            cached = _cache_dir() / f"ipdb-{PACKAGE}-{self.version}-{path.stat().st_size}.npz"
            if not self._load_cache(cached):
                self._load_data_file(path)
                self._save_cache(cached)
        except (ModuleNotFoundError, FileNotFoundError, OSError, ValueError, pickle.UnpicklingError,
                metadata.PackageNotFoundError) as exc:
            raise FloodwitnessError(f"cannot read the bundled IP database ({PACKAGE}/{DATA_FILE}): {exc}",
                                    hint=f"Reinstall floodwitness (it depends on {PACKAGE}), or give --geoip "
                                         "and --asn .mmdb files.") from None
        stamp = self.name.rsplit("-", 1)[-1]
        self.date = f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}" if stamp.isdigit() and len(stamp) == 8 else None

    def _load_data_file(self, path: Path) -> None:
        with path.open("rb") as raw, gzip.open(raw) as f:
            # a data file of an installed package we depend on (not user input)
            version, source, _total, db = pickle.load(f)  # noqa: S301
        if version not in SUPPORTED_VERSIONS or len(db) != 10:
            raise ValueError(f"unknown layout (version {version}); install the {PACKAGE} version floodwitness pins")
        (_index, _index_asn, country_names, asn_names, firsts, firsts_asn, country_ids, asn_ids,
         netlens, netlens_asn) = db
        self.name = str(source.get("info", PACKAGE))  # e.g. MAXMIND:GeoLite2-CountryASN-IPv4IPv6-en-20240618
        codes = [entry.split(":", 1)[0] for entry in country_names]
        self.countries = pa.array([None if i < PRIVATE_CODES else c for i, c in enumerate(codes)], pa.string())
        self.as_names = pa.array([None if i == 0 or not n or n == "<unknown>" else n
                                  for i, n in enumerate(asn_names)], pa.string())
        self.country4, self.country6 = _tables(_flatten(firsts), _flatten(netlens), _flatten(country_ids))
        self.asn4, self.asn6 = _tables(_flatten(firsts_asn), _flatten(netlens_asn), _flatten(asn_ids))

    def _load_cache(self, path: Path) -> bool:
        try:
            with np.load(path) as z:
                for name in _TABLES:
                    setattr(self, name, RangeTable(z[f"{name}_s"], z[f"{name}_e"], z[f"{name}_v"]))
                texts = bytes(z["texts"]).decode("utf-8").split("\x00")
        except (OSError, KeyError, ValueError, UnicodeDecodeError):
            return False
        self.name = texts[0]
        n_countries = int(texts[1])
        self.countries = pa.array([t or None for t in texts[2:2 + n_countries]], pa.string())
        self.as_names = pa.array([t or None for t in texts[2 + n_countries:]], pa.string())
        return True

    def _save_cache(self, path: Path) -> None:
        texts = [self.name, str(len(self.countries))]
        texts += [c or "" for c in self.countries.to_pylist()] + [n or "" for n in self.as_names.to_pylist()]
        arrays: dict[str, Any] = {"texts": np.frombuffer("\x00".join(texts).encode("utf-8"), dtype=np.uint8)}
        for name in _TABLES:
            table: RangeTable = getattr(self, name)
            arrays |= {f"{name}_s": table.starts, f"{name}_e": table.ends, f"{name}_v": table.values}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as out:
                np.savez(out, **arrays)
            os.replace(tmp, path)
        except OSError:
            pass  # no cache: the next run reads the data file again

    def _ids(self, addr: Addresses, t4: RangeTable, t6: RangeTable) -> np.ndarray:
        out = np.full(len(addr.family), UNKNOWN, dtype=np.int32)
        is4, is6 = addr.family == 4, addr.family == 6
        out[is4] = t4.lookup(addr.v4[is4].astype(np.uint64))
        out[is6] = t6.lookup(addr.v6[is6])
        return out

    def country(self, addr: Addresses) -> pa.Array:
        return _take(self.countries, self._ids(addr, self.country4, self.country6))

    def as_name(self, addr: Addresses) -> pa.Array:
        return _take(self.as_names, self._ids(addr, self.asn4, self.asn6))


def _take(values: pa.Array, ids: np.ndarray) -> pa.Array:
    idx = pa.array(ids, mask=ids < 0, type=pa.int32())
    return values.take(idx)


@cache
def bundled_database() -> BundledDatabase:
    """The bundled database, read once per process."""
    return BundledDatabase()
