"""What a named vector's claim says, in words that keep roles straight: spoofed sources are not attackers, and
reflectors are misused servers answering requests sent in the target's name, never "the attackers"."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from floodwitness.analysis.network_model import VectorHit
    from floodwitness.analysis.network_vectors import Vectors

ROLES = {"spoofed": "spoofed sources (forged addresses: not the attacker's hosts)",
         "sources": "sources", "reflectors": "reflectors"}


def claim(hit: VectorHit, target: str, vectors: Vectors) -> str:
    rate = f"peak {hit.peak_pps:,.0f} pps / {hit.peak_bps / 1e6:,.2f} Mbit/s"
    port = f" port {hit.port}" if hit.port is not None and hit.port_side == "dst" else ""
    if hit.port_side == "src":
        amp = hit.amplification or {}
        factor = f" (amplification up to {amp['factor']}x, {amp['reference']})" if amp.get("factor") else ""
        nat = (f"; {hit.nat_sources:,} of them answered from translated high ports ({vectors.nat_how})"
               if hit.nat_sources else "")
        return (f"{hit.name}: {hit.packets:,} UDP packets from source port {hit.port} to {target} from "
                f"{hit.sources:,} reflectors{factor}, {rate}. Reflectors are misused servers answering requests "
                f"the attacker sent with {target}'s address forged; {target} never asked them{nat}")
    return (f"{hit.name}: {hit.packets:,} packets ({hit.share:.0%} of the traffic) to {target}{port} from "
            f"{hit.sources:,} {ROLES[hit.source_role]}, {rate}. Signature: "
            f"{vectors.all[hit.vector].signature}")
