"""Stage 1: inputs. Find the files, open them (plain or compressed, by content), hash them, and cut
them into batches of lines with exact accounting. Nothing here knows about log formats."""

from floodwitness.inputs.discover import InputFile, discover
from floodwitness.inputs.lines import FileAccount, LineBatcher, iter_line_batches

__all__ = ["FileAccount", "InputFile", "LineBatcher", "discover", "iter_line_batches"]
