"""Terminal and JSON views of an ingest: per-input accounting and rejected-line samples."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from floodwitness.safe import terminal_safe
from floodwitness.schema import REJECT_REASONS

if TYPE_CHECKING:
    from rich.console import Console

    from floodwitness.ingest.store import Manifest


def ingest_summary(manifest: Manifest, store: str | None) -> dict[str, Any]:
    """The `--json` summary of an ingest (the manifest plus totals and where the store is)."""
    data = manifest.to_dict()
    data["store"] = store
    data["totals"] = manifest.totals
    return data


def print_ingest(console: Console, manifest: Manifest, store: str | None) -> None:
    table = Table(title="Inputs", title_justify="left", show_lines=False, expand=False)
    for column, justify in (("file", "left"), ("format", "left"), ("read", "right"), ("parsed", "right"),
                            ("rejected", "right"), ("sha256", "left")):
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for item in manifest.inputs:
        fmt = item.format or "-"
        if item.format_confidence is not None:
            fmt += f" ({item.format_confidence:.0%})"
        name = os.path.basename(item.path) or item.path
        table.add_row(Text(terminal_safe(name, 40)), fmt, f"{item.lines_read:,}", f"{item.lines_parsed:,}",
                      f"{item.lines_rejected:,}", item.sha256[:12])
    console.print(table)
    totals = manifest.totals
    console.print(Text(f"{totals['lines_read']:,} lines read = {totals['lines_parsed']:,} parsed + "
                       f"{totals['lines_rejected']:,} rejected, from {len(manifest.inputs)} input(s)"))
    for item in manifest.inputs:
        if item.damage:
            console.print(Text(f"warning: {terminal_safe(item.path, 80)} is incomplete: {item.damage}",
                               style="yellow"))
        if item.utf8_repaired:
            console.print(Text(f"note: {terminal_safe(item.path, 80)}: {item.utf8_repaired:,} line(s) had invalid "
                               "UTF-8, kept with U+FFFD in place of the bad bytes"))
        for reason, count in item.rejected_by_reason.items():
            console.print(Text(f"rejected {count:,} line(s) of {terminal_safe(item.path, 60)}: {reason} "
                               f"({REJECT_REASONS.get(reason, '')})"))
            for sample in [s for s in item.reject_samples if s.reason == reason][:3]:
                console.print(Text(f"  line {sample.line}: {terminal_safe(sample.raw, 120)}", style="dim"))
    for skipped in manifest.skipped:
        console.print(Text(f"skipped {terminal_safe(skipped['path'], 80)}: not an access log in a known format",
                           style="yellow"))
    if store:
        console.print(Text(f"store: {store}"))
