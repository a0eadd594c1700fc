"""``parsl.executors.high_throughput``."""
