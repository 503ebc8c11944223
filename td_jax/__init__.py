"""td_jax: does distributional TD converge faster than classical TD? Millions of TD learners in JAX.

Public namespace (README.md and docs/api.md rely on it):
  ``Transition``, ``UpdateRule`` -- the core types;
  ``rules`` -- ``make``, ``available``, ``register``, ``tabular_rule`` and the built-in rules;
  ``rewards`` -- reward distributions with exact moments, quantiles and expectiles;
  ``envs`` -- policy-evaluation tasks (MRPs) with exact ground truth;
  ``run`` / ``RunResult`` -- every rule x task x step size x seed as one batch of learners;
  ``analysis`` -- N(eps) and S(eps) with bootstrap intervals on a ``run`` result;
  ``approx`` -- linear and MLP (flax / optax) forms of the rules, on state features;
  ``MRPLike``, ``MDPLike``, ``Kernel`` -- the typed contracts of what users implement
  (``td_jax.protocols``).
"""

from td_jax import analysis, approx, envs, rewards, rules
from td_jax.protocols import Kernel, MDPLike, MRPLike
from td_jax.runner import RunResult, run
from td_jax.types import RuleFacts, Transition, UpdateRule

__version__ = "0.1.0"

__all__ = [
    "RunResult",
    "Transition",
    "UpdateRule",
    "RuleFacts",
    "MRPLike",
    "MDPLike",
    "Kernel",
    "__version__",
    "analysis",
    "approx",
    "envs",
    "rewards",
    "rules",
    "run",
]
