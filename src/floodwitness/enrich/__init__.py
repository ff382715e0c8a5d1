"""Stage 3b: enrichment. Every distinct client address gets its country, AS number and AS name from an
offline database: the one that installs with floodwitness (geoip2fast's GeoLite2 data), or the user's
``.mmdb`` files (``--geoip FILE`` for countries, ``--asn FILE`` for networks). Nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from floodwitness.enrich.addresses import Addresses, parse_addresses
from floodwitness.enrich.bundled import PACKAGE, bundled_database
from floodwitness.enrich.mmdb import MmdbDatabase

if TYPE_CHECKING:
    from floodwitness.enrich.bundled import BundledDatabase

__all__ = ["Addresses", "Enricher", "parse_addresses"]

BUNDLED_LICENCE = ("GeoLite2 data by MaxMind (CC BY-SA 4.0), as shipped by the geoip2fast package (MIT); "
                   "AS numbers are not in it (AS names are)")


@dataclass
class Enricher:
    """Looks addresses up in the bundled database, overridden per field by the user's files."""

    geoip: str | None = None
    asn: str | None = None

    def __post_init__(self) -> None:
        self._geoip = MmdbDatabase(self.geoip, "geoip") if self.geoip else None
        self._asn = MmdbDatabase(self.asn, "asn") if self.asn else None
        self._bundled: BundledDatabase | None = None

    @property
    def bundled(self) -> BundledDatabase:
        if self._bundled is None:
            self._bundled = bundled_database()
        return self._bundled

    def databases(self) -> list[dict[str, Any]]:
        """What the report names: each database used, for which fields, and its date."""
        out: list[dict[str, Any]] = []
        if self._geoip is None or self._asn is None:
            b = self.bundled
            fields = [f for f, user in (("country", self._geoip), ("as_name", self._asn)) if user is None]
            out.append({"name": b.name, "date": b.date, "source": f"{PACKAGE} {b.version} (bundled)",
                        "fields": fields, "licence": BUNDLED_LICENCE})
        for db, fields in ((self._geoip, ["country"]), (self._asn, ["asn", "as_name"])):
            if db is not None:
                out.append({"name": db.name, "date": db.date, "source": db.path, "fields": fields,
                            "licence": "the user's file"})
        return out

    def enrich(self, ips: pa.Array | pa.ChunkedArray | list[str], addresses: Addresses | None = None) -> pa.Table:
        """``ip, asn, as_name, country`` for each address given (give distinct ones: the cost is per address);
        ``addresses``: ``parse_addresses(ips)``, when the caller has it already."""
        arr = pa.array(ips, type=pa.string()) if isinstance(ips, list) else ips
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        addr = addresses if addresses is not None else parse_addresses(arr)
        n = len(arr)
        asn: pa.Array = pa.nulls(n, pa.int64())
        if self._geoip is not None:
            country, _, _ = self._geoip.lookup(arr, addr)
        else:
            country = self.bundled.country(addr)
        if self._asn is not None:
            _, asn, as_name = self._asn.lookup(arr, addr)
        else:
            as_name = self.bundled.as_name(addr)
        return pa.table({"ip": arr, "asn": asn, "as_name": as_name, "country": country})

    def close(self) -> None:
        for db in (self._geoip, self._asn):
            if db is not None:
                db.close()
