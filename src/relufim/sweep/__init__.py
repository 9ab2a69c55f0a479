"""Parameter grids on Dask, crash-safe and resumable: the sweep runner and its results store (application layer)."""

from .runner import SchedulerUnreachableError, SweepConfig, connect, load_sweep_config, parse_sweep_config, run_sweep
from .store import load_results

__all__ = ["run_sweep", "SchedulerUnreachableError", "connect", "load_sweep_config", "parse_sweep_config",
           "SweepConfig", "load_results"]
