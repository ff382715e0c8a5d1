"""A user's MaxMind-format database (``.mmdb``: GeoLite2/GeoIP2 Country, City or ASN, DB-IP lite, IPinfo lite),
read with the ``maxminddb`` package. Addresses are looked up one by one in its C reader, but an address inside
the network of the previous answer (sorted input) reuses that answer, so clustered sources cost little."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import maxminddb
import numpy as np
import pyarrow as pa

from floodwitness.errors import UsageError

if TYPE_CHECKING:
    from floodwitness.enrich.addresses import Addresses


def _country(rec: dict[str, Any]) -> str | None:
    for key in ("country", "registered_country"):
        part = rec.get(key)
        if isinstance(part, dict) and part.get("iso_code"):
            return str(part["iso_code"])
    code = rec.get("country_code")  # IPinfo lite
    return str(code) if code else None


def _asn(rec: dict[str, Any]) -> tuple[int | None, str | None]:
    number = rec.get("autonomous_system_number")
    name = rec.get("autonomous_system_organization")
    if number is None and isinstance(rec.get("asn"), str):  # IPinfo lite: "AS13335", "as_name"
        text = rec["asn"].upper().removeprefix("AS")
        number = int(text) if text.isdigit() else None
        name = rec.get("as_name")
    return (int(number) if number is not None else None), (str(name) if name else None)


class MmdbDatabase:
    """One ``.mmdb`` file: what it holds (country and/or ASN) is read from its records."""

    def __init__(self, path: str, role: str) -> None:
        try:
            self.reader = maxminddb.open_database(path)
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
            raise UsageError(f"--{role}: cannot read {path} as a MaxMind database ({exc})",
                             hint="Give a .mmdb file (GeoLite2/GeoIP2 Country, City or ASN, DB-IP lite, "
                                  "IPinfo lite).") from None
        meta = self.reader.metadata()
        self.path = path
        self.role = role
        self.name = str(meta.database_type)
        self.date = datetime.fromtimestamp(int(meta.build_epoch), UTC).strftime("%Y-%m-%d")

    def lookup(self, ips: pa.Array, addr: Addresses) -> tuple[pa.Array, pa.Array, pa.Array]:
        """Country, AS number and AS name of each address (null when the file does not say)."""
        n = len(ips)
        countries: list[str | None] = [None] * n
        numbers: list[int | None] = [None] * n
        names: list[str | None] = [None] * n
        texts = ips.to_pylist()
        # sorted by family and key, so that neighbours inside one network share a lookup
        order = np.lexsort((addr.v6, addr.v4, addr.family)).tolist()
        last_net: tuple[int, int, int] | None = None
        last: tuple[str | None, int | None, str | None] = (None, None, None)
        for i in order:
            fam = int(addr.family[i])
            if fam == 0:
                continue
            key, bits = (int(addr.v4[i]), 32) if fam == 4 else (int(addr.v6[i]), 64)
            if last_net is not None and last_net[0] == fam and key >> last_net[2] == last_net[1]:
                countries[i], numbers[i], names[i] = last
                continue
            try:
                rec, plen = self.reader.get_with_prefix_len(texts[i])
            except ValueError:
                continue
            host_bits = (bits if fam == 4 else 128) - plen
            shift = host_bits - (0 if fam == 4 else 64)
            last_net = (fam, key >> shift, shift) if 0 <= shift <= bits else None
            if isinstance(rec, dict):
                number, name = _asn(rec)
                last = (_country(rec), number, name)
            else:
                last = (None, None, None)
            countries[i], numbers[i], names[i] = last
        return pa.array(countries, pa.string()), pa.array(numbers, pa.int64()), pa.array(names, pa.string())

    def close(self) -> None:
        self.reader.close()
