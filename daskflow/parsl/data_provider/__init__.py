"""``parsl.data_provider``."""
