"""``parsl.dataflow``."""
