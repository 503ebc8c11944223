"""td_jax: does distributional TD converge faster than classical TD? Millions of TD learners in JAX.

Public namespace (see README and DESIGN): ``Transition``, ``UpdateRule``, ``rules``.
"""

from td_jax import rules
from td_jax.types import Transition, UpdateRule

__version__ = "0.1.0"

__all__ = ["Transition", "UpdateRule", "__version__", "rules"]
