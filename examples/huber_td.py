"""A plug-in rule for examples/study.toml: TD(0) with its error clipped at +/- ``delta``
(the gradient of the Huber loss), so that one large reward moves the estimate by at most
``step_size * delta``.

``make_rule(delta)`` is the factory the study file names (``rule = "huber_td:make_rule"``,
``hparams = {delta = 1.0}``); the study file's folder is on ``sys.path`` when it loads.
"""

from __future__ import annotations

import jax.numpy as jnp

from td_jax import UpdateRule, rules


def make_rule(delta: float = 1.0) -> UpdateRule:
    """Huber-clipped TD(0): ``v <- v + step_size * clip(r + discount * v' - v, -delta, delta)``.

    Classical (one statistic, the mean), with TD's facts: its step is a fraction of the
    error, in the same units as TD's.
    """

    def kernel(v, r_t, discount_t, v_next, step_size, key):
        return v + step_size * jnp.clip(r_t + discount_t * v_next - v, -delta, delta)

    return rules.tabular_rule(kernel, init_stat=jnp.zeros(1), distributional=False)
