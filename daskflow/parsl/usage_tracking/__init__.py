"""``parsl.usage_tracking``: daskflow sends nothing; the levels exist for
configurations that name them (``Config(usage_tracking=...)`` is accepted
with the unused-options warning)."""
