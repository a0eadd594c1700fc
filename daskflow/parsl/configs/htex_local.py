"""``parsl.configs.htex_local``: one block of workers on this machine."""

from ..config import Config
from ..executors import HighThroughputExecutor
from ..providers import LocalProvider

config = Config(executors=[HighThroughputExecutor(
    label="htex_local", cores_per_worker=1, provider=LocalProvider(init_blocks=1, max_blocks=1))])
