"""Generate docs/cli.md, the command-line reference, from the CLI's own help texts.

    python docs/cli_reference.py            # rewrite docs/cli.md
    python docs/cli_reference.py --check    # exit 1 if docs/cli.md is out of date (the test suite does this)

The text is click's help at a fixed width, so it is the same on every terminal.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from floodwitness.cli import main

DOC = Path(__file__).with_name("cli.md")
WIDTH = 100


def _context(command: click.Command, name: str, parent: click.Context | None = None) -> click.Context:
    """The context the CLI itself gives ``command`` (its -h/--help names), at the fixed width."""
    settings = {**main.context_settings, "terminal_width": WIDTH, "max_content_width": WIDTH}
    return click.Context(command, info_name=name, parent=parent, **settings)


def render() -> str:
    """The whole reference: the top-level help, then each command's, in the order `--help` lists them."""
    top = _context(main, "floodwitness")
    out = ["# Command-line reference", "",
           "Generated from the commands' own help by `python docs/cli_reference.py`; a test fails when it is out",
           "of date.", "", "```text", main.get_help(top), "```", ""]
    assert isinstance(main, click.Group)
    for name in main.list_commands(top):
        command = main.get_command(top, name)
        assert command is not None
        out += [f"## `floodwitness {name}`", "", "```text", command.get_help(_context(command, name, top)), "```", ""]
    return "\n".join(out)


def main_() -> int:
    text = render()
    if "--check" in sys.argv[1:]:
        if not DOC.exists() or DOC.read_text(encoding="utf-8") != text:
            print(f"{DOC} is out of date: run python docs/cli_reference.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main_())
