"""Live detection (``floodwitness watch``): follow logs, flag the same signals ``analyze`` uses over sliding
windows with bounded memory, and raise alerts as they happen."""

from floodwitness.watch.detector import LiveDetector, LivePolicy
from floodwitness.watch.run import Watcher, WatchOptions, WatchSummary

__all__ = ["LiveDetector", "LivePolicy", "WatchOptions", "WatchSummary", "Watcher"]
