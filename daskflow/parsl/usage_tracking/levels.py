"""``parsl.usage_tracking.levels``: Parsl's level names."""

DISABLED = 0
LEVEL_1 = 1
LEVEL_2 = 2
LEVEL_3 = 3
