"""Which models are in memory: load on demand, ``keep_alive``, a memory budget, eviction, pinning.

``policy.py`` parses the settings (sizes, durations), ``footprint.py`` estimates and measures
what a model holds, ``manager.py`` is ``Residency``, the one place that decides when a model
loads and unloads. Imports ``core`` and the worker protocol only.
"""

from modelport.workers.residency.footprint import process_rss, release_memory
from modelport.workers.residency.manager import Lease, LoadState, Residency, ResidencyStats
from modelport.workers.residency.policy import ResidencyPolicy, parse_keep_alive, parse_size

__all__ = [
    "Lease",
    "LoadState",
    "Residency",
    "ResidencyPolicy",
    "ResidencyStats",
    "parse_keep_alive",
    "parse_size",
    "process_rss",
    "release_memory",
]
