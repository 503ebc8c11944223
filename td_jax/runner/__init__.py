"""The vectorised runner: ``run`` and its ``RunResult``."""

from td_jax.runner.metrics import log_checkpoints, value_rmse, wasserstein1
from td_jax.runner.result import RunResult
from td_jax.runner.run import run, stream_key

__all__ = ["RunResult", "log_checkpoints", "run", "stream_key", "value_rmse", "wasserstein1"]
