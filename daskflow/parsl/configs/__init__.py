"""``parsl.configs``: Parsl's ready-made configurations (each module has a ``config``)."""
