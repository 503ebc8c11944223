"""Control: every tabular rule as a learner that acts (SCIENCE.md section 8).

``lift`` turns a prediction rule into a control learner over state-action pairs with a
greedy target; ``run_controls`` runs every rule x ``td_jax.envs.MDP`` x step size x seed at
once (MDPs of one shape are one batch), synchronously (a generative model) or online
(epsilon-greedy), with exact ``||Q - Q*||_inf``, mean squared Q errors and greedy-policy
value gaps at checkpoints; ``run_control`` is its one-rule, one-MDP form.
"""

from td_jax.control import lift
from td_jax.control.run import METRICS, ControlResult, ControlRuns, run_control, run_controls
from td_jax.types import MODES

__all__ = [
    "METRICS",
    "MODES",
    "ControlResult",
    "ControlRuns",
    "lift",
    "run_control",
    "run_controls",
]
