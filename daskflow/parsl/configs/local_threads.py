"""``parsl.configs.local_threads``: threads on this machine."""

from ..config import Config
from ..executors import ThreadPoolExecutor

config = Config(executors=[ThreadPoolExecutor()])
