"""daskflow's version (read by setup.cfg, the CLI and each run's provenance)."""

__version__ = "0.1.0"
