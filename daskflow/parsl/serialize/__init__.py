"""``parsl.serialize``: on daskflow, Dask's serialization (cloudpickle) ships
arguments and results; only the errors are Parsl's names."""
