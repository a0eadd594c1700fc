"""Site profiles: where a workflow runs (one Dask scheduler, one or more pools of workers)."""
