"""Control: every tabular rule as a learner that acts (SCIENCE.md section 8).

``lift`` turns a prediction rule into a control learner over state-action pairs with a
greedy target; ``run_control`` runs one rule on one ``td_jax.envs.MDP`` for every step size
x seed at once, synchronously (a generative model) or online (epsilon-greedy), with exact
``||Q - Q*||_inf`` and greedy-policy value gaps at checkpoints.
"""

from td_jax.control import lift
from td_jax.control.run import MODES, ControlResult, run_control

__all__ = ["MODES", "ControlResult", "lift", "run_control"]
