"""``parsl.app``."""
